//! PVH boot (QEMU -kernel): `hvm_start_info` as defined by Xen's
//! `arch-x86/hvm/start_info.h`; version 1 adds the memory map.

use super::{
    BootError, BootInfo, CMDLINE_MAX, MemoryKind, MemoryRegion, Module, PVH_MAGIC, Protocol,
    RsdpHint, text,
};
use crate::phys::PhysMem;

const START_INFO_V1_SIZE: usize = 56;
const MODLIST_ENTRY_SIZE: u64 = 32;
const MEMMAP_ENTRY_SIZE: u64 = 24;

pub fn parse(mem: &impl PhysMem, info: u64) -> Result<BootInfo, BootError> {
    let si = mem
        .bytes(info, START_INFO_V1_SIZE)
        .ok_or(BootError::Unreadable {
            what: "PVH start info",
            addr: info,
        })?;
    let u32_at = |at: usize| u32::from_le_bytes(si[at..at + 4].try_into().expect("4 bytes"));
    let u64_at = |at: usize| u64::from_le_bytes(si[at..at + 8].try_into().expect("8 bytes"));
    let magic = u32_at(0);
    if magic != PVH_MAGIC {
        return Err(BootError::BadMagic {
            what: "PVH start info",
            found: magic,
        });
    }
    if u32_at(4) < 1 {
        return Err(BootError::NoMemoryMap); // version 0 has no memory map
    }
    let (nr_modules, modlist) = (u32_at(12), u64_at(16));
    let (cmdline, rsdp) = (u64_at(24), u64_at(32));
    let (memmap, memmap_entries) = (u64_at(40), u32_at(48));

    let mut boot = BootInfo::new(Protocol::Pvh);
    boot.loader = text(b"PVH");
    if cmdline != 0 {
        let s = mem.c_str(cmdline, CMDLINE_MAX).ok_or_else(|| {
            // Readable but without a NUL in reach: too long, not unreadable.
            if mem.bytes(cmdline, CMDLINE_MAX + 1).is_some() {
                super::CMDLINE_TOO_LONG
            } else {
                BootError::Unreadable {
                    what: "PVH command line",
                    addr: cmdline,
                }
            }
        })?;
        boot.cmdline = text(s);
    }
    if rsdp != 0 {
        boot.rsdp = Some(RsdpHint { addr: rsdp });
    }
    if memmap == 0 || memmap_entries == 0 {
        return Err(BootError::NoMemoryMap);
    }
    for i in 0..u64::from(memmap_entries) {
        let at = memmap + i * MEMMAP_ENTRY_SIZE;
        let entry = (|| Some((mem.u64(at)?, mem.u64(at + 8)?, mem.u32(at + 16)?)))().ok_or(
            BootError::Unreadable {
                what: "PVH memory map entry",
                addr: at,
            },
        )?;
        boot.add_region(MemoryRegion {
            base: entry.0,
            len: entry.1,
            kind: MemoryKind::from_e820(entry.2),
        });
    }
    for i in 0..u64::from(nr_modules) {
        let at = modlist + i * MODLIST_ENTRY_SIZE;
        let unreadable = BootError::Unreadable {
            what: "PVH module entry",
            addr: at,
        };
        let (start, size, name) =
            (|| Some((mem.u64(at)?, mem.u64(at + 8)?, mem.u64(at + 16)?)))().ok_or(unreadable)?;
        let end = start
            .checked_add(size)
            .ok_or(BootError::Malformed("PVH module wraps around"))?;
        let cmdline = match name {
            0 => Default::default(),
            addr => text(mem.c_str(addr, 128).ok_or(BootError::Unreadable {
                what: "PVH module name",
                addr,
            })?),
        };
        boot.add_module(Module {
            start,
            end,
            cmdline,
        });
    }
    Ok(boot)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phys::FakeMem;

    const INFO: u64 = 0x6000;
    const MEMMAP: u64 = 0x6100;
    const CMDLINE: u64 = 0x6200;
    const MODLIST: u64 = 0x6300;

    fn qemu_like() -> FakeMem {
        let mut m = FakeMem::new(0x6000, 0x1000);
        let mut si = Vec::new();
        for v in [PVH_MAGIC, 1, 0, 1] {
            si.extend_from_slice(&v.to_le_bytes());
        }
        for v in [MODLIST, CMDLINE, 0xf_5a00, MEMMAP] {
            si.extend_from_slice(&v.to_le_bytes());
        }
        si.extend_from_slice(&3u32.to_le_bytes());
        si.extend_from_slice(&0u32.to_le_bytes());
        m.put(INFO, &si);
        let mut map = Vec::new();
        for (base, len, kind) in [
            (0u64, 0x9fc00u64, 1u32),
            (0xf0000, 0x10000, 2),
            (0x10_0000, 0x7f0_0000, 1),
        ] {
            map.extend_from_slice(&base.to_le_bytes());
            map.extend_from_slice(&len.to_le_bytes());
            map.extend_from_slice(&kind.to_le_bytes());
            map.extend_from_slice(&0u32.to_le_bytes());
        }
        m.put(MEMMAP, &map);
        m.put(CMDLINE, b"test=fault\0");
        let mut module = Vec::new();
        for v in [0x80_0000u64, 0x200, 0, 0] {
            module.extend_from_slice(&v.to_le_bytes());
        }
        m.put(MODLIST, &module);
        m
    }

    #[test]
    fn parses_start_info_v1() {
        let boot = parse(&qemu_like(), INFO).unwrap();
        assert_eq!(boot.protocol, Protocol::Pvh);
        assert_eq!(boot.cmdline.as_str(), "test=fault");
        assert_eq!(boot.memory.len(), 3);
        assert_eq!(boot.memory[1].kind, MemoryKind::Reserved);
        assert_eq!(boot.usable_bytes(), 0x9fc00 + 0x7f0_0000);
        assert_eq!(boot.rsdp, Some(RsdpHint { addr: 0xf_5a00 }));
        assert_eq!(boot.modules[0].start, 0x80_0000);
        assert_eq!(boot.modules[0].end, 0x80_0200);
    }

    #[test]
    fn refuses_bad_magic_version_0_and_unreadable_parts() {
        let mut m = qemu_like();
        m.put(INFO, &0xdead_beefu32.to_le_bytes());
        assert!(matches!(
            parse(&m, INFO),
            Err(BootError::BadMagic {
                found: 0xdead_beef,
                ..
            })
        ));
        let mut m = qemu_like();
        m.put(INFO + 4, &0u32.to_le_bytes());
        assert_eq!(parse(&m, INFO).unwrap_err(), BootError::NoMemoryMap);
        let mut m = qemu_like();
        m.put(INFO + 48, &1000u32.to_le_bytes()); // memory map runs off readable memory
        assert!(matches!(parse(&m, INFO), Err(BootError::Unreadable { .. })));
        let mut m = qemu_like();
        m.put(CMDLINE, &[b'x'; 0x100]); // command line without its NUL
        m.put(INFO + 24, &(0x6f00u64).to_le_bytes());
        m.put(0x6f00, &[b'y'; 0x100]);
        assert!(matches!(parse(&m, INFO), Err(BootError::Unreadable { .. })));
        assert!(matches!(
            parse(&qemu_like(), 0x5000),
            Err(BootError::Unreadable { .. })
        ));
    }

    #[test]
    fn a_command_line_too_long_is_refused_not_cut() {
        let mut m = qemu_like();
        m.put(CMDLINE, &[b'x'; CMDLINE_MAX + 0x100]);
        assert!(matches!(
            parse(&m, INFO),
            Err(BootError::TooLong { max: 1024, .. })
        ));
    }

    #[test]
    fn refuses_a_module_that_wraps() {
        let mut m = qemu_like();
        m.put(MODLIST + 8, &u64::MAX.to_le_bytes());
        assert!(matches!(parse(&m, INFO), Err(BootError::Malformed(_))));
    }
}
