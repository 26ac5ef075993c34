//! The host platform's controls that the hypervisor keeps from every guest:
//! the power, reset and SMI ports where the FADT puts them (and where the
//! machines the harness runs have them), PCI configuration (`pci`), and the
//! ports that reach past the hypervisor (QEMU's fw_cfg DMA, the keyboard
//! controller's output port, A20). Found once at boot (`discover`); each
//! guest access to a port is judged on every byte it covers (`vcpu::io`).

pub mod interrupts;
pub mod pci;

use crate::acpi::fadt::{Fadt, Register};
use crate::acpi::iommu::{Iommu, MAX_IOMMUS};
use crate::acpi::mcfg::Ecam;

/// The ACPI PM1a control registers of the machines the harness runs, also
/// when no FADT says so: q35 (PM base 0x600) and the i440fx/PIIX4 of QEMU
/// and Bochs (PM base 0xb000).
const KNOWN_PM1_CONTROL: [u16; 2] = [0x604, 0xb004];
/// The reset control register of the PIIX and ICH chipsets; RST_CPU (bit 2)
/// resets the machine.
pub const RESET_CONTROL: u16 = 0xcf9;
pub const RST_CPU: u8 = 1 << 2;
/// The keyboard controller: its command and data ports.
pub const KBC_COMMAND: u16 = 0x64;
pub const KBC_DATA: u16 = 0x60;
/// KBC commands: write the output port (the next data byte), A20 off.
pub const KBC_WRITE_OUTPUT: u8 = 0xd1;
const KBC_A20_OFF: u8 = 0xdd;
/// System control port A: bit 0 resets, bit 1 is A20.
pub const PORT_A: u16 = 0x92;
/// The output port's and port A's reset and A20 bits.
pub const RESET_BIT: u8 = 1 << 0;
pub const A20_BIT: u8 = 1 << 1;
/// QEMU's isa-debug-exit, where the harness's machines have it (iobase
/// 0xf4, iosize 4: a write to any of its ports ends QEMU) and test kernels
/// write their status.
pub const DEBUG_EXIT: core::ops::RangeInclusive<u16> = 0xf4..=0xf7;
/// COM2: the hypervisor's event channel.
pub const HYPERVISOR_CONSOLE: core::ops::RangeInclusive<u16> = 0x2f8..=0x2ff;
/// QEMU's fw_cfg DMA address register (big-endian, high half first): its
/// device copies to and from any host-physical address.
pub const FW_CFG_DMA: core::ops::RangeInclusive<u16> = 0x514..=0x51b;
/// Bochs' shutdown port ("Shutdown" written to it ends the emulator; the
/// hypervisor's own power-off uses it) and its debugger ports.
pub const BOCHS_CONTROL: [u16; 3] = [0x8900, 0x8a00, 0x8a01];
/// PCI configuration mechanism #1: the address register and the data window.
pub const PCI_ADDRESS: u16 = 0xcf8;
pub const PCI_DATA: core::ops::RangeInclusive<u16> = 0xcfc..=0xcff;
/// The SMI command port of the chipsets the harness runs, when no FADT says.
const KNOWN_SMI_COMMAND: u16 = 0xb2;
/// PM1 control's SLP_EN (bit 13): its byte, and its bit in that byte.
const SLP_EN_BYTE: u16 = 1;
const SLP_EN: u8 = 1 << 5;

/// What the hypervisor keeps of this machine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Chipset {
    /// The FADT's, when the firmware has one.
    pub fadt: Option<Fadt>,
    /// PCI Express's configuration window (MCFG).
    pub ecam: Option<Ecam>,
    /// The IOAPICs' register pages (MADT) and the HPET's (its table).
    pub ioapics: [Option<u64>; 4],
    /// The MADT's ids of `ioapics`, in the same places (the IVRS names an
    /// IOAPIC by its id).
    pub ioapic_ids: [Option<u8>; 4],
    pub hpet: Option<u64>,
    /// The IOMMUs (IVRS, DMAR): their registers are never the guest's.
    pub iommus: [Option<Iommu>; MAX_IOMMUS],
}

/// Whether devices may master the bus: only once an IOMMU confines them to
/// the guest's memory (`vm::dma`); never turned off again.
static DMA: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Whether PCI functions may master the bus (`pci::filter`).
pub fn dma() -> bool {
    DMA.load(core::sync::atomic::Ordering::SeqCst)
}

/// Lets PCI functions master the bus: an IOMMU now confines every one.
pub fn allow_dma() {
    DMA.store(true, core::sync::atomic::Ordering::SeqCst);
}

/// What a byte of the port space is to the hypervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// An OS guest's own: it reaches the hardware.
    Guest,
    /// Reaches what no guest may (the hypervisor's console, fw_cfg's DMA):
    /// dropped, reads all ones.
    Denied,
    /// Byte `byte` of a PM1 control register: SLP_EN powers off.
    Pm1Control {
        byte: u16,
    },
    /// A reset register: `value` written resets (or RST_CPU, for 0xcf9).
    Reset {
        value: Option<u8>,
    },
    KbcCommand,
    KbcData,
    PortA,
    /// Byte `byte` of the PCI configuration address register.
    PciAddress {
        byte: u16,
    },
    /// Byte `byte` of the PCI configuration data window.
    PciData {
        byte: u16,
    },
    /// The SMI command port: the firmware's ACPI mode switch only.
    SmiCommand {
        enable: u8,
        disable: u8,
    },
    DebugExit,
}

impl Chipset {
    /// Whether `addr` lies in an IOMMU's registers.
    pub fn iommu_registers(&self, addr: u64) -> bool {
        self.iommus
            .iter()
            .flatten()
            .any(|i| (i.base..i.base + i.len).contains(&addr))
    }

    /// Whether `addr` lies in the FACS's page, which the OS writes (its
    /// global lock, its waking vector) though the firmware's map reserves it.
    pub fn facs_page(&self, addr: u64) -> bool {
        self.fadt
            .and_then(|f| f.facs)
            .is_some_and(|a| a & !0xfff == addr & !0xfff)
    }

    /// Whether `addr` lies in the page of a memory-mapped reset or sleep
    /// register (hardware-reduced ACPI): no guest writes there.
    pub fn power_page(&self, addr: u64) -> bool {
        let fadt = self.fadt.unwrap_or_default();
        let reset = fadt.reset.map(|(r, _)| r);
        [reset, fadt.sleep_control]
            .into_iter()
            .any(|r| matches!(r, Some(Register::Memory(a)) if a & !0xfff == addr & !0xfff))
    }

    /// What `port` is to the hypervisor.
    pub fn role(&self, port: u16) -> Role {
        let fadt = self.fadt.unwrap_or_default();
        let pm1 = KNOWN_PM1_CONTROL
            .iter()
            .copied()
            .chain(fadt.pm1_control.iter().flatten().copied())
            .find(|&base| (base..=base.saturating_add(1)).contains(&port));
        if let Some(base) = pm1 {
            return Role::Pm1Control { byte: port - base };
        }
        if let Some((Register::Io(p), value)) = fadt.reset
            && p == port
            && p != RESET_CONTROL
        {
            return Role::Reset { value: Some(value) };
        }
        let smi = fadt.smi_command.unwrap_or(KNOWN_SMI_COMMAND);
        match port {
            RESET_CONTROL => Role::Reset { value: None },
            _ if port == smi => Role::SmiCommand {
                enable: fadt.acpi_enable,
                disable: fadt.acpi_disable,
            },
            KBC_COMMAND => Role::KbcCommand,
            KBC_DATA => Role::KbcData,
            PORT_A => Role::PortA,
            p if DEBUG_EXIT.contains(&p) => Role::DebugExit,
            0xcf8..=0xcfb => Role::PciAddress {
                byte: port - PCI_ADDRESS,
            },
            0xcfc..=0xcff => Role::PciData {
                byte: port - *PCI_DATA.start(),
            },
            p if HYPERVISOR_CONSOLE.contains(&p)
                || FW_CFG_DMA.contains(&p)
                || BOCHS_CONTROL.contains(&p) =>
            {
                Role::Denied
            }
            _ => Role::Guest,
        }
    }
}

/// What one byte written to a port asks of the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    None,
    PowerOff,
    Reset,
}

/// Judges byte `value` written to a port of role `role` (the KBC's data
/// byte only as the output port: `vcpu::io` knows when it is one).
pub fn request(role: Role, value: u8) -> Request {
    match role {
        Role::Pm1Control { byte } if byte == SLP_EN_BYTE && value & SLP_EN != 0 => {
            Request::PowerOff
        }
        Role::Reset { value: None } if value & RST_CPU != 0 => Request::Reset,
        Role::Reset { value: Some(v) } if value == v => Request::Reset,
        // Pulse commands 0xf0-0xff pulse the output lines whose bits are
        // clear; bit 0 is the reset line. 0xfe is the usual one.
        Role::KbcCommand if value & 0xf0 == 0xf0 && value & RESET_BIT == 0 => Request::Reset,
        Role::PortA if value & RESET_BIT != 0 => Request::Reset,
        _ => Request::None,
    }
}

/// Whether a KBC command byte is one the guest may not send the controller:
/// the output-port write (reset and A20 lines; emulated) and A20 off (with
/// A20 masked the host's memory would alias).
pub fn kbc_command_kept(command: u8) -> bool {
    matches!(command, KBC_WRITE_OUTPUT | KBC_A20_OFF)
}

/// The HPET's register page, from its ACPI table (the base address's
/// Generic Address Structure at offset 40).
pub fn hpet_page(table: &crate::acpi::sdt::Table) -> Option<u64> {
    let address = table.bytes.get(44..52)?;
    let address = u64::from_le_bytes(address.try_into().ok()?);
    (address != 0).then_some(address & !0xfff)
}

/// A register's address, as events show it.
pub fn register_address(r: Register) -> u64 {
    match r {
        Register::Io(port) => port.into(),
        Register::Memory(addr) => addr,
        Register::Pci {
            device,
            function,
            offset,
        } => u64::from(device) << 32 | u64::from(function) << 16 | u64::from(offset),
    }
}

static CHIPSET: spin::Once<Chipset> = spin::Once::new();

/// Records the machine's chipset once found (`kernel::main`).
pub fn set(chipset: Chipset) -> &'static Chipset {
    CHIPSET.call_once(|| chipset)
}

/// Nothing found: the ports the harness's machines have (`role`'s defaults).
static NONE: Chipset = Chipset {
    fadt: None,
    ecam: None,
    ioapics: [None; 4],
    ioapic_ids: [None; 4],
    hpet: None,
    iommus: [None; MAX_IOMMUS],
};

/// The chipset, or what the harness's machines have when none was found.
pub fn get() -> &'static Chipset {
    CHIPSET.get().unwrap_or(&NONE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acpi::fadt::Fadt;

    fn moved() -> Chipset {
        Chipset {
            fadt: Some(Fadt {
                pm1_control: [Some(0x1804), Some(0x1904)],
                reset: Some((Register::Io(0x1850), 0x6)),
                smi_command: Some(0x1830),
                acpi_enable: 0xa0,
                acpi_disable: 0xa1,
                sleep_control: None,
                facs: None,
            }),
            ..Chipset::default()
        }
    }

    #[test]
    fn the_fadts_registers_are_kept_beside_the_known_ones() {
        let c = moved();
        for (port, byte) in [(0x1804, 0), (0x1905, 1), (0x604, 0), (0xb005, 1)] {
            assert_eq!(c.role(port), Role::Pm1Control { byte }, "{port:#x}");
        }
        assert_eq!(c.role(0x1850), Role::Reset { value: Some(6) });
        assert_eq!(c.role(0xcf9), Role::Reset { value: None });
        assert_eq!(
            c.role(0x1830),
            Role::SmiCommand {
                enable: 0xa0,
                disable: 0xa1
            }
        );
        assert_eq!(c.role(0xb2), Role::Guest, "the FADT moved the SMI port");
        assert_eq!(
            Chipset::default().role(0xb2),
            Role::SmiCommand {
                enable: 0,
                disable: 0
            }
        );
    }

    #[test]
    fn denied_and_guest_ports() {
        let c = Chipset::default();
        for p in [0x2f8, 0x2ff, 0x514, 0x518, 0x51b, 0x8900, 0x8a00] {
            assert_eq!(c.role(p), Role::Denied, "{p:#x}");
        }
        for p in 0xf4..=0xf7 {
            assert_eq!(
                c.role(p),
                Role::DebugExit,
                "the debug exit's every port: {p:#x}"
            );
        }
        for p in [0x3f8, 0x510, 0x511, 0x20, 0x70, 0x2f7, 0x300] {
            assert_eq!(c.role(p), Role::Guest, "{p:#x}");
        }
        assert_eq!(c.role(0xcfa), Role::PciAddress { byte: 2 });
        assert_eq!(c.role(0xcfe), Role::PciData { byte: 2 });
    }

    #[test]
    fn requests_are_judged_on_the_byte_that_holds_their_bit() {
        let pm1 = |byte| Role::Pm1Control { byte };
        assert_eq!(request(pm1(1), 0x20), Request::PowerOff);
        assert_eq!(request(pm1(1), 0x1c), Request::None, "SLP_TYP alone");
        assert_eq!(request(pm1(0), 0x20), Request::None, "bit 5, not 13");
        assert_eq!(request(Role::Reset { value: None }, 0x06), Request::Reset);
        assert_eq!(request(Role::Reset { value: None }, 0x02), Request::None);
        assert_eq!(
            request(Role::Reset { value: Some(6) }, 0x06),
            Request::Reset
        );
        assert_eq!(request(Role::Reset { value: Some(6) }, 0x04), Request::None);
        assert_eq!(request(Role::KbcCommand, 0xfe), Request::Reset);
        assert_eq!(request(Role::KbcCommand, 0xf0), Request::Reset);
        assert_eq!(request(Role::KbcCommand, 0xff), Request::None);
        assert_eq!(request(Role::KbcCommand, 0xd1), Request::None);
        assert_eq!(request(Role::PortA, 0x03), Request::Reset);
        assert_eq!(request(Role::PortA, 0x02), Request::None);
        assert!(kbc_command_kept(0xd1) && kbc_command_kept(0xdd) && !kbc_command_kept(0xae));
    }
}
