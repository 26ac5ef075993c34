//! Second-level paging: one 4-level page-table engine for guest-physical to
//! host-physical translation, shared by every CPU running the guest. Only
//! the entry encoding (`Format`) differs between Intel EPT and AMD nested
//! paging; the flush, which the vendor layer performs (INVEPT, or a TLB
//! control), is what every change returns (`Flush`).
//!
//! Every entry changes by compare-and-swap (`TableMemory::cas`): two CPUs
//! faulting in one region at once both walk, both may build a missing table,
//! and the one whose swap fails gives its table back and follows the
//! winner's; two that map one page see one succeed and the other told
//! `AlreadyMapped`. No lock: a fault on one CPU never waits for another.
//!
//! Access sampling (adaptive placement) takes a leaf's access away while it
//! keeps its frame (`revoke`): the next access faults and tells the
//! hypervisor who made it (`hint`), which gives the access back, reading
//! first, then writing at the next write fault. Two bits the CPU ignores in
//! every leaf, present or not, say so; every other change (`protect`,
//! `remap`, `split`) starts from the leaf with its access back and leaves
//! it unsampled.

use core::marker::PhantomData;

pub mod format;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Access {
    pub read: bool,
    pub write: bool,
    pub execute: bool,
    /// Device memory passed through: mapped uncached.
    pub uncached: bool,
}

impl Access {
    pub const ALL: Self = Self {
        read: true,
        write: true,
        execute: true,
        uncached: false,
    };
}

/// A leaf's size: a 4 KiB page (level 0) or a 2 MiB page (level 1), the
/// sizes of the frames that back them.
pub use crate::mm::FrameSize as PageSize;

fn level(size: PageSize) -> usize {
    match size {
        PageSize::Small => 0,
        PageSize::Large => 1,
    }
}

/// How an entry is encoded.
pub trait Format: Sync {
    /// The accessed and dirty bits of a leaf, where the CPU sets them (0:
    /// it does not, and reading them says nothing).
    const ACCESSED: u64;
    const DIRTY: u64;

    /// The bits whose clearing makes a leaf not present.
    const PRESENT: u64;

    /// Whether the hypervisor's IOMMU reads this format's tables as its
    /// own (`iommu::attach`): devices then walk the very table the CPUs do.
    const DEVICES_WALK_IT: bool = false;

    /// An entry pointing to the table at `table`, of `level` (0: the
    /// table of 4 KiB leaves, 1: the directory, 2: the directory pointers).
    fn table(table: u64, level: usize) -> u64;
    /// A leaf mapping `frame`: 4 KiB, or 2 MiB when `large` (a directory
    /// entry with the page-size bit).
    fn leaf(frame: u64, access: Access, large: bool) -> u64;
    fn access(entry: u64) -> Access;
    /// A directory entry that is a 2 MiB leaf, not a table.
    fn is_large(entry: u64) -> bool {
        entry & (1 << 7) != 0
    }
    fn frame(entry: u64) -> u64 {
        entry & 0x000f_ffff_ffff_f000
    }
}

/// Where tables live: the kernel reaches them through its direct map, host
/// tests through a fake that records every change.
pub trait TableMemory {
    /// A zeroed 4 KiB frame for a table.
    fn alloc_table(&mut self) -> Option<u64>;
    /// Takes back a table that was never linked (it lost a race).
    fn free_table(&mut self, table: u64);
    fn read(&self, table: u64, index: usize) -> u64;
    /// Sets the entry to `new` if it still holds `old`; else its value now.
    fn cas(&mut self, table: u64, index: usize, old: u64, new: u64) -> Result<(), u64>;
    /// Fills a fresh table nobody else sees yet (not linked): entry j is
    /// `entry(j)`. Linking it afterwards (a compare-and-swap) publishes it.
    fn init(&mut self, table: u64, entry: &dyn Fn(usize) -> u64) {
        for j in 0..512 {
            let _ = self.cas(table, j, 0, entry(j));
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    Unaligned,
    /// Beyond the 48 bits four levels translate.
    OutOfRange,
    /// Something is mapped there already (maybe by another CPU just now),
    /// or a 4 KiB page lies under a 2 MiB one or the other way round.
    AlreadyMapped,
    /// No 2 MiB leaf there to split, or nothing mapped to change.
    NotMapped,
    /// The leaf maps another frame than the change expected: another CPU
    /// changed it first.
    Changed,
    OutOfMemory,
}

/// What a change requires of the CPUs that run the guest: nothing, or
/// forgetting the translations of `[gpa, gpa + len)` (the vendor's INVEPT or
/// TLB flush, on every CPU that may hold them).
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flush {
    None,
    Range { gpa: u64, len: u64 },
}

pub const LEVELS: usize = 4;
const PAGE: u64 = 4096;
const LARGE: u64 = 2 << 20;

/// A leaf whose access was taken away for sampling: not present to the CPU,
/// its frame kept (bits 52-56 are ignored in EPT and nested-paging leaves).
const REVOKED: u64 = 1 << 52;
/// A leaf given back for reading after a sampled read: its first write
/// faults too, and is seen.
const SAMPLED: u64 = 1 << 53;
/// A read-only leaf whose page has a copy on other nodes (each node's copy
/// of the table maps its own): a write collapses them.
const REPLICATED: u64 = 1 << 54;

/// What a sampled page's fault was (`hint`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hint {
    /// The page's size (its base is the faulting address rounded down).
    pub size: PageSize,
    pub write: bool,
}

/// A leaf given back for reading and fetching only.
const READ_ONLY: Access = Access {
    read: true,
    write: false,
    execute: true,
    uncached: false,
};

fn index(gpa: u64, level: usize) -> usize {
    ((gpa >> (12 + 9 * level)) & 0x1ff) as usize
}

/// A 4-level table rooted at `root` (the frame EPTP or nCR3 points to).
pub struct PageTable<F: Format> {
    root: u64,
    _format: PhantomData<F>,
}

impl<F: Format> Clone for PageTable<F> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<F: Format> Copy for PageTable<F> {}

/// Where a walk stopped: the table holding the entry for the level asked,
/// or a leaf found above it.
enum Walked {
    Table(u64),
    /// A 2 MiB leaf in directory `table`, at `index`, holding `entry`.
    Large {
        table: u64,
        entry: u64,
    },
    Missing,
}

impl<F: Format> PageTable<F> {
    pub fn new(mem: &mut impl TableMemory) -> Result<Self, MapError> {
        let root = mem.alloc_table().ok_or(MapError::OutOfMemory)?;
        Ok(Self {
            root,
            _format: PhantomData,
        })
    }

    /// The table rooted at `root`, read through this format: how an IOMMU
    /// sees a nested table whose entries are also its own (`format::Npt`).
    pub fn at(root: u64) -> Self {
        Self {
            root,
            _format: PhantomData,
        }
    }

    pub fn root(&self) -> u64 {
        self.root
    }

    /// The table at `level` that holds `gpa`'s entry, built on the way when
    /// `create` (each missing table installed by compare-and-swap).
    fn walk(
        &self,
        mem: &mut impl TableMemory,
        gpa: u64,
        level: usize,
        create: bool,
    ) -> Result<Walked, MapError> {
        let mut table = self.root;
        for l in (level + 1..LEVELS).rev() {
            let i = index(gpa, l);
            let mut entry = mem.read(table, i);
            // Empty: no table yet (a revoked 2 MiB leaf is not empty).
            if entry == 0 {
                if !create {
                    return Ok(Walked::Missing);
                }
                let next = mem.alloc_table().ok_or(MapError::OutOfMemory)?;
                match mem.cas(table, i, entry, F::table(next, l - 1)) {
                    Ok(()) => entry = F::table(next, l - 1),
                    Err(theirs) => {
                        // Another CPU installed one first: use it.
                        mem.free_table(next);
                        entry = theirs;
                    }
                }
            }
            if l == 1 && F::is_large(entry) {
                return Ok(Walked::Large { table, entry });
            }
            table = F::frame(entry);
        }
        Ok(Walked::Table(table))
    }

    /// Maps the page of `size` at `gpa` to `frame`. A page newly present
    /// needs no flush: CPUs do not cache translations that fault.
    pub fn map(
        &self,
        mem: &mut impl TableMemory,
        gpa: u64,
        frame: u64,
        size: PageSize,
        access: Access,
    ) -> Result<Flush, MapError> {
        let bytes = size.bytes();
        if !gpa.is_multiple_of(bytes) || !frame.is_multiple_of(bytes) {
            return Err(MapError::Unaligned);
        }
        if gpa >> 48 != 0 {
            return Err(MapError::OutOfRange);
        }
        let Walked::Table(table) = self.walk(mem, gpa, level(size), true)? else {
            return Err(MapError::AlreadyMapped); // a 2 MiB leaf covers it
        };
        let leaf = F::leaf(frame, access, size == PageSize::Large);
        mem.cas(table, index(gpa, level(size)), 0, leaf)
            .map_err(|_| MapError::AlreadyMapped)?;
        Ok(Flush::None)
    }

    /// The leaf holding `gpa` (revoked or not): its table, index, entry and size.
    fn leaf(&self, mem: &mut impl TableMemory, gpa: u64) -> Option<(u64, usize, u64, PageSize)> {
        match self.walk(mem, gpa, 0, false).ok()? {
            Walked::Table(table) => {
                let i = index(gpa, 0);
                let entry = mem.read(table, i);
                (entry != 0).then_some((table, i, entry, PageSize::Small))
            }
            Walked::Large { table, entry } => Some((table, index(gpa, 1), entry, PageSize::Large)),
            Walked::Missing => None,
        }
    }

    /// `entry` (of a page of `size`) as it is apart from sampling: a
    /// sampled leaf with its access back.
    fn unsampled(entry: u64, size: PageSize) -> u64 {
        if entry & (REVOKED | SAMPLED) == 0 {
            return entry;
        }
        let frame = F::frame(entry) & !(size.bytes() - 1);
        F::leaf(frame, Access::ALL, size == PageSize::Large) | (entry & (F::ACCESSED | F::DIRTY))
    }

    /// The first page mapped (or sampled) at or after `gpa` and below
    /// `end`: its base, size and frame. Empty tables are skipped whole, so
    /// that sparse guest RAM is crossed fast.
    pub fn next_leaf(
        &self,
        mem: &mut impl TableMemory,
        mut gpa: u64,
        end: u64,
    ) -> Option<(u64, PageSize, u64)> {
        'next: while gpa < end {
            let mut table = self.root;
            for l in (0..LEVELS).rev() {
                let entry = mem.read(table, index(gpa, l));
                let span = 1u64 << (12 + 9 * l);
                if entry == 0 {
                    gpa = (gpa & !(span - 1)).checked_add(span)?;
                    continue 'next;
                }
                let size = match l {
                    0 => PageSize::Small,
                    1 if F::is_large(entry) => PageSize::Large,
                    _ => {
                        table = F::frame(entry);
                        continue;
                    }
                };
                let mask = !(size.bytes() - 1);
                return Some((gpa & mask, size, F::frame(entry) & mask));
            }
        }
        None
    }

    /// The host address and access of `gpa` (apart from sampling).
    pub fn translate(&self, mem: &mut impl TableMemory, gpa: u64) -> Option<(u64, Access)> {
        let (_, _, entry, size) = self.leaf(mem, gpa)?;
        let entry = Self::unsampled(entry, size);
        let base = F::frame(entry) & !(size.bytes() - 1);
        Some((base + gpa % size.bytes(), F::access(entry)))
    }

    /// Removes the mapping of the page holding `gpa`: its frame and size,
    /// and the flush that must come before the frame is used again.
    pub fn unmap(&self, mem: &mut impl TableMemory, gpa: u64) -> Option<(u64, PageSize, Flush)> {
        loop {
            let (table, i, entry, size) = self.leaf(mem, gpa)?;
            if mem.cas(table, i, entry, 0).is_ok() {
                let base = gpa & !(size.bytes() - 1);
                let flush = Flush::Range {
                    gpa: base,
                    len: size.bytes(),
                };
                return Some((F::frame(entry) & !(size.bytes() - 1), size, flush));
            }
        }
    }

    /// The frame (the page's base), size and access of the page holding
    /// `gpa` (apart from sampling).
    pub fn mapping(&self, mem: &mut impl TableMemory, gpa: u64) -> Option<(u64, PageSize, Access)> {
        let (_, _, entry, size) = self.leaf(mem, gpa)?;
        let entry = Self::unsampled(entry, size);
        Some((
            F::frame(entry) & !(size.bytes() - 1),
            size,
            F::access(entry),
        ))
    }

    /// Rewrites the leaf holding `gpa` by compare-and-swap: `change` gets
    /// its frame and access (apart from sampling) and gives the new ones,
    /// unsampled, or None to leave it (`MapError::Changed`). The frame it
    /// mapped, and the flush the change needs.
    fn rewrite(
        &self,
        mem: &mut impl TableMemory,
        gpa: u64,
        change: impl Fn(u64, Access) -> Option<(u64, Access)>,
    ) -> Result<(u64, Flush), MapError> {
        loop {
            let (table, i, entry, size) = self.leaf(mem, gpa).ok_or(MapError::NotMapped)?;
            let plain = Self::unsampled(entry, size);
            let old = F::frame(plain) & !(size.bytes() - 1);
            let (frame, access) = change(old, F::access(plain)).ok_or(MapError::Changed)?;
            let leaf = F::leaf(frame, access, size == PageSize::Large);
            if mem.cas(table, i, entry, leaf).is_ok() {
                let len = size.bytes();
                let gpa = gpa & !(len - 1);
                return Ok((old, Flush::Range { gpa, len }));
            }
        }
    }

    /// Makes the page holding `gpa` read-only (or writable again): a page
    /// being copied elsewhere keeps its readers and stops its writers.
    pub fn protect(
        &self,
        mem: &mut impl TableMemory,
        gpa: u64,
        writable: bool,
    ) -> Result<Flush, MapError> {
        let change = |frame, access| {
            Some((
                frame,
                Access {
                    write: writable,
                    ..access
                },
            ))
        };
        self.rewrite(mem, gpa, change).map(|r| r.1)
    }

    /// Points the page holding `gpa`, which must map `from`, at `to`,
    /// readable, writable and executable: the flush. `MapError::Changed`
    /// when it maps another frame: whoever changed it owns that frame, and
    /// the caller still owns `from` and `to`.
    pub fn remap(
        &self,
        mem: &mut impl TableMemory,
        gpa: u64,
        from: u64,
        to: u64,
    ) -> Result<Flush, MapError> {
        self.rewrite(mem, gpa, |now, _| {
            (now == from).then_some((to, Access::ALL))
        })
        .map(|r| r.1)
    }

    /// Replaces the 2 MiB leaf holding `gpa` with a table of 512 4 KiB
    /// leaves mapping the same frames with the same access (and its
    /// accessed and dirty bits), so that its parts can change one by one.
    pub fn split(&self, mem: &mut impl TableMemory, gpa: u64) -> Result<Flush, MapError> {
        loop {
            let Walked::Large { table, entry } = self.walk(mem, gpa, 0, false)? else {
                return Err(MapError::NotMapped);
            };
            let small = mem.alloc_table().ok_or(MapError::OutOfMemory)?;
            let plain = Self::unsampled(entry, PageSize::Large);
            let frame = F::frame(plain) & !(LARGE - 1);
            let flags = plain & (F::ACCESSED | F::DIRTY);
            mem.init(small, &|j| {
                F::leaf(frame + j as u64 * PAGE, F::access(plain), false) | flags
            });
            if mem
                .cas(table, index(gpa, 1), entry, F::table(small, 0))
                .is_ok()
            {
                return Ok(Flush::Range {
                    gpa: gpa & !(LARGE - 1),
                    len: LARGE,
                });
            }
            mem.free_table(small); // changed meanwhile: look again
        }
    }

    /// Takes every access to the page holding `gpa` away, its frame kept, so
    /// that the next access faults and is seen (`hint`); only a page with
    /// every access (guest RAM not being moved: a page made read-only by a
    /// migration stays so) or one sampled before. The flush lets CPUs that
    /// cached the page fault on it; until they flush, their accesses go
    /// unseen, nothing worse.
    pub fn revoke(&self, mem: &mut impl TableMemory, gpa: u64) -> Result<Flush, MapError> {
        loop {
            let (table, i, entry, size) = self.leaf(mem, gpa).ok_or(MapError::NotMapped)?;
            let sampled = entry & SAMPLED != 0;
            if entry & REVOKED != 0 || !(sampled || F::access(entry) == Access::ALL) {
                return Ok(Flush::None);
            }
            let revoked = (entry & !(F::PRESENT | SAMPLED)) | REVOKED;
            if mem.cas(table, i, entry, revoked).is_ok() {
                let len = size.bytes();
                return Ok(Flush::Range {
                    gpa: gpa & !(len - 1),
                    len,
                });
            }
        }
    }

    /// A fault at `gpa` (a `write` or not): if its page was sampled, its
    /// access comes back (reading only, after a read of a revoked page: the
    /// first write is seen too) and the fault was a hint; None when the
    /// page was not sampled (the fault is something else). Access given
    /// back needs no flush: CPUs do not cache what faults.
    pub fn hint(&self, mem: &mut impl TableMemory, gpa: u64, write: bool) -> Option<Hint> {
        loop {
            let (table, i, entry, size) = self.leaf(mem, gpa)?;
            let back = Self::given_back(entry, size, write)?;
            if mem.cas(table, i, entry, back).is_ok() {
                return Some(Hint { size, write });
            }
        }
    }

    /// The leaf a sampled `entry` (of a page of `size`) becomes at a fault
    /// (a `write` or not), or None when the fault on it is no hint.
    pub fn given_back(entry: u64, size: PageSize, write: bool) -> Option<u64> {
        let frame = F::frame(entry) & !(size.bytes() - 1);
        let large = size == PageSize::Large;
        let back = match (entry & REVOKED != 0, entry & SAMPLED != 0) {
            (true, _) if !write => F::leaf(frame, READ_ONLY, large) | SAMPLED,
            (true, _) | (false, true) if write => F::leaf(frame, Access::ALL, large),
            _ => return None,
        };
        Some(back | (entry & (F::ACCESSED | F::DIRTY)))
    }

    /// The leaf holding `gpa` as it is (sampled or not), and its size.
    pub fn entry(&self, mem: &mut impl TableMemory, gpa: u64) -> Option<(u64, PageSize)> {
        self.leaf(mem, gpa).map(|(_, _, entry, size)| (entry, size))
    }

    /// Puts the leaf `entry` of a page of `size` at `gpa` where none is:
    /// another table's leaf, copied (the per-node copies of a table).
    pub fn install(
        &self,
        mem: &mut impl TableMemory,
        gpa: u64,
        entry: u64,
        size: PageSize,
    ) -> Result<(), MapError> {
        let Walked::Table(table) = self.walk(mem, gpa, level(size), true)? else {
            return Err(MapError::AlreadyMapped);
        };
        mem.cas(table, index(gpa, level(size)), 0, entry)
            .map_err(|_| MapError::AlreadyMapped)
    }

    /// Removes the leaf holding `gpa` if it still is `entry`.
    pub fn remove(&self, mem: &mut impl TableMemory, gpa: u64, entry: u64) -> bool {
        self.leaf(mem, gpa)
            .is_some_and(|(table, i, now, _)| now == entry && mem.cas(table, i, entry, 0).is_ok())
    }

    /// Marks the page holding `gpa` read-only and replicated (its copies are
    /// mapped in the nodes' tables): the flush.
    pub fn replicate(&self, mem: &mut impl TableMemory, gpa: u64) -> Result<Flush, MapError> {
        let flush = self.protect(mem, gpa, false)?;
        loop {
            let (table, i, entry, _) = self.leaf(mem, gpa).ok_or(MapError::NotMapped)?;
            if F::access(entry).write {
                return Err(MapError::AlreadyMapped); // changed meanwhile
            }
            if mem.cas(table, i, entry, entry | REPLICATED).is_ok() {
                return Ok(flush);
            }
        }
    }

    /// Whether the page holding `gpa` is replicated (`replicate`): the
    /// leaf, to rewrite once its copies are gone.
    pub fn replicated(&self, mem: &mut impl TableMemory, gpa: u64) -> bool {
        self.leaf(mem, gpa)
            .is_some_and(|(_, _, entry, _)| entry & REPLICATED != 0)
    }

    /// Whether the page holding `gpa` was accessed and written since its
    /// bits were last cleared (false, false where the CPU keeps none).
    pub fn accessed_dirty(&self, mem: &mut impl TableMemory, gpa: u64) -> Option<(bool, bool)> {
        let (_, _, entry, _) = self.leaf(mem, gpa)?;
        Some((
            F::ACCESSED != 0 && entry & F::ACCESSED != 0,
            F::DIRTY != 0 && entry & F::DIRTY != 0,
        ))
    }

    /// Clears the accessed and dirty bits of the page holding `gpa`,
    /// returning them and the flush without which a CPU that cached the
    /// translation would not set them again.
    pub fn clear_accessed_dirty(
        &self,
        mem: &mut impl TableMemory,
        gpa: u64,
    ) -> Result<((bool, bool), Flush), MapError> {
        loop {
            let (table, i, entry, size) = self.leaf(mem, gpa).ok_or(MapError::NotMapped)?;
            let bits = (entry & F::ACCESSED != 0, entry & F::DIRTY != 0);
            let clear = entry & !(F::ACCESSED | F::DIRTY);
            if clear == entry {
                return Ok((bits, Flush::None));
            }
            if mem.cas(table, i, entry, clear).is_ok() {
                let len = size.bytes();
                let gpa = gpa & !(len - 1);
                return Ok((bits, Flush::Range { gpa, len }));
            }
        }
    }
}

/// Host tests: tables in a map, every change recorded; `interleave` runs
/// once before the next compare-and-swap, as another CPU would between a
/// read and a swap.
#[cfg(test)]
pub mod fake {
    use std::collections::HashMap;

    type Interleave = Box<dyn FnOnce(&mut FakeTables)>;

    #[derive(Default)]
    pub struct FakeTables {
        pub tables: HashMap<u64, [u64; 512]>,
        pub writes: Vec<(u64, usize, u64)>,
        pub freed: Vec<u64>,
        pub next: u64,
        pub limit: usize,
        pub interleave: Option<Interleave>,
    }

    impl FakeTables {
        pub fn new(limit: usize) -> Self {
            Self {
                next: 0x10_0000,
                limit,
                ..Default::default()
            }
        }
    }

    impl super::TableMemory for FakeTables {
        fn alloc_table(&mut self) -> Option<u64> {
            if self.tables.len() >= self.limit {
                return None;
            }
            let frame = self.next;
            self.next += 0x1000;
            self.tables.insert(frame, [0; 512]);
            Some(frame)
        }
        fn free_table(&mut self, table: u64) {
            self.tables.remove(&table);
            self.freed.push(table);
        }
        fn read(&self, table: u64, index: usize) -> u64 {
            self.tables[&table][index]
        }
        fn cas(&mut self, table: u64, index: usize, old: u64, new: u64) -> Result<(), u64> {
            if let Some(other_cpu) = self.interleave.take() {
                other_cpu(self);
            }
            let entry = &mut self.tables.get_mut(&table).expect("a table of ours")[index];
            if *entry != old {
                return Err(*entry);
            }
            *entry = new;
            self.writes.push((table, index, new));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::format::{Ept, Npt};
    use super::*;
    use fake::FakeTables;

    const MIB: u64 = 1 << 20;

    #[test]
    fn two_cpus_installing_one_table_lose_nothing() {
        let mut mem = FakeTables::new(16);
        let pt = PageTable::<Ept>::new(&mut mem).unwrap();
        // CPU B maps 0x1000 between CPU A's read of the empty root entry and
        // A's swap: A must give back its table and use B's.
        mem.interleave = Some(Box::new(move |m: &mut FakeTables| {
            assert_eq!(
                pt.map(m, 0x1000, 0xb000, PageSize::Small, Access::ALL),
                Ok(Flush::None)
            );
        }));
        assert_eq!(
            pt.map(&mut mem, 0x2000, 0xa000, PageSize::Small, Access::ALL),
            Ok(Flush::None)
        );
        assert_eq!(mem.freed.len(), 1, "A's losing table came back");
        assert_eq!(pt.translate(&mut mem, 0x1000).map(|t| t.0), Some(0xb000));
        assert_eq!(pt.translate(&mut mem, 0x2000).map(|t| t.0), Some(0xa000));
        // And two CPUs mapping one page: the second is told.
        mem.interleave = Some(Box::new(move |m: &mut FakeTables| {
            assert_eq!(
                pt.map(m, 0x3000, 0xc000, PageSize::Small, Access::ALL),
                Ok(Flush::None)
            );
        }));
        assert_eq!(
            pt.map(&mut mem, 0x3000, 0xd000, PageSize::Small, Access::ALL),
            Err(MapError::AlreadyMapped)
        );
        assert_eq!(pt.translate(&mut mem, 0x3000).map(|t| t.0), Some(0xc000));
    }

    #[test]
    fn a_split_keeps_a_write_the_cpu_records_while_it_builds_its_table() {
        let mut mem = FakeTables::new(16);
        let pt = PageTable::<Ept>::new(&mut mem).unwrap();
        let _ = pt.map(&mut mem, 2 * MIB, 8 * MIB, PageSize::Large, Access::ALL);
        // Between the split's read of the 2 MiB leaf and its swap, a CPU
        // writes the page and sets the leaf's accessed and dirty bits.
        let pd = pt.leaf(&mut mem, 2 * MIB).unwrap().0;
        mem.interleave = Some(Box::new(move |m: &mut FakeTables| {
            let i = index(2 * MIB, 1);
            let entry = m.tables[&pd][i];
            m.tables.get_mut(&pd).unwrap()[i] = entry | Ept::ACCESSED | Ept::DIRTY;
        }));
        assert!(pt.split(&mut mem, 2 * MIB).is_ok());
        // The split saw its leaf change, built its table again from the new
        // one: the write is not lost to sampling by bits.
        assert_eq!(
            pt.accessed_dirty(&mut mem, 2 * MIB + 0x5000),
            Some((true, true))
        );
        assert_eq!(
            pt.mapping(&mut mem, 2 * MIB + 0x5000).map(|m| (m.0, m.1)),
            Some((8 * MIB + 0x5000, PageSize::Small))
        );
    }

    #[test]
    fn a_page_is_write_protected_then_moved_with_a_flush_each_time() {
        let mut mem = FakeTables::new(16);
        let pt = PageTable::<Ept>::new(&mut mem).unwrap();
        let _ = pt.map(&mut mem, 0x5000, 0xa000, PageSize::Small, Access::ALL);
        let range = Flush::Range {
            gpa: 0x5000,
            len: 0x1000,
        };
        assert_eq!(pt.protect(&mut mem, 0x5123, false), Ok(range));
        let (frame, size, access) = pt.mapping(&mut mem, 0x5000).unwrap();
        assert_eq!(
            (frame, size, access.write, access.read),
            (0xa000, PageSize::Small, false, true)
        );
        assert_eq!(pt.remap(&mut mem, 0x5000, 0xa000, 0xc000), Ok(range));
        assert_eq!(pt.translate(&mut mem, 0x5010), Some((0xc010, Access::ALL)));
        // A remap that expects the frame the page had is refused now, the
        // leaf left as it is: whoever changed it owns its frame.
        assert_eq!(
            pt.remap(&mut mem, 0x5000, 0xa000, 0xd000),
            Err(MapError::Changed)
        );
        assert_eq!(pt.translate(&mut mem, 0x5010), Some((0xc010, Access::ALL)));
        assert_eq!(
            pt.protect(&mut mem, 0x9000, false),
            Err(MapError::NotMapped)
        );
        assert_eq!(
            pt.remap(&mut mem, 0x9000, 0xa000, 0xd000),
            Err(MapError::NotMapped)
        );
    }

    #[test]
    fn large_pages_map_translate_and_refuse_overlaps() {
        let mut mem = FakeTables::new(16);
        let pt = PageTable::<Npt>::new(&mut mem).unwrap();
        let flush = pt.map(&mut mem, 2 * MIB, 8 * MIB, PageSize::Large, Access::ALL);
        assert_eq!(flush, Ok(Flush::None));
        assert_eq!(mem.writes.len(), 3, "PDPT, directory, then the leaf in it");
        assert_eq!(
            pt.translate(&mut mem, 2 * MIB + 0x1234).map(|t| t.0),
            Some(8 * MIB + 0x1234)
        );
        assert_eq!(
            pt.map(
                &mut mem,
                2 * MIB + 0x1000,
                0x9000,
                PageSize::Small,
                Access::ALL
            ),
            Err(MapError::AlreadyMapped),
            "a 4 KiB page under a 2 MiB one"
        );
        assert_eq!(
            pt.map(&mut mem, 0x1000, 0x9000, PageSize::Small, Access::ALL),
            Ok(Flush::None)
        );
        assert_eq!(
            pt.map(&mut mem, 0, 10 * MIB, PageSize::Large, Access::ALL),
            Err(MapError::AlreadyMapped),
            "a 2 MiB page over a table of 4 KiB ones"
        );
        assert_eq!(
            pt.map(&mut mem, MIB, 10 * MIB, PageSize::Large, Access::ALL),
            Err(MapError::Unaligned)
        );
    }

    #[test]
    fn splitting_keeps_every_translation_and_asks_for_a_flush() {
        let mut mem = FakeTables::new(16);
        let pt = PageTable::<Ept>::new(&mut mem).unwrap();
        let ro = Access {
            read: true,
            write: false,
            execute: true,
            uncached: false,
        };
        assert_eq!(
            pt.map(&mut mem, 4 * MIB, 16 * MIB, PageSize::Large, ro),
            Ok(Flush::None)
        );
        let flush = pt.split(&mut mem, 4 * MIB + 0x5000);
        assert_eq!(
            flush,
            Ok(Flush::Range {
                gpa: 4 * MIB,
                len: 2 * MIB
            })
        );
        for off in [0, 0x1000, 0x1f_f000] {
            assert_eq!(
                pt.translate(&mut mem, 4 * MIB + off + 0x10),
                Some((16 * MIB + off + 0x10, ro))
            );
        }
        // Now one 4 KiB part can go on its own.
        let (frame, size, flush) = pt.unmap(&mut mem, 4 * MIB + 0x1000).unwrap();
        assert_eq!((frame, size), (16 * MIB + 0x1000, PageSize::Small));
        assert_eq!(
            flush,
            Flush::Range {
                gpa: 4 * MIB + 0x1000,
                len: 0x1000
            }
        );
        assert_eq!(pt.translate(&mut mem, 4 * MIB + 0x1000), None);
        assert!(pt.translate(&mut mem, 4 * MIB + 0x2000).is_some());
        assert_eq!(pt.split(&mut mem, 4 * MIB), Err(MapError::NotMapped));
    }

    #[test]
    fn accessed_and_dirty_bits_read_and_clear_with_a_flush() {
        let mut mem = FakeTables::new(16);
        let pt = PageTable::<Npt>::new(&mut mem).unwrap();
        assert_eq!(
            pt.map(&mut mem, 0x5000, 0x9000, PageSize::Small, Access::ALL),
            Ok(Flush::None)
        );
        assert_eq!(pt.accessed_dirty(&mut mem, 0x5000), Some((false, false)));
        // The CPU sets A and D as the guest reads and writes.
        let (table, i, _) = *mem.writes.last().unwrap();
        mem.tables.get_mut(&table).unwrap()[i] |= Npt::ACCESSED | Npt::DIRTY;
        assert_eq!(pt.accessed_dirty(&mut mem, 0x5abc), Some((true, true)));
        let cleared = pt.clear_accessed_dirty(&mut mem, 0x5abc);
        assert_eq!(
            cleared,
            Ok((
                (true, true),
                Flush::Range {
                    gpa: 0x5000,
                    len: 0x1000
                }
            ))
        );
        assert_eq!(pt.accessed_dirty(&mut mem, 0x5000), Some((false, false)));
        assert_eq!(
            pt.clear_accessed_dirty(&mut mem, 0x5000),
            Ok(((false, false), Flush::None)),
            "nothing to clear, nothing to flush"
        );
        assert_eq!(
            pt.clear_accessed_dirty(&mut mem, 0x6000),
            Err(MapError::NotMapped)
        );
    }

    #[test]
    fn unmapping_a_large_page_returns_its_frame_and_range() {
        let mut mem = FakeTables::new(16);
        let pt = PageTable::<Ept>::new(&mut mem).unwrap();
        assert_eq!(
            pt.map(&mut mem, 2 * MIB, 6 * MIB, PageSize::Large, Access::ALL),
            Ok(Flush::None)
        );
        assert_eq!(
            pt.unmap(&mut mem, 3 * MIB),
            Some((
                6 * MIB,
                PageSize::Large,
                Flush::Range {
                    gpa: 2 * MIB,
                    len: 2 * MIB
                }
            ))
        );
        assert_eq!(pt.unmap(&mut mem, 3 * MIB), None);
    }

    #[test]
    fn a_sampled_page_keeps_its_frame_and_tells_reads_then_writes() {
        for large in [false, true] {
            let mut mem = FakeTables::new(16);
            let pt = PageTable::<Npt>::new(&mut mem).unwrap();
            let (gpa, frame, size) = if large {
                (2 * MIB, 8 * MIB, PageSize::Large)
            } else {
                (0x5000, 0x9000, PageSize::Small)
            };
            let _ = pt.map(&mut mem, gpa, frame, size, Access::ALL);
            assert_eq!(pt.hint(&mut mem, gpa, false), None, "not sampled");
            let flush = pt.revoke(&mut mem, gpa + 0x10);
            assert_eq!(
                flush,
                Ok(Flush::Range {
                    gpa,
                    len: size.bytes()
                })
            );
            let (table, i, _) = *mem.writes.last().unwrap();
            assert_eq!(mem.tables[&table][i] & 1, 0, "not present to the CPU");
            // The frame is still the page's: nothing backs it anew.
            assert_eq!(pt.mapping(&mut mem, gpa).map(|m| m.0), Some(frame));
            assert_eq!(
                pt.map(&mut mem, gpa, 0xa000 << 9, size, Access::ALL),
                Err(MapError::AlreadyMapped)
            );
            assert_eq!(pt.revoke(&mut mem, gpa), Ok(Flush::None), "once");
            // A read: readable again, and the first write is seen too.
            assert_eq!(
                pt.hint(&mut mem, gpa + 8, false),
                Some(Hint { size, write: false })
            );
            assert!(
                !pt.translate(&mut mem, gpa)
                    .is_some_and(|t| t.1 != Access::ALL)
            );
            let (table, i, _) = *mem.writes.last().unwrap();
            assert_eq!(mem.tables[&table][i] & 3, 1, "present, read-only");
            assert_eq!(pt.hint(&mut mem, gpa, false), None);
            assert_eq!(
                pt.hint(&mut mem, gpa, true),
                Some(Hint { size, write: true })
            );
            assert_eq!(mem.tables[&table][i], Npt::leaf(frame, Access::ALL, large));
            assert_eq!(pt.hint(&mut mem, gpa, true), None, "plain again");
        }
    }

    #[test]
    fn a_write_to_a_revoked_page_gives_it_all_back_and_moves_drop_the_sample() {
        let mut mem = FakeTables::new(16);
        let pt = PageTable::<Ept>::new(&mut mem).unwrap();
        let _ = pt.map(&mut mem, 0x5000, 0x9000, PageSize::Small, Access::ALL);
        let _ = pt.revoke(&mut mem, 0x5000);
        assert_eq!(
            pt.hint(&mut mem, 0x5000, true),
            Some(Hint {
                size: PageSize::Small,
                write: true
            })
        );
        assert_eq!(
            mem.writes.last().unwrap().2,
            Ept::leaf(0x9000, Access::ALL, false)
        );
        // A migration write-protects a revoked page: read-only, unsampled;
        // the sampler leaves it so, and its faults are not hints.
        let _ = pt.revoke(&mut mem, 0x5000);
        assert!(pt.protect(&mut mem, 0x5000, false).is_ok());
        assert_eq!(pt.hint(&mut mem, 0x5000, true), None);
        assert_eq!(pt.revoke(&mut mem, 0x5000), Ok(Flush::None));
        assert!(pt.remap(&mut mem, 0x5000, 0x9000, 0xc000).is_ok());
        // A revoked 2 MiB page splits into plain 4 KiB ones.
        let _ = pt.map(&mut mem, 2 * MIB, 8 * MIB, PageSize::Large, Access::ALL);
        let _ = pt.revoke(&mut mem, 2 * MIB);
        assert!(pt.split(&mut mem, 2 * MIB).is_ok());
        assert_eq!(
            pt.translate(&mut mem, 2 * MIB + 0x3008),
            Some((8 * MIB + 0x3008, Access::ALL))
        );
        assert_eq!(pt.hint(&mut mem, 2 * MIB + 0x3000, false), None);
        // Device memory is never sampled.
        let uc = Access {
            uncached: true,
            ..Access::ALL
        };
        let _ = pt.map(&mut mem, 0x7000, 0x7000, PageSize::Small, uc);
        assert_eq!(pt.revoke(&mut mem, 0x7000), Ok(Flush::None));
        assert_eq!(pt.revoke(&mut mem, 0xf000), Err(MapError::NotMapped));
    }

    #[test]
    fn the_next_leaf_skips_what_is_not_mapped() {
        let mut mem = FakeTables::new(16);
        let pt = PageTable::<Npt>::new(&mut mem).unwrap();
        for gpa in [0x3000, 0x40_0000_0000] {
            let _ = pt.map(&mut mem, gpa, 0x9000, PageSize::Small, Access::ALL);
        }
        let _ = pt.map(&mut mem, 4 * MIB, 8 * MIB, PageSize::Large, Access::ALL);
        let _ = pt.revoke(&mut mem, 4 * MIB);
        let end = 1 << 40;
        let small = |gpa| Some((gpa, PageSize::Small, 0x9000));
        let large = Some((4 * MIB, PageSize::Large, 8 * MIB));
        assert_eq!(pt.next_leaf(&mut mem, 0, end), small(0x3000));
        assert_eq!(pt.next_leaf(&mut mem, 0x3000, end), small(0x3000));
        assert_eq!(
            pt.next_leaf(&mut mem, 0x4000, end),
            large,
            "revoked, still the page's, with its frame"
        );
        assert_eq!(pt.next_leaf(&mut mem, 5 * MIB, end), large);
        assert_eq!(pt.next_leaf(&mut mem, 6 * MIB, end), small(0x40_0000_0000));
        assert_eq!(pt.next_leaf(&mut mem, 6 * MIB, 0x40_0000_0000), None);
        assert_eq!(pt.next_leaf(&mut mem, 0x40_0000_1000, end), None);
    }
}
