//! An OS guest's devices, which master the bus (DMA, virtqueues): only
//! behind an IOMMU the hypervisor drives, which gives them the guest's own
//! nested table (`iommu::attach`), so that a device reaches the frames the
//! guest's CPUs reach and nothing else: guest-physical addresses translated
//! as the CPUs' are, host memory, the hypervisor's included, out of reach,
//! and the device's interrupt messages stopped (`iommu::amd`).
//!
//! A device cannot fault a page in as a CPU does, and a page a device may
//! be writing cannot move without losing the write: the guest's RAM is
//! backed whole before it runs and pinned (no release, no migration: the
//! pages stay where the policy put them; docs/numa.md, "Pages devices
//! reach"). Every flush of the table empties the IOMMUs' caches
//! (`Vm::shootdown`).

use serde::Serialize;

use super::Vm;
use crate::ept::Format;
use crate::event::{self, Event};

#[derive(Serialize)]
struct DmaEvent {
    /// `remapped`: devices master, through the guest's table; `off`: they
    /// may not master (bus mastering stays the hypervisor's, `chipset::pci`).
    mode: &'static str,
    /// Why not, when off.
    #[serde(skip_serializing_if = "Option::is_none")]
    why: Option<&'static str>,
    /// The requester ids given the guest's table, and the guest's pages
    /// pinned for them.
    devices: u32,
    pinned_pages: u64,
    /// IOAPICs whose messages the IOMMU remaps (`iommu::remap_ioapic`).
    ioapics_remapped: u32,
}

impl Event for DmaEvent {
    const NAME: &'static str = "dma";
}

/// Lets `vm`'s devices master the bus if an IOMMU can confine them: its RAM
/// backed whole and pinned, the IOMMUs given its table, then bus mastering
/// allowed. Reported (`dma`) either way; a guest whose devices may not
/// master still runs, without DMA.
pub fn give_devices<F: Format>(vm: &mut Vm<F>) {
    let report = |mode, why, devices, pinned_pages| {
        let ids = crate::chipset::get().ioapic_ids.iter().flatten();
        event::emit(&DmaEvent {
            mode,
            why,
            devices,
            pinned_pages,
            ioapics_remapped: ids.filter(|&&id| crate::iommu::remaps_ioapic(id)).count() as u32,
        })
    };
    if !crate::iommu::drives_all() {
        return report("off", Some("no IOMMU the hypervisor drives"), 0, 0);
    }
    if !F::DEVICES_WALK_IT {
        return report(
            "off",
            Some("no IOMMU walks this vendor's nested table"),
            0,
            0,
        );
    }
    if vm.runtime.is_some() {
        return report("off", Some("adaptive placement moves pages"), 0, 0);
    }
    if vm.memory.back_all().is_err() {
        return report("off", Some("no host memory to pin the guest's RAM"), 0, 0);
    }
    let pinned = vm.memory.placer.pages();
    match crate::iommu::attach(vm.memory.table.root()) {
        Ok(devices) => {
            vm.devices_master = true;
            crate::chipset::allow_dma();
            report("remapped", None, devices, pinned);
        }
        Err(_) => report(
            "off",
            Some("the IOMMU did not take the guest's table"),
            0,
            pinned,
        ),
    }
}

#[derive(Serialize)]
struct DmaFault {
    /// The requester id: bus << 8 | device << 3 | function.
    device: event::Hex,
    address: event::Hex,
    access: &'static str,
}

impl Event for DmaFault {
    const NAME: &'static str = "dma-fault";
}

/// Reports the DMAs the IOMMUs refused (`dma-fault`): a device that
/// reached outside the guest's RAM, or wrote where the guest may only read.
pub fn report_faults() {
    crate::iommu::faults(&mut |f| {
        event::emit(&DmaFault {
            device: event::Hex(f.device.into()),
            address: event::Hex(f.address),
            access: if f.write { "write" } else { "read" },
        })
    });
}
