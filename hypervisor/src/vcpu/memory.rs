//! Guest RAM: guest-physical [0, size) backed page by page, on demand, by
//! frames the hypervisor allocates, through the second-level table of the
//! vendor's format. Nothing is backed at launch but what the loader writes;
//! the first access to any other page faults and backs it (`Backing`).
//! Guest-physical addresses are not host-physical ones.

use core::sync::atomic::{AtomicU64, Ordering};

use super::vm::MAX_VCPUS;
use crate::numa::policy::{self, Fault, Policy};
use crate::numa::topology::MAX_NODES;

use crate::ept::{Access, Flush, Format, Hint, MapError, PageSize, PageTable, TableMemory};
use crate::mm;
use crate::phys::{IdentityMapped, PhysMem};

/// Tables in frames from the kernel's allocator, reached through the direct
/// map; entries change atomically, as other CPUs walk them.
pub struct IdentityTables;

impl IdentityTables {
    fn entry(table: u64, index: usize) -> &'static AtomicU64 {
        // SAFETY: `table` is a frame this engine allocated for a table (page-
        // aligned, in the direct map, never freed while linked), `index` < 512:
        // an aligned quadword that lives as long as the table.
        unsafe { &*((table + index as u64 * 8) as *const AtomicU64) }
    }
}

impl TableMemory for IdentityTables {
    fn alloc_table(&mut self) -> Option<u64> {
        mm::alloc_zeroed()
    }

    fn free_table(&mut self, table: u64) {
        let _ = mm::free(table, mm::FrameSize::Small); // ours: it cannot fail
    }

    fn read(&self, table: u64, index: usize) -> u64 {
        Self::entry(table, index).load(Ordering::Acquire)
    }

    fn cas(&mut self, table: u64, index: usize, old: u64, new: u64) -> Result<(), u64> {
        Self::entry(table, index)
            .compare_exchange(old, new, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
    }
}

pub struct GuestMemory<F: Format> {
    pub table: PageTable<F>,
    pub size: u64,
    /// Addresses below `size` that are not RAM (an OS guest's legacy area,
    /// passed through): never backed.
    pub hole: core::ops::Range<u64>,
    pub placer: Placer,
}

const PAGE: u64 = 4096;
const LARGE: u64 = 2 << 20;
/// Pages `migrate_many` moves in one go (two TLB shootdowns for them all).
pub const MOVES_AT_ONCE: usize = 64;

/// Guest RAM backed on demand, as the run loop sees it.
pub trait Backing {
    /// Backs the page holding `gpa` with a zeroed frame, when it lies in
    /// guest RAM and is not backed yet (a page another vCPU backed since
    /// the fault is fine); `vcpu` touched it.
    fn back(&self, gpa: u64, vcpu: usize) -> Result<(), BackError>;
    /// Guest RAM backed so far, in 4 KiB pages.
    fn backed_pages(&self) -> u64;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackError {
    /// Not guest RAM: nothing may be mapped there.
    Outside,
    /// Already backed: the fault was not for a missing page.
    Present,
    Map(MapError),
}

/// Where guest pages go: the policy and page size in force, and what they
/// did, node by node and vCPU by vCPU (the `placement` event).
pub struct Placer {
    pub policy: policy::Chosen,
    pub page: PageSize,
    /// Per node: 4 KiB and 2 MiB pages backed there.
    pub small: [AtomicU64; MAX_NODES],
    pub large: [AtomicU64; MAX_NODES],
    /// Pages backed on another node than the policy asked, its node full.
    pub fallbacks: AtomicU64,
    /// Per vCPU: first touches it took (the loader's writes are nobody's).
    pub faults: [AtomicU64; MAX_VCPUS],
}

impl Placer {
    pub fn new(policy: policy::Chosen, page: PageSize) -> Self {
        Self {
            policy,
            page,
            small: [const { AtomicU64::new(0) }; MAX_NODES],
            large: [const { AtomicU64::new(0) }; MAX_NODES],
            fallbacks: AtomicU64::new(0),
            faults: [const { AtomicU64::new(0) }; MAX_VCPUS],
        }
    }

    /// A zeroed frame of `size` for the page at `gpa`, from the node the
    /// policy picks (or the nearest, if it allows); with that node.
    fn alloc(&self, gpa: u64, size: PageSize, vcpu: Option<usize>) -> Option<(u64, usize)> {
        let fault = Fault {
            vcpu: vcpu.unwrap_or(0),
            node: crate::arch::percpu::this().node(),
            gpa,
            page: size.bytes(),
        };
        let nodes = self.policy.nodes(&fault);
        if let Some(got) = nodes
            .iter()
            .find_map(|&n| mm::alloc_zeroed_exact(n, size).map(|f| (f, n)))
        {
            return Some(got);
        }
        let fallback = self
            .policy
            .may_fall_back()
            .then(|| mm::alloc_zeroed_on(*nodes.first()?, size))
            .flatten()?;
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
        Some(fallback)
    }

    /// Pages of `size` backed on each node.
    fn per_node(&self, size: PageSize) -> &[AtomicU64; MAX_NODES] {
        match size {
            PageSize::Small => &self.small,
            PageSize::Large => &self.large,
        }
    }

    fn count(&self, node: usize, size: PageSize, vcpu: Option<usize>) {
        self.per_node(size)[node].fetch_add(1, Ordering::Relaxed);
        if let Some(v) = vcpu.and_then(|v| self.faults.get(v)) {
            v.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn uncount(&self, node: usize, size: PageSize) {
        self.per_node(size)[node].fetch_sub(1, Ordering::Relaxed);
    }

    /// Guest RAM backed, in 4 KiB pages.
    pub fn pages(&self) -> u64 {
        let sum = |a: &[AtomicU64]| a.iter().map(|n| n.load(Ordering::Relaxed)).sum::<u64>();
        sum(&self.small) + sum(&self.large) * (LARGE / PAGE)
    }
}

impl<F: Format> GuestMemory<F> {
    /// Guest RAM of `size` bytes with nothing backed: frames come with the
    /// first write (`write`, the loader's) or the first access (a fault),
    /// where `placer` says.
    pub fn new(size: u64, placer: Placer) -> Result<Self, MapError> {
        let table = PageTable::<F>::new(&mut IdentityTables)?;
        Ok(Self {
            table,
            size,
            hole: 0..0,
            placer,
        })
    }

    /// Whether `gpa` is guest RAM.
    pub fn is_ram(&self, gpa: u64) -> bool {
        gpa < self.size && !self.hole.contains(&gpa)
    }

    /// Maps the page at `gpa` to the same host-physical page, uncached:
    /// device memory passed through; `writable` false makes writes fault.
    pub fn map_device(&self, gpa: u64, writable: bool) -> Result<(), BackError> {
        let page = gpa & !(PAGE - 1);
        let access = Access {
            write: writable,
            uncached: true,
            ..Access::ALL
        };
        match self
            .table
            .map(&mut IdentityTables, page, page, PageSize::Small, access)
        {
            Ok(_) | Err(MapError::AlreadyMapped) => Ok(()), // another vCPU mapped it first
            Err(e) => Err(BackError::Map(e)),
        }
    }

    /// The frame backing the 4 KiB page at `gpa`, backed now if it was not:
    /// with a 2 MiB page where the placer asks for them and the whole 2 MiB
    /// lies in guest RAM, else (or when no 2 MiB frame is left) a 4 KiB one.
    fn frame(&self, gpa: u64, vcpu: Option<usize>) -> Result<u64, BackError> {
        let page = gpa & !(PAGE - 1);
        if let Some(hpa) = self.host_address(page) {
            return Ok(hpa);
        }
        if !self.is_ram(page) {
            return Err(BackError::Outside);
        }
        let base = gpa & !(LARGE - 1);
        let whole =
            base + LARGE <= self.size && (self.hole.end <= base || self.hole.start >= base + LARGE);
        if self.placer.page == PageSize::Large && whole {
            if let Ok(frame) = self.back_page(base, PageSize::Large, vcpu) {
                return Ok(frame + (page - base));
            }
            // Taken meanwhile by another vCPU, or no 2 MiB frame left.
            if let Some(hpa) = self.host_address(page) {
                return Ok(hpa);
            }
        }
        match self.back_page(page, PageSize::Small, vcpu) {
            // Another vCPU backed it first: use its frame.
            Err(BackError::Map(MapError::AlreadyMapped)) => self
                .host_address(page)
                .ok_or(BackError::Map(MapError::AlreadyMapped)),
            other => other,
        }
    }

    /// Backs the page of `size` at `base` where the placer says.
    fn back_page(&self, base: u64, size: PageSize, vcpu: Option<usize>) -> Result<u64, BackError> {
        let (frame, node) = self
            .placer
            .alloc(base, size, vcpu)
            .ok_or(BackError::Map(MapError::OutOfMemory))?;
        match self
            .table
            .map(&mut IdentityTables, base, frame, size, Access::ALL)
        {
            // Newly present: `Flush::None`, nothing cached it.
            Ok(_) => {
                self.placer.count(node, size, vcpu);
                Ok(frame)
            }
            Err(e) => {
                let _ = mm::free(frame, size);
                Err(BackError::Map(e))
            }
        }
    }

    /// Unbacks the page at `gpa` (the whole 2 MiB page holding it, if
    /// large): its frame and size (to free once every CPU has flushed) and
    /// the flush; None when it was not backed.
    pub fn unback(&self, gpa: u64) -> Result<Option<(u64, PageSize, Flush)>, BackError> {
        if !self.is_ram(gpa) {
            return Err(BackError::Outside);
        }
        Ok(self
            .table
            .unmap(&mut IdentityTables, gpa & !(PAGE - 1))
            .map(|(frame, size, flush)| {
                if let Some(node) = mm::node_of(frame) {
                    self.placer.uncount(node, size);
                }
                (frame, size, flush)
            }))
    }

    /// Moves the page holding `gpa` to a frame on `node` (`migrate_many`):
    /// the node it came from, or None when it already was on `node`.
    pub fn migrate(
        &self,
        gpa: u64,
        node: usize,
        flush: &mut dyn FnMut(Flush),
    ) -> Result<Option<usize>, BackError> {
        let mut result = Err(BackError::Outside);
        self.migrate_many(&[(gpa, node)], flush, &mut |_, r| result = r);
        result
    }

    /// Moves each page holding `moves[i].0` to a frame on node `moves[i].1`,
    /// all at once: made read-only (writers fault and retry until it is
    /// done), copied, remapped, the old frames freed; `flush` has every CPU
    /// drop the translations after each of the two changes and waits for
    /// them. `done(i, r)`: the node the page came from, None when it already
    /// was on that node, or why it could not move.
    pub fn migrate_many(
        &self,
        moves: &[(u64, usize)],
        flush: &mut dyn FnMut(Flush),
        done: &mut dyn FnMut(usize, Result<Option<usize>, BackError>),
    ) {
        struct Move {
            i: usize,
            base: u64,
            old: u64,
            new: u64,
            size: PageSize,
            from: usize,
            to: usize,
        }
        let mut pending: heapless::Vec<Move, MOVES_AT_ONCE> = heapless::Vec::new();
        let mut change = Flush::None;
        for (i, &(gpa, to)) in moves.iter().enumerate() {
            let begun = (|| {
                if !self.is_ram(gpa) {
                    return Err(BackError::Outside);
                }
                let not_mapped = BackError::Map(MapError::NotMapped);
                let (old, size, _) = self
                    .table
                    .mapping(&mut IdentityTables, gpa)
                    .ok_or(not_mapped)?;
                let from = mm::node_of(old).ok_or(not_mapped)?;
                if from == to {
                    return Ok(None);
                }
                let new = mm::alloc_zeroed_exact(to, size)
                    .ok_or(BackError::Map(MapError::OutOfMemory))?;
                let base = gpa & !(size.bytes() - 1);
                match self.table.protect(&mut IdentityTables, base, false) {
                    Ok(f) => change = f,
                    Err(e) => {
                        let _ = mm::free(new, size);
                        return Err(BackError::Map(e));
                    }
                }
                let m = Move {
                    i,
                    base,
                    old,
                    new,
                    size,
                    from,
                    to,
                };
                Ok(Some(m))
            })();
            match begun {
                Ok(Some(m)) if !pending.is_full() => {
                    let _ = pending.push(m);
                    continue;
                }
                Ok(Some(m)) => {
                    // More than a batch: this one waits for a later call.
                    let _ = self.table.protect(&mut IdentityTables, m.base, true);
                    let _ = mm::free(m.new, m.size);
                    done(i, Err(BackError::Map(MapError::OutOfMemory)));
                }
                Ok(None) => done(i, Ok(None)),
                Err(e) => done(i, Err(e)),
            }
        }
        if pending.is_empty() {
            return;
        }
        flush(change);
        // No CPU can write the pages now: the copies are whole.
        for m in &pending {
            if let Some(bytes) = IdentityMapped.bytes(m.old, m.size.bytes() as usize) {
                // SAFETY: `new` is a frame of `size` just allocated for this page.
                unsafe { crate::phys::write(m.new, bytes) };
            }
            if let Ok((_, f)) = self.table.remap(&mut IdentityTables, m.base, m.new) {
                change = f;
            }
        }
        flush(change);
        // No CPU holds an old translation: the frames can go.
        for m in pending {
            let _ = mm::free(m.old, m.size);
            self.placer.uncount(m.from, m.size);
            self.placer.count(m.to, m.size, None);
            done(m.i, Ok(Some(m.from)));
        }
    }

    /// Takes every access to the page holding `gpa` away for sampling, its
    /// frame kept (`ept::PageTable::revoke`): the range it covers, to flush.
    pub fn revoke(&self, gpa: u64) -> Result<Flush, BackError> {
        if !self.is_ram(gpa) {
            return Err(BackError::Outside);
        }
        self.table
            .revoke(&mut IdentityTables, gpa)
            .map_err(BackError::Map)
    }

    /// A fault at `gpa` on a page sampling revoked: its access back, and
    /// what was seen (`ept::PageTable::hint`); None for any other fault.
    pub fn hint(&self, gpa: u64, write: bool) -> Option<Hint> {
        if !self.is_ram(gpa) {
            return None;
        }
        self.table.hint(&mut IdentityTables, gpa, write)
    }

    /// The frame (the page's base) and size backing the page holding `gpa`.
    pub fn backing(&self, gpa: u64) -> Option<(u64, PageSize)> {
        if !self.is_ram(gpa) {
            return None;
        }
        self.table
            .mapping(&mut IdentityTables, gpa)
            .map(|(frame, size, _)| (frame, size))
    }

    /// The host address of `gpa`, when its page is backed.
    pub fn host_address(&self, gpa: u64) -> Option<u64> {
        if !self.is_ram(gpa) {
            return None;
        }
        self.table
            .translate(&mut IdentityTables, gpa)
            .map(|(hpa, _)| hpa)
    }

    /// Calls `f(hpa, done, n)` for each piece of `[gpa, gpa + len)` that
    /// lies in one page: `n` bytes at host-physical `hpa` (None: a page not
    /// backed, unless `back` backs it), `done` bytes in. False when the
    /// range leaves guest RAM or `f` fails.
    fn pages(
        &self,
        gpa: u64,
        len: usize,
        back: bool,
        mut f: impl FnMut(Option<u64>, usize, usize) -> bool,
    ) -> bool {
        if gpa
            .checked_add(len as u64)
            .is_none_or(|end| end > self.size)
        {
            return false;
        }
        let mut done = 0;
        while done < len {
            let at = gpa + done as u64;
            if !self.is_ram(at) {
                return false; // the hole: devices, not RAM
            }
            let hpa = if back {
                match self.frame(at, None) {
                    Ok(frame) => Some(frame + at % PAGE),
                    Err(_) => return false,
                }
            } else {
                self.table.translate(&mut IdentityTables, at).map(|t| t.0)
            };
            let n = ((PAGE - at % PAGE) as usize).min(len - done);
            if !f(hpa, done, n) {
                return false;
            }
            done += n;
        }
        true
    }

    /// Copies `bytes` into guest memory at `gpa`, backing the pages it
    /// touches; false when it does not fit.
    pub fn write(&self, gpa: u64, bytes: &[u8]) -> bool {
        self.pages(gpa, bytes.len(), true, |hpa, done, n| {
            let Some(hpa) = hpa else { return false };
            // SAFETY: `hpa` is a frame backing this guest's memory, and the
            // copy stays within its page.
            unsafe { crate::phys::write(hpa, &bytes[done..done + n]) };
            true
        })
    }

    /// Reads guest memory at `gpa` into `out` (a page not backed yet reads
    /// as zeros, as it will be); false outside guest RAM.
    pub fn read(&self, gpa: u64, out: &mut [u8]) -> bool {
        let len = out.len();
        self.pages(gpa, len, false, |hpa, done, n| {
            let Some(hpa) = hpa else {
                out[done..done + n].fill(0);
                return true;
            };
            match IdentityMapped.bytes(hpa, n) {
                Some(b) => {
                    out[done..done + n].copy_from_slice(b);
                    true
                }
                None => false,
            }
        })
    }
}

impl<F: Format> Backing for GuestMemory<F> {
    fn back(&self, gpa: u64, vcpu: usize) -> Result<(), BackError> {
        // Backed meanwhile by another vCPU that faulted on it too: the
        // access, tried again, finds it.
        self.frame(gpa, Some(vcpu)).map(|_| ())
    }

    fn backed_pages(&self) -> u64 {
        self.placer.pages()
    }
}
