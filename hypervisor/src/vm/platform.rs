//! The machine an OS guest (Linux) sees: the host's own, passed through,
//! minus what the hypervisor keeps. Pure: built from the host's memory map
//! and ACPI tables, written into guest memory by `vm::launch::prepare_memory`.
//!
//! - Guest RAM is guest-physical [0, 0xa0000) and [1 MiB, ram), backed on
//!   demand by the placement policy (not the host's RAM at those addresses);
//!   `ram` stops below the first host region above 1 MiB that is not RAM.
//! - Everything else that is not host RAM is mapped 1:1 on first access
//!   (`device`): writable where the host's memory map lists nothing (device
//!   MMIO: VGA, PCI), read-only where it lists a region (the firmware's
//!   memory, ACPI tables, reserved windows); the device registers the
//!   hypervisor checks are write-trapped (`vm::trapped`). Host RAM outside
//!   the guest's is never mapped: the hypervisor's memory stays unreachable.
//! - ACPI: the firmware's tables stay where they are (they lie in regions
//!   passed through); the guest gets a new RSDP, RSDT and XSDT that list
//!   them all but SRAT, SLIT and HMAT, so it sees one NUMA node, and but
//!   DMAR and IVRS: the IOMMUs are the hypervisor's.
//! - Boot information (PVH `hvm_start_info`, its memory map, command line
//!   and module list, and the ACPI root) lies in `BOOT_AREA`, reserved in
//!   the memory map.

use heapless::Vec;

use crate::boot::{MemoryKind, MemoryRegion};

/// Below 1 MiB, what is not guest RAM: VGA, option ROMs, the BIOS.
pub const LEGACY_HOLE: core::ops::Range<u64> = 0xa_0000..0x10_0000;
/// Guest RAM starts again here.
pub const HIGH_RAM: u64 = 0x10_0000;
/// Where the boot information goes, reserved in the guest's memory map.
pub const BOOT_AREA: core::ops::Range<u64> = 0x8_0000..0x9_0000;
pub const START_INFO: u64 = BOOT_AREA.start;
const MODLIST: u64 = START_INFO + 0x40;
pub const MEMMAP: u64 = START_INFO + 0x100;
pub const CMDLINE: u64 = START_INFO + 0x800;
pub const CMDLINE_MAX: usize = 0x800;
pub const RSDP: u64 = START_INFO + 0x1000;
const RSDT: u64 = START_INFO + 0x1040;
const XSDT: u64 = START_INFO + 0x1400;
/// `numa.guest=mirror`: the guest's own SRAT and SLIT.
pub const SRAT: u64 = START_INFO + 0x2000;
pub const SLIT: u64 = START_INFO + 0x3000;
/// The x86 boot protocol's `boot_params` (the "zero page"), for a bzImage.
pub const BOOT_PARAMS: u64 = START_INFO + 0x4000;
/// The largest SRAT and SLIT built (one page each).
pub const TABLE_MAX: usize = 0x1000;
/// Tables the guest's new root lists at most.
pub const MAX_TABLES: usize = 64;
pub const MAX_ENTRIES: usize = 48;
/// Tables the guest's ACPI root leaves out: the host's NUMA topology (the
/// guest sees one node) and its IOMMUs (the hypervisor's: DMAR for VT-d,
/// IVRS for AMD-Vi).
pub const HIDDEN_TABLES: [[u8; 4]; 5] = [*b"SRAT", *b"SLIT", *b"HMAT", *b"DMAR", *b"IVRS"];
/// `hvm_start_info`'s magic (Xen's `XEN_HVM_START_MAGIC_VALUE`).
const START_MAGIC: u32 = 0x336e_c578;

/// One entry of the guest's memory map (E820 types).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub base: u64,
    pub len: u64,
    pub kind: u32,
}

fn e820(kind: MemoryKind) -> u32 {
    match kind {
        MemoryKind::Usable => 1,
        MemoryKind::Reserved | MemoryKind::Other => 2,
        MemoryKind::AcpiReclaimable => 3,
        MemoryKind::AcpiNvs => 4,
        MemoryKind::Bad => 5,
        MemoryKind::Persistent => 7,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlatformError {
    /// The guest would have less than `HIGH_RAM` + this much RAM.
    TooLittleRam {
        ram: u64,
    },
    TooManyEntries,
}

impl core::fmt::Display for PlatformError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::TooLittleRam { ram } => write!(
                f,
                "guest RAM would end at {ram:#x}: the host's memory map leaves too little below its first hole"
            ),
            Self::TooManyEntries => write!(f, "the guest's memory map has too many entries"),
        }
    }
}

/// The guest's RAM size: `asked`, but ending below the first region above
/// 1 MiB that is not host RAM (its addresses are passed through).
pub fn ram_size(host: &[MemoryRegion], asked: u64) -> Result<u64, PlatformError> {
    let hole = host
        .iter()
        .filter(|r| r.kind != MemoryKind::Usable && r.base + r.len > HIGH_RAM)
        .map(|r| r.base.max(HIGH_RAM))
        .min()
        .unwrap_or(u64::MAX);
    let ram = asked.min(hole) & !0xfff;
    if ram < HIGH_RAM + (16 << 20) {
        return Err(PlatformError::TooLittleRam { ram });
    }
    Ok(ram)
}

/// Whether `gpa` is guest RAM (backed by the policy) for a guest of `ram`.
pub fn is_ram(gpa: u64, ram: u64) -> bool {
    gpa < ram && !LEGACY_HOLE.contains(&gpa)
}

/// What an address that is neither guest RAM nor host RAM is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    /// In no region of the host's memory map: a device's (MMIO).
    Unlisted,
    /// In a region the host's map lists, not as RAM: the firmware's memory,
    /// ACPI tables and NVS, or a device window the firmware reserved.
    Listed,
}

/// What `gpa` is passed through as, 1:1; None for guest RAM and host RAM
/// (the hypervisor's).
pub fn device(host: &[MemoryRegion], ram: u64, gpa: u64) -> Option<Device> {
    if is_ram(gpa, ram) {
        return None;
    }
    match host
        .iter()
        .find(|r| (r.base..r.base + r.len).contains(&gpa))
    {
        Some(r) if r.kind == MemoryKind::Usable => None,
        Some(_) => Some(Device::Listed),
        None => Some(Device::Unlisted),
    }
}

/// The guest's memory map, sorted: its RAM (less the boot area), the boot
/// area, and the host's regions that are not RAM, where they do not overlap
/// guest RAM.
pub fn memory_map(
    host: &[MemoryRegion],
    ram: u64,
) -> Result<Vec<Entry, MAX_ENTRIES>, PlatformError> {
    let mut map: Vec<Entry, MAX_ENTRIES> = Vec::new();
    let mut add = |base: u64, end: u64, kind: u32| {
        if end > base {
            map.push(Entry {
                base,
                len: end - base,
                kind,
            })
            .map_err(|_| PlatformError::TooManyEntries)
        } else {
            Ok(())
        }
    };
    // Host regions that are not RAM, clipped to what is not guest RAM
    // (below 1 MiB they may overlap it: the EBDA's page, say).
    let low_reserved = host
        .iter()
        .filter(|r| r.kind != MemoryKind::Usable && r.base < LEGACY_HOLE.start)
        .map(|r| r.base.max(BOOT_AREA.end))
        .min()
        .unwrap_or(LEGACY_HOLE.start)
        .min(LEGACY_HOLE.start);
    add(0, BOOT_AREA.start, 1)?;
    add(BOOT_AREA.start, BOOT_AREA.end, 2)?;
    add(BOOT_AREA.end, low_reserved, 1)?;
    add(low_reserved, LEGACY_HOLE.start, 2)?;
    for r in host.iter().filter(|r| r.kind != MemoryKind::Usable) {
        let (base, end) = (r.base.max(LEGACY_HOLE.start), r.base + r.len);
        if base < HIGH_RAM {
            add(base, end.min(HIGH_RAM), e820(r.kind))?;
        }
        add(base.max(ram).max(HIGH_RAM), end, e820(r.kind))?;
    }
    add(HIGH_RAM, ram, 1)?;
    map.sort_unstable_by_key(|e| e.base);
    Ok(map)
}

fn checksum(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b)))
}

/// The guest's ACPI root: RSDP (revision 2), RSDT and XSDT at their places
/// in `BOOT_AREA`, listing the tables at `tables` (identity-mapped host
/// tables, or the guest's own). As (address, bytes) writes.
pub fn acpi_root(tables: &[u64], oem: &[u8; 14]) -> [(u64, Vec<u8, TABLE_MAX>); 3] {
    let mut rsdt: Vec<u8, TABLE_MAX> = Vec::new();
    let mut xsdt: Vec<u8, TABLE_MAX> = Vec::new();
    for addr in tables.iter().take(MAX_TABLES) {
        let _ = rsdt.extend_from_slice(&(*addr as u32).to_le_bytes());
        let _ = xsdt.extend_from_slice(&addr.to_le_bytes());
    }
    let mut rsdp = [0u8; 36];
    rsdp[..8].copy_from_slice(b"RSD PTR ");
    rsdp[9..15].copy_from_slice(&oem[..6]);
    rsdp[15] = 2;
    rsdp[16..20].copy_from_slice(&(RSDT as u32).to_le_bytes());
    rsdp[20..24].copy_from_slice(&36u32.to_le_bytes());
    rsdp[24..32].copy_from_slice(&XSDT.to_le_bytes());
    rsdp[8] = checksum(&rsdp[..20]);
    rsdp[32] = checksum(&rsdp);
    [
        (RSDP, Vec::from_slice(&rsdp).expect("fits")),
        (RSDT, table(b"RSDT", 1, oem, &rsdt)),
        (XSDT, table(b"XSDT", 1, oem, &xsdt)),
    ]
}

/// `numa.guest=mirror`: guest RAM [0, ram) split over the nodes in
/// proportion to `weights` (node index, bytes; nodes without memory left
/// out), boundaries on 2 MiB.
pub fn mirror_ranges(ram: u64, weights: &[(usize, u64)]) -> crate::numa::policy::Ranges {
    let total: u128 = weights.iter().map(|&(_, w)| u128::from(w)).sum();
    let mut ranges = crate::numa::policy::Ranges::new();
    let (mut start, mut sum) = (0u64, 0u128);
    for (i, &(node, w)) in weights.iter().enumerate() {
        sum += u128::from(w);
        let end = if i + 1 == weights.len() || total == 0 {
            ram
        } else {
            ((u128::from(ram) * sum / total) as u64) & !((2 << 20) - 1)
        };
        if end > start {
            let _ = ranges.push((start, end, node));
            start = end;
        }
    }
    ranges
}

/// An ACPI table with `signature` and `body`: header (the OEM fields from
/// `oem`, 6 + 8 bytes; creator "SCVR"), length, checksum.
fn table(signature: &[u8; 4], revision: u8, oem: &[u8; 14], body: &[u8]) -> Vec<u8, TABLE_MAX> {
    let mut t: Vec<u8, TABLE_MAX> = Vec::new();
    let len = 36 + body.len();
    let _ = t.extend_from_slice(signature);
    let _ = t.extend_from_slice(&(len as u32).to_le_bytes());
    let _ = t.extend_from_slice(&[revision, 0]);
    let _ = t.extend_from_slice(oem);
    let _ = t.extend_from_slice(&1u32.to_le_bytes()); // OEM revision
    let _ = t.extend_from_slice(b"SCVR");
    let _ = t.extend_from_slice(&1u32.to_le_bytes());
    let _ = t.extend_from_slice(body);
    t[9] = checksum(&t);
    t
}

/// The guest's SRAT for `numa.guest=mirror`: each CPU (APIC id, domain)
/// and each guest-physical range (start, end, domain) in its domain.
pub fn mirror_srat(
    cpus: &[(u32, u32)],
    ranges: &[(u64, u64, u32)],
    oem: &[u8; 14],
) -> Vec<u8, TABLE_MAX> {
    let mut body: Vec<u8, TABLE_MAX> = Vec::new();
    let _ = body.extend_from_slice(&1u32.to_le_bytes()); // reserved, 1 for compatibility
    let _ = body.extend_from_slice(&[0; 8]);
    for &(apic, domain) in cpus.iter().filter(|(apic, _)| *apic < 0xff) {
        let d = domain.to_le_bytes();
        let mut e = [0u8; 16];
        e[..4].copy_from_slice(&[0, 16, d[0], apic as u8]);
        e[4..8].copy_from_slice(&1u32.to_le_bytes()); // enabled
        e[9..12].copy_from_slice(&d[1..]);
        let _ = body.extend_from_slice(&e);
    }
    for &(start, end, domain) in ranges {
        let mut e = [0u8; 40];
        e[..2].copy_from_slice(&[1, 40]);
        e[2..6].copy_from_slice(&domain.to_le_bytes());
        e[8..16].copy_from_slice(&start.to_le_bytes());
        e[16..24].copy_from_slice(&(end - start).to_le_bytes());
        e[28..32].copy_from_slice(&1u32.to_le_bytes()); // enabled
        let _ = body.extend_from_slice(&e);
    }
    table(b"SRAT", 3, oem, &body)
}

/// The guest's SLIT: `distance(i, j)` between localities (proximity
/// domains) 0..n.
pub fn mirror_slit(
    n: usize,
    distance: impl Fn(usize, usize) -> u8,
    oem: &[u8; 14],
) -> Vec<u8, TABLE_MAX> {
    let mut body: Vec<u8, TABLE_MAX> = Vec::new();
    let _ = body.extend_from_slice(&(n as u64).to_le_bytes());
    for i in 0..n {
        for j in 0..n {
            let _ = body.push(distance(i, j));
        }
    }
    table(b"SLIT", 1, oem, &body)
}

/// The PVH `hvm_start_info` (version 1), with the memory map, the command
/// line's address, the initrd as module 0, and the RSDP: as (address,
/// bytes) writes, the memory map as its own write.
pub fn start_info(
    map: &[Entry],
    initrd: Option<(u64, u64)>,
) -> ([u8; 0x100], Vec<u8, { 24 * MAX_ENTRIES }>) {
    let mut page = [0u8; 0x100];
    let mut put = |at: usize, bytes: &[u8]| page[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, &START_MAGIC.to_le_bytes());
    put(4, &1u32.to_le_bytes()); // version 1: with the memory map
    put(8, &0u32.to_le_bytes());
    if let Some((addr, len)) = initrd {
        put(12, &1u32.to_le_bytes());
        put(16, &MODLIST.to_le_bytes());
        let m = (MODLIST - START_INFO) as usize;
        put(m, &addr.to_le_bytes());
        put(m + 8, &len.to_le_bytes());
    }
    put(24, &CMDLINE.to_le_bytes());
    put(32, &RSDP.to_le_bytes());
    put(40, &MEMMAP.to_le_bytes());
    put(48, &(map.len() as u32).to_le_bytes());
    let mut entries = Vec::new();
    for e in map {
        let _ = entries.extend_from_slice(&e.base.to_le_bytes());
        let _ = entries.extend_from_slice(&e.len.to_le_bytes());
        let _ = entries.extend_from_slice(&e.kind.to_le_bytes());
        let _ = entries.extend_from_slice(&0u32.to_le_bytes());
    }
    (page, entries)
}

/// `boot_params` for a bzImage (Documentation/arch/x86/boot.rst,
/// zero-page.rst): its setup `header` (from offset 0x1f1), where the kernel
/// is loaded, the command line, the initrd, the RSDP and the memory map.
pub fn boot_params(
    header: &[u8],
    load: u64,
    map: &[Entry],
    initrd: Option<(u64, u64)>,
) -> [u8; 4096] {
    let mut page = [0u8; 4096];
    let mut put = |at: usize, bytes: &[u8]| page[at..at + bytes.len()].copy_from_slice(bytes);
    put(0x1f1, &header[..header.len().min(0x290 - 0x1f1)]);
    put(0x210, &[0xff]); // type_of_loader: undefined
    put(0x214, &(load as u32).to_le_bytes()); // code32_start
    let (ramdisk, size) = initrd.unwrap_or((0, 0));
    put(0x218, &(ramdisk as u32).to_le_bytes());
    put(0x21c, &(size as u32).to_le_bytes());
    put(0x0c0, &((ramdisk >> 32) as u32).to_le_bytes());
    put(0x0c4, &((size >> 32) as u32).to_le_bytes());
    put(0x228, &(CMDLINE as u32).to_le_bytes());
    put(0x070, &RSDP.to_le_bytes()); // acpi_rsdp_addr
    let n = map.len().min(128);
    put(0x1e8, &[n as u8]);
    for (i, e) in map.iter().take(n).enumerate() {
        let at = 0x2d0 + 20 * i;
        put(at, &e.base.to_le_bytes());
        put(at + 8, &e.len.to_le_bytes());
        put(at + 16, &e.kind.to_le_bytes());
    }
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(base: u64, len: u64, kind: MemoryKind) -> MemoryRegion {
        MemoryRegion { base, len, kind }
    }

    /// QEMU q35 with SeaBIOS and 512 MiB.
    fn q35() -> [MemoryRegion; 6] {
        use MemoryKind::*;
        [
            region(0, 0x9fc00, Usable),
            region(0x9fc00, 0x400, Reserved),
            region(0xf0000, 0x10000, Reserved),
            region(0x10_0000, 0x1fee_0000, Usable),
            region(0x1ffe_0000, 0x20000, Reserved),
            region(0xb000_0000, 0x1000_0000, Reserved),
        ]
    }

    #[test]
    fn guest_ram_ends_below_the_first_hole_above_1_mib() {
        assert_eq!(ram_size(&q35(), 256 << 20), Ok(256 << 20));
        assert_eq!(ram_size(&q35(), 1 << 30), Ok(0x1ffe_0000));
        assert!(ram_size(&q35(), 8 << 20).is_err());
    }

    #[test]
    fn the_memory_map_has_guest_ram_the_boot_area_and_the_hosts_holes() {
        let map = memory_map(&q35(), 256 << 20).unwrap();
        let entries: std::vec::Vec<_> = map.iter().map(|e| (e.base, e.len, e.kind)).collect();
        assert_eq!(
            entries,
            [
                (0, 0x80000, 1),
                (0x80000, 0x10000, 2),
                (0x90000, 0xfc00, 1),
                (0x9fc00, 0x400, 2),
                (0xf0000, 0x10000, 2),
                (0x10_0000, (256 << 20) - 0x10_0000, 1),
                (0x1ffe_0000, 0x20000, 2),
                (0xb000_0000, 0x1000_0000, 2),
            ]
        );
    }

    #[test]
    fn only_what_is_neither_guest_nor_host_ram_passes_through() {
        let host = q35();
        let ram = 256 << 20;
        let d = |gpa| device(&host, ram, gpa);
        assert_eq!(d(0xfee0_0000), Some(Device::Unlisted), "the LAPIC");
        assert_eq!(d(0xb8000), Some(Device::Unlisted), "VGA");
        assert_eq!(d(0x1ffe_0000), Some(Device::Listed), "the ACPI tables");
        assert_eq!(d(0xf_0000), Some(Device::Listed), "the BIOS");
        assert_eq!(d(0x1000), None, "guest RAM");
        assert_eq!(
            d(0x1800_0000),
            None,
            "host RAM past the guest's: the hypervisor's"
        );
    }

    #[test]
    fn the_acpi_root_lists_the_tables_with_checksums_right() {
        let tables = [0x1ffe_1000, 0x1ffe_2000, 0x1ffe_5000];
        let [(rsdp_at, rsdp), (rsdt_at, rsdt), (xsdt_at, xsdt)] =
            acpi_root(&tables, b"BOCHS BXPC    ");
        let sum = |b: &[u8]| b.iter().fold(0u8, |s, x| s.wrapping_add(*x));
        assert_eq!(
            (sum(&rsdp[..20]), sum(&rsdp), sum(&rsdt), sum(&xsdt)),
            (0, 0, 0, 0)
        );
        assert_eq!(&rsdp[..8], b"RSD PTR ");
        assert_eq!(
            u32::from_le_bytes(rsdp[16..20].try_into().unwrap()) as u64,
            rsdt_at
        );
        assert_eq!(
            u64::from_le_bytes(rsdp[24..32].try_into().unwrap()),
            xsdt_at
        );
        assert_eq!(rsdp_at, RSDP);
        assert_eq!((rsdt.len(), xsdt.len()), (36 + 3 * 4, 36 + 3 * 8));
        let listed: std::vec::Vec<u64> = xsdt[36..]
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(listed, [0x1ffe_1000, 0x1ffe_2000, 0x1ffe_5000]);
    }

    #[test]
    fn mirrored_nodes_split_guest_ram_by_weight_on_2_mib() {
        let r = mirror_ranges(256 << 20, &[(0, 256 << 20), (1, 256 << 20)]);
        assert_eq!(r.as_slice(), [(0, 128 << 20, 0), (128 << 20, 256 << 20, 1)]);
        let r = mirror_ranges(100 << 20, &[(0, 1), (2, 2)]);
        assert_eq!(r[0], (0, 32 << 20, 0), "a third, rounded down to 2 MiB");
        assert_eq!(r[1], (32 << 20, 100 << 20, 2));
    }

    #[test]
    fn the_mirror_srat_and_slit_are_well_formed() {
        let oem = b"BOCHS BXPC    ";
        let srat = mirror_srat(
            &[(0, 0), (1, 1)],
            &[(0, 1 << 27, 0), (1 << 27, 1 << 28, 1)],
            oem,
        );
        let sum = |b: &[u8]| b.iter().fold(0u8, |s, x| s.wrapping_add(*x));
        assert_eq!(sum(&srat), 0);
        assert_eq!(srat.len(), 36 + 12 + 2 * 16 + 2 * 40);
        assert_eq!(&srat[..4], b"SRAT");
        assert_eq!(
            &srat[48 + 16..48 + 20],
            &[0, 16, 1, 1],
            "CPU with APIC id 1 in domain 1"
        );
        let mem1 = 48 + 32 + 40;
        assert_eq!(srat[mem1 + 2], 1, "the second range's domain");
        assert_eq!(
            u64::from_le_bytes(srat[mem1 + 8..mem1 + 16].try_into().unwrap()),
            1 << 27
        );
        let slit = mirror_slit(2, |i, j| if i == j { 10 } else { 20 }, oem);
        assert_eq!(sum(&slit), 0);
        assert_eq!(&slit[36..], &[2, 0, 0, 0, 0, 0, 0, 0, 10, 20, 20, 10]);
    }

    #[test]
    fn boot_params_carry_the_header_command_line_initrd_rsdp_and_e820() {
        let map = memory_map(&q35(), 256 << 20).unwrap();
        let header = [0x27u8; 0x26c - 0x1f1];
        let p = boot_params(&header, 0x100_0000, &map, Some((0x0f00_0000, 0x20_0000)));
        let u32_at = |at: usize| u32::from_le_bytes(p[at..at + 4].try_into().unwrap());
        assert_eq!(p[0x1f1], 0x27, "the setup header copied");
        assert_eq!((p[0x210], u32_at(0x214)), (0xff, 0x100_0000));
        assert_eq!((u32_at(0x218), u32_at(0x21c)), (0x0f00_0000, 0x20_0000));
        assert_eq!(u32_at(0x228) as u64, CMDLINE);
        assert_eq!(u64::from_le_bytes(p[0x70..0x78].try_into().unwrap()), RSDP);
        assert_eq!(p[0x1e8] as usize, map.len());
        assert_eq!(
            u32_at(0x2d0 + 20 + 16),
            2,
            "the second entry: the boot area, reserved"
        );
    }

    #[test]
    fn the_start_info_points_at_everything() {
        let map = memory_map(&q35(), 256 << 20).unwrap();
        let (info, entries) = start_info(&map, Some((0x0f00_0000, 0x20_0000)));
        let u32_at = |at: usize| u32::from_le_bytes(info[at..at + 4].try_into().unwrap());
        let u64_at = |at: usize| u64::from_le_bytes(info[at..at + 8].try_into().unwrap());
        assert_eq!((u32_at(0), u32_at(4), u32_at(12)), (START_MAGIC, 1, 1));
        assert_eq!(
            (u64_at(16), u64_at(24), u64_at(32)),
            (MODLIST, CMDLINE, RSDP)
        );
        assert_eq!((u64_at(40), u32_at(48) as usize), (MEMMAP, map.len()));
        assert_eq!((u64_at(0x40), u64_at(0x48)), (0x0f00_0000, 0x20_0000));
        assert_eq!(entries.len(), 24 * map.len());
    }
}
