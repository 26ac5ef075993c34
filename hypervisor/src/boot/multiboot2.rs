//! Multiboot2 boot information (the GRUB path): a header followed by 8-byte
//! aligned tags, ended by a tag of type 0.

use super::{BootError, BootInfo, MemoryKind, MemoryRegion, Module, Protocol, RsdpHint, text};
use crate::phys::PhysMem;

const TAG_END: u32 = 0;
const TAG_CMDLINE: u32 = 1;
const TAG_LOADER: u32 = 2;
const TAG_MODULE: u32 = 3;
const TAG_MMAP: u32 = 6;
const TAG_ACPI_OLD: u32 = 14;
const TAG_ACPI_NEW: u32 = 15;

/// Larger boot information is taken for corruption.
const MAX_TOTAL: u32 = 1 << 20;

pub fn parse(mem: &impl PhysMem, info: u64) -> Result<BootInfo, BootError> {
    let unreadable = |what| BootError::Unreadable { what, addr: info };
    let total = mem.u32(info).ok_or(unreadable("multiboot2 information"))?;
    if !(16..=MAX_TOTAL).contains(&total) {
        return Err(BootError::Malformed("multiboot2 total size out of range"));
    }
    let end = info + u64::from(total);
    mem.bytes(info, total as usize)
        .ok_or(unreadable("multiboot2 information"))?;

    let mut boot = BootInfo::new(Protocol::Multiboot2);
    let mut have_mmap = false;
    let mut at = info + 8;
    loop {
        if at + 8 > end {
            return Err(BootError::Malformed(
                "multiboot2 tags run past the end without an end tag",
            ));
        }
        let kind = mem.u32(at).ok_or(unreadable("tag"))?;
        let size = u64::from(mem.u32(at + 4).ok_or(unreadable("tag"))?);
        if size < 8 || at + size > end {
            return Err(BootError::Malformed("multiboot2 tag size out of bounds"));
        }
        let body = mem
            .bytes(at + 8, (size - 8) as usize)
            .ok_or(unreadable("tag"))?;
        match kind {
            TAG_END => break,
            TAG_CMDLINE => boot.cmdline = super::cmdline(until_nul(body))?,
            TAG_LOADER => boot.loader = text(until_nul(body)),
            TAG_MODULE => boot.add_module(module(body)?),
            TAG_MMAP => {
                memory_map(body, &mut boot)?;
                have_mmap = true;
            }
            // Prefer the ACPI 2.0+ copy when both are given.
            TAG_ACPI_NEW => boot.rsdp = Some(RsdpHint { addr: at + 8 }),
            TAG_ACPI_OLD if boot.rsdp.is_none() => boot.rsdp = Some(RsdpHint { addr: at + 8 }),
            _ => {}
        }
        at += size.next_multiple_of(8);
    }
    if !have_mmap {
        return Err(BootError::NoMemoryMap);
    }
    Ok(boot)
}

fn until_nul(bytes: &[u8]) -> &[u8] {
    bytes.split(|&b| b == 0).next().unwrap_or(bytes)
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn module(body: &[u8]) -> Result<Module, BootError> {
    if body.len() < 8 {
        return Err(BootError::Malformed("multiboot2 module tag too short"));
    }
    let (start, end) = (le32(body, 0), le32(body, 4));
    if end < start {
        return Err(BootError::Malformed(
            "multiboot2 module ends before it starts",
        ));
    }
    Ok(Module {
        start: start.into(),
        end: end.into(),
        cmdline: text(until_nul(&body[8..])),
    })
}

fn memory_map(body: &[u8], boot: &mut BootInfo) -> Result<(), BootError> {
    if body.len() < 8 {
        return Err(BootError::Malformed("multiboot2 memory map tag too short"));
    }
    let entry_size = le32(body, 0) as usize;
    if entry_size < 24 {
        return Err(BootError::Malformed(
            "multiboot2 memory map entry size below 24",
        ));
    }
    for entry in body[8..].chunks_exact(entry_size) {
        boot.add_region(MemoryRegion {
            base: le64(entry, 0),
            len: le64(entry, 8),
            kind: MemoryKind::from_e820(le32(entry, 16)),
        });
    }
    Ok(())
}

/// Builds multiboot2 information for tests.
#[cfg(test)]
pub mod build {
    pub struct Mbi(pub Vec<u8>);

    impl Default for Mbi {
        fn default() -> Self {
            Mbi(vec![0; 8]) // total size and reserved, filled in by `finish`
        }
    }

    impl Mbi {
        pub fn new() -> Self {
            Self::default()
        }
        pub fn tag(mut self, kind: u32, body: &[u8]) -> Self {
            self.0.extend_from_slice(&kind.to_le_bytes());
            self.0
                .extend_from_slice(&(8 + body.len() as u32).to_le_bytes());
            self.0.extend_from_slice(body);
            while !self.0.len().is_multiple_of(8) {
                self.0.push(0);
            }
            self
        }
        pub fn mmap(self, entries: &[(u64, u64, u32)]) -> Self {
            let mut body = Vec::new();
            body.extend_from_slice(&24u32.to_le_bytes());
            body.extend_from_slice(&0u32.to_le_bytes());
            for &(base, len, kind) in entries {
                body.extend_from_slice(&base.to_le_bytes());
                body.extend_from_slice(&len.to_le_bytes());
                body.extend_from_slice(&kind.to_le_bytes());
                body.extend_from_slice(&0u32.to_le_bytes());
            }
            self.tag(super::TAG_MMAP, &body)
        }
        pub fn finish(self) -> Vec<u8> {
            let mut v = self.tag(super::TAG_END, &[]).0;
            let total = v.len() as u32;
            v[0..4].copy_from_slice(&total.to_le_bytes());
            v
        }
    }
}

#[cfg(test)]
mod tests {
    use super::build::Mbi;
    use super::*;
    use crate::phys::FakeMem;

    const AT: u64 = 0x10000;

    fn mem_with(bytes: &[u8]) -> FakeMem {
        let mut m = FakeMem::new(AT, bytes.len() + 64);
        m.put(AT, bytes);
        m
    }

    fn grub_like() -> Vec<u8> {
        let mut module = Vec::new();
        module.extend_from_slice(&0x40_0000u32.to_le_bytes());
        module.extend_from_slice(&0x40_1000u32.to_le_bytes());
        module.extend_from_slice(b"payload\0");
        Mbi::new()
            .tag(TAG_CMDLINE, b"test=hang numa=fake:2\0")
            .tag(TAG_LOADER, b"GRUB 2.06\0")
            .tag(TAG_MODULE, &module)
            .mmap(&[
                (0, 0x9fc00, 1),
                (0x9fc00, 0x400, 2),
                (0x10_0000, 0xff0_0000, 1),
                (0, 0, 1),
            ])
            .tag(TAG_ACPI_OLD, b"RSD PTR ")
            .tag(TAG_ACPI_NEW, b"RSD PTR ")
            .finish()
    }

    #[test]
    fn parses_every_tag_we_use() {
        let mem = mem_with(&grub_like());
        let boot = parse(&mem, AT).unwrap();
        assert_eq!(boot.protocol, Protocol::Multiboot2);
        assert_eq!(boot.cmdline.as_str(), "test=hang numa=fake:2");
        assert_eq!(boot.loader.as_str(), "GRUB 2.06");
        assert_eq!(boot.modules.len(), 1);
        assert_eq!(boot.modules[0].start, 0x40_0000);
        assert_eq!(boot.modules[0].end, 0x40_1000);
        assert_eq!(boot.modules[0].cmdline.as_str(), "payload");
        // The empty region is dropped.
        assert_eq!(boot.memory.len(), 3);
        assert_eq!(boot.memory[1].kind, MemoryKind::Reserved);
        assert_eq!(boot.usable_bytes(), 0x9fc00 + 0xff0_0000);
        // The ACPI 2.0 copy wins: it is the last tag before the end tag.
        let rsdp = boot.rsdp.unwrap().addr;
        assert_eq!(mem.bytes(rsdp, 8), Some(&b"RSD PTR "[..]));
        assert!(rsdp > AT + 8 + 100);
    }

    #[test]
    fn refuses_truncated_and_oversized_information() {
        let mut bytes = grub_like();
        let real = bytes.len() as u32;
        bytes[0..4].copy_from_slice(&(real + 4096).to_le_bytes());
        assert!(matches!(
            parse(&mem_with(&bytes), AT),
            Err(BootError::Unreadable { .. })
        ));
        bytes[0..4].copy_from_slice(&8u32.to_le_bytes());
        assert!(matches!(
            parse(&mem_with(&bytes), AT),
            Err(BootError::Malformed(_))
        ));
        bytes[0..4].copy_from_slice(&(2u32 << 20).to_le_bytes());
        assert!(matches!(
            parse(&mem_with(&bytes), AT),
            Err(BootError::Malformed(_))
        ));
    }

    #[test]
    fn refuses_a_tag_that_overruns_and_a_missing_end_tag() {
        let mut bytes = grub_like();
        bytes[12..16].copy_from_slice(&0xffffu32.to_le_bytes()); // first tag's size
        assert_eq!(
            parse(&mem_with(&bytes), AT).unwrap_err(),
            BootError::Malformed("multiboot2 tag size out of bounds")
        );
        let mut bytes = grub_like();
        let n = bytes.len();
        bytes[n - 8..].copy_from_slice(&[9, 0, 0, 0, 8, 0, 0, 0]); // end tag -> unknown tag
        assert!(matches!(
            parse(&mem_with(&bytes), AT),
            Err(BootError::Malformed(_))
        ));
        let mut bytes = grub_like();
        bytes[12..16].copy_from_slice(&4u32.to_le_bytes()); // size below a tag header
        assert!(matches!(
            parse(&mem_with(&bytes), AT),
            Err(BootError::Malformed(_))
        ));
    }

    #[test]
    fn requires_a_memory_map_with_sane_entries() {
        let bytes = Mbi::new().tag(TAG_CMDLINE, b"x\0").finish();
        assert_eq!(
            parse(&mem_with(&bytes), AT).unwrap_err(),
            BootError::NoMemoryMap
        );
        let bytes = Mbi::new().tag(TAG_MMAP, &[8, 0, 0, 0, 0, 0, 0, 0]).finish();
        assert!(matches!(
            parse(&mem_with(&bytes), AT),
            Err(BootError::Malformed(_))
        ));
    }

    #[test]
    fn keeps_what_fits_and_counts_what_is_dropped() {
        let entries: Vec<_> = (0..200u64).map(|i| (i << 20, 4096, 1)).collect();
        let bytes = Mbi::new().mmap(&entries).finish();
        let boot = parse(&mem_with(&bytes), AT).unwrap();
        assert_eq!(boot.memory.len(), crate::boot::MAX_REGIONS);
        assert_eq!(boot.dropped, 200 - crate::boot::MAX_REGIONS as u32);
    }

    #[test]
    fn replaces_unprintable_bytes_in_strings() {
        let bytes = Mbi::new()
            .tag(TAG_CMDLINE, b"a\x01b\xffc\0")
            .mmap(&[(0, 4096, 1)])
            .finish();
        assert_eq!(
            parse(&mem_with(&bytes), AT).unwrap().cmdline.as_str(),
            "a?b?c"
        );
    }

    #[test]
    fn a_command_line_too_long_is_refused_not_cut() {
        let long = [b'x'; crate::boot::CMDLINE_MAX + 1];
        let bytes = Mbi::new()
            .tag(TAG_CMDLINE, &long)
            .mmap(&[(0, 4096, 1)])
            .finish();
        assert!(matches!(
            parse(&mem_with(&bytes), AT),
            Err(BootError::TooLong { .. })
        ));
    }
}
