//! The IOMMUs, the hypervisor's: taken at boot, before any guest runs, so
//! that no device reaches memory the hypervisor has not given it. Taken,
//! each blocks every device; an OS guest's devices are then given the
//! guest's nested table itself (`attach`: the table the guest's CPUs walk
//! is the devices' too, `ept::format::Npt`), and every change of that table
//! is followed by `invalidate` before a frame it dropped is used again.
//! Devices' interrupt messages are remapped to nothing; the IOAPICs' through
//! tables the hypervisor keeps in step with the guest's redirection entries
//! (`remap_ioapic`).
//! Vendor code stays here: `amd` for AMD-Vi (QEMU's `amd-iommu`); Intel
//! VT-d's registers are kept from the guest (`chipset`) but not driven.

pub mod amd;

use crate::acpi::iommu::{Iommu, Kind, MAX_IOMMUS};
use core::sync::atomic::{AtomicBool, Ordering};

/// What taking an IOMMU did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Taken {
    /// It blocks every device; `devices`: the device table's entries.
    Blocking { devices: u32 },
    /// A vendor the hypervisor does not drive yet.
    NotDriven,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IommuError {
    OutOfMemory,
    /// Its registers lie beyond the direct map.
    Unreachable,
    /// Enabled, it did not run its command buffer, or did not complete.
    NotRunning,
    /// No IOMMU, or one the hypervisor does not drive: devices could not
    /// be confined.
    NoneDriven,
}

impl core::fmt::Display for IommuError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::OutOfMemory => "no memory for its device table, command buffer and event log",
            Self::Unreachable => "its registers lie beyond the direct map",
            Self::NotRunning => "enabled, it did not run its commands",
            Self::NoneDriven => "no IOMMU the hypervisor drives",
        })
    }
}

/// The IOMMUs taken, and whether one was found that is not driven, or
/// could not be taken (then no device may master: its own would not be
/// confined).
struct Units {
    amd: heapless::Vec<amd::Unit, MAX_IOMMUS>,
    undriven: bool,
}

static UNITS: spin::Mutex<Units> = spin::Mutex::new(Units {
    amd: heapless::Vec::new(),
    undriven: false,
});

/// Whether devices walk a guest's table (`attach`): every change of it
/// must then `invalidate`.
static ATTACHED: AtomicBool = AtomicBool::new(false);

/// Takes `iommu`: every device it translates is blocked.
pub fn take(iommu: &Iommu) -> Result<Taken, IommuError> {
    let mut units = UNITS.lock();
    match iommu.kind {
        Kind::Amd { ioapics, .. } => match amd::Unit::take(iommu.base, ioapics) {
            Ok(unit) => {
                let _ = units.amd.push(unit);
                Ok(Taken::Blocking {
                    devices: amd::DEVICES as u32,
                })
            }
            // Its devices would not be confined: none may master.
            Err(e) => {
                units.undriven = true;
                Err(e)
            }
        },
        Kind::Intel => {
            units.undriven = true;
            Ok(Taken::NotDriven)
        }
    }
}

/// Whether `attach` can confine every device: one IOMMU at least, and
/// every one found driven.
pub fn drives_all() -> bool {
    let units = UNITS.lock();
    !units.undriven && !units.amd.is_empty()
}

/// Gives every device the second-level table at `root` (a nested table:
/// its entries are AMD-Vi's too); the devices given it. Refused unless
/// `drives_all`.
pub fn attach(root: u64) -> Result<u32, IommuError> {
    if !drives_all() {
        return Err(IommuError::NoneDriven);
    }
    let mut units = UNITS.lock();
    let mut devices = 0;
    for unit in units.amd.iter_mut() {
        devices += unit.attach(root)?;
    }
    ATTACHED.store(true, Ordering::SeqCst);
    Ok(devices)
}

/// After a change of the attached table: every IOMMU forgets what it
/// cached, and this returns when they have. Nothing when none is attached.
pub fn invalidate() {
    if !ATTACHED.load(Ordering::SeqCst) {
        return;
    }
    for unit in UNITS.lock().amd.iter_mut() {
        // One that stopped running leaves its devices on the old
        // translation: the frames it may hold are the guest's still
        // (`Vm::pinned`: a guest whose devices master keeps its frames).
        let _ = unit.invalidate();
    }
}

/// Remaps the messages with index `index` (`chipset::interrupts::
/// remappable`: the pin) of the IOAPIC with id `id` (the MADT's, which the
/// IVRS names) to `message`, or refuses them (None). False when no
/// attached IOMMU remaps that IOAPIC's messages.
pub fn remap_ioapic(
    id: u8,
    index: usize,
    message: Option<crate::chipset::interrupts::Message>,
) -> bool {
    if !ATTACHED.load(Ordering::SeqCst) {
        return false;
    }
    let mut units = UNITS.lock();
    let Some(unit) = units.amd.iter_mut().find(|u| u.remaps(id).is_some()) else {
        return false;
    };
    unit.remap_ioapic(id, index, amd::irte(message));
    true
}

/// Whether an attached IOMMU remaps the messages of the IOAPIC with id `id`.
pub fn remaps_ioapic(id: u8) -> bool {
    ATTACHED.load(Ordering::SeqCst) && UNITS.lock().amd.iter().any(|u| u.remaps(id).is_some())
}

/// The DMA faults the IOMMUs logged since the last call.
pub fn faults(seen: &mut dyn FnMut(amd::Fault)) {
    for unit in UNITS.lock().amd.iter_mut() {
        unit.faults(seen);
    }
}
