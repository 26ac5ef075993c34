//! `first-touch`: a page lives on the node of the CPU that touched it first
//! (Linux's default): local for private data, all on one node for data one
//! vCPU initialises for everybody.

use super::{Fault, Nodes, Policy};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirstTouch;

impl Policy for FirstTouch {
    fn nodes(&self, fault: &Fault) -> Nodes {
        core::iter::once(fault.node).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::fault;
    use super::*;

    #[test]
    fn the_toucher_s_node() {
        assert_eq!(FirstTouch.nodes(&fault(3, 1, 7)).as_slice(), [1]);
        assert_eq!(FirstTouch.nodes(&fault(0, 0, 7)).as_slice(), [0]);
    }
}
