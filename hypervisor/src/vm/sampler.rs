//! Adaptive placement at run time: which node touches which guest page,
//! seen without the guest's help, and the pages moved where
//! `numa::adaptive` decides.
//!
//! One vCPU samples a window of guest RAM (`numa.sample` backed pages)
//! for `ROUNDS` periods (`numa.period`; `tick`), up to 16 times as many
//! while the windows stay settled (`numa::adaptive::Pace`), then looks at
//! it, and the window moves on. By hinting faults (`numa.track=faults`; the default
//! where the CPU keeps no accessed bits in the second-level table), every
//! backed page in the window loses its access when the window starts, its
//! frame kept. The next access to such a page faults; the vCPU that made
//! it records its CPU's node (and whether it wrote) and gets the access
//! back (`hint`): reading first, then writing at its first write. A page
//! is thus seen by every node that touches it before the look where each
//! node's vCPUs walk their own copy of the table
//! (`GuestMemory::copy_table`), by the first otherwise; and by the first
//! to write it. The cost is up to two faults per touched page and node per
//! look (`ept-violation` exits with action `sampled`). By accessed and
//! dirty bits (`numa.track=bits`, the default where the CPU keeps them),
//! no fault: every period the bits of the window's leaves in each node's
//! table are read and cleared instead (`sweep`). At the look, each page's
//! record gets what was seen and `numa::adaptive` decides; the pages that
//! must move move, those read by several nodes are replicated (at most
//! `MOVES_PER_LOOK` of both).

use core::ops::Range;
use core::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::host::Host;
use super::memory::{GuestMemory, MOVES_AT_ONCE, Owner};
use super::runtime::RunTime;
use crate::ept::{Flush, Format, PageSize};
use crate::event::{self, Event};
use crate::numa::adaptive::{self, Decision, Pace, Placed, Record, Seen};
use crate::numa::topology::MAX_NODES;
use crate::vcpu::config::Sampling;

/// Moves at most per look (the rate limit).
pub const MOVES_PER_LOOK: usize = 256;
/// Periods a window is sampled before the look at it: a page several nodes
/// use is seen by more than one.
pub const ROUNDS: u32 = 4;
const PAGE: u64 = 4096;
/// `seen`'s bit for a write (nodes are bits 0-15); its bits from 32 on hold
/// the rest of the page's record.
const WRITTEN: u64 = 1 << 16;
const SEEN: u64 = (1 << 17) - 1;

/// What the sampler knows of one 4 KiB page of guest RAM (of a 2 MiB page:
/// its first 4 KiB page's).
#[repr(C)]
struct Page {
    /// Nodes that touched the page since the last look (bit per node), and
    /// `WRITTEN`: set by the vCPUs that fault on it; from bit 32, the part
    /// of its `adaptive::Record` that is not counts.
    seen: AtomicU64,
    /// Its record's counts. The record is the looking vCPU's alone.
    counts: AtomicU64,
}

/// What adaptive placement did (the `placement` event's `adaptive`).
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Stats {
    /// How accesses are seen: `faults` or `bits`.
    pub track: &'static str,
    /// Sampling periods, looks taken, and accesses seen (hints: a sampled
    /// fault, or a node's accessed bit).
    pub periods: u64,
    pub looks: u64,
    pub hints: u64,
    /// Pages moved, those among them that went back to the node they had
    /// left (bounced), and moves that failed (no frame on that node).
    pub migrated: u64,
    pub bounced: u64,
    pub failed: u64,
    /// Pages replicated, and replicated pages a write collapsed.
    pub replicated: u64,
    pub collapsed: u64,
    /// 2 MiB pages split into 4 KiB ones (used by several nodes).
    pub split: u64,
    /// Nodes whose vCPUs walk their own copy of the second-level table.
    pub table_copies: u64,
}

/// A look that moved or replicated pages (`adaptive-look`): its number,
/// the period, the TSC, and the pages it moved, bounced and replicated.
#[derive(Serialize)]
struct Look {
    look: u64,
    period: u64,
    tsc: u64,
    migrated: u64,
    bounced: u64,
    replicated: u64,
}
impl Event for Look {
    const NAME: &'static str = "adaptive-look";
}

pub struct Sampler {
    pages: &'static [Page],
    /// Bytes of guest RAM a look samples, and the period in TSC ticks.
    window: u64,
    period: u64,
    /// By the accessed and dirty bits of each node's table (there are
    /// copies), not by faults.
    bits: bool,
    /// The TSC value at which the next look is due.
    next: AtomicU64,
    hints: AtomicU64,
    collapsed: AtomicU64,
    /// The window being sampled, the rounds it had, the pace of looks,
    /// and the figures: the sampling vCPU's.
    state: spin::Mutex<(Range<u64>, u32, Pace, Stats)>,
}

impl Sampler {
    /// A sampler for `size` bytes of guest RAM, by accessed and dirty bits
    /// or by faults (`bits`); None when no memory is left
    /// for its records (16 bytes per 4 KiB page).
    pub fn new(size: u64, sampling: Sampling, bits: bool, per_ms: u64) -> Option<Self> {
        let n = size.div_ceil(PAGE) as usize;
        let frames = (n * core::mem::size_of::<Page>()).div_ceil(PAGE as usize);
        let at = crate::mm::alloc_run_zeroed(frames)?;
        // SAFETY: `frames` zeroed frames just allocated, never freed, hold `n`
        // `Page`s; a `Page` is two `AtomicU64`s, for which zero is a value.
        let pages = unsafe { core::slice::from_raw_parts(at as *const Page, n) };
        Some(Self {
            pages,
            window: sampling.pages * PAGE,
            period: sampling.period_ms.saturating_mul(per_ms).max(1),
            bits,
            next: AtomicU64::new(0),
            hints: AtomicU64::new(0),
            collapsed: AtomicU64::new(0),
            state: spin::Mutex::new((0..0, 0, Pace::default(), Stats::default())),
        })
    }

    /// The window from `start`: the range holding the next `window` bytes of
    /// backed guest RAM (or up to its end), so that pages never backed cost
    /// no period.
    fn next_window<F: Format, H: Host>(
        &self,
        memory: &GuestMemory<F, H>,
        start: u64,
    ) -> Range<u64> {
        let (mut covered, mut end) = (0, start);
        while covered < self.window {
            let Some((base, size, _)) = memory.next_backed(end, memory.size) else {
                return start..memory.size;
            };
            covered += size.bytes();
            end = base + size.bytes();
        }
        start..end
    }

    /// Reads (`record`: into the pages' `seen`) and clears the accessed and
    /// dirty bits of the window's pages in each node's table: whether one
    /// was cleared.
    fn sweep<F: Format, H: Host>(
        &self,
        memory: &GuestMemory<F, H>,
        window: &Range<u64>,
        record: bool,
    ) -> bool {
        let mut cleared = false;
        let mut gpa = window.start;
        while let Some((base, size, _)) = memory.next_backed(gpa, window.end) {
            gpa = base + size.bytes();
            cleared |= memory.sweep(base, &mut |node, written| {
                if record {
                    self.hint(base, node, written);
                }
            });
        }
        cleared
    }

    /// Decides for each page of `window` on what its rounds saw, and moves
    /// those that must move; the pace of the next looks set.
    #[allow(clippy::too_many_arguments)]
    fn look<F: Format, H: Host>(
        &self,
        memory: &GuestMemory<F, H>,
        owner: &Owner,
        window: &Range<u64>,
        stats: &mut Stats,
        distance: &[[u8; MAX_NODES]],
        shootdown: &mut dyn FnMut(),
        pace: &mut Pace,
    ) {
        let before = *stats;
        let mut tally = (0, 0);
        let replicate = memory.copies() > 0;
        let mut budget = MOVES_PER_LOOK;
        let mut batch: heapless::Vec<(u64, usize), MOVES_AT_ONCE> = heapless::Vec::new();
        let mut flush = |f: Flush| {
            if f != Flush::None {
                shootdown();
            }
        };
        let mut gpa = window.start;
        while let Some((base, size, frame)) = memory.next_backed(gpa, window.end) {
            gpa = base + size.bytes();
            let page = self.pages.get((base / PAGE) as usize);
            let (Some(page), Some(here)) = (page, memory.host().node_of(frame)) else {
                continue;
            };
            // A replicated page is read where it is read: it stays until written.
            if memory.replicated(base) {
                continue;
            }
            let placed = Placed {
                number: base / PAGE,
                node: here,
                large: size == PageSize::Large,
            };
            match self.decide(page, placed, distance, replicate, &mut budget, &mut tally) {
                Decision::Migrate { to, bounce } => {
                    stats.bounced += u64::from(bounce);
                    let _ = batch.push((base, to));
                }
                Decision::Replicate(nodes) => {
                    let made = memory.replicate(owner, base, nodes.into(), &mut flush);
                    stats.replicated += u64::from(made > 0);
                }
                Decision::Split => stats.split += u64::from(memory.split(owner, base, &mut flush)),
                Decision::Stay => {}
            }
            if batch.is_full() {
                migrate(memory, owner, &mut batch, &mut flush, stats);
            }
        }
        if !batch.is_empty() {
            migrate(memory, owner, &mut batch, &mut flush, stats);
        }
        stats.looks += 1;
        pace.after(tally.0, tally.1);
        if (stats.migrated, stats.bounced, stats.replicated)
            != (before.migrated, before.bounced, before.replicated)
        {
            event::emit(&Look {
                look: stats.looks,
                period: stats.periods,
                tsc: crate::arch::tsc::now(),
                migrated: stats.migrated - before.migrated,
                bounced: stats.bounced - before.bounced,
                replicated: stats.replicated - before.replicated,
            });
        }
    }

    /// The decision for `page` (`placed`) on what its rounds saw, its
    /// record updated; `tally` counts the pages seen touched, and those
    /// among them unsettled.
    fn decide(
        &self,
        page: &Page,
        placed: Placed,
        distance: &[[u8; MAX_NODES]],
        replicate: bool,
        budget: &mut usize,
        tally: &mut (u32, u32),
    ) -> Decision {
        // Taken and cleared at once: a hint meanwhile counts at the next look.
        let bits = page.seen.fetch_and(!SEEN, Ordering::Relaxed);
        let seen = Seen {
            nodes: bits as u16,
            written: bits & WRITTEN != 0,
        };
        let packed = (page.counts.load(Ordering::Relaxed), (bits >> 32) as u32);
        let mut record = Record::unpack(packed);
        let decision = adaptive::decide(&mut record, seen, placed, distance, replicate, budget);
        if seen.nodes != 0 {
            tally.0 += 1;
            tally.1 += u32::from(decision != Decision::Stay || record.unsettled(seen, placed.node));
        }
        let (counts, rest) = record.pack();
        page.counts.store(counts, Ordering::Relaxed);
        // The hints' bits kept, the rest replaced.
        let _ = page
            .seen
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some((v & SEEN) | (u64::from(rest) << 32))
            });
        decision
    }
}

impl RunTime for Sampler {
    /// A vCPU on `node` faulted on the sampled page at `base` (writing or not).
    fn hint(&self, base: u64, node: usize, write: bool) {
        if let Some(p) = self.pages.get((base / PAGE) as usize) {
            let bits = (1 << node) | if write { WRITTEN } else { 0 };
            p.seen.fetch_or(bits, Ordering::Relaxed);
            self.hints.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A write collapsed the replicated page at `base`: counted, and seen
    /// as a write (it is not replicated again for a while).
    fn collapsed(&self, base: u64) {
        if let Some(p) = self.pages.get((base / PAGE) as usize) {
            p.seen.fetch_or(WRITTEN, Ordering::Relaxed);
        }
        self.collapsed.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether a look is due at TSC `now`: true for one caller per period.
    fn due(&self, now: u64) -> bool {
        let next = self.next.load(Ordering::Relaxed);
        now >= next
            && self
                .next
                .compare_exchange(next, now + self.period, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }

    /// A period's sampling: by bits, the window's read; after the pace's
    /// periods on the window, the look at it and the next window, whose
    /// pages are revoked (by faults) or their bits cleared (`request` asks
    /// every vCPU to flush, not waiting: until one does, its accesses go
    /// unseen).
    /// `shootdown` flushes every vCPU and waits (for moves); `distance`:
    /// between the nodes.
    fn tick<F: Format, H: Host>(
        &self,
        memory: &GuestMemory<F, H>,
        owner: &Owner,
        distance: &[[u8; MAX_NODES]],
        shootdown: &mut dyn FnMut(),
        request: &mut dyn FnMut(),
    ) {
        let mut state = self.state.lock();
        let (window, rounds, pace, stats) = &mut *state;
        stats.periods += 1;
        // By bits: each node's accesses to the window this period, read.
        let bits = self.bits;
        let mut flush = bits && self.sweep(memory, window, true);
        *rounds += 1;
        if *rounds >= pace.rounds(ROUNDS) || window.is_empty() {
            self.look(memory, owner, window, stats, distance, shootdown, pace);
            // The next window, from the start again after the end of guest RAM.
            let start = if window.end >= memory.size {
                0
            } else {
                window.end
            };
            *window = self.next_window(memory, start);
            *rounds = 0;
            // Its bits hold accesses of any time since: cleared, not read.
            flush |= bits && self.sweep(memory, window, false);
            // By faults: its pages revoked once, for the next accesses to
            // tell until the look: each node faults in its own copy of the
            // table, so that revoking again each period would show the same
            // nodes for up to `ROUNDS` times the faults.
            let mut gpa = window.start;
            while let Some((base, size, _)) = memory.next_backed(gpa, window.end).filter(|_| !bits)
            {
                flush |= memory.revoke(base).is_ok_and(|f| f != Flush::None);
                gpa = base + size.bytes();
            }
        }
        if flush {
            request();
        }
    }

    /// The figures so far.
    fn stats(&self) -> Stats {
        Stats {
            track: if self.bits { "bits" } else { "faults" },
            hints: self.hints.load(Ordering::Relaxed),
            collapsed: self.collapsed.load(Ordering::Relaxed),
            ..self.state.lock().3
        }
    }
}

/// Moves the pages of `batch` (`GuestMemory::migrate_many`), counted in `stats`.
fn migrate<F: Format, H: Host>(
    memory: &GuestMemory<F, H>,
    owner: &Owner,
    batch: &mut heapless::Vec<(u64, usize), MOVES_AT_ONCE>,
    flush: &mut dyn FnMut(Flush),
    stats: &mut Stats,
) {
    memory.migrate_many(owner, batch, flush, &mut |_, r| match r {
        Ok(Some(_)) => stats.migrated += 1,
        Ok(None) => {}
        Err(_) => stats.failed += 1,
    });
    batch.clear();
}
