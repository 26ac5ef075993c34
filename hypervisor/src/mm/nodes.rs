//! Physical memory node by node: one frame allocator per node, each behind
//! its own lock (CPUs of different nodes never contend), allocation on a
//! requested node falling back to the others by increasing distance, and
//! free to whichever node owns the frame. Built from plain ranges and
//! orders, so it knows nothing of ACPI or topologies.

use core::sync::atomic::{AtomicU64, Ordering};

use heapless::Vec;
use spin::Mutex;

use super::frames::{FRAME, FrameAllocator, FrameSize, FreeError};
use crate::boot::MemoryRegion;
use crate::numa::topology::MAX_NODES;

/// Free ranges per node: its share of the memory map minus what is reserved.
pub const MAX_RANGES: usize = 32;
pub type Ranges = Vec<(u64, u64), MAX_RANGES>;

/// The free page-aligned ranges of `usable` clipped to `[low, high)`, minus
/// `reserved` (the kernel image, boot modules).
pub fn free_ranges(
    usable: impl Iterator<Item = MemoryRegion>,
    reserved: &[(u64, u64)],
    low: u64,
    high: u64,
) -> Ranges {
    let mut ranges = Ranges::new();
    for r in usable {
        let start = r.base.max(low).next_multiple_of(FRAME);
        let end = r.base.saturating_add(r.len).min(high) & !(FRAME - 1);
        if start < end {
            let _ = ranges.push((start, end)); // beyond MAX_RANGES, memory is left unused
        }
    }
    for &(rs, re) in reserved {
        let (rs, re) = (rs & !(FRAME - 1), re.next_multiple_of(FRAME));
        let mut next = Ranges::new();
        for &(s, e) in &ranges {
            if re <= s || rs >= e {
                let _ = next.push((s, e));
                continue;
            }
            if s < rs {
                let _ = next.push((s, rs));
            }
            if re < e {
                let _ = next.push((re, e));
            }
        }
        ranges = next;
    }
    ranges.sort_unstable();
    ranges
}

/// Takes `bytes` (page-rounded) off the end of the largest range that has
/// them, for an allocator's own bitmap; its start.
pub fn carve(ranges: &mut Ranges, bytes: u64) -> Option<u64> {
    let bytes = bytes.next_multiple_of(FRAME);
    let r = ranges
        .iter_mut()
        .filter(|r| r.1 - r.0 >= bytes)
        .max_by_key(|r| r.1 - r.0)?;
    r.1 -= bytes;
    let at = r.1;
    ranges.retain(|r| r.0 < r.1);
    Some(at)
}

pub struct NodeMemory {
    nodes: Vec<Mutex<FrameAllocator>, MAX_NODES>,
    /// Each node's memory, exactly (spans of neighbouring nodes' bitmaps
    /// overlap where a boundary is not 2 MiB-aligned), readable without a lock.
    ranges: Vec<Ranges, MAX_NODES>,
    /// For each node, every node by increasing distance.
    order: Vec<Vec<usize, MAX_NODES>, MAX_NODES>,
    used: [AtomicU64; MAX_NODES],
}

impl NodeMemory {
    /// One allocator per node with the memory it covers, and each node's
    /// fallback order.
    pub fn new(
        nodes: impl IntoIterator<Item = (FrameAllocator, Ranges)>,
        order: Vec<Vec<usize, MAX_NODES>, MAX_NODES>,
    ) -> Self {
        let (allocators, ranges): (Vec<_, MAX_NODES>, Vec<_, MAX_NODES>) =
            nodes.into_iter().unzip();
        Self {
            ranges,
            nodes: allocators.into_iter().map(Mutex::new).collect(),
            order,
            used: [const { AtomicU64::new(0) }; MAX_NODES],
        }
    }

    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }

    /// A frame, from `node` if it has one, else from the nearest node that
    /// does; with the node it came from.
    pub fn alloc(&self, node: usize, size: FrameSize) -> Option<(u64, usize)> {
        self.take(node, size.bytes(), |a| a.alloc(size))
    }

    /// A frame from `node` only, or None when it has none free.
    pub fn alloc_exact(&self, node: usize, size: FrameSize) -> Option<u64> {
        let frame = self.nodes.get(node)?.lock().alloc(size)?;
        self.used[node].fetch_add(size.bytes(), Ordering::Relaxed);
        Some(frame)
    }

    /// The node whose memory holds `frame`.
    pub fn node_of(&self, frame: u64) -> Option<usize> {
        self.ranges
            .iter()
            .position(|r| r.iter().any(|&(start, end)| frame >= start && frame < end))
    }

    /// `n` contiguous 4 KiB frames, as `alloc` chooses the node.
    pub fn alloc_run(&self, node: usize, n: usize) -> Option<(u64, usize)> {
        self.take(node, n as u64 * FRAME, |a| a.alloc_run(n))
    }

    fn take(
        &self,
        node: usize,
        bytes: u64,
        mut f: impl FnMut(&mut FrameAllocator) -> Option<u64>,
    ) -> Option<(u64, usize)> {
        for &candidate in self.order.get(node)? {
            if let Some(frame) = f(&mut self.nodes[candidate].lock()) {
                self.used[candidate].fetch_add(bytes, Ordering::Relaxed);
                return Some((frame, candidate));
            }
        }
        None
    }

    /// Takes back a frame to the node that owns it.
    pub fn free(&self, frame: u64, size: FrameSize) -> Result<usize, FreeError> {
        let i = self.node_of(frame).ok_or(FreeError::NotOurs)?;
        self.nodes[i].lock().free(frame, size)?;
        self.used[i].fetch_sub(size.bytes(), Ordering::Relaxed);
        Ok(i)
    }

    pub fn free_bytes(&self, node: usize) -> u64 {
        self.nodes.get(node).map_or(0, |a| a.lock().free_bytes())
    }

    pub fn used_bytes(&self, node: usize) -> u64 {
        self.used.get(node).map_or(0, |u| u.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::MemoryKind;
    use crate::mm::frames::bitmap_words;

    const MIB: u64 = 1 << 20;

    fn usable(base: u64, len: u64) -> MemoryRegion {
        MemoryRegion {
            base,
            len,
            kind: MemoryKind::Usable,
        }
    }

    fn allocator(ranges: &[(u64, u64)]) -> (FrameAllocator, Ranges) {
        let bits = Box::leak(vec![0u64; bitmap_words(ranges)].into_boxed_slice());
        (
            FrameAllocator::new(ranges, bits),
            ranges.iter().copied().collect(),
        )
    }

    /// Three nodes: 0 at 2-6 MiB, 1 without memory, 2 at 8-12 MiB; 1 is nearer to 2.
    fn memory(node2: &[(u64, u64)]) -> NodeMemory {
        let order = [&[0, 1, 2][..], &[1, 2, 0], &[2, 1, 0]]
            .iter()
            .map(|o| o.iter().copied().collect())
            .collect();
        NodeMemory::new(
            [
                allocator(&[(2 * MIB, 6 * MIB)]),
                allocator(&[]),
                allocator(node2),
            ],
            order,
        )
    }

    #[test]
    fn free_ranges_clip_and_skip_the_reserved() {
        let map = [usable(0, 0x9fc00), usable(MIB, 7 * MIB)];
        let r = free_ranges(
            map.into_iter(),
            &[(2 * MIB, 0x27_f123), (4 * MIB, 4 * MIB + 0x10)],
            MIB,
            6 * MIB,
        );
        assert_eq!(
            r.as_slice(),
            [
                (MIB, 2 * MIB),
                (0x28_0000, 4 * MIB),
                (4 * MIB + FRAME, 6 * MIB)
            ]
        );
    }

    #[test]
    fn bitmaps_are_carved_from_the_largest_range() {
        let mut r: Ranges = [(MIB, 2 * MIB), (4 * MIB, 8 * MIB)].into_iter().collect();
        assert_eq!(carve(&mut r, 100), Some(8 * MIB - FRAME));
        assert_eq!(r.as_slice(), [(MIB, 2 * MIB), (4 * MIB, 8 * MIB - FRAME)]);
        let mut small: Ranges = [(0, FRAME)].into_iter().collect();
        assert_eq!(carve(&mut small, FRAME), Some(0));
        assert!(small.is_empty());
        assert_eq!(carve(&mut small, 1), None);
    }

    #[test]
    fn allocates_on_the_requested_node_and_accounts_per_node() {
        let m = memory(&[(8 * MIB, 12 * MIB)]);
        assert_eq!(m.alloc(0, FrameSize::Small), Some((2 * MIB, 0)));
        assert_eq!(m.alloc(2, FrameSize::Large), Some((8 * MIB, 2)));
        assert_eq!((m.free_bytes(0), m.used_bytes(0)), (4 * MIB - FRAME, FRAME));
        assert_eq!((m.free_bytes(2), m.used_bytes(2)), (2 * MIB, 2 * MIB));
        assert_eq!(m.free(8 * MIB, FrameSize::Large), Ok(2));
        assert_eq!((m.free_bytes(2), m.used_bytes(2)), (4 * MIB, 0));
        assert_eq!(
            m.free(8 * MIB, FrameSize::Large),
            Err(FreeError::DoubleFree)
        );
        assert_eq!(m.free(7 * MIB, FrameSize::Small), Err(FreeError::NotOurs));
        assert_eq!((m.node_of(3 * MIB), m.node_of(9 * MIB)), (Some(0), Some(2)));
        assert_eq!(m.node_of(7 * MIB), None, "between the nodes");
        assert_eq!(
            m.alloc_exact(1, FrameSize::Small),
            None,
            "no memory, no fallback"
        );
        assert_eq!(m.alloc_exact(2, FrameSize::Small), Some(8 * MIB));
    }

    #[test]
    fn nodes_that_share_a_2_mib_span_keep_their_frames() {
        // A boundary at 3 MiB: both bitmaps span 2-4 MiB.
        let order = [&[0, 1][..], &[1, 0]]
            .iter()
            .map(|o| o.iter().copied().collect())
            .collect();
        let m = NodeMemory::new(
            [
                allocator(&[(2 * MIB, 3 * MIB)]),
                allocator(&[(3 * MIB, 4 * MIB)]),
            ],
            order,
        );
        assert_eq!(m.node_of(3 * MIB), Some(1));
        let (frame, node) = m.alloc(1, FrameSize::Small).unwrap();
        assert_eq!((frame, node), (3 * MIB, 1));
        assert_eq!(
            m.free(frame, FrameSize::Small),
            Ok(1),
            "back to node 1's bitmap"
        );
        assert_eq!(m.free_bytes(1), MIB);
    }

    #[test]
    fn a_memoryless_or_full_node_falls_back_by_distance() {
        let m = memory(&[(8 * MIB, 12 * MIB)]);
        assert_eq!(m.alloc(1, FrameSize::Small).map(|(_, n)| n), Some(2));
        let full = memory(&[]);
        assert_eq!(full.alloc(2, FrameSize::Large).map(|(_, n)| n), Some(0));
        assert_eq!(
            full.alloc(0, FrameSize::Large).map(|(f, _)| f),
            Some(4 * MIB)
        );
        assert_eq!(full.alloc(0, FrameSize::Large), None);
        assert_eq!(full.alloc(9, FrameSize::Small), None, "no such node");
    }
}

#[cfg(test)]
mod threads {
    use super::*;
    use crate::mm::frames::bitmap_words;
    use std::collections::HashSet;
    use std::sync::{Arc, Mutex as StdMutex};

    #[test]
    fn cpus_allocating_at_once_never_share_a_frame() {
        let ranges = [(0x10_0000u64, 0x400_0000u64)];
        let bits = Box::leak(vec![0u64; bitmap_words(&ranges)].into_boxed_slice());
        let a = FrameAllocator::new(&ranges, bits);
        let m = Arc::new(NodeMemory::new(
            [(a, ranges.iter().copied().collect())],
            [[0usize].into_iter().collect()].into_iter().collect(),
        ));
        let seen = Arc::new(StdMutex::new(HashSet::new()));
        let threads: std::vec::Vec<_> = (0..4)
            .map(|t| {
                let (m, seen) = (m.clone(), seen.clone());
                std::thread::spawn(move || {
                    let mut mine = std::vec::Vec::new();
                    for i in 0..3000 {
                        if let Some((f, _)) = m.alloc(0, FrameSize::Small) {
                            assert!(seen.lock().unwrap().insert(f), "{f:#x} twice");
                            mine.push(f);
                        }
                        if (i + t) % 3 == 0
                            && let Some(f) = mine.pop()
                        {
                            seen.lock().unwrap().remove(&f);
                            m.free(f, FrameSize::Small).unwrap();
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }
}
