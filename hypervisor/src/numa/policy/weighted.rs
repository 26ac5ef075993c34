//! `weighted-interleave`: interleave in proportion to each node's memory
//! bandwidth (the HMAT's local access bandwidth, as Linux's weighted
//! interleave takes it); equal weights without an HMAT.

use super::{Fault, Nodes, Policy};
use crate::acpi::hmat;
use crate::numa::topology::{MAX_NODES, Topology};

/// A node's weight at most: the cycle stays short.
const MAX_WEIGHT: u64 = 8;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeightedInterleave {
    /// One cycle of nodes, each as many times as its weight (node indices
    /// are below `MAX_NODES`, 16: a byte each keeps the policies one size).
    cycle: heapless::Vec<u8, { MAX_NODES * MAX_WEIGHT as usize }>,
}

impl WeightedInterleave {
    /// Over `nodes` (not empty) of `topology`, weighted by `hmat`.
    pub fn new(topology: &Topology, nodes: &[usize], hmat: &[hmat::Value]) -> Self {
        let bandwidth = |i: usize| {
            let d = topology.nodes[i].domain;
            hmat.iter()
                .find(|v| v.kind == "access-bandwidth" && v.initiator == d && v.target == d)
                .map(|v| v.value)
        };
        let known: heapless::Vec<Option<u64>, MAX_NODES> =
            nodes.iter().map(|&i| bandwidth(i)).collect();
        let least = known.iter().flatten().copied().min().unwrap_or(1).max(1);
        let mut cycle = heapless::Vec::new();
        for (&node, bw) in nodes.iter().zip(&known) {
            // Equal weights where the HMAT says nothing of every node.
            let weight = match (bw, known.iter().all(Option::is_some)) {
                (Some(b), true) => (b + least / 2) / least,
                _ => 1,
            };
            for _ in 0..weight.clamp(1, MAX_WEIGHT) {
                let _ = cycle.push(node as u8);
            }
        }
        Self { cycle }
    }
}

impl Policy for WeightedInterleave {
    fn nodes(&self, fault: &Fault) -> Nodes {
        let i = (fault.gpa / fault.page) as usize % self.cycle.len();
        core::iter::once(usize::from(self.cycle[i])).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{fault, topology};
    use super::*;

    fn local_bandwidth(domain: u32, value: u64) -> hmat::Value {
        hmat::Value {
            kind: "access-bandwidth",
            initiator: domain,
            target: domain,
            value,
        }
    }

    #[test]
    fn pages_follow_the_bandwidths() {
        let hmat = [local_bandwidth(0, 200), local_bandwidth(1, 100)];
        let p = WeightedInterleave::new(&topology(), &[0, 1], &hmat);
        let nodes: Vec<usize> = (0..6).map(|page| p.nodes(&fault(0, 0, page))[0]).collect();
        assert_eq!(
            nodes,
            [0, 0, 1, 0, 0, 1],
            "twice the bandwidth, twice the pages"
        );
    }

    #[test]
    fn without_an_hmat_the_weights_are_equal() {
        let p = WeightedInterleave::new(&topology(), &[0, 1], &[]);
        let nodes: Vec<usize> = (0..4).map(|page| p.nodes(&fault(0, 0, page))[0]).collect();
        assert_eq!(nodes, [0, 1, 0, 1]);
        let partial = WeightedInterleave::new(&topology(), &[0, 1], &[local_bandwidth(0, 900)]);
        assert_eq!(partial, p, "half an HMAT is no HMAT");
    }
}
