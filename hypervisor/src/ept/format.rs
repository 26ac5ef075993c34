//! The second-level table formats: Intel's EPT, AMD's nested page tables,
//! and AMD-Vi's I/O page tables (which give devices the same translation).
//!
//! Intel EPT entries (SDM 3C 29.3.2): bits 0-2 read, write, execute; leaves
//! carry the memory type in bits 3-5, bit 7 makes a directory entry a 2 MiB
//! leaf; bits 8 and 9 are accessed and dirty when EPTP enables them (the
//! CPU has them when IA32_VMX_EPT_VPID_CAP bit 21 says so).

use super::{Access, Format};

pub struct Ept;

const R: u64 = 1 << 0;
const W: u64 = 1 << 1;
const X: u64 = 1 << 2;
/// Write-back, the type every guest page gets until MTRR/PAT emulation.
pub const MEMORY_TYPE_WB: u64 = 6;
/// Uncached: for device memory passed through.
pub const MEMORY_TYPE_UC: u64 = 0;

const PAGE_SIZE: u64 = 1 << 7;

impl Format for Ept {
    const ACCESSED: u64 = 1 << 8;
    const DIRTY: u64 = 1 << 9;
    const PRESENT: u64 = R | W | X;

    fn table(table: u64, _level: usize) -> u64 {
        table | R | W | X
    }

    fn leaf(frame: u64, access: Access, large: bool) -> u64 {
        let kind = if access.uncached {
            MEMORY_TYPE_UC
        } else {
            MEMORY_TYPE_WB
        };
        let mut e = frame | (kind << 3);
        if large {
            e |= PAGE_SIZE;
        }
        if access.read {
            e |= R;
        }
        if access.write {
            e |= W;
        }
        if access.execute {
            e |= X;
        }
        e
    }

    fn access(entry: u64) -> Access {
        Access {
            read: entry & R != 0,
            write: entry & W != 0,
            execute: entry & X != 0,
            uncached: (entry >> 3) & 7 == MEMORY_TYPE_UC,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake::FakeTables;
    use super::super::{MapError, PageSize, PageTable};
    use super::*;

    #[test]
    fn first_map_builds_three_tables_and_a_leaf() {
        let mut mem = FakeTables::new(16);
        let pt = PageTable::<Ept>::new(&mut mem).unwrap();
        let gpa = 0x0000_7fff_ffe0_1000; // every level's index is non-zero
        let _ = pt
            .map(&mut mem, gpa, 0x4567_8000, PageSize::Small, Access::ALL)
            .unwrap();
        assert_eq!(mem.writes.len(), 4);
        let (root, pdpt, pd, pt_frame) = (pt.root(), 0x10_1000, 0x10_2000, 0x10_3000);
        assert_eq!(mem.writes[0], (root, 0xff, pdpt | 7));
        assert_eq!(mem.writes[1], (pdpt, 0x1ff, pd | 7));
        assert_eq!(mem.writes[2], (pd, 0x1ff, pt_frame | 7));
        assert_eq!(mem.writes[3], (pt_frame, 1, 0x4567_8000 | (6 << 3) | 7));
    }

    #[test]
    fn translate_unmap_and_errors() {
        let mut mem = FakeTables::new(16);
        let pt = PageTable::<Ept>::new(&mut mem).unwrap();
        let ro = Access {
            read: true,
            write: false,
            execute: false,
            uncached: false,
        };
        let _ = pt
            .map(&mut mem, 0x2000, 0x9000, PageSize::Small, ro)
            .unwrap();
        let _ = pt
            .map(&mut mem, 0x3000, 0xa000, PageSize::Small, Access::ALL)
            .unwrap();
        assert_eq!(mem.writes.len(), 5, "the second page reuses the tables");
        assert_eq!(pt.translate(&mut mem, 0x2abc), Some((0x9abc, ro)));
        assert_eq!(pt.translate(&mut mem, 0x4000), None);
        assert_eq!(
            pt.translate(&mut mem, 0x40_0000_0000),
            None,
            "no table there"
        );
        assert_eq!(
            pt.map(&mut mem, 0x2000, 0xb000, PageSize::Small, ro),
            Err(MapError::AlreadyMapped)
        );
        assert_eq!(
            pt.map(&mut mem, 0x2001, 0xb000, PageSize::Small, ro),
            Err(MapError::Unaligned)
        );
        assert_eq!(
            pt.map(&mut mem, 1 << 48, 0xb000, PageSize::Small, ro),
            Err(MapError::OutOfRange)
        );
        assert_eq!(pt.unmap(&mut mem, 0x2000).map(|u| u.0), Some(0x9000));
        assert_eq!(pt.unmap(&mut mem, 0x2000), None);
        assert_eq!(pt.translate(&mut mem, 0x2000), None);
        assert_eq!(*mem.writes.last().unwrap(), (0x10_3000, 2, 0));
    }

    #[test]
    fn running_out_of_table_memory_is_an_error() {
        let mut mem = FakeTables::new(2);
        let pt = PageTable::<Ept>::new(&mut mem).unwrap();
        assert_eq!(
            pt.map(&mut mem, 0, 0x9000, PageSize::Small, Access::ALL),
            Err(MapError::OutOfMemory)
        );
    }
}

/// AMD nested page tables (APM 2, 15.25): ordinary x86-64 entries. Guest
/// accesses are user accesses, so every entry has U/S set; NX is left clear
/// (the host runs without EFER.NXE, which makes bit 63 reserved).
///
/// Every entry is also an AMD-Vi I/O page-table entry (`AmdVi`): the bits
/// the IOMMU reads (NextLevel, 9-11; IR and IW, 61-62) are ones the CPU
/// ignores (available bits; 61-62 without CR4.PKE, which the host never
/// sets), and those the CPU reads are ones the IOMMU ignores (1-4, 7-8).
/// So a guest's devices walk the very table its CPUs walk (`iommu`): one
/// translation, changed once, never two to keep equal.
pub struct Npt;

const P: u64 = 1 << 0;
const RW: u64 = 1 << 1;
const US: u64 = 1 << 2;
/// Write-through and cache-disable: uncached, whatever the guest's PAT says.
const PWT: u64 = 1 << 3;
const PCD: u64 = 1 << 4;

impl Format for Npt {
    /// Set by the CPU on every nested walk, as in ordinary page tables.
    const ACCESSED: u64 = 1 << 5;
    const DIRTY: u64 = 1 << 6;
    /// A leaf taken away is taken from devices too.
    const PRESENT: u64 = P | IR | IW;
    const DEVICES_WALK_IT: bool = true;

    fn table(table: u64, level: usize) -> u64 {
        table | P | RW | US | AmdVi::table(0, level)
    }

    fn leaf(frame: u64, access: Access, large: bool) -> u64 {
        let mut e = frame | P | US | AmdVi::leaf(0, access, large);
        if access.uncached {
            e |= PCD | PWT;
        }
        if large {
            e |= PAGE_SIZE;
        }
        if access.write {
            e |= RW;
        }
        e
    }

    fn access(entry: u64) -> Access {
        let present = entry & P != 0;
        Access {
            read: present,
            write: present && entry & RW != 0,
            execute: present,
            uncached: entry & PCD != 0,
        }
    }
}

#[cfg(test)]
mod npt_tests {
    use super::super::fake::FakeTables;
    use super::super::{PageSize, PageTable};
    use super::*;

    #[test]
    fn nested_entries_are_user_present_and_writable_as_asked() {
        let mut mem = FakeTables::new(16);
        let pt = PageTable::<Npt>::new(&mut mem).unwrap();
        let _ = pt
            .map(&mut mem, 0x8000, 0x12_3000, PageSize::Small, Access::ALL)
            .unwrap();
        let ro = Access {
            read: true,
            write: false,
            execute: true,
            uncached: false,
        };
        let _ = pt
            .map(&mut mem, 0x9000, 0x12_4000, PageSize::Small, ro)
            .unwrap();
        let leaves: Vec<u64> = mem.writes.iter().skip(3).map(|w| w.2).collect();
        assert_eq!(leaves, [0x12_3000 | 7 | IR | IW, 0x12_4000 | 5 | IR]);
        assert!(
            mem.writes.iter().take(3).all(|w| w.2 & 7 == 7),
            "tables are P|RW|US"
        );
        assert_eq!(pt.translate(&mut mem, 0x9010), Some((0x12_4010, ro)));
    }

    /// The IOMMU, walking the nested table as its own (`AmdVi`), finds what
    /// the CPU finds: the same frames, read-only where the CPU may not
    /// write, nothing where the CPU has nothing, through 4 KiB and 2 MiB
    /// leaves, a split, a revoked leaf and an unmapped one.
    #[test]
    fn devices_see_the_nested_table_as_the_cpus_do() {
        let mut mem = FakeTables::new(32);
        let cpu = PageTable::<Npt>::new(&mut mem).unwrap();
        let io = PageTable::<AmdVi>::at(cpu.root());
        let ro = Access {
            write: false,
            ..Access::ALL
        };
        for (gpa, frame, size, access) in [
            (0x8000, 0x12_3000, PageSize::Small, Access::ALL),
            (0x9000, 0x12_4000, PageSize::Small, ro),
            (0x40_0000, 0x80_0000, PageSize::Large, Access::ALL),
            (0x7fff_ffe0_1000, 0x5000, PageSize::Small, Access::ALL),
        ] {
            let _ = cpu.map(&mut mem, gpa, frame, size, access).unwrap();
        }
        let same = |mem: &mut FakeTables, gpa: u64| {
            let (c, d) = (cpu.translate(mem, gpa), io.translate(mem, gpa));
            assert_eq!(c.map(|t| t.0), d.map(|t| t.0), "frame at {gpa:#x}");
            assert_eq!(
                c.map(|t| t.1.write),
                d.map(|t| t.1.write),
                "write at {gpa:#x}"
            );
            c
        };
        for gpa in [
            0x8010,
            0x9010,
            0x41_2345,
            0x7fff_ffe0_1fff,
            0xa000,
            0x60_0000,
        ] {
            let _ = same(&mut mem, gpa);
        }
        assert_eq!(same(&mut mem, 0x9000).map(|t| t.1.write), Some(false));
        let _ = cpu.split(&mut mem, 0x40_0000).unwrap();
        assert_eq!(same(&mut mem, 0x41_2345).map(|t| t.0), Some(0x81_2345));
        let _ = cpu.revoke(&mut mem, 0x8000).unwrap();
        let (revoked, _) = io.entry(&mut mem, 0x8000).unwrap();
        assert!(
            !AmdVi::access(revoked).read,
            "sampling takes a page from devices too"
        );
        let _ = cpu.unmap(&mut mem, 0x9000);
        assert_eq!(same(&mut mem, 0x9000), None);
    }
}

/// AMD-Vi I/O page tables (AMD I/O Virtualization Technology specification
/// 48882, 2.2.3): present (bit 0), the level of the table an entry points
/// to (NextLevel, bits 9-11; 0 in a leaf, whose size its level gives), the
/// frame, and device read and write permission (IR, bit 61; IW, bit 62).
/// What a device may reach: the same frames as the guest's CPUs.
pub struct AmdVi;

const PR: u64 = 1 << 0;
const IR: u64 = 1 << 61;
const IW: u64 = 1 << 62;
const NEXT_LEVEL: u64 = 7 << 9;

impl Format for AmdVi {
    /// The IOMMU keeps none in these tables.
    const ACCESSED: u64 = 0;
    const DIRTY: u64 = 0;
    const PRESENT: u64 = PR;

    fn table(table: u64, level: usize) -> u64 {
        // AMD-Vi counts levels from 1 (the table of 4 KiB leaves).
        table | PR | IR | IW | ((level as u64 + 1) << 9)
    }

    fn leaf(frame: u64, access: Access, _large: bool) -> u64 {
        let mut e = frame | PR;
        if access.read {
            e |= IR;
        }
        if access.write {
            e |= IW;
        }
        e
    }

    fn access(entry: u64) -> Access {
        let present = entry & PR != 0;
        Access {
            read: present && entry & IR != 0,
            write: present && entry & IW != 0,
            execute: false,
            uncached: false,
        }
    }

    /// A directory entry that maps: one that points to no next level.
    fn is_large(entry: u64) -> bool {
        entry & PR != 0 && entry & NEXT_LEVEL == 0
    }
}

#[cfg(test)]
mod amd_vi_tests {
    use super::super::fake::FakeTables;
    use super::super::{PageSize, PageTable};
    use super::*;

    #[test]
    fn io_tables_name_their_next_level_and_leaves_none() {
        let mut mem = FakeTables::new(16);
        let pt = PageTable::<AmdVi>::new(&mut mem).unwrap();
        let _ = pt
            .map(&mut mem, 0x20_8000, 0x12_3000, PageSize::Small, Access::ALL)
            .unwrap();
        let levels: Vec<u64> = mem.writes.iter().map(|w| (w.2 >> 9) & 7).collect();
        assert_eq!(levels, [3, 2, 1, 0], "PML4E, PDPE, PDE, then the leaf");
        assert_eq!(mem.writes[3].2, 0x12_3000 | PR | IR | IW);
        let _ = pt
            .map(&mut mem, 0x40_0000, 0x80_0000, PageSize::Large, Access::ALL)
            .unwrap();
        assert_eq!(
            pt.translate(&mut mem, 0x41_2345).map(|t| t.0),
            Some(0x81_2345)
        );
        assert_eq!(
            pt.translate(&mut mem, 0x20_8010).map(|t| t.0),
            Some(0x12_3010)
        );
        assert_eq!(pt.split(&mut mem, 0x40_0000).map(|_| ()), Ok(()));
        let (_, _, pde) = *mem.writes.last().unwrap();
        assert_eq!((pde >> 9) & 7, 1, "a split's new table is a level-1 table");
        assert_eq!(
            pt.translate(&mut mem, 0x41_2345).map(|t| t.0),
            Some(0x81_2345)
        );
    }
}
