//! The IOMMUs, the hypervisor's: taken at boot, before any guest runs, so
//! that no device reaches memory the hypervisor has not given it. Today
//! every device is blocked (no DMA, on top of bus mastering being the
//! hypervisor's: `chipset::pci`); giving a guest's devices the translation
//! its CPUs have (`ept::format::AmdVi`) comes next. Vendor code stays here:
//! `amd` for AMD-Vi (QEMU's `amd-iommu`); Intel VT-d's registers are kept
//! from the guest (`chipset`) but not driven yet.

pub mod amd;

use crate::acpi::iommu::{Iommu, Kind};

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
}

impl core::fmt::Display for IommuError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::OutOfMemory => "no memory for its device table, command buffer and event log",
            Self::Unreachable => "its registers lie beyond the direct map",
            Self::NotRunning => "enabled, it did not run its commands",
        })
    }
}

/// Takes `iommu`: every device it translates is blocked.
pub fn take(iommu: &Iommu) -> Result<Taken, IommuError> {
    match iommu.kind {
        Kind::Amd { .. } => amd::take(iommu.base),
        Kind::Intel => Ok(Taken::NotDriven),
    }
}
