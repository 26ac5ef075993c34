//! `interleave`: pages dealt round-robin over the nodes with memory, by
//! guest-physical page number (as Linux interleaves by offset): who touches
//! a page does not matter, and the same page always lands on the same node.

use super::{Fault, Nodes, Policy};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interleave {
    nodes: Nodes,
}

impl Interleave {
    /// Over `nodes` (not empty), in that order.
    pub fn new(nodes: Nodes) -> Self {
        Self { nodes }
    }
}

impl Policy for Interleave {
    fn nodes(&self, fault: &Fault) -> Nodes {
        let i = (fault.gpa / fault.page) as usize % self.nodes.len();
        core::iter::once(self.nodes[i]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::fault;
    use super::*;

    #[test]
    fn pages_alternate_whoever_touches_them() {
        let p = Interleave::new([0, 1].into_iter().collect());
        let nodes: Vec<usize> = (0..6).map(|page| p.nodes(&fault(0, 0, page))[0]).collect();
        assert_eq!(nodes, [0, 1, 0, 1, 0, 1]);
        assert_eq!(
            p.nodes(&fault(5, 1, 4))[0],
            0,
            "page 4, from vCPU 5 on node 1"
        );
        let large = super::Fault {
            gpa: 3 << 21,
            page: 2 << 20,
            ..fault(0, 0, 0)
        };
        assert_eq!(p.nodes(&large)[0], 1, "2 MiB pages count in 2 MiB");
    }
}
