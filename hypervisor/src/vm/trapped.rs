//! An OS guest's device pages whose writes the hypervisor checks: mapped
//! read-only (reads reach the device), each store decoded by the vCPU and
//! done here on the device, as asked or with what the guest may not change
//! kept. Its local APIC (the ICR starts vCPUs; an LVT never asks for SMI or
//! INIT), PCI Express configuration (`chipset::pci`), the IOAPICs and the
//! HPET (`chipset::interrupts`). And the device pages it gets: the rest of
//! what is neither guest nor host RAM, read-only where the host's memory map
//! lists it (firmware memory, ACPI tables).

use core::sync::atomic::Ordering;

use super::{Vm, platform};
use crate::chipset::interrupts::{self, Checked};
use crate::chipset::pci::{self, Filtered};
use crate::ept::Format;
use crate::vcpu::{BackError, Trap, Written};

/// Local APIC registers the hypervisor watches: the interrupt command and
/// the local vector table.
const ICR_LOW: u64 = 0x300;
const ICR_HIGH: u64 = 0x310;
const LVT: core::ops::RangeInclusive<u64> = 0x320..=0x370;

/// What an interrupt command asks of the vCPUs it names (SDM 3A 11.6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ipi {
    /// INIT, level assert: the vCPU waits for a startup IPI.
    Init,
    /// INIT, level de-assert: only arbitration ids on old CPUs; nothing.
    InitDeassert,
    /// A startup IPI: start at real-mode page `vector`.
    Startup(u8),
    /// An SMI: the firmware's, never sent.
    Smi,
    /// Every other delivery mode: the APIC's.
    Other,
}

/// Decodes an ICR write: what it asks, and of whom: `Some(apic id)` or
/// None for "all but self" (the shorthands Linux uses to start CPUs).
pub fn decode_icr(low: u32, high: u32) -> (Ipi, Option<Option<u32>>) {
    let assert = low & (1 << 14) != 0;
    let ipi = match interrupts::delivery_mode(low) {
        interrupts::INIT if assert => Ipi::Init,
        interrupts::INIT => Ipi::InitDeassert,
        6 => Ipi::Startup(low as u8),
        interrupts::SMI => Ipi::Smi,
        _ => Ipi::Other,
    };
    let logical = low & (1 << 11) != 0;
    let to = match (low >> 18) & 3 {
        0 if !logical => Some(Some(high >> 24)),
        3 => Some(None),
        _ => None, // self, all, logical: not how CPUs are started
    };
    (ipi, to)
}

/// How a page that is neither guest nor host RAM is mapped for an OS guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DevicePage {
    /// A device's: reads and writes reach it.
    Open,
    /// Reads reach it, writes exit: trapped, or listed in the host's
    /// memory map (firmware memory, ACPI tables), where a write ends the
    /// guest.
    ReadOnly,
}

/// A volatile store of `size` bytes to device registers at physical
/// `addr`, which the direct map maps 1:1 below 4 GiB (the firmware's MTRRs
/// make the PCI hole uncached); nothing above.
fn store(addr: u64, size: u8, value: u64) {
    if addr + u64::from(size) > crate::phys::IDENTITY_LIMIT {
        return;
    }
    // SAFETY: `addr` is in a device page the guest may write (its owner
    // checked it), mapped by the direct map; the hypervisor keeps nothing there.
    unsafe {
        match size {
            1 => core::ptr::write_volatile(addr as *mut u8, value as u8),
            2 => core::ptr::write_volatile(addr as *mut u16, value as u16),
            4 => core::ptr::write_volatile(addr as *mut u32, value as u32),
            _ => core::ptr::write_volatile(addr as *mut u64, value),
        }
    }
}

/// Pins per IOAPIC whose entries the IOMMU remaps (QEMU's have 24).
pub const REMAPPED_PINS: usize = 32;

/// The guest's IOAPIC redirection entries (low, high) as it wrote them,
/// where the IOMMU remaps the IOAPICs' messages: the hardware holds
/// `remappable` ones (`Vm::ioapic_write`).
#[derive(Default)]
pub struct IoApicEntries([[[u32; 2]; REMAPPED_PINS]; 4]);

/// A volatile 4-byte load from device registers (as `store`).
fn load(addr: u64) -> u32 {
    if addr + 4 > crate::phys::IDENTITY_LIMIT {
        return u32::MAX;
    }
    // SAFETY: as in `store`: a device register the guest may read.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

impl<F: Format> Vm<F> {
    /// The trapped device page `gpa` lies in, for an OS guest.
    pub(super) fn trap_of(&self, gpa: u64) -> Option<Trap> {
        self.host_memory.as_ref()?;
        let page = gpa & !0xfff;
        let c = crate::chipset::get();
        if self.apic == Some(page) {
            Some(Trap::Apic)
        } else if c.ecam.is_some_and(|e| e.range().contains(&gpa)) {
            Some(Trap::PciConfig)
        } else if c.ioapics.contains(&Some(page)) {
            Some(Trap::IoApic)
        } else if c.hpet == Some(page) {
            Some(Trap::Hpet)
        } else {
            None
        }
    }

    /// How the device page at `gpa` is mapped; None for host RAM and the
    /// IOMMUs' registers (never).
    pub(super) fn device_page(&self, gpa: u64) -> Option<DevicePage> {
        let host = self.host_memory.as_ref()?;
        let chipset = crate::chipset::get();
        if chipset.iommu_registers(gpa) {
            return None;
        }
        if self.trap_of(gpa).is_some() || chipset.power_page(gpa) {
            return Some(DevicePage::ReadOnly);
        }
        match platform::device(host, self.memory.size, gpa)? {
            _ if chipset.facs_page(gpa) => Some(DevicePage::Open),
            platform::Device::Unlisted => Some(DevicePage::Open),
            platform::Device::Listed => Some(DevicePage::ReadOnly),
        }
    }

    /// Maps the device page at `gpa` 1:1 as `device_page` says.
    pub(super) fn back_device(&self, gpa: u64) -> Result<(), BackError> {
        match self.device_page(gpa) {
            Some(page) => self.memory.map_device(gpa, page == DevicePage::Open),
            None => Err(BackError::Outside),
        }
    }

    pub(super) fn write_trapped(
        &self,
        vcpu: usize,
        trap: Trap,
        gpa: u64,
        size: u8,
        value: u64,
    ) -> Written {
        match trap {
            Trap::Apic if size == 4 => self.apic_write(vcpu, gpa & 0xfff, value as u32),
            Trap::PciConfig => self.config_write(gpa, size, value),
            Trap::IoApic if size == 4 => {
                // The window writes the register the index names: both
                // under one lock, so that another vCPU's index cannot slip
                // between the check and the write (every store to the page
                // comes here).
                let mut entries = self.ioapic_turn.lock();
                self.ioapic_write(&mut entries, gpa, value as u32)
            }
            // The HPET takes dwords and quadwords (a comparator, a whole
            // timer configuration): each dword checked.
            Trap::Hpet if size == 4 || size == 8 => {
                let offset = gpa & 0xfff;
                let low = interrupts::hpet(offset, value as u32);
                let high = interrupts::hpet(offset + 4, (value >> 32) as u32);
                let both = u64::from(low.value()) | u64::from(high.value()) << 32;
                store(gpa, size, both);
                match (low, high) {
                    (Checked::Kept(_), Checked::Kept(_)) => Written::Done,
                    _ => Written::Filtered,
                }
            }
            // The APIC and the IOAPIC take dword accesses only.
            _ => Written::Dropped,
        }
    }

    /// A store to an IOAPIC's registers. Redirection entries are checked
    /// (`interrupts::redirection`); where the IOMMU remaps the IOAPIC's
    /// messages (an OS guest with devices), the guest's entry becomes the
    /// IOMMU's remapping of the pin and the hardware gets the pin's
    /// `remappable` entry, and an EOI of the guest's vector ends the pins
    /// that have it.
    fn ioapic_write(&self, entries: &mut IoApicEntries, gpa: u64, value: u32) -> Written {
        let page = gpa & !0xfff;
        let chipset = crate::chipset::get();
        // Its place (for the guest's entries) and its id (the IOMMU's name for it).
        let ioapic = chipset
            .ioapics
            .iter()
            .position(|&a| a == Some(page))
            .and_then(|i| Some((i, chipset.ioapic_ids[i]?)))
            .filter(|&(_, id)| self.devices_master && crate::iommu::remaps_ioapic(id));
        match (gpa & 0xff, ioapic) {
            (interrupts::IOWIN, _) => {
                let index = load(page);
                let checked = interrupts::ioapic_window(index, value);
                let mut hardware = checked.value();
                if let (Some((pin, half)), Some((i, id))) =
                    (interrupts::redirection_entry(index), ioapic)
                    && let Some(entry) = entries.0[i].get_mut(pin)
                {
                    entry[half] = checked.value();
                    let message = interrupts::message(entry[0], entry[1]);
                    crate::iommu::remap_ioapic(id, pin, message);
                    hardware = if half == 0 {
                        interrupts::remappable(pin, entry[0])
                    } else {
                        0
                    };
                }
                store(gpa, 4, hardware.into());
                written(checked)
            }
            (interrupts::IOAPIC_EOI, Some((i, _))) => {
                for (pin, entry) in entries.0[i].iter().enumerate() {
                    if entry[0] as u8 == value as u8 {
                        store(gpa, 4, pin as u64);
                    }
                }
                Written::Done
            }
            _ => {
                store(gpa, 4, value.into());
                Written::Done
            }
        }
    }

    /// A store to PCI Express configuration: below 0x100 through mechanism
    /// #1, filtered; above (extended capabilities) through ECAM, except to
    /// a function with registers the hypervisor keeps.
    fn config_write(&self, gpa: u64, size: u8, value: u64) -> Written {
        let chipset = crate::chipset::get();
        let Some(ecam) = chipset.ecam else {
            return Written::Dropped;
        };
        let (bdf, reg) = pci::decode_ecam(gpa - ecam.base);
        if !matches!(size, 1 | 2 | 4) || reg % u16::from(size) != 0 {
            return Written::Dropped; // unaligned or wider than a dword: no device takes it
        }
        let Some(ids) = pci::ids(bdf) else {
            return Written::Dropped;
        };
        let dma = crate::chipset::dma();
        if reg >= 0x100 {
            if pci::writable(ids, pci::Caps::default(), reg, dma) != 0xff {
                return Written::Dropped;
            }
            store(gpa, size, value);
            return Written::Done;
        }
        pci_write(ids, bdf, reg, size, value as u32, dma)
    }

    /// A write through the PCI data window (0xcfc-0xcff) at `offset`.
    pub fn config_data_write(&self, offset: u16, size: u8, value: u32) -> Written {
        let address = self.ports.pci_address.load(Ordering::SeqCst);
        let Some((bdf, dword)) = pci::decode_address(address) else {
            return Written::Dropped;
        };
        match pci::ids(bdf) {
            Some(ids) => pci_write(ids, bdf, dword + offset, size, value, crate::chipset::dma()),
            None => Written::Dropped,
        }
    }

    /// A read through the PCI data window; all ones with no function or
    /// the enable bit clear.
    pub fn config_data_read(&self, offset: u16, size: u8) -> u32 {
        let address = self.ports.pci_address.load(Ordering::SeqCst);
        match pci::decode_address(address) {
            Some((bdf, dword)) => pci::read(bdf, dword + offset, size),
            None => u32::MAX,
        }
    }

    /// An OS guest's write to its local APIC register at `offset`: INIT and
    /// startup IPIs to the guest's CPUs are emulated (they start vCPUs), an
    /// SMI is dropped, an LVT is checked, anything else is written.
    fn apic_write(&self, vcpu: usize, offset: u64, value: u32) -> Written {
        let apic = crate::arch::apic::Apic::current();
        match offset & 0xff0 {
            ICR_HIGH => {
                self.icr_high[vcpu].store(value.into(), Ordering::SeqCst);
                Written::Done
            }
            ICR_LOW => {
                let high = self.icr_high[vcpu].load(Ordering::SeqCst) as u32;
                let (ipi, to) = decode_icr(value, high);
                let targets = (0..self.vcpus()).filter(|&i| match to {
                    Some(Some(id)) => crate::arch::smp::apic_id_of(self.cpus[i]) == id,
                    Some(None) => i != vcpu,
                    None => false,
                });
                match ipi {
                    // A vCPU waits for its startup IPI from the start: INIT
                    // has nothing to reset (one sent to a running vCPU is
                    // ignored; CPU hot-unplug is not emulated).
                    Ipi::Init | Ipi::InitDeassert => Written::Done,
                    Ipi::Startup(vector) => {
                        for i in targets {
                            // Only the first counts, as for a CPU in wait-for-SIPI.
                            let _ = self.startup[i].compare_exchange(
                                0,
                                u64::from(vector) + 1,
                                Ordering::SeqCst,
                                Ordering::SeqCst,
                            );
                        }
                        Written::Done
                    }
                    Ipi::Smi => Written::Dropped,
                    Ipi::Other => {
                        apic.guest_write(ICR_HIGH, high);
                        apic.guest_write(ICR_LOW, value);
                        Written::Done
                    }
                }
            }
            reg if LVT.contains(&reg) => {
                let checked = interrupts::lvt(value);
                apic.guest_write(reg, checked.value());
                written(checked)
            }
            reg => {
                apic.guest_write(reg, value);
                Written::Done
            }
        }
    }
}

fn written(checked: Checked) -> Written {
    match checked {
        Checked::Kept(_) => Written::Done,
        Checked::Refused(_) => Written::Filtered,
    }
}

/// A filtered write of configuration register `reg` (below 0x100).
fn pci_write(ids: pci::Ids, bdf: pci::Bdf, reg: u16, size: u8, value: u32, dma: bool) -> Written {
    let caps = pci::capabilities(bdf);
    let mut outcome = Written::Dropped;
    pci::update(bdf, reg, size, |current| {
        match pci::filter(ids, caps, reg, size, value, current, dma) {
            Filtered::Whole(v) => {
                outcome = Written::Done;
                Some(v)
            }
            Filtered::Part(v) => {
                outcome = Written::Filtered;
                Some(v)
            }
            Filtered::Dropped => None,
        }
    });
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interrupt_commands_are_decoded_as_linux_starts_cpus() {
        // INIT, level assert, physical destination 2.
        assert_eq!(decode_icr(0xc500, 2 << 24), (Ipi::Init, Some(Some(2))));
        // INIT de-assert: never the APIC's (it must not reach a CPU).
        assert_eq!(decode_icr(0x8500, 2 << 24).0, Ipi::InitDeassert);
        // Startup at page 0x9a.
        assert_eq!(
            decode_icr(0x069a, 3 << 24),
            (Ipi::Startup(0x9a), Some(Some(3)))
        );
        // All but self.
        assert_eq!(decode_icr(0xc4500, 0).1, Some(None));
        // A fixed interrupt to a logical destination: the APIC's.
        assert_eq!(decode_icr(0x0800 | 0x30, 1 << 24), (Ipi::Other, None));
        assert_eq!(decode_icr(0x4200, 1 << 24).0, Ipi::Smi);
    }
}
