//! `bind:N[,M...]`: pages only on those nodes, the first with free memory
//! in the order given; never elsewhere (a guest that outgrows them fails
//! to back its page instead).

use super::{Fault, Nodes, Policy};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bind {
    nodes: Nodes,
}

impl Bind {
    pub fn new(nodes: Nodes) -> Self {
        Self { nodes }
    }
}

impl Policy for Bind {
    fn nodes(&self, _: &Fault) -> Nodes {
        self.nodes.clone()
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
    fn only_the_bound_nodes_in_their_order() {
        let p = Bind::new([1, 0].into_iter().collect());
        assert_eq!(p.nodes(&fault(0, 0, 9)).as_slice(), [1, 0]);
        assert!(!p.may_fall_back());
    }
}
