//! Reading physical memory. Parsers of firmware and loader structures take a
//! `PhysMem`, so the kernel hands them its identity map and host tests hand
//! them a fake.

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

/// The kernel's view: the boot page tables identity-map the first 4 GiB.
pub struct IdentityMapped;

pub const IDENTITY_LIMIT: u64 = 4 << 30;

impl PhysMem for IdentityMapped {
    fn bytes(&self, addr: u64, len: usize) -> Option<&[u8]> {
        let end = addr.checked_add(len as u64)?;
        if addr == 0 || end > IDENTITY_LIMIT {
            return None; // address 0 would make a null slice
        }
        // SAFETY: [addr, end) lies in the identity map, which is always
        // present; the bytes are only read, as plain data.
        Some(unsafe { core::slice::from_raw_parts(addr as *const u8, len) })
    }
}

/// Where the direct map ends: every physical address below is mapped.
pub fn direct_map_limit() -> u64 {
    IDENTITY_LIMIT
}

/// Clears `len` bytes at physical address `addr` through the identity map.
///
/// # Safety
/// As for `write`.
pub unsafe fn zero(addr: u64, len: usize) {
    debug_assert!(addr != 0 && addr + len as u64 <= IDENTITY_LIMIT);
    // SAFETY: the caller owns the range, which the identity map covers.
    unsafe { core::ptr::write_bytes(addr as *mut u8, 0, len) };
}

/// Copies `bytes` to physical address `addr` through the identity map.
///
/// # Safety
/// The range must be memory the caller owns (a frame from `mm`), inside
/// the identity map.
pub unsafe fn write(addr: u64, bytes: &[u8]) {
    debug_assert!(addr != 0 && addr + bytes.len() as u64 <= IDENTITY_LIMIT);
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
