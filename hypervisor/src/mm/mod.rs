//! Memory management: the kernel's physical memory, node by node
//! (`nodes.rs`), each node's frames in a bitmap allocator (`frames.rs`).
//! This module holds the one global instance and hands out zeroed frames.

pub mod frames;
pub mod nodes;

use core::sync::atomic::{AtomicUsize, Ordering};

use crate::boot::MemoryRegion;
use crate::numa::topology::Topology;
pub use frames::{FRAME, FrameSize, FreeError, LARGE};
use nodes::NodeMemory;

/// Frames below 1 MiB stay the firmware's and the AP trampoline's.
const LOW: u64 = 1 << 20;

static MEMORY: spin::Once<NodeMemory> = spin::Once::new();
/// The node the hypervisor's own structures come from (the boot CPU's).
static HOME: AtomicUsize = AtomicUsize::new(0);

/// Sets up one allocator per node of `topology` over the usable memory the
/// direct map reaches, minus `reserved`; each keeps its bitmap in its own
/// node's memory. Once: later calls change nothing.
pub fn init(topology: &Topology, memory: &[MemoryRegion], reserved: &[(u64, u64)], home: usize) {
    MEMORY.call_once(|| {
        let allocators = (0..topology.nodes.len()).map(|i| {
            let mut ranges = nodes::free_ranges(
                topology.usable_regions(i, memory),
                reserved,
                LOW,
                crate::phys::direct_map_limit(),
            );
            let words = frames::bitmap_words(&ranges);
            let bits: &'static mut [u64] = match nodes::carve(&mut ranges, words as u64 * 8) {
                // SAFETY: carved out of this node's free RAM, inside the
                // direct map, and never handed out: the bitmap's alone.
                Some(at) => unsafe { core::slice::from_raw_parts_mut(at as *mut u64, words) },
                None => &mut [],
            };
            let covered = nodes::free_ranges(
                topology.usable_regions(i, memory),
                &[],
                0,
                crate::phys::direct_map_limit(),
            );
            let allocator =
                frames::FrameAllocator::new(if bits.is_empty() { &[] } else { &ranges }, bits);
            (allocator, covered)
        });
        let order = (0..topology.nodes.len())
            .map(|i| topology.by_distance(i))
            .collect();
        NodeMemory::new(allocators, order)
    });
    HOME.store(home, Ordering::Relaxed);
}

/// The kernel's memory, once `init` ran.
pub fn memory() -> Option<&'static NodeMemory> {
    MEMORY.get()
}

pub fn home() -> usize {
    HOME.load(Ordering::Relaxed)
}

fn zeroed(frame: u64, bytes: u64) -> u64 {
    // SAFETY: the allocator hands each frame out once; it is ours to clear.
    unsafe { crate::phys::zero(frame, bytes as usize) };
    frame
}

/// A zeroed frame of `size` from `node` (or the nearest with memory), with
/// the node it came from. Zeroed here, once: callers never clear it again.
pub fn alloc_zeroed_on(node: usize, size: FrameSize) -> Option<(u64, usize)> {
    let (frame, from) = memory()?.alloc(node, size)?;
    Some((zeroed(frame, size.bytes()), from))
}

/// A zeroed frame of `size` from `node` alone.
pub fn alloc_zeroed_exact(node: usize, size: FrameSize) -> Option<u64> {
    let frame = memory()?.alloc_exact(node, size)?;
    Some(zeroed(frame, size.bytes()))
}

/// The node whose memory holds `frame`.
pub fn node_of(frame: u64) -> Option<usize> {
    memory()?.node_of(frame)
}

/// For each node: whether it has memory to give.
pub fn nodes_with_memory() -> heapless::Vec<bool, { crate::numa::topology::MAX_NODES }> {
    memory().map_or_else(heapless::Vec::new, |m| {
        (0..m.nodes()).map(|i| m.free_bytes(i) > 0).collect()
    })
}

/// A zeroed 4 KiB frame from the home node (or the nearest).
pub fn alloc_zeroed() -> Option<u64> {
    alloc_zeroed_on(home(), FrameSize::Small).map(|(f, _)| f)
}

/// `n` zeroed, physically contiguous frames from the home node (or the nearest).
pub fn alloc_run_zeroed(n: usize) -> Option<u64> {
    let (start, _) = memory()?.alloc_run(home(), n)?;
    Some(zeroed(start, n as u64 * FRAME))
}

/// Takes back a frame from `alloc_zeroed*`; its node, or why not.
pub fn free(frame: u64, size: FrameSize) -> Result<usize, FreeError> {
    memory().ok_or(FreeError::NotOurs)?.free(frame, size)
}
