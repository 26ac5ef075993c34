//! Reading physical memory. Parsers of firmware and loader structures take a
//! `PhysMem`, so the kernel hands them its identity map and host tests hand
//! them a fake.

use core::sync::atomic::{AtomicU64, Ordering};

pub trait PhysMem {
    /// The `len` bytes at physical address `addr`, or `None` when any of them
    /// is outside what this view can read.
    fn bytes(&self, addr: u64, len: usize) -> Option<&[u8]>;

    fn u8(&self, addr: u64) -> Option<u8> {
        self.bytes(addr, 1).map(|b| b[0])
    }
    fn u16(&self, addr: u64) -> Option<u16> {
        self.bytes(addr, 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&self, addr: u64) -> Option<u32> {
        self.bytes(addr, 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    }
    fn u64(&self, addr: u64) -> Option<u64> {
        self.bytes(addr, 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    }

    /// A NUL-terminated string of at most `max` bytes (the NUL excluded).
    fn c_str(&self, addr: u64, max: usize) -> Option<&[u8]> {
        for len in 0..=max {
            if self.u8(addr + len as u64)? == 0 {
                return self.bytes(addr, len);
            }
        }
        None
    }
}

/// The kernel's view: the direct map identity-maps physical memory, the
/// first 4 GiB from boot (`arch/entry.s`), the rest of RAM once
/// `extend_direct_map` ran.
pub struct IdentityMapped;

/// What the boot page tables map.
pub const IDENTITY_LIMIT: u64 = 4 << 30;
static LIMIT: AtomicU64 = AtomicU64::new(IDENTITY_LIMIT);

/// Where the direct map ends: every physical address below is mapped.
pub fn direct_map_limit() -> u64 {
    LIMIT.load(Ordering::Relaxed)
}

#[cfg(not(test))]
const GIB: u64 = 1 << 30;
/// Page directories for memory above 4 GiB on CPUs without 1 GiB pages:
/// 60 of them map RAM up to 64 GiB.
#[cfg(not(test))]
const SPARE_DIRECTORIES: usize = 60;

#[cfg(not(test))]
#[repr(C, align(4096))]
struct Directories([[u64; 512]; SPARE_DIRECTORIES]);
#[cfg(not(test))]
static mut DIRECTORIES: Directories = Directories([[0; 512]; SPARE_DIRECTORIES]);

#[cfg(not(test))]
unsafe extern "C" {
    /// The boot page-directory-pointer table (`arch/entry.s`): entry i maps GiB i.
    static mut boot_pdpt: [u64; 512];
}

/// Extends the direct map to `top` (the end of RAM), GiB by GiB in the boot
/// PDPT: with 1 GiB pages where the CPU has them, else with 2 MiB pages in
/// static page directories (RAM up to 64 GiB). Called once, on the boot CPU,
/// before any other CPU runs; returns the new limit.
#[cfg(not(test))]
pub fn extend_direct_map(top: u64) -> u64 {
    const PRESENT_WRITABLE: u64 = 0x3;
    const LARGE: u64 = 0x80;
    let huge = raw_cpuid::cpuid!(0x8000_0001).edx & (1 << 26) != 0;
    let max = if huge {
        512 * GIB
    } else {
        IDENTITY_LIMIT + SPARE_DIRECTORIES as u64 * GIB
    };
    let end = top.next_multiple_of(GIB).min(max);
    let mut gib = direct_map_limit() / GIB;
    while gib * GIB < end {
        let at = gib * GIB;
        let entry = if huge {
            at | LARGE | PRESENT_WRITABLE
        } else {
            let i = (gib - IDENTITY_LIMIT / GIB) as usize;
            let pd = (&raw mut DIRECTORIES).cast::<u64>().wrapping_add(i * 512);
            for j in 0..512 {
                let page = (at + j as u64 * (2 << 20)) | LARGE | PRESENT_WRITABLE;
                // SAFETY: only this function touches DIRECTORIES, once, on the
                // boot CPU; directory i maps GiB 4 + i and nothing else.
                unsafe { pd.add(j).write(page) };
            }
            pd as u64 | PRESENT_WRITABLE
        };
        // SAFETY: entries past the first four are unused until now (not
        // present, so no TLB holds them); the CPU walks the PDPT through CR3.
        unsafe {
            (&raw mut boot_pdpt)
                .cast::<u64>()
                .add(gib as usize)
                .write(entry)
        };
        gib += 1;
    }
    LIMIT.store(gib * GIB, Ordering::Relaxed);
    gib * GIB
}

impl IdentityMapped {
    /// The aligned quadword at `addr` as memory others write meanwhile (a
    /// guest's page-table entry): checked once here, then loaded at will
    /// (the direct map only grows).
    pub fn atomic_u64(&self, addr: u64) -> Option<&'static AtomicU64> {
        let end = addr.checked_add(8)?;
        if addr == 0 || !addr.is_multiple_of(8) || end > direct_map_limit() {
            return None;
        }
        // SAFETY: [addr, end) lies in the identity map, always present, and
        // is aligned; it is only ever accessed atomically through this.
        Some(unsafe { AtomicU64::from_ptr(addr as *mut u64) })
    }
}

impl PhysMem for IdentityMapped {
    fn bytes(&self, addr: u64, len: usize) -> Option<&[u8]> {
        let end = addr.checked_add(len as u64)?;
        if addr == 0 || end > direct_map_limit() {
            return None; // address 0 would make a null slice
        }
        // SAFETY: [addr, end) lies in the identity map, which is always
        // present; the bytes are only read, as plain data.
        Some(unsafe { core::slice::from_raw_parts(addr as *const u8, len) })
    }
}

/// Clears `len` bytes at physical address `addr` through the identity map.
///
/// # Safety
/// As for `write`.
pub unsafe fn zero(addr: u64, len: usize) {
    debug_assert!(addr != 0 && addr + len as u64 <= direct_map_limit());
    // SAFETY: the caller owns the range, which the identity map covers.
    unsafe { core::ptr::write_bytes(addr as *mut u8, 0, len) };
}

/// Copies `bytes` to physical address `addr` through the identity map.
///
/// # Safety
/// The range must be memory the caller owns (a frame from `mm`), inside
/// the identity map.
pub unsafe fn write(addr: u64, bytes: &[u8]) {
    debug_assert!(addr != 0 && addr + bytes.len() as u64 <= direct_map_limit());
    // SAFETY: the caller owns the range, which the identity map covers.
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), addr as *mut u8, bytes.len()) };
}

/// Words as the little-endian bytes memory holds them.
pub fn le_bytes<const N: usize>(words: &[u64]) -> [u8; N] {
    let mut out = [0u8; N];
    for (chunk, w) in out.chunks_exact_mut(8).zip(words) {
        chunk.copy_from_slice(&w.to_le_bytes());
    }
    out
}

/// Host tests: `data` seen at physical address `base`.
#[cfg(test)]
pub struct FakeMem {
    pub base: u64,
    pub data: Vec<u8>,
}

#[cfg(test)]
impl FakeMem {
    pub fn new(base: u64, size: usize) -> Self {
        Self {
            base,
            data: vec![0; size],
        }
    }
    pub fn put(&mut self, addr: u64, bytes: &[u8]) {
        let at = (addr - self.base) as usize;
        self.data[at..at + bytes.len()].copy_from_slice(bytes);
    }
}

#[cfg(test)]
impl PhysMem for FakeMem {
    fn bytes(&self, addr: u64, len: usize) -> Option<&[u8]> {
        let at = usize::try_from(addr.checked_sub(self.base)?).ok()?;
        self.data.get(at..at.checked_add(len)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_little_endian_and_refuses_outside() {
        let mut m = FakeMem::new(0x1000, 16);
        m.put(0x1000, &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(m.u32(0x1000), Some(0x0403_0201));
        assert_eq!(m.u64(0x1000), Some(0x0807_0605_0403_0201));
        assert_eq!(m.u32(0x100e), None);
        assert_eq!(m.u8(0xfff), None);
    }

    #[test]
    fn c_str_needs_its_nul_within_bounds() {
        let mut m = FakeMem::new(0, 8);
        m.put(0, b"abc\0xyz!");
        assert_eq!(m.c_str(0, 16), Some(&b"abc"[..]));
        assert_eq!(m.c_str(4, 16), None); // runs off the end
        assert_eq!(m.c_str(0, 2), None); // longer than allowed
    }
}
