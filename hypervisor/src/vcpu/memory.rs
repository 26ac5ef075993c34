//! Guest RAM: guest-physical [0, size) backed page by page by frames the
//! hypervisor allocates, through the second-level table of the vendor's
//! format. Guest-physical addresses are not host-physical ones.

use crate::ept::{Access, Format, MapError, PageTable, TableMemory};
use crate::frames;
use crate::phys::{IdentityMapped, PhysMem};

/// Tables in frames from the kernel's allocator, reached through the identity map.
pub struct IdentityTables;

impl TableMemory for IdentityTables {
    fn alloc_table(&mut self) -> Option<u64> {
        frames::alloc_zeroed()
    }

    fn read(&self, table: u64, index: usize) -> u64 {
        IdentityMapped.u64(table + index as u64 * 8).unwrap_or(0)
    }

    fn write(&mut self, table: u64, index: usize, entry: u64) {
        // SAFETY: `table` is a frame this engine allocated for a table.
        unsafe { crate::phys::write(table + index as u64 * 8, &entry.to_le_bytes()) };
    }
}

pub struct GuestMemory<F: Format> {
    pub table: PageTable<F>,
    pub size: u64,
}

const PAGE: u64 = 4096;

impl<F: Format> GuestMemory<F> {
    /// Backs [0, size) with fresh zeroed frames.
    pub fn new(size: u64) -> Result<Self, MapError> {
        let mut tables = IdentityTables;
        let table = PageTable::<F>::new(&mut tables)?;
        for gpa in (0..size).step_by(PAGE as usize) {
            let frame = frames::alloc_zeroed().ok_or(MapError::OutOfMemory)?;
            table.map(&mut tables, gpa, frame, Access::ALL)?;
        }
        Ok(Self { table, size })
    }

    /// Calls `f(hpa, done, n)` for each piece of `[gpa, gpa + len)` that
    /// lies in one page: `n` bytes at host-physical `hpa`, `done` bytes in.
    /// False when the range leaves guest RAM or `f` fails.
    fn pages(&self, gpa: u64, len: usize, mut f: impl FnMut(u64, usize, usize) -> bool) -> bool {
        if gpa
            .checked_add(len as u64)
            .is_none_or(|end| end > self.size)
        {
            return false;
        }
        let mut done = 0;
        while done < len {
            let at = gpa + done as u64;
            let Some((hpa, _)) = self.table.translate(&mut IdentityTables, at) else {
                return false;
            };
            let n = ((PAGE - at % PAGE) as usize).min(len - done);
            if !f(hpa, done, n) {
                return false;
            }
            done += n;
        }
        true
    }

    /// Copies `bytes` into guest memory at `gpa`; false when it does not fit.
    pub fn write(&self, gpa: u64, bytes: &[u8]) -> bool {
        self.pages(gpa, bytes.len(), |hpa, done, n| {
            // SAFETY: `hpa` is a frame backing this guest's memory, and the
            // copy stays within its page.
            unsafe { crate::phys::write(hpa, &bytes[done..done + n]) };
            true
        })
    }

    /// Reads guest memory at `gpa` into `out`; false outside guest RAM.
    pub fn read(&self, gpa: u64, out: &mut [u8]) -> bool {
        let len = out.len();
        self.pages(gpa, len, |hpa, done, n| {
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
