//! One node's physical frames: a bitmap over the span of its free ranges,
//! one bit per 4 KiB frame (set: in use, or not RAM), 4 KiB and 2 MiB frames
//! handed out and taken back. Pure: the bitmap is a slice the caller gives
//! (the kernel carves it out of the node's own memory, `mm::init`; host tests
//! give a vector), so the logic is tested on the host.
//!
//! Why a bitmap: free takes no memory (a free list would need the freed
//! frame's own bytes, which migration must be able to hand back while a
//! 2 MiB frame is split into pieces), a 2 MiB frame is eight zero words, and
//! it costs 32 KiB per GiB of RAM.

pub const FRAME: u64 = 4096;
pub const LARGE: u64 = 2 << 20;
const FRAMES_PER_LARGE: usize = (LARGE / FRAME) as usize;
/// Bitmap words per 2 MiB frame.
const WORDS_PER_LARGE: usize = FRAMES_PER_LARGE / 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameSize {
    /// 4 KiB.
    Small,
    /// 2 MiB, 2 MiB-aligned.
    Large,
}

impl FrameSize {
    pub fn bytes(self) -> u64 {
        match self {
            Self::Small => FRAME,
            Self::Large => LARGE,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeError {
    /// Not a frame of this allocator, or not aligned to its size.
    NotOurs,
    /// Some of it is free already.
    DoubleFree,
}

#[derive(Debug)]
pub struct FrameAllocator {
    /// The span's first frame, 2 MiB-aligned.
    base: u64,
    bits: &'static mut [u64],
    free: u64,
    /// No word below has a free frame.
    small_hint: usize,
    /// No 2 MiB group below is wholly free.
    large_hint: usize,
}

/// The span `[base, end)` a bitmap must cover for `ranges`: from the first
/// range's 2 MiB boundary to the last one's.
pub fn span(ranges: &[(u64, u64)]) -> Option<(u64, u64)> {
    let start = ranges.iter().map(|r| r.0).min()?;
    let end = ranges.iter().map(|r| r.1).max()?;
    Some((start & !(LARGE - 1), end.next_multiple_of(LARGE)))
}

/// Bitmap words for `ranges`.
pub fn bitmap_words(ranges: &[(u64, u64)]) -> usize {
    span(ranges).map_or(0, |(s, e)| ((e - s) / FRAME) as usize / 64)
}

impl FrameAllocator {
    /// An allocator whose free frames are `ranges` (page-aligned, disjoint),
    /// keeping its bitmap in `bits` (at least `bitmap_words(ranges)` words).
    pub fn new(ranges: &[(u64, u64)], bits: &'static mut [u64]) -> Self {
        let base = span(ranges).map_or(0, |s| s.0);
        let words = bitmap_words(ranges);
        let bits = &mut bits[..words];
        bits.fill(u64::MAX);
        let mut a = Self {
            base,
            bits,
            free: 0,
            small_hint: 0,
            large_hint: 0,
        };
        for &(s, e) in ranges {
            let first = ((s.next_multiple_of(FRAME) - base) / FRAME) as usize;
            let last = ((e & !(FRAME - 1)).saturating_sub(base) / FRAME) as usize;
            for i in first..last.max(first) {
                a.bits[i / 64] &= !(1 << (i % 64));
            }
            a.free += last.saturating_sub(first) as u64;
        }
        a
    }

    pub fn free_bytes(&self) -> u64 {
        self.free * FRAME
    }

    /// Whether `frame` lies in this allocator's span.
    pub fn owns(&self, frame: u64) -> bool {
        let (start, end) = self.span();
        frame >= start && frame < end
    }

    /// The span of physical memory this allocator covers.
    pub fn span(&self) -> (u64, u64) {
        (self.base, self.base + self.bits.len() as u64 * 64 * FRAME)
    }

    /// A free frame of `size` (not zeroed).
    pub fn alloc(&mut self, size: FrameSize) -> Option<u64> {
        match size {
            FrameSize::Small => self.alloc_small(),
            FrameSize::Large => self.alloc_large(),
        }
    }

    fn alloc_small(&mut self) -> Option<u64> {
        let w = (self.small_hint..self.bits.len()).find(|&w| self.bits[w] != u64::MAX)?;
        self.small_hint = w;
        let b = (!self.bits[w]).trailing_zeros() as usize;
        self.bits[w] |= 1 << b;
        self.free -= 1;
        Some(self.base + (w * 64 + b) as u64 * FRAME)
    }

    fn alloc_large(&mut self) -> Option<u64> {
        let groups = self.bits.len() / WORDS_PER_LARGE;
        let g = (self.large_hint..groups).find(|&g| {
            self.bits[g * WORDS_PER_LARGE..(g + 1) * WORDS_PER_LARGE]
                .iter()
                .all(|&w| w == 0)
        })?;
        self.large_hint = g;
        self.bits[g * WORDS_PER_LARGE..(g + 1) * WORDS_PER_LARGE].fill(u64::MAX);
        self.free -= FRAMES_PER_LARGE as u64;
        Some(self.base + g as u64 * LARGE)
    }

    /// `n` physically contiguous 4 KiB frames; the first.
    pub fn alloc_run(&mut self, n: usize) -> Option<u64> {
        let total = self.bits.len() * 64;
        let used = |bits: &[u64], i: usize| bits[i / 64] & (1 << (i % 64)) != 0;
        let mut start = self.small_hint * 64;
        while start + n <= total {
            match (start..start + n).rev().find(|&i| used(self.bits, i)) {
                Some(taken) => start = taken + 1,
                None => {
                    for i in start..start + n {
                        self.bits[i / 64] |= 1 << (i % 64);
                    }
                    self.free -= n as u64;
                    return Some(self.base + start as u64 * FRAME);
                }
            }
        }
        None
    }

    /// Takes back a frame `alloc` gave.
    pub fn free(&mut self, frame: u64, size: FrameSize) -> Result<(), FreeError> {
        let n = (size.bytes() / FRAME) as usize;
        if !self.owns(frame) || !frame.is_multiple_of(size.bytes()) {
            return Err(FreeError::NotOurs);
        }
        let first = ((frame - self.base) / FRAME) as usize;
        let bit = |i: usize| (i / 64, 1u64 << (i % 64));
        if (first..first + n).any(|i| {
            let (w, m) = bit(i);
            self.bits[w] & m == 0
        }) {
            return Err(FreeError::DoubleFree);
        }
        for i in first..first + n {
            let (w, m) = bit(i);
            self.bits[w] &= !m;
        }
        self.free += n as u64;
        self.small_hint = self.small_hint.min(first / 64);
        self.large_hint = self.large_hint.min(first / FRAMES_PER_LARGE);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn allocator(ranges: &[(u64, u64)]) -> FrameAllocator {
        let bits = Box::leak(vec![0u64; bitmap_words(ranges)].into_boxed_slice());
        FrameAllocator::new(ranges, bits)
    }

    #[test]
    fn small_frames_come_from_the_free_ranges_only() {
        // 1 MiB .. 2 MiB and 3 MiB .. 3 MiB + 8 KiB; the span is 0 .. 4 MiB.
        let mut a = allocator(&[(MIB, 2 * MIB), (3 * MIB, 3 * MIB + 0x2000)]);
        assert_eq!(a.free_bytes(), MIB + 0x2000);
        let mut got = Vec::new();
        while let Some(f) = a.alloc(FrameSize::Small) {
            got.push(f);
        }
        assert_eq!(got.len(), 258);
        assert_eq!(got[0], MIB);
        assert_eq!(got[255], 2 * MIB - FRAME);
        assert_eq!(got[256..], [3 * MIB, 3 * MIB + FRAME]);
        assert_eq!(a.free_bytes(), 0);
    }

    #[test]
    fn large_frames_are_whole_free_aligned_groups() {
        // 1 MiB .. 8 MiB: only 2-4, 4-6 and 6-8 MiB are whole.
        let mut a = allocator(&[(MIB, 8 * MIB)]);
        assert_eq!(a.alloc(FrameSize::Small), Some(MIB));
        assert_eq!(a.alloc(FrameSize::Large), Some(2 * MIB));
        assert_eq!(a.alloc(FrameSize::Large), Some(4 * MIB));
        assert_eq!(a.alloc(FrameSize::Small), Some(MIB + FRAME));
        assert_eq!(a.alloc(FrameSize::Large), Some(6 * MIB));
        assert_eq!(a.alloc(FrameSize::Large), None);
        assert_eq!(a.free_bytes(), MIB - 2 * FRAME);
    }

    #[test]
    fn freed_frames_are_handed_out_again_and_double_frees_refused() {
        let mut a = allocator(&[(0, 4 * MIB)]);
        let large = a.alloc(FrameSize::Large).unwrap();
        let small = a.alloc(FrameSize::Small).unwrap();
        assert_eq!((large, small), (0, 2 * MIB));
        assert_eq!(a.free(large, FrameSize::Large), Ok(()));
        assert_eq!(a.free(large, FrameSize::Large), Err(FreeError::DoubleFree));
        assert_eq!(a.free(small + 1, FrameSize::Small), Err(FreeError::NotOurs));
        assert_eq!(a.free(8 * MIB, FrameSize::Small), Err(FreeError::NotOurs));
        assert_eq!(a.alloc(FrameSize::Small), Some(0), "the freed frame first");
        assert_eq!(a.free_bytes(), 4 * MIB - 2 * FRAME);
        // A large frame freed as its 512 small pieces is whole again.
        a.free(0, FrameSize::Small).unwrap();
        assert_eq!(a.alloc(FrameSize::Large), Some(0));
    }

    #[test]
    fn runs_are_contiguous_and_skip_used_frames() {
        let mut a = allocator(&[(0, 0x3000), (0x5000, 2 * MIB)]);
        assert_eq!(a.alloc_run(3), Some(0));
        assert_eq!(a.alloc_run(4), Some(0x5000), "0x3000-0x5000 is not RAM");
        a.free(0x1000, FrameSize::Small).unwrap();
        assert_eq!(a.alloc_run(2), Some(0x9000), "one free frame is not two");
        assert_eq!(a.alloc_run(1), Some(0x1000));
    }
}

#[cfg(test)]
mod stress {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn no_frame_is_handed_out_twice() {
        let ranges = [(0x10_0000u64, 0x80_0000u64), (0x90_0000, 0x200_0000)];
        let bits = Box::leak(vec![0u64; bitmap_words(&ranges)].into_boxed_slice());
        let mut a = FrameAllocator::new(&ranges, bits);
        let mut live: Vec<(u64, FrameSize)> = Vec::new();
        let mut taken: HashSet<u64> = HashSet::new();
        let mut seed = 12345u64;
        for _ in 0..20000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let r = seed >> 33;
            if r.is_multiple_of(3) && !live.is_empty() {
                let (f, s) = live.swap_remove((r as usize / 3) % live.len());
                a.free(f, s).unwrap();
                for p in (f..f + s.bytes()).step_by(FRAME as usize) {
                    assert!(taken.remove(&p));
                }
            } else {
                let s = if r.is_multiple_of(7) {
                    FrameSize::Large
                } else {
                    FrameSize::Small
                };
                if let Some(f) = a.alloc(s) {
                    for p in (f..f + s.bytes()).step_by(FRAME as usize) {
                        assert!(taken.insert(p), "{p:#x} handed out twice");
                        assert!(ranges.iter().any(|&(b, e)| p >= b && p < e));
                    }
                    live.push((f, s));
                }
            }
        }
    }
}
