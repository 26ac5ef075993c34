//! PCI configuration, which an OS guest reaches only through the
//! hypervisor: through mechanism #1 (ports 0xcf8/0xcfc, every access
//! emulated) and through ECAM (reads passed through, writes trapped). Reads
//! are the device's; writes are filtered byte by byte (`writable`): the
//! registers that move or enable the platform's power, reset and SMI
//! controls, the memory controller's (PCIEXBAR, PAM, SMRAM), an IOMMU's, and
//! bus mastering keep their value. With no IOMMU between the devices and
//! memory, no function may master the bus (DMA, and MSIs, which are DMA
//! writes): a device could write any host address. At boot every function's
//! Bus Master Enable is cleared (`own`).

/// A function's configuration space: bus, device and function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bdf(pub u16);

impl Bdf {
    pub fn new(bus: u8, device: u8, function: u8) -> Self {
        Self(u16::from(bus) << 8 | u16::from(device & 0x1f) << 3 | u16::from(function & 7))
    }
}

/// What a function is, by its identity registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ids {
    pub vendor: u16,
    pub device: u16,
    /// Base class and subclass.
    pub class: u16,
}

const CLASS_HOST_BRIDGE: u16 = 0x0600;
/// Base class 8 (system peripheral), subclass 6: an IOMMU (AMD-Vi).
const CLASS_IOMMU: u16 = 0x0806;
const INTEL: u16 = 0x8086;
/// ICH9's LPC bridge (q35's 00:1f.0) and PIIX4's power management function
/// (i440fx's 00:01.3).
const ICH9_LPC: u16 = 0x2918;
const PIIX4_PM: u16 = 0x7113;

/// The command register's Bus Master Enable.
pub const COMMAND: u16 = 0x04;
pub const BUS_MASTER: u8 = 1 << 2;

/// The registers of a function the guest may not change, by offset range.
fn kept(ids: Ids) -> &'static [core::ops::RangeInclusive<u16>] {
    match (ids.vendor, ids.device, ids.class) {
        // The memory controller (PCIEXBAR, PAM, SMRAM, TSEG) and an IOMMU
        // (its MMIO base and enable): wholly the hypervisor's.
        (_, _, CLASS_HOST_BRIDGE | CLASS_IOMMU) => &[0..=0xfff],
        // PMBASE and ACPI_CNTL (the PM block's address and enable), the
        // GPIO and root complex bases, GEN_PMCON (SMI lock).
        (INTEL, ICH9_LPC, _) => &[0x40..=0x4f, 0xa0..=0xa7, 0xf0..=0xf3],
        // PMBA, the device activity and resume enables (SMIs), PMREGMISC
        // (the PM block's enable), the SMBus base and host configuration.
        (INTEL, PIIX4_PM, _) => &[
            0x40..=0x43,
            0x58..=0x5b,
            0x80..=0x80,
            0x90..=0x93,
            0xd2..=0xd2,
        ],
        _ => &[],
    }
}

/// Where a function's MSI and MSI-X capabilities are, if it has them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caps {
    pub msi: Option<u16>,
    pub msix: Option<u16>,
}

/// Capability ids: MSI, MSI-X.
pub const CAP_MSI: u8 = 0x05;
pub const CAP_MSIX: u8 = 0x11;
/// The enable bits in their message control (at +2): MSI's bit 0, MSI-X's
/// bit 15 (bit 7 of the byte at +3).
const MSI_ENABLE: u8 = 1 << 0;
const MSIX_ENABLE: u8 = 1 << 7;

/// The bits of configuration byte `reg` of a function `ids` a guest may
/// write; `dma`: devices may master the bus (an IOMMU confines them). No
/// function may turn MSI or MSI-X on: a message is a memory write whose
/// delivery mode (INIT, SMI, NMI) the hypervisor does not see, until an
/// IOMMU remaps them; devices interrupt through INTx and the IOAPIC.
pub fn writable(ids: Ids, caps: Caps, reg: u16, dma: bool) -> u8 {
    if kept(ids).iter().any(|r| r.contains(&reg)) {
        0
    } else if reg == COMMAND && !dma {
        !BUS_MASTER
    } else if caps.msi.is_some_and(|c| reg == c + 2) {
        !MSI_ENABLE
    } else if caps.msix.is_some_and(|c| reg == c + 3) {
        !MSIX_ENABLE
    } else {
        0xff
    }
}

/// The value to write for a guest's write of `size` bytes of `value` at
/// `reg`, given what the register holds (`current`): the bits it may not
/// change keep theirs. None when the write changes nothing it may.
pub fn filter(
    ids: Ids,
    caps: Caps,
    reg: u16,
    size: u8,
    value: u32,
    current: u32,
    dma: bool,
) -> Filtered {
    let mut mask = 0u32;
    for i in 0..u16::from(size) {
        mask |= u32::from(writable(ids, caps, reg + i, dma)) << (8 * i);
    }
    let full = u32::MAX >> (32 - 8 * u32::from(size));
    let written = (value & mask) | (current & !mask & full);
    match mask & full {
        _ if written == value & full => Filtered::Whole(written),
        0 => Filtered::Dropped,
        _ => Filtered::Part(written),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filtered {
    /// Written as the guest asked (what it may not change, it did not).
    Whole(u32),
    /// Written with the kept bits at their value.
    Part(u32),
    /// Nothing of it may be written.
    Dropped,
}

/// Mechanism #1's address register: enable, bus, device, function and the
/// dword; None with the enable bit clear.
pub fn decode_address(address: u32) -> Option<(Bdf, u16)> {
    (address & (1 << 31) != 0).then_some((Bdf((address >> 8) as u16), (address & 0xfc) as u16))
}

/// The function and register of an ECAM address at `offset` in the window
/// starting at bus 0.
pub fn decode_ecam(offset: u64) -> (Bdf, u16) {
    (Bdf((offset >> 12) as u16), (offset & 0xfff) as u16)
}

pub use hardware::*;

/// Configuration space on the hardware, through mechanism #1.
mod hardware {
    use super::*;
    use crate::arch::ports;

    /// The address register is one for the whole machine: the hypervisor's
    /// accesses, on any CPU, take turns.
    static MECHANISM_1: spin::Mutex<()> = spin::Mutex::new(());

    fn address(bdf: Bdf, reg: u16) -> u32 {
        1 << 31 | u32::from(bdf.0) << 8 | u32::from(reg & 0xfc)
    }

    /// Reads `size` bytes of configuration at `reg` (below 0x100) of `bdf`.
    pub fn read(bdf: Bdf, reg: u16, size: u8) -> u32 {
        let _turn = MECHANISM_1.lock();
        ports::write(super::super::PCI_ADDRESS, 4, address(bdf, reg));
        ports::read(0xcfc + (reg & 3), size)
    }

    /// Writes `size` bytes of `value` at `reg` (below 0x100) of `bdf`.
    pub fn write(bdf: Bdf, reg: u16, size: u8, value: u32) {
        let _turn = MECHANISM_1.lock();
        ports::write(super::super::PCI_ADDRESS, 4, address(bdf, reg));
        ports::write(0xcfc + (reg & 3), size, value);
    }

    /// Reads `size` bytes at `reg` (below 0x100) of `bdf`, then writes what
    /// `change` makes of them (None: nothing), in one turn.
    pub fn update(bdf: Bdf, reg: u16, size: u8, change: impl FnOnce(u32) -> Option<u32>) {
        let _turn = MECHANISM_1.lock();
        ports::write(super::super::PCI_ADDRESS, 4, address(bdf, reg));
        let data = 0xcfc + (reg & 3);
        if let Some(value) = change(ports::read(data, size)) {
            ports::write(data, size, value);
        }
    }

    /// Where `bdf`'s MSI and MSI-X capabilities are (a list that loops or
    /// runs off the header is followed 48 steps at most).
    pub fn capabilities(bdf: Bdf) -> Caps {
        const STATUS: u16 = 0x06;
        const HAS_LIST: u32 = 1 << 4;
        const FIRST: u16 = 0x34;
        let mut caps = Caps::default();
        if read(bdf, STATUS, 2) & HAS_LIST == 0 {
            return caps;
        }
        let mut at = (read(bdf, FIRST, 1) & 0xfc) as u16;
        for _ in 0..48 {
            if at < 0x40 {
                break;
            }
            match read(bdf, at, 1) as u8 {
                CAP_MSI => caps.msi = Some(at),
                CAP_MSIX => caps.msix = Some(at),
                _ => {}
            }
            at = (read(bdf, at + 1, 1) & 0xfc) as u16;
        }
        caps
    }

    pub fn ids(bdf: Bdf) -> Option<Ids> {
        let id = read(bdf, 0, 4);
        (id & 0xffff != 0xffff).then(|| Ids {
            vendor: id as u16,
            device: (id >> 16) as u16,
            class: (read(bdf, 8, 4) >> 16) as u16,
        })
    }

    /// Every function present, by brute force over buses 0-255 (the
    /// firmware numbered the bridges).
    pub fn functions() -> impl Iterator<Item = (Bdf, Ids)> {
        (0..=255u8).flat_map(|bus| {
            (0..32u8).flat_map(move |device| {
                let first = ids(Bdf::new(bus, device, 0));
                let multi = first.is_some() && read(Bdf::new(bus, device, 0), 0xe, 1) & 0x80 != 0;
                let count = if multi { 8 } else { u8::from(first.is_some()) };
                (0..count).filter_map(move |f| {
                    let bdf = Bdf::new(bus, device, f);
                    ids(bdf).map(|i| (bdf, i))
                })
            })
        })
    }

    /// What the hypervisor found and did: functions seen, and those whose
    /// bus mastering it turned off.
    pub struct Owned {
        pub functions: u32,
        pub masters_stopped: u32,
    }

    /// Stops every function mastering the bus before a guest runs: what
    /// the firmware left enabled (a boot disk, a NIC) could write anywhere.
    pub fn own() -> Owned {
        let mut owned = Owned {
            functions: 0,
            masters_stopped: 0,
        };
        for (bdf, _) in functions() {
            owned.functions += 1;
            let command = read(bdf, COMMAND, 1) as u8;
            if command & BUS_MASTER != 0 {
                write(bdf, COMMAND, 1, u32::from(command & !BUS_MASTER));
                owned.masters_stopped += 1;
            }
        }
        owned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LPC: Ids = Ids {
        vendor: INTEL,
        device: ICH9_LPC,
        class: 0x0601,
    };
    const NIC: Ids = Ids {
        vendor: 0x8086,
        device: 0x10d3,
        class: 0x0200,
    };
    const HOST: Ids = Ids {
        vendor: INTEL,
        device: 0x29c0,
        class: CLASS_HOST_BRIDGE,
    };

    const NONE: Caps = Caps {
        msi: None,
        msix: None,
    };

    fn filter(ids: Ids, reg: u16, size: u8, value: u32, current: u32, dma: bool) -> Filtered {
        super::filter(ids, NONE, reg, size, value, current, dma)
    }

    #[test]
    fn no_function_turns_msi_or_msix_on() {
        let caps = Caps {
            msi: Some(0x50),
            msix: Some(0x70),
        };
        let f =
            |reg, size, value, current| super::filter(NIC, caps, reg, size, value, current, true);
        assert_eq!(
            f(0x52, 2, 0x0081, 0x0080),
            Filtered::Part(0x0080),
            "MSI enable kept clear"
        );
        assert_eq!(
            f(0x52, 2, 0x0091, 0x0080),
            Filtered::Part(0x0090),
            "the vector count goes"
        );
        assert_eq!(
            f(0x50, 4, 0x0001_0000, 0),
            Filtered::Part(0),
            "MSI enable in a dword"
        );
        assert_eq!(
            f(0x72, 2, 0x8000, 0x0000),
            Filtered::Part(0),
            "MSI-X enable"
        );
        assert_eq!(
            f(0x72, 2, 0x4000, 0x0000),
            Filtered::Whole(0x4000),
            "MSI-X function mask"
        );
        assert_eq!(
            f(0x54, 4, 0xfee0_0000, 0),
            Filtered::Whole(0xfee0_0000),
            "the address"
        );
    }

    #[test]
    fn the_pm_base_and_the_memory_controller_keep_their_values() {
        assert_eq!(filter(LPC, 0x40, 4, 0x901, 0x601, false), Filtered::Dropped);
        assert_eq!(
            filter(LPC, 0x44, 1, 0x00, 0x80, false),
            Filtered::Dropped,
            "ACPI_CNTL"
        );
        assert_eq!(
            filter(LPC, 0x60, 1, 0x8b, 0x80, false),
            Filtered::Whole(0x8b),
            "PIRQ routing"
        );
        assert_eq!(
            filter(HOST, 0x60, 4, 0xe000_0001, 0xb000_0001, false),
            Filtered::Dropped
        );
        assert_eq!(
            filter(HOST, 0x9d, 1, 0x4a, 0x02, false),
            Filtered::Dropped,
            "SMRAM"
        );
    }

    #[test]
    fn no_function_masters_the_bus_without_an_iommu() {
        assert_eq!(
            filter(NIC, 4, 2, 0x0107, 0x0000, false),
            Filtered::Part(0x0103)
        );
        assert_eq!(
            filter(NIC, 4, 2, 0x0107, 0x0000, true),
            Filtered::Whole(0x0107)
        );
        assert_eq!(
            filter(NIC, 4, 4, 0x0010_0006, 0x0010_0000, false),
            Filtered::Part(0x0010_0002)
        );
        assert_eq!(
            filter(NIC, 5, 1, 0x04, 0, false),
            Filtered::Whole(0x04),
            "INTx disable"
        );
        assert_eq!(
            filter(NIC, 0x10, 4, 0xfebf_0000, 0, false),
            Filtered::Whole(0xfebf_0000)
        );
    }

    #[test]
    fn a_dword_straddling_a_kept_register_keeps_only_its_bytes() {
        // 0x3e-0x41: the bridge control's two bytes, then PMBASE's first two.
        assert_eq!(
            filter(LPC, 0x3e, 4, 0x0901_0000, 0x0601_0000, false),
            Filtered::Part(0x0601_0000)
        );
    }

    #[test]
    fn addresses_decode() {
        assert_eq!(
            decode_address(0x8000_f840),
            Some((Bdf::new(0, 0x1f, 0), 0x40))
        );
        assert_eq!(decode_address(0x0000_f840), None);
        assert_eq!(
            decode_address(0x8001_0a07).unwrap().1,
            4,
            "the low bits are not the register's"
        );
        assert_eq!(decode_ecam(0xf_8044), (Bdf::new(0, 0x1f, 0), 0x44));
        assert_eq!(decode_ecam(0x10_0004), (Bdf::new(1, 0, 0), 4));
    }
}
