//! `numa.guest=mirror`: an OS guest that sees the real topology gets each
//! of its nodes' guest-physical range backed on that host node, never
//! elsewhere (its SRAT says so: `vm::platform::mirror_srat`).

use heapless::Vec;

use super::{Fault, Nodes, Policy};
use crate::numa::topology::MAX_NODES;

/// Guest-physical [start, end) ranges and the node that backs each.
pub type Ranges = Vec<(u64, u64, usize), MAX_NODES>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mirror {
    ranges: Ranges,
}

impl Mirror {
    pub fn new(ranges: Ranges) -> Self {
        Self { ranges }
    }
}

impl Policy for Mirror {
    fn nodes(&self, fault: &Fault) -> Nodes {
        let range = self
            .ranges
            .iter()
            .find(|(start, end, _)| (*start..*end).contains(&fault.gpa))
            .or(self.ranges.last());
        range.map(|&(_, _, node)| node).into_iter().collect()
    }

    fn may_fall_back(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::fault;
    use super::*;

    #[test]
    fn each_range_on_its_node_and_nowhere_else() {
        let p = Mirror::new(
            [(0, 128 << 20, 0), (128 << 20, 256 << 20, 1)]
                .into_iter()
                .collect(),
        );
        // `fault` takes a page number.
        assert_eq!(p.nodes(&fault(0, 1, 1)).as_slice(), [0]);
        assert_eq!(p.nodes(&fault(0, 0, (200 << 20) / 4096)).as_slice(), [1]);
        assert!(!p.may_fall_back());
    }
}
