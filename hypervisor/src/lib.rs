//! Scalevisor, a thin type-1 hypervisor for NUMA machines.
//!
//! The kernel is this library plus the freestanding entry in `main.rs`;
//! everything that is pure logic is unit-tested on the host.
#![cfg_attr(not(test), no_std)]

pub mod acpi;
pub mod arch;
pub mod boot;
pub mod chipset;
pub mod cmdline;
pub mod cpu;
pub mod ept;
pub mod event;
pub mod iommu;
pub mod kernel;
pub mod mm;
pub mod numa;
pub mod phys;
pub mod serial;
pub mod svm;
pub mod sync;
pub mod vcpu;
pub mod vm;
pub mod vmx;
