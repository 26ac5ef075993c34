//! Guest RAM: guest-physical [0, size) backed page by page, on demand, by
//! frames the hypervisor allocates, through the second-level table of the
//! vendor's format. Nothing is backed at launch but what the loader writes;
//! the first access to any other page faults and backs it (`Backing`).
//! Guest-physical addresses are not host-physical ones.
//!
//! Who changes what (docs/numa.md, "The protocol"): backing a page is a
//! compare-and-swap of an empty leaf, any vCPU at any time; sampling
//! (revoke, hint, accessed bits) and the nodes' copies change leaves by
//! compare-and-swap but never their frame; every change of a page's frame
//! (release, migration, replication and collapse, split) is the `Owner`'s,
//! one at a time, still by compare-and-swap on the leaf it expects, and a
//! frame is freed only by the change that took it out of every table, after
//! the flush that makes every CPU forget it.

use core::sync::atomic::{AtomicU64 as Counter, Ordering::Relaxed};

use super::host::{Direct, Host};
use crate::ept::{Access, Flush, Format, Hint, MapError, PageSize, PageTable};
use crate::numa::policy::{self, Fault, Policy};
use crate::numa::topology::MAX_NODES;
use crate::sync::{AtomicU64, Held, Ordering, TryLock};
use crate::vcpu::{BackError, Backing, GuestRam, MAX_VCPUS};

pub struct GuestMemory<F: Format, H: Host = Direct> {
    /// The second-level table: where each page is.
    pub table: PageTable<F>,
    /// Per node, when the guest's vCPUs span several: that node's copy of
    /// `table`, in its own memory, which its vCPUs walk (vMitosis: a walk
    /// stays local). Its leaves are `table`'s, copied at the node's first
    /// fault on each page (`fill`) and dropped at every change of `table`'s
    /// (`drop_copies`); a leaf sampling revoked in `table` is given back in
    /// one node's copy only, so that each node's touch is seen.
    copies: [Option<PageTable<F>>; MAX_NODES],
    /// Changes of `table` that drop copies under way, and copies being
    /// made: a copy is never made from a leaf a change is replacing
    /// (`change`, `fill`).
    changing: AtomicU64,
    filling: AtomicU64,
    pub size: u64,
    /// Addresses below `size` that are not RAM (an OS guest's legacy area,
    /// passed through): never backed.
    pub hole: core::ops::Range<u64>,
    pub placer: Placer,
    host: H,
    /// Held by whoever changes a page's frame (`own`).
    owner: TryLock,
}

/// The right to change where guest pages are (`GuestMemory::own`): release,
/// migration, replication, collapse and split take it, so that no two of
/// them interleave on one page.
pub struct Owner<'a> {
    _held: Held<'a>,
}

const PAGE: u64 = 4096;
const LARGE: u64 = 2 << 20;
/// Pages `migrate_many` moves in one go (two TLB shootdowns for them all).
pub const MOVES_AT_ONCE: usize = 64;

/// Where guest pages go: the policy and page size in force, and what they
/// did, node by node and vCPU by vCPU (the `placement` event).
pub struct Placer {
    pub policy: policy::Chosen,
    pub page: PageSize,
    /// Per node: 4 KiB and 2 MiB pages backed there.
    pub small: [Counter; MAX_NODES],
    pub large: [Counter; MAX_NODES],
    /// Pages backed on another node than the policy asked, its node full.
    pub fallbacks: Counter,
    /// Per vCPU: first touches it took (the loader's writes are nobody's).
    pub faults: [Counter; MAX_VCPUS],
}

impl Placer {
    pub fn new(policy: policy::Chosen, page: PageSize) -> Self {
        Self {
            policy,
            page,
            small: [const { Counter::new(0) }; MAX_NODES],
            large: [const { Counter::new(0) }; MAX_NODES],
            fallbacks: Counter::new(0),
            faults: [const { Counter::new(0) }; MAX_VCPUS],
        }
    }

    /// A zeroed frame of `size` for the page at `gpa`, from the node the
    /// policy picks (or the nearest, if it allows); with that node.
    fn alloc(
        &self,
        host: &impl Host,
        gpa: u64,
        size: PageSize,
        vcpu: Option<usize>,
    ) -> Option<(u64, usize)> {
        let fault = Fault {
            vcpu: vcpu.unwrap_or(0),
            node: host.here(),
            gpa,
            page: size.bytes(),
        };
        let nodes = self.policy.nodes(&fault);
        if let Some(got) = nodes
            .iter()
            .find_map(|&n| host.alloc_exact(n, size).map(|f| (f, n)))
        {
            return Some(got);
        }
        let fallback = self
            .policy
            .may_fall_back()
            .then(|| host.alloc_near(*nodes.first()?, size))
            .flatten()?;
        self.fallbacks.fetch_add(1, Relaxed);
        Some(fallback)
    }

    /// Pages of `size` backed on each node.
    fn per_node(&self, size: PageSize) -> &[Counter; MAX_NODES] {
        match size {
            PageSize::Small => &self.small,
            PageSize::Large => &self.large,
        }
    }

    fn count(&self, node: usize, size: PageSize, vcpu: Option<usize>) {
        self.per_node(size)[node].fetch_add(1, Relaxed);
        if let Some(v) = vcpu.and_then(|v| self.faults.get(v)) {
            v.fetch_add(1, Relaxed);
        }
    }

    fn uncount(&self, node: usize, size: PageSize) {
        self.per_node(size)[node].fetch_sub(1, Relaxed);
    }

    /// Guest RAM backed, in 4 KiB pages.
    pub fn pages(&self) -> u64 {
        let sum = |a: &[Counter]| a.iter().map(|n| n.load(Relaxed)).sum::<u64>();
        sum(&self.small) + sum(&self.large) * (LARGE / PAGE)
    }
}

impl<F: Format> GuestMemory<F> {
    /// Guest RAM of `size` bytes with nothing backed, in the kernel's
    /// memory: frames come with the first write (`write`, the loader's) or
    /// the first access (a fault), where `placer` says.
    pub fn new(size: u64, placer: Placer) -> Result<Self, MapError> {
        Self::on(Direct, size, placer)
    }
}

impl<F: Format, H: Host> GuestMemory<F, H> {
    /// Guest RAM of `size` bytes with nothing backed, in `host`'s memory.
    pub fn on(host: H, size: u64, placer: Placer) -> Result<Self, MapError> {
        let table = PageTable::<F>::new(&mut host.tables(None))?;
        Ok(Self {
            table,
            copies: [None; MAX_NODES],
            changing: AtomicU64::new(0),
            filling: AtomicU64::new(0),
            size,
            hole: 0..0,
            placer,
            host,
            owner: TryLock::new(),
        })
    }

    /// The right to change where pages are, if nobody holds it now (its
    /// would-be holders keep serving flush requests while they wait).
    pub fn own(&self) -> Option<Owner<'_>> {
        self.owner.try_lock().map(|_held| Owner { _held })
    }

    /// The host memory it lives in.
    pub fn host(&self) -> &H {
        &self.host
    }

    /// Gives each of `nodes` its own copy of the table (its vCPUs then walk
    /// it: `root`).
    pub fn copy_table(&mut self, nodes: impl Iterator<Item = usize>) -> Result<(), MapError> {
        for node in nodes.filter(|&n| n < MAX_NODES) {
            if self.copies[node].is_none() {
                self.copies[node] = Some(PageTable::new(&mut self.host.tables(Some(node)))?);
            }
        }
        Ok(())
    }

    /// `node`'s copy of the table, if it has one.
    fn copy(&self, node: usize) -> Option<PageTable<F>> {
        self.copies.get(node).copied().flatten()
    }

    /// The main table's memory.
    fn main(&self) -> H::Tables {
        self.host.tables(None)
    }

    /// The root of the table the vCPUs of `node` walk.
    pub fn root(&self, node: usize) -> u64 {
        self.copy(node).map_or(self.table.root(), |t| t.root())
    }

    /// How many nodes walk their own copy of the table.
    pub fn copies(&self) -> usize {
        self.copies.iter().flatten().count()
    }

    /// Drops every node's copy of the leaf holding `gpa` after `table`'s
    /// changed (the next access copies the new one): whether one was there,
    /// for the flush.
    fn drop_copies(&self, gpa: u64) -> bool {
        let mut dropped = false;
        for (node, copy) in self.copies.iter().enumerate() {
            if let Some(copy) = copy {
                dropped |= copy.unmap(&mut self.host.tables(Some(node)), gpa).is_some();
            }
        }
        dropped
    }

    /// Starts a change of `table` that drops the copies' leaves: copies
    /// being made are waited for, new ones wait for the end of the change
    /// (the guard's drop). Without it a copy made from the leaf before the
    /// change could be put after the drop, and used by another vCPU of the
    /// node before its maker sees the change, the flush already done.
    fn change(&self) -> impl Drop + '_ {
        struct Change<'a>(&'a AtomicU64);
        impl Drop for Change<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.changing.fetch_add(1, Ordering::SeqCst);
        // Copies never wait for anything: they end soon.
        while self.filling.load(Ordering::SeqCst) > 0 {
            crate::sync::spin_loop();
        }
        Change(&self.changing)
    }

    /// A fault at `gpa` of a vCPU of `node` (a `write` or not) where its
    /// copy of the table has no leaf: `table`'s is copied in, given back
    /// there if sampling revoked it (a hint). None when `table` has none;
    /// nothing copied while `table` changes (the access faults again).
    fn fill(&self, node: usize, gpa: u64, write: bool) -> Option<Option<Hint>> {
        let copy = self.copy(node)?;
        self.filling.fetch_add(1, Ordering::SeqCst);
        let filled = if self.changing.load(Ordering::SeqCst) > 0 {
            Some(None)
        } else {
            self.copy_leaf(copy, node, gpa, write)
        };
        self.filling.fetch_sub(1, Ordering::SeqCst);
        filled
    }

    fn copy_leaf(
        &self,
        copy: PageTable<F>,
        node: usize,
        gpa: u64,
        write: bool,
    ) -> Option<Option<Hint>> {
        let mut tables = self.host.tables(Some(node));
        loop {
            let (entry, size) = self.table.entry(&mut self.main(), gpa)?;
            let base = gpa & !(size.bytes() - 1);
            let given = PageTable::<F>::given_back(entry, size, write);
            let leaf = given.unwrap_or(entry);
            if copy.install(&mut tables, base, leaf, size).is_err() {
                return Some(None); // another vCPU of the node copied it first
            }
            // `table` changed meanwhile (a page backed, or a change that
            // `change` did not keep apart): take it back and copy again.
            if self.table.entry(&mut self.main(), gpa) != Some((entry, size)) {
                copy.remove(&mut tables, base, leaf);
                continue;
            }
            return Some(given.map(|_| Hint { size, write }));
        }
    }

    /// Whether `gpa` is guest RAM.
    pub fn is_ram(&self, gpa: u64) -> bool {
        gpa < self.size && !self.hole.contains(&gpa)
    }

    /// Maps the page at `gpa` to the same host-physical page, uncached:
    /// device memory passed through; `writable` false makes writes fault.
    /// Every node's copy of the table maps it too: a device page is the
    /// same for all, never placed, never moved, so the copies need not
    /// wait for a change of the table (`change`).
    pub fn map_device(&self, gpa: u64, writable: bool) -> Result<(), BackError> {
        let page = gpa & !(PAGE - 1);
        let access = Access {
            write: writable,
            uncached: true,
            ..Access::ALL
        };
        let map = |table: PageTable<F>, mut memory: H::Tables| {
            match table.map(&mut memory, page, page, PageSize::Small, access) {
                Ok(_) | Err(MapError::AlreadyMapped) => Ok(()), // another vCPU mapped it first
                Err(e) => Err(BackError::Map(e)),
            }
        };
        map(self.table, self.main())?;
        for (node, copy) in self.copies.iter().enumerate() {
            if let Some(copy) = copy {
                map(*copy, self.host.tables(Some(node)))?;
            }
        }
        Ok(())
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

    /// Backs every page of guest RAM not backed yet, where the placer puts
    /// a page nobody touched: for a guest whose devices reach its memory,
    /// which cannot fault a page in as a CPU does (`vm::dma`).
    pub fn back_all(&self) -> Result<(), BackError> {
        let mut gpa = 0;
        while gpa < self.size {
            if self.is_ram(gpa) {
                self.frame(gpa, None)?;
            }
            gpa += PAGE;
        }
        Ok(())
    }

    /// Backs the page of `size` at `base` where the placer says: an empty
    /// leaf filled by compare-and-swap; the loser of a race gives its frame
    /// back, never seen by anyone.
    fn back_page(&self, base: u64, size: PageSize, vcpu: Option<usize>) -> Result<u64, BackError> {
        let (frame, node) = self
            .placer
            .alloc(&self.host, base, size, vcpu)
            .ok_or(BackError::Map(MapError::OutOfMemory))?;
        match self
            .table
            .map(&mut self.main(), base, frame, size, Access::ALL)
        {
            // Newly present: `Flush::None`, nothing cached it.
            Ok(_) => {
                self.placer.count(node, size, vcpu);
                Ok(frame)
            }
            Err(e) => {
                self.host.free(frame, size);
                Err(BackError::Map(e))
            }
        }
    }

    /// Gives the 4 KiB page at `gpa` back: a replicated page is collapsed
    /// first, a 2 MiB page split first (its other 511 pages keep their
    /// data); then its leaf is taken out of every table, every CPU flushed
    /// (`flush` waits for them) and only then its frame freed. The next
    /// access backs a zeroed page. False when it was not backed.
    pub fn release(
        &self,
        owner: &Owner,
        gpa: u64,
        flush: &mut dyn FnMut(Flush),
    ) -> Result<bool, BackError> {
        if !self.is_ram(gpa) {
            return Err(BackError::Outside);
        }
        let page = gpa & !(PAGE - 1);
        self.collapse(owner, page, flush);
        if let Some((_, PageSize::Large)) = self.backing(page)
            && !self.split(owner, page, flush)
        {
            return Err(BackError::Map(MapError::OutOfMemory)); // no table for the split
        }
        let change = self.change();
        let Some((frame, size, f)) = self.table.unmap(&mut self.main(), page) else {
            return Ok(false);
        };
        self.drop_copies(page);
        flush(f);
        drop(change);
        // No CPU holds the translation any more: the frame can go, once.
        if let Some(node) = self.host.free(frame, size) {
            self.placer.uncount(node, size);
        }
        Ok(true)
    }

    /// Moves the page holding `gpa` to a frame on `node` (`migrate_many`):
    /// the node it came from, or None when it already was on `node`.
    pub fn migrate(
        &self,
        owner: &Owner,
        gpa: u64,
        node: usize,
        flush: &mut dyn FnMut(Flush),
    ) -> Result<Option<usize>, BackError> {
        let mut result = Err(BackError::Outside);
        self.migrate_many(owner, &[(gpa, node)], flush, &mut |_, r| result = r);
        result
    }

    /// Moves each page holding `moves[i].0` to a frame on node `moves[i].1`,
    /// all at once: made read-only (writers fault and retry until it is
    /// done), copied, remapped, the old frames freed; `flush` has every CPU
    /// drop the translations after each of the two changes and waits for
    /// them. `done(i, r)`: the node the page came from, None when it already
    /// was on that node, or why it could not move. A page whose leaf another
    /// change took meanwhile stays as that change left it, and keeps its
    /// frames: the new one is freed, the old one is that change's.
    pub fn migrate_many(
        &self,
        _owner: &Owner,
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
        let _change = self.change();
        let mut pending: heapless::Vec<Move, MOVES_AT_ONCE> = heapless::Vec::new();
        let mut change = Flush::None;
        for (i, &(gpa, to)) in moves.iter().enumerate() {
            let begun = (|| {
                if !self.is_ram(gpa) {
                    return Err(BackError::Outside);
                }
                let not_mapped = BackError::Map(MapError::NotMapped);
                if self.table.replicated(&mut self.main(), gpa) {
                    return Err(BackError::Map(MapError::AlreadyMapped)); // collapse it first
                }
                let (old, size, _) = self
                    .table
                    .mapping(&mut self.main(), gpa)
                    .ok_or(not_mapped)?;
                let from = self.host.node_of(old).ok_or(not_mapped)?;
                if from == to {
                    return Ok(None);
                }
                if pending.is_full() {
                    // More than a batch: this one waits for a later call.
                    return Err(BackError::Map(MapError::OutOfMemory));
                }
                let new = self
                    .host
                    .alloc_exact(to, size)
                    .ok_or(BackError::Map(MapError::OutOfMemory))?;
                let base = gpa & !(size.bytes() - 1);
                match self.table.protect(&mut self.main(), base, false) {
                    Ok(f) => {
                        self.drop_copies(base);
                        change = f;
                    }
                    Err(e) => {
                        self.host.free(new, size);
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
                Ok(Some(m)) => {
                    let _ = pending.push(m); // not full: checked above
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
        let mut moved: heapless::Vec<(Move, bool), MOVES_AT_ONCE> = heapless::Vec::new();
        for m in pending {
            self.host.copy(m.old, m.new, m.size.bytes() as usize);
            let remapped = self.table.remap(&mut self.main(), m.base, m.old, m.new);
            if let Ok(f) = remapped {
                self.drop_copies(m.base);
                change = f;
            }
            let _ = moved.push((m, remapped.is_ok()));
        }
        flush(change);
        // No CPU holds an old translation: the frames that left can go.
        for (m, remapped) in moved {
            if !remapped {
                // Not ours to move any more: the new frame was never seen.
                self.host.free(m.new, m.size);
                done(m.i, Err(BackError::Map(MapError::Changed)));
                continue;
            }
            self.host.free(m.old, m.size);
            self.placer.uncount(m.from, m.size);
            self.placer.count(m.to, m.size, None);
            done(m.i, Ok(Some(m.from)));
        }
    }

    /// Replicates the page holding `gpa` on each node of `nodes` that has a
    /// copy of the table: made read-only (`flush` has every CPU drop it and
    /// waits), copied to a frame on each of those nodes, and each node's
    /// table mapping its own copy. The copies made (0: none, the page left
    /// as it was).
    pub fn replicate(
        &self,
        _owner: &Owner,
        gpa: u64,
        nodes: u32,
        flush: &mut dyn FnMut(Flush),
    ) -> usize {
        let Some((home, size)) = self.backing(gpa) else {
            return 0;
        };
        let base = gpa & !(size.bytes() - 1);
        let home_node = self.host.node_of(home);
        let targets = (0..MAX_NODES)
            .filter(|&n| nodes & (1 << n) != 0 && Some(n) != home_node && self.copies[n].is_some());
        if targets.clone().next().is_none() || self.replicated(base) {
            return 0;
        }
        let _change = self.change();
        let Ok(f) = self.table.replicate(&mut self.main(), base) else {
            return 0;
        };
        self.drop_copies(base);
        flush(f);
        // Nobody writes the page now: each copy is whole.
        let Some((entry, _)) = self.table.entry(&mut self.main(), base) else {
            return 0;
        };
        let mut made = 0;
        for n in targets {
            let (Some(copy), Some(frame)) = (self.copies[n], self.host.alloc_exact(n, size)) else {
                continue; // no memory left there: that node reads the page where it is
            };
            self.host.copy(home, frame, size.bytes() as usize);
            let leaf = (entry & !(F::frame(entry) & !(size.bytes() - 1))) | frame;
            // The slot is empty: dropped above, and nothing is copied while
            // the table changes (`change`).
            if copy
                .install(&mut self.host.tables(Some(n)), base, leaf, size)
                .is_err()
            {
                self.host.free(frame, size);
                continue;
            }
            self.placer.count(n, size, None);
            made += 1;
        }
        made
    }

    /// Splits the 2 MiB page holding `gpa` into 4 KiB pages of the same
    /// frames (`ept::PageTable::split`), each then placed on its own; the
    /// nodes' copies drop it. False when it was no 2 MiB page.
    pub fn split(&self, _owner: &Owner, gpa: u64, flush: &mut dyn FnMut(Flush)) -> bool {
        let Some((frame, PageSize::Large)) = self.backing(gpa) else {
            return false;
        };
        let _change = self.change();
        let Ok(f) = self.table.split(&mut self.main(), gpa) else {
            return false;
        };
        self.drop_copies(gpa);
        flush(f);
        if let Some(node) = self.host.node_of(frame) {
            self.placer.uncount(node, PageSize::Large);
            self.placer.small[node].fetch_add(LARGE / PAGE, Relaxed);
        }
        true
    }

    /// Reads and clears the accessed and dirty bits of the page holding
    /// `gpa` in each node's copy of the table: `seen(node, written)` for
    /// each node whose CPUs accessed it since the last time. Whether a bit
    /// was cleared (the CPUs must flush to set it again).
    pub fn sweep(&self, gpa: u64, seen: &mut dyn FnMut(usize, bool)) -> bool {
        let mut cleared = false;
        for (node, copy) in self.copies.iter().enumerate() {
            let Some(copy) = copy else { continue };
            if let Ok(((accessed, dirty), flush)) =
                copy.clear_accessed_dirty(&mut self.host.tables(Some(node)), gpa)
            {
                if accessed {
                    seen(node, dirty);
                }
                cleared |= flush != Flush::None;
            }
        }
        cleared
    }

    /// Whether the page holding `gpa` is replicated.
    pub fn replicated(&self, gpa: u64) -> bool {
        self.is_ram(gpa) && self.table.replicated(&mut self.main(), gpa)
    }

    /// Collapses the replicated page holding `gpa` (a vCPU writes it): the
    /// nodes' copies unmapped and, once every CPU dropped them (`flush`),
    /// freed; the page writable again where it was. Its base, or None when
    /// it was not replicated.
    pub fn collapse(&self, _owner: &Owner, gpa: u64, flush: &mut dyn FnMut(Flush)) -> Option<u64> {
        if !self.replicated(gpa) {
            return None;
        }
        let (home, size) = self.backing(gpa)?;
        let base = gpa & !(size.bytes() - 1);
        let _change = self.change();
        let mut copies: heapless::Vec<u64, MAX_NODES> = heapless::Vec::new();
        for (n, copy) in self.copies.iter().enumerate() {
            let Some((frame, _, _)) =
                copy.and_then(|c| c.unmap(&mut self.host.tables(Some(n)), base))
            else {
                continue;
            };
            if frame != home {
                let _ = copies.push(frame);
            }
        }
        flush(Flush::Range {
            gpa: base,
            len: size.bytes(),
        });
        // No CPU reads a copy any more: the page is one again, writable.
        if self.table.remap(&mut self.main(), base, home, home).is_ok() {
            self.drop_copies(base);
        }
        for frame in copies {
            if let Some(node) = self.host.free(frame, size) {
                self.placer.uncount(node, size);
            }
        }
        Some(base)
    }

    /// Takes every access to the page holding `gpa` away for sampling, its
    /// frame kept (`ept::PageTable::revoke`): the range it covers, to flush.
    pub fn revoke(&self, gpa: u64) -> Result<Flush, BackError> {
        if !self.is_ram(gpa) {
            return Err(BackError::Outside);
        }
        let _change = (self.copies() > 0).then(|| self.change());
        let flush = self
            .table
            .revoke(&mut self.main(), gpa)
            .map_err(BackError::Map)?;
        // The copies' leaves given back since the last time go too.
        let (entry, size) = self
            .table
            .entry(&mut self.main(), gpa)
            .ok_or(BackError::Map(MapError::NotMapped))?;
        if self.copies() > 0 && PageTable::<F>::given_back(entry, size, false).is_some() {
            let len = size.bytes();
            if self.drop_copies(gpa) {
                return Ok(Flush::Range {
                    gpa: gpa & !(len - 1),
                    len,
                });
            }
        }
        Ok(flush)
    }

    /// A fault at `gpa` of a vCPU of `node` on a page sampling revoked: its
    /// access back (in the node's copy of the table, where there are
    /// copies), and what was seen (`ept::PageTable::hint`); None for any
    /// other fault (a leaf missing from the node's copy is copied in).
    pub fn hint(&self, node: usize, gpa: u64, write: bool) -> Option<Hint> {
        if !self.is_ram(gpa) {
            return None;
        }
        match self.copy(node) {
            None => self.table.hint(&mut self.main(), gpa, write),
            Some(copy) => copy
                .hint(&mut self.host.tables(Some(node)), gpa, write)
                .or_else(|| self.fill(node, gpa, write).flatten()),
        }
    }

    /// The first backed page at or after `gpa` and below `end`: its base,
    /// size and frame.
    pub fn next_backed(&self, gpa: u64, end: u64) -> Option<(u64, PageSize, u64)> {
        let end = end.min(self.size);
        let mut at = gpa;
        loop {
            let (base, size, frame) = self.table.next_leaf(&mut self.main(), at, end)?;
            if self.is_ram(base) {
                return Some((base, size, frame));
            }
            at = base + size.bytes(); // the hole's devices
        }
    }

    /// The frame (the page's base) and size backing the page holding `gpa`.
    pub fn backing(&self, gpa: u64) -> Option<(u64, PageSize)> {
        if !self.is_ram(gpa) {
            return None;
        }
        self.table
            .mapping(&mut self.main(), gpa)
            .map(|(frame, size, _)| (frame, size))
    }

    /// The host address of `gpa`, when its page is backed.
    pub fn host_address(&self, gpa: u64) -> Option<u64> {
        if !self.is_ram(gpa) {
            return None;
        }
        self.table
            .translate(&mut self.main(), gpa)
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
                self.table.translate(&mut self.main(), at).map(|t| t.0)
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
    /// touches (the loader's, before any vCPU runs); false when it does not
    /// fit.
    pub fn write(&self, gpa: u64, bytes: &[u8]) -> bool {
        self.pages(gpa, bytes.len(), true, |hpa, done, n| {
            let Some(hpa) = hpa else { return false };
            self.host.write(hpa, &bytes[done..done + n]);
            true
        })
    }

    /// Reads guest memory at `gpa` into `out` (a page not backed yet reads
    /// as zeros, as it will be); false outside guest RAM.
    pub fn read(&self, gpa: u64, out: &mut [u8]) -> bool {
        self.pages(gpa, out.len(), false, |hpa, done, n| {
            let Some(hpa) = hpa else {
                out[done..done + n].fill(0);
                return true;
            };
            self.host.read(hpa, &mut out[done..done + n])
        })
    }
}

impl<F: Format, H: Host> GuestRam for GuestMemory<F, H> {
    fn root(&self, node: usize) -> u64 {
        GuestMemory::root(self, node)
    }

    fn read(&self, gpa: u64, out: &mut [u8]) -> bool {
        GuestMemory::read(self, gpa, out)
    }

    fn host_address(&self, gpa: u64) -> Option<u64> {
        GuestMemory::host_address(self, gpa)
    }
}

impl<F: Format, H: Host> Backing for GuestMemory<F, H> {
    fn back(&self, gpa: u64, vcpu: usize) -> Result<(), BackError> {
        // Backed meanwhile by another vCPU that faulted on it too: the
        // access, tried again, finds it.
        self.frame(gpa, Some(vcpu))?;
        // In this vCPU's node's copy of the table too, where there is one.
        self.fill(self.host.here(), gpa, false);
        Ok(())
    }

    fn backed_pages(&self) -> u64 {
        self.placer.pages()
    }
}
