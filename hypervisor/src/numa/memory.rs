//! Physical memory per node: one frame allocator per node over the memory
//! map intersected with the node's ranges; allocation on a requested node,
//! falling back to the others by increasing distance.

use heapless::Vec;

use super::topology::{MAX_NODES, Topology};
use crate::boot::MemoryRegion;
use crate::frames::{FRAME, FrameAllocator};

pub const LARGE: u64 = 2 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameSize {
    /// 4 KiB.
    Small,
    /// 2 MiB, 2 MiB-aligned.
    Large,
}

pub struct NodeMemory {
    nodes: Vec<FrameAllocator, MAX_NODES>,
    /// For each node, every node by increasing distance.
    order: Vec<Vec<usize, MAX_NODES>, MAX_NODES>,
    used: [u64; MAX_NODES],
}

impl NodeMemory {
    pub fn new(topology: &Topology, memory: &[MemoryRegion], reserved: &[(u64, u64)]) -> Self {
        let n = topology.nodes.len();
        let nodes = (0..n)
            .map(|i| {
                let regions: Vec<MemoryRegion, 64> =
                    topology.usable_regions(i, memory).take(64).collect();
                FrameAllocator::new(&regions, reserved)
            })
            .collect();
        let order = (0..n).map(|i| topology.by_distance(i)).collect();
        Self {
            nodes,
            order,
            used: [0; MAX_NODES],
        }
    }

    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }

    /// A frame, from `node` if it has one, else from the nearest node that
    /// does; with the node it came from.
    pub fn alloc(&mut self, node: usize, size: FrameSize) -> Option<(u64, usize)> {
        match size {
            FrameSize::Small => self.take(node, 1, FRAME),
            FrameSize::Large => self.take(node, LARGE / FRAME, LARGE),
        }
    }

    /// `n` contiguous 4 KiB frames, as `alloc` chooses the node.
    pub fn alloc_run(&mut self, node: usize, n: u64) -> Option<(u64, usize)> {
        self.take(node, n, FRAME)
    }

    fn take(&mut self, node: usize, n: u64, align: u64) -> Option<(u64, usize)> {
        let order = self.order.get(node)?.clone();
        for candidate in order {
            if let Some(frame) = self.nodes[candidate].alloc_aligned(n, align) {
                self.used[candidate] += n * FRAME;
                return Some((frame, candidate));
            }
        }
        None
    }

    pub fn free_bytes(&self, node: usize) -> u64 {
        self.nodes.get(node).map_or(0, |a| a.free_bytes())
    }

    pub fn used_bytes(&self, node: usize) -> u64 {
        self.used.get(node).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::MemoryKind;
    use crate::numa::topology::{Node, Source};

    const MIB: u64 = 1 << 20;

    /// Three nodes: 0 and 2 with 4 MiB each, 1 without memory; 1 is nearer to 2.
    fn topology() -> Topology {
        let mut nodes: heapless::Vec<Node, MAX_NODES> = heapless::Vec::new();
        for (domain, range) in [
            (0, Some((2 * MIB, 6 * MIB))),
            (1, None),
            (2, Some((8 * MIB, 12 * MIB))),
        ] {
            let mut n = Node {
                domain,
                ..Default::default()
            };
            if let Some(r) = range {
                n.ranges.push(r).unwrap();
            }
            nodes.push(n).unwrap();
        }
        let mut distance = [[20; MAX_NODES]; MAX_NODES];
        for (i, row) in distance.iter_mut().enumerate() {
            row[i] = 10;
        }
        distance[1][2] = 15;
        distance[1][0] = 30;
        Topology {
            source: Source::Srat,
            nodes,
            distance,
        }
    }

    fn map() -> [MemoryRegion; 1] {
        [MemoryRegion {
            base: MIB,
            len: 15 * MIB,
            kind: MemoryKind::Usable,
        }]
    }

    #[test]
    fn allocates_on_the_requested_node() {
        let mut m = NodeMemory::new(&topology(), &map(), &[]);
        assert_eq!(m.alloc(0, FrameSize::Small), Some((2 * MIB, 0)));
        assert_eq!(m.alloc(2, FrameSize::Large), Some((8 * MIB, 2)));
        assert_eq!((m.free_bytes(0), m.used_bytes(0)), (4 * MIB - 4096, 4096));
        assert_eq!((m.free_bytes(2), m.used_bytes(2)), (2 * MIB, 2 * MIB));
    }

    #[test]
    fn a_memoryless_node_falls_back_to_the_nearest() {
        let mut m = NodeMemory::new(&topology(), &map(), &[]);
        assert_eq!(
            m.alloc(1, FrameSize::Small).map(|(_, n)| n),
            Some(2),
            "15 beats 30"
        );
    }

    #[test]
    fn a_full_node_falls_back_by_distance_then_fails() {
        let mut m = NodeMemory::new(&topology(), &map(), &[(8 * MIB, 12 * MIB)]);
        assert_eq!(
            m.alloc(2, FrameSize::Large).map(|(_, n)| n),
            Some(0),
            "node 2 is all reserved"
        );
        assert_eq!(m.alloc(0, FrameSize::Large).map(|(f, _)| f), Some(4 * MIB));
        assert_eq!(m.alloc(0, FrameSize::Large), None);
        assert_eq!(m.alloc(9, FrameSize::Small), None, "no such node");
    }
}
