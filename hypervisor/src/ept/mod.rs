//! Second-level paging: one 4-level page-table engine for guest-physical to
//! host-physical translation. Only the entry encoding (`Format`) differs
//! between Intel EPT and AMD nested paging, and the flush, which the vendor
//! layer performs (INVEPT, or a new ASID).

use core::marker::PhantomData;

pub mod format;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Access {
    pub read: bool,
    pub write: bool,
    pub execute: bool,
}

impl Access {
    pub const ALL: Self = Self {
        read: true,
        write: true,
        execute: true,
    };
}

/// How a table entry is encoded.
pub trait Format {
    /// An entry pointing to the next-level table at `table`.
    fn table(table: u64) -> u64;
    /// A 4 KiB leaf mapping `frame`.
    fn page(frame: u64, access: Access) -> u64;
    fn is_present(entry: u64) -> bool;
    fn access(entry: u64) -> Access;
    fn frame(entry: u64) -> u64 {
        entry & 0x000f_ffff_ffff_f000
    }
}

/// Where tables live: the kernel reaches them through its identity map,
/// host tests through a fake that records every write.
pub trait TableMemory {
    /// A zeroed 4 KiB frame for a table.
    fn alloc_table(&mut self) -> Option<u64>;
    fn read(&self, table: u64, index: usize) -> u64;
    fn write(&mut self, table: u64, index: usize, entry: u64);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    Unaligned,
    /// Beyond the 48 bits four levels translate.
    OutOfRange,
    AlreadyMapped,
    OutOfMemory,
}

pub const LEVELS: usize = 4;
const PAGE: u64 = 4096;

fn index(gpa: u64, level: usize) -> usize {
    ((gpa >> (12 + 9 * level)) & 0x1ff) as usize
}

/// A 4-level table rooted at `root` (the frame EPTP or nCR3 points to).
pub struct PageTable<F: Format> {
    root: u64,
    _format: PhantomData<F>,
}

impl<F: Format> PageTable<F> {
    pub fn new(mem: &mut impl TableMemory) -> Result<Self, MapError> {
        let root = mem.alloc_table().ok_or(MapError::OutOfMemory)?;
        Ok(Self {
            root,
            _format: PhantomData,
        })
    }

    pub fn root(&self) -> u64 {
        self.root
    }

    /// The leaf table holding `gpa`, created on the way when `create`.
    fn leaf_table(
        &self,
        mem: &mut impl TableMemory,
        gpa: u64,
        create: bool,
    ) -> Result<Option<u64>, MapError> {
        let mut table = self.root;
        for level in (1..LEVELS).rev() {
            let i = index(gpa, level);
            let entry = mem.read(table, i);
            table = if F::is_present(entry) {
                F::frame(entry)
            } else if create {
                let next = mem.alloc_table().ok_or(MapError::OutOfMemory)?;
                mem.write(table, i, F::table(next));
                next
            } else {
                return Ok(None);
            };
        }
        Ok(Some(table))
    }

    /// Maps the 4 KiB page at `gpa` to `frame`.
    pub fn map(
        &self,
        mem: &mut impl TableMemory,
        gpa: u64,
        frame: u64,
        access: Access,
    ) -> Result<(), MapError> {
        if !gpa.is_multiple_of(PAGE) || !frame.is_multiple_of(PAGE) {
            return Err(MapError::Unaligned);
        }
        if gpa >> 48 != 0 {
            return Err(MapError::OutOfRange);
        }
        let table = self
            .leaf_table(mem, gpa, true)?
            .ok_or(MapError::OutOfMemory)?;
        let i = index(gpa, 0);
        if F::is_present(mem.read(table, i)) {
            return Err(MapError::AlreadyMapped);
        }
        mem.write(table, i, F::page(frame, access));
        Ok(())
    }

    /// The frame and access of the page holding `gpa`.
    pub fn translate(&self, mem: &mut impl TableMemory, gpa: u64) -> Option<(u64, Access)> {
        let table = self.leaf_table(mem, gpa, false).ok()??;
        let entry = mem.read(table, index(gpa, 0));
        F::is_present(entry).then(|| (F::frame(entry) + gpa % PAGE, F::access(entry)))
    }

    /// Removes the mapping of the page at `gpa`, returning its frame. The
    /// caller flushes the vendor's TLB before the frame is reused.
    pub fn unmap(&self, mem: &mut impl TableMemory, gpa: u64) -> Option<u64> {
        let table = self.leaf_table(mem, gpa, false).ok()??;
        let i = index(gpa, 0);
        let entry = mem.read(table, i);
        if !F::is_present(entry) {
            return None;
        }
        mem.write(table, i, 0);
        Some(F::frame(entry))
    }
}

/// Host tests: tables in a map, every write recorded.
#[cfg(test)]
pub mod fake {
    use std::collections::HashMap;

    #[derive(Default)]
    pub struct FakeTables {
        pub tables: HashMap<u64, [u64; 512]>,
        pub writes: Vec<(u64, usize, u64)>,
        pub next: u64,
        pub limit: usize,
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
        fn read(&self, table: u64, index: usize) -> u64 {
            self.tables[&table][index]
        }
        fn write(&mut self, table: u64, index: usize, entry: u64) {
            self.writes.push((table, index, entry));
            self.tables.get_mut(&table).expect("a table of ours")[index] = entry;
        }
    }
}
