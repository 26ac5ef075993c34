//! Host memory as guest memory uses it: frames on each node, their
//! contents, and the frames second-level tables live in. The kernel's is
//! `Direct` (the frame allocators of `mm` and the direct map); host tests
//! give guest memory a fake that checks every frame's life (`vm::fake`), so
//! that the whole mechanism, and the model checker, run on the host.

use crate::ept::{PageSize, TableMemory};
use crate::mm;
use crate::phys::{IdentityMapped, PhysMem};
// The hardware walks these tables: plain atomics, never the model checker's.
use core::sync::atomic::{AtomicU64, Ordering};

pub trait Host: Sync {
    /// The tables of one second-level table.
    type Tables: TableMemory;
    /// Where a table's frames come from: `node`'s memory, or (None) the
    /// hypervisor's home node.
    fn tables(&self, node: Option<usize>) -> Self::Tables;
    /// A zeroed frame of `size` on `node`, or None when it has none left.
    fn alloc_exact(&self, node: usize, size: PageSize) -> Option<u64>;
    /// A zeroed frame of `size` on `node` or the nearest node with one:
    /// the frame and its node.
    fn alloc_near(&self, node: usize, size: PageSize) -> Option<(u64, usize)>;
    /// Takes a frame back: its node (None: no frame in use, a bug).
    fn free(&self, frame: u64, size: PageSize) -> Option<usize>;
    fn node_of(&self, frame: u64) -> Option<usize>;
    /// Copies `len` bytes from frame `from` to frame `to`.
    fn copy(&self, from: u64, to: u64, len: usize);
    /// Reads `out.len()` bytes at host-physical `hpa`, within one page.
    fn read(&self, hpa: u64, out: &mut [u8]) -> bool;
    /// Writes `bytes` at host-physical `hpa`, within one frame the caller owns.
    fn write(&self, hpa: u64, bytes: &[u8]);
    /// The node of the CPU this runs on.
    fn here(&self) -> usize;
}

/// The kernel's host memory: `mm`'s frames through the direct map.
#[derive(Clone, Copy, Default)]
pub struct Direct;

/// Tables in frames from `mm`, on a node or the home node, reached through
/// the direct map; entries change atomically, as other CPUs walk them.
pub struct Tables(Option<usize>);

impl Tables {
    fn entry(table: u64, index: usize) -> &'static AtomicU64 {
        // SAFETY: `table` is a frame this engine allocated for a table (page-
        // aligned, in the direct map, never freed while linked), `index` < 512:
        // an aligned quadword that lives as long as the table.
        unsafe { &*((table + index as u64 * 8) as *const AtomicU64) }
    }
}

impl TableMemory for Tables {
    fn alloc_table(&mut self) -> Option<u64> {
        match self.0 {
            None => mm::alloc_zeroed(),
            Some(node) => mm::alloc_zeroed_on(node, PageSize::Small).map(|(frame, _)| frame),
        }
    }

    fn free_table(&mut self, table: u64) {
        let _ = mm::free(table, PageSize::Small); // ours: it cannot fail
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

impl Host for Direct {
    type Tables = Tables;

    fn tables(&self, node: Option<usize>) -> Tables {
        Tables(node)
    }

    fn alloc_exact(&self, node: usize, size: PageSize) -> Option<u64> {
        mm::alloc_zeroed_exact(node, size)
    }

    fn alloc_near(&self, node: usize, size: PageSize) -> Option<(u64, usize)> {
        mm::alloc_zeroed_on(node, size)
    }

    fn free(&self, frame: u64, size: PageSize) -> Option<usize> {
        mm::free(frame, size).ok()
    }

    fn node_of(&self, frame: u64) -> Option<usize> {
        mm::node_of(frame)
    }

    fn copy(&self, from: u64, to: u64, len: usize) {
        if let Some(bytes) = IdentityMapped.bytes(from, len) {
            // SAFETY: `to` is a frame of at least `len` bytes the caller
            // allocated for this copy.
            unsafe { crate::phys::write(to, bytes) };
        }
    }

    fn read(&self, hpa: u64, out: &mut [u8]) -> bool {
        IdentityMapped
            .bytes(hpa, out.len())
            .map(|b| out.copy_from_slice(b))
            .is_some()
    }

    fn write(&self, hpa: u64, bytes: &[u8]) {
        // SAFETY: the caller owns the frame, and the write stays within it.
        unsafe { crate::phys::write(hpa, bytes) };
    }

    fn here(&self) -> usize {
        crate::arch::percpu::this().node()
    }
}
