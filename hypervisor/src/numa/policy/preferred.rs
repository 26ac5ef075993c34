//! `preferred:N`: pages on node N while it has memory, then on the nearest
//! node by distance (the allocator's fallback).

use super::{Fault, Nodes, Policy};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preferred {
    node: usize,
}

impl Preferred {
    pub fn new(node: usize) -> Self {
        Self { node }
    }
}

impl Policy for Preferred {
    fn nodes(&self, _: &Fault) -> Nodes {
        core::iter::once(self.node).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::fault;
    use super::*;

    #[test]
    fn the_preferred_node_whoever_touches() {
        let p = Preferred::new(1);
        assert_eq!(p.nodes(&fault(0, 0, 3)).as_slice(), [1]);
        assert!(p.may_fall_back(), "then by distance");
    }
}
