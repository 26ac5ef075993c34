//! ACPI: the RSDP and the tables that describe CPUs and NUMA: MADT, SRAT,
//! SLIT and HMAT. Every parser refuses malformed input with an error that
//! says where, and never panics.

pub mod fadt;
pub mod hmat;
pub mod iommu;
pub mod madt;
pub mod mcfg;
pub mod rsdp;
pub mod sdt;
pub mod slit;
pub mod srat;
