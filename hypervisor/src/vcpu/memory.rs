//! Guest RAM: guest-physical [0, size) backed page by page, on demand, by
//! frames the hypervisor allocates, through the second-level table of the
//! vendor's format. Nothing is backed at launch but what the loader writes;
//! the first access to any other page faults and backs it (`Backing`).
//! Guest-physical addresses are not host-physical ones.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::ept::{Access, Flush, Format, MapError, PageSize, PageTable, TableMemory};
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
    /// Pages backed so far, by the loader's writes and by faults.
    backed: AtomicU64,
}

const PAGE: u64 = 4096;

/// Guest RAM backed on demand, as the run loop sees it.
pub trait Backing {
    /// Backs the page holding `gpa` with a zeroed frame, when it lies in
    /// guest RAM and is not backed yet.
    fn back(&self, gpa: u64) -> Result<(), BackError>;
    /// Pages backed so far.
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

impl<F: Format> GuestMemory<F> {
    /// Guest RAM of `size` bytes with nothing backed: frames come with the
    /// first write (`write`, the loader's) or the first access (a fault).
    pub fn new(size: u64) -> Result<Self, MapError> {
        let table = PageTable::<F>::new(&mut IdentityTables)?;
        Ok(Self {
            table,
            size,
            backed: AtomicU64::new(0),
        })
    }

    /// The frame backing the page at `gpa`, backed now if it was not.
    fn frame(&self, gpa: u64) -> Result<u64, BackError> {
        let page = gpa & !(PAGE - 1);
        if let Some((hpa, _)) = self.table.translate(&mut IdentityTables, page) {
            return Ok(hpa);
        }
        if page >= self.size {
            return Err(BackError::Outside);
        }
        // The faulting CPU's node for now (or the nearest with memory):
        // placement policies decide here.
        let node = crate::arch::percpu::this().node();
        let (frame, _) = mm::alloc_zeroed_on(node, mm::FrameSize::Small)
            .ok_or(BackError::Map(MapError::OutOfMemory))?;
        match self.table.map(
            &mut IdentityTables,
            page,
            frame,
            PageSize::Small,
            Access::ALL,
        ) {
            // Newly present: `Flush::None`, nothing cached it.
            Ok(_) => {
                self.backed.fetch_add(1, Ordering::Relaxed);
                Ok(frame)
            }
            // Another vCPU backed it first: use its frame.
            Err(MapError::AlreadyMapped) => {
                let _ = mm::free(frame, mm::FrameSize::Small);
                self.table
                    .translate(&mut IdentityTables, page)
                    .map(|(hpa, _)| hpa)
                    .ok_or(BackError::Map(MapError::AlreadyMapped))
            }
            Err(e) => {
                let _ = mm::free(frame, mm::FrameSize::Small);
                Err(BackError::Map(e))
            }
        }
    }

    /// Unbacks the page at `gpa`: its frame (to free once every CPU has
    /// flushed) and the flush; None when it was not backed.
    pub fn unback(&self, gpa: u64) -> Result<Option<(u64, Flush)>, BackError> {
        if gpa >= self.size {
            return Err(BackError::Outside);
        }
        Ok(self
            .table
            .unmap(&mut IdentityTables, gpa & !(PAGE - 1))
            .map(|(frame, _, flush)| {
                self.backed.fetch_sub(1, Ordering::Relaxed);
                (frame, flush)
            }))
    }

    /// The host address of `gpa`, when its page is backed.
    pub fn host_address(&self, gpa: u64) -> Option<u64> {
        if gpa >= self.size {
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
            let hpa = if back {
                match self.frame(at) {
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
    fn back(&self, gpa: u64) -> Result<(), BackError> {
        if self.table.translate(&mut IdentityTables, gpa).is_some() {
            return Err(BackError::Present);
        }
        self.frame(gpa).map(|_| ())
    }

    fn backed_pages(&self) -> u64 {
        self.backed.load(Ordering::Relaxed)
    }
}
