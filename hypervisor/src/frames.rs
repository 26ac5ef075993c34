//! Physical frames for the hypervisor's own use (VMX regions, page tables,
//! guest memory): usable RAM from the memory map, below the 4 GiB identity
//! map, above 1 MiB, minus the kernel image and the boot modules.
//! A bump allocator: frames are not freed yet (per-node allocators replace
//! it with NUMA discovery).

use heapless::Vec;

use crate::boot::{MemoryKind, MemoryRegion};
use crate::numa::memory::NodeMemory;

pub const FRAME: u64 = 4096;
const LOW: u64 = 1 << 20;
const HIGH: u64 = crate::phys::IDENTITY_LIMIT;
/// Ranges per allocator: a node has a few; the whole machine a few more.
const MAX_RANGES: usize = 16;

#[derive(Debug)]
pub struct FrameAllocator {
    /// Free page-aligned ranges [start, end), in ascending order.
    ranges: Vec<(u64, u64), MAX_RANGES>,
    current: usize,
    next: u64,
}

impl FrameAllocator {
    /// Free ranges: usable regions clipped to [1 MiB, 4 GiB) minus `reserved`.
    pub fn new(memory: &[MemoryRegion], reserved: &[(u64, u64)]) -> Self {
        let mut ranges: Vec<(u64, u64), MAX_RANGES> = Vec::new();
        for r in memory.iter().filter(|r| r.kind == MemoryKind::Usable) {
            let start = r.base.max(LOW).next_multiple_of(FRAME);
            let end = (r.base.saturating_add(r.len).min(HIGH)) & !(FRAME - 1);
            let mut pieces: Vec<(u64, u64), MAX_RANGES> = Vec::new();
            if start < end {
                let _ = pieces.push((start, end));
            }
            for &(rs, re) in reserved {
                let mut next: Vec<(u64, u64), MAX_RANGES> = Vec::new();
                for &(s, e) in &pieces {
                    let (rs, re) = (rs & !(FRAME - 1), re.next_multiple_of(FRAME));
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
                pieces = next;
            }
            for p in pieces {
                let _ = ranges.push(p); // beyond MAX_RANGES ranges, memory is left unused
            }
        }
        ranges.sort_unstable();
        let next = ranges.first().map_or(0, |r| r.0);
        Self {
            ranges,
            current: 0,
            next,
        }
    }

    /// A free 4 KiB frame (not zeroed), or None when memory is exhausted.
    pub fn alloc(&mut self) -> Option<u64> {
        self.alloc_run(1)
    }

    /// `n` physically contiguous frames (not zeroed); the start of the run.
    pub fn alloc_run(&mut self, n: u64) -> Option<u64> {
        self.alloc_aligned(n, FRAME)
    }

    /// `n` contiguous frames starting at a multiple of `align` (a power of
    /// two, at least `FRAME`). A bump allocator: what alignment skips is lost.
    pub fn alloc_aligned(&mut self, n: u64, align: u64) -> Option<u64> {
        while let Some(&(_, end)) = self.ranges.get(self.current) {
            let start = self.next.next_multiple_of(align);
            if start + n * FRAME <= end {
                self.next = start + n * FRAME;
                return Some(start);
            }
            self.current += 1;
            self.next = self.ranges.get(self.current).map_or(0, |r| r.0);
        }
        None
    }

    pub fn free_bytes(&self) -> u64 {
        let rest: u64 = self
            .ranges
            .iter()
            .skip(self.current + 1)
            .map(|(s, e)| e - s)
            .sum();
        let here = self
            .ranges
            .get(self.current)
            .map_or(0, |&(_, e)| e - self.next);
        rest + here
    }
}

/// The kernel's memory, node by node, set up once the topology is known;
/// and the node the hypervisor's own structures come from (the boot CPU's).
static GLOBAL: spin::Mutex<Option<(NodeMemory, usize)>> = spin::Mutex::new(None);

pub fn init(memory: NodeMemory, home: usize) {
    *GLOBAL.lock() = Some((memory, home));
}

/// Runs `f` on the kernel's memory, if it is set up.
pub fn with<R>(f: impl FnOnce(&mut NodeMemory, usize) -> R) -> Option<R> {
    GLOBAL
        .lock()
        .as_mut()
        .map(|(memory, home)| f(memory, *home))
}

/// A zeroed frame from the home node (or the nearest with memory).
pub fn alloc_zeroed() -> Option<u64> {
    alloc_run_zeroed(1)
}

/// `n` zeroed, physically contiguous frames from the home node (or the nearest).
pub fn alloc_run_zeroed(n: u64) -> Option<u64> {
    let (start, _) = with(|memory, home| memory.alloc_run(home, n))??;
    for frame in (0..n).map(|i| start + i * FRAME) {
        // SAFETY: the allocator hands each frame out once; it is ours to clear.
        unsafe { crate::phys::write(frame, &[0; FRAME as usize]) };
    }
    Some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usable(base: u64, len: u64) -> MemoryRegion {
        MemoryRegion {
            base,
            len,
            kind: MemoryKind::Usable,
        }
    }

    #[test]
    fn skips_low_memory_reserved_ranges_and_unusable_regions() {
        let map = [
            usable(0, 0x9fc00),
            MemoryRegion {
                base: 0x9fc00,
                len: 0x400,
                kind: MemoryKind::Reserved,
            },
            usable(0x10_0000, 0x70_0000), // 1 MiB .. 8 MiB
        ];
        // Kernel at 2 MiB .. 2.5 MiB (unaligned end), a module at 4 MiB.
        let mut a = FrameAllocator::new(&map, &[(0x20_0000, 0x27_f123), (0x40_0000, 0x40_0010)]);
        assert_eq!(a.free_bytes(), 0x70_0000 - 0x8_0000 - 0x1000);
        assert_eq!(a.alloc(), Some(0x10_0000));
        let mut last = 0;
        let mut n = 1;
        while let Some(f) = a.alloc() {
            assert!(
                !(0x20_0000..0x28_0000).contains(&f),
                "{f:#x} is the kernel's"
            );
            assert_ne!(f, 0x40_0000, "the module's frame");
            assert!(f > last);
            last = f;
            n += 1;
        }
        assert_eq!(n * FRAME, 0x70_0000 - 0x8_0000 - 0x1000);
        assert_eq!(last, 0x7f_f000);
        assert_eq!(a.free_bytes(), 0);
    }

    #[test]
    fn runs_are_contiguous_and_skip_ranges_too_small() {
        let map = [usable(0x10_0000, 0x3000), usable(0x20_0000, 0x10_0000)];
        let mut a = FrameAllocator::new(&map, &[]);
        assert_eq!(a.alloc(), Some(0x10_0000));
        assert_eq!(
            a.alloc_run(3),
            Some(0x20_0000),
            "two frames left below: too few"
        );
        assert_eq!(a.alloc(), Some(0x20_3000));
    }

    #[test]
    fn aligned_runs_skip_to_the_boundary() {
        let mut a = FrameAllocator::new(&[usable(0x10_0000, 0x60_0000)], &[]);
        assert_eq!(a.alloc(), Some(0x10_0000));
        assert_eq!(a.alloc_aligned(512, 2 << 20), Some(0x20_0000));
        assert_eq!(a.alloc(), Some(0x40_0000));
        assert_eq!(
            a.alloc_aligned(512, 2 << 20),
            None,
            "0x40_1000 + 2 MiB skips past the end"
        );
    }

    #[test]
    fn stops_at_the_identity_map() {
        let mut a = FrameAllocator::new(&[usable(0xffff_e000, 0x10_0000)], &[]);
        assert_eq!(a.alloc(), Some(0xffff_e000));
        assert_eq!(a.alloc(), Some(0xffff_f000));
        assert_eq!(a.alloc(), None);
    }
}
