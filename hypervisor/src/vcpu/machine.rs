//! What a vCPU's exit handlers may ask of the guest machine it belongs to
//! (`vm::Vm` implements it; the host tests' fakes too): its memory, the
//! other vCPUs, placement. The vCPU layer depends on this interface, never
//! on the machine itself.

use core::sync::atomic::AtomicU64;

use super::io::PortState;
use crate::ept::MapError;

/// A page of device registers an OS guest writes through the hypervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trap {
    /// Its local APIC: the ICR starts CPUs, LVTs are checked.
    Apic,
    /// PCI Express configuration (ECAM): filtered (`chipset::pci`).
    PciConfig,
    /// The IOAPIC and the HPET: the interrupts they send are checked
    /// (`chipset::interrupts`).
    IoApic,
    Hpet,
}

impl Trap {
    pub fn name(self) -> &'static str {
        match self {
            Self::Apic => "apic",
            Self::PciConfig => "pci-config",
            Self::IoApic => "ioapic",
            Self::Hpet => "hpet",
        }
    }
}

/// What became of a trapped write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// Done as the guest asked (or emulated, for INIT and startup IPIs).
    Done,
    /// Done with what the guest may not change kept.
    Filtered,
    /// Not done.
    Dropped,
}

impl Written {
    pub fn name(self) -> &'static str {
        match self {
            Self::Done => "written",
            Self::Filtered => "filtered",
            Self::Dropped => "dropped",
        }
    }
}

/// vCPUs a payload guest gets at most: their stacks share 0x6000-0x7000
/// (docs/hypercalls.md).
pub const MAX_VCPUS: usize = 8;

/// Guest RAM backed on demand, as the run loop sees it.
pub trait Backing {
    /// Backs the page holding `gpa` with a zeroed frame, when it lies in
    /// guest RAM and is not backed yet (a page another vCPU backed since
    /// the fault is fine); `vcpu` touched it.
    fn back(&self, gpa: u64, vcpu: usize) -> Result<(), BackError>;
    /// Guest RAM backed so far, in 4 KiB pages.
    fn backed_pages(&self) -> u64;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackError {
    /// Not guest RAM: nothing may be mapped there.
    Outside,
    /// Already backed: the fault was not for a missing page.
    Present,
    /// The guest's devices may reach it: it does not move (`vm::dma`).
    Pinned,
    Map(MapError),
}

/// What an exit handler may ask of the machine besides its vCPU. Calls that
/// wait take `service`: the waiting vCPU keeps answering other vCPUs' TLB
/// flush requests with it (two vCPUs waiting on each other would otherwise
/// wait forever).
pub trait Machine: Backing {
    /// Waits until every vCPU still running has arrived; false when the
    /// guest is stopping instead.
    fn barrier(&self, service: &mut dyn FnMut()) -> bool;
    /// Another vCPU failed: this one stops at its next exit.
    fn stopping(&self) -> bool;
    /// Gives the page at `gpa` back: unmapped, every vCPU's TLB flushed
    /// (waited for), its frame freed; the next access backs a zeroed page.
    /// False when the page was not backed.
    fn release(&self, vcpu: usize, gpa: u64, service: &mut dyn FnMut()) -> Result<bool, BackError>;
    /// Bumped by each change that needs every CPU to flush: a vCPU that has
    /// not flushed for the current value does so before it enters again.
    fn tlb_generation(&self) -> u64;
    /// vCPU `vcpu` flushed for `generation`.
    fn flushed(&self, vcpu: usize, generation: u64);
    /// Bumped after every change a vCPU must act on before it enters
    /// again (a stop, a flush): the run loop loads it once per exit and asks
    /// `stopping` and `tlb_generation` only when it moved.
    fn attention(&self) -> &AtomicU64;
    /// Moves the page at `gpa` to the node of proximity domain `domain`
    /// (the `migrate` hypercall): write-protected, copied, remapped, with a
    /// TLB flush of every vCPU after each change (waited for). True when it
    /// moved, false when it was there already.
    fn migrate(
        &self,
        _vcpu: usize,
        _gpa: u64,
        _domain: u32,
        _service: &mut dyn FnMut(),
    ) -> Result<bool, BackError> {
        Err(BackError::Outside)
    }
    /// vCPU `vcpu` faulted at `gpa` (writing or not): whether it was a
    /// page the sampler took the access of (`sampler`), given back now.
    fn hint(&self, _vcpu: usize, _gpa: u64, _write: bool) -> bool {
        false
    }
    /// The vendor's timer brought vCPU `vcpu` back: the sampler's look, if
    /// one is due (`service` as for `barrier`).
    fn tick(&self, _vcpu: usize, _service: &mut dyn FnMut()) {}
    /// vCPU `vcpu` wrote the page at `gpa`, which adaptive placement had
    /// replicated: the copies are collapsed into one, writable (a TLB
    /// shootdown, waited for). False when the page was not replicated.
    fn collapse(&self, _vcpu: usize, _gpa: u64, _service: &mut dyn FnMut()) -> bool {
        false
    }
    /// Whether a write that faulted on the mapped page at `gpa` is to be
    /// retried: guest RAM is always writable but while it migrates, so the
    /// page was being migrated (still, or remapped since the fault).
    fn retry_write(&self, _gpa: u64) -> bool {
        false
    }
    /// Whether `gpa` lies in an OS guest's device page whose writes the
    /// hypervisor checks (reads reach the device).
    fn write_trap(&self, _gpa: u64) -> Option<Trap> {
        None
    }
    /// vCPU `vcpu` of an OS guest stored `size` bytes of `value` at `gpa`,
    /// in a page of `trap`: done on the device as it asked, changed, or not
    /// at all (INIT and startup IPIs to the guest's CPUs are emulated: they
    /// start vCPUs).
    fn trapped_write(
        &self,
        _vcpu: usize,
        _trap: Trap,
        _gpa: u64,
        _size: u8,
        _value: u64,
    ) -> Written {
        Written::Dropped
    }
    /// The platform state an OS guest's port accesses go through.
    fn port_state(&self) -> Option<&PortState> {
        None
    }
    /// A read and a write through PCI configuration mechanism #1's data
    /// window (0xcfc + `offset`), at the address the guest set.
    fn pci_data_read(&self, _offset: u16, _size: u8) -> u32 {
        u32::MAX
    }
    fn pci_data_write(&self, _offset: u16, _size: u8, _value: u32) -> Written {
        Written::Dropped
    }
}

/// Guest memory as a vendor's vCPU reaches it: the table its CPU walks, and
/// reads for the exits that look at guest memory.
pub trait GuestRam: Sync {
    /// The root of the second-level table the vCPUs of `node` walk.
    fn root(&self, node: usize) -> u64;
    /// Reads guest memory at `gpa` (a page not backed yet reads as zeros);
    /// false outside guest RAM.
    fn read(&self, gpa: u64, out: &mut [u8]) -> bool;
    /// The host address of `gpa`, when its page is backed.
    fn host_address(&self, gpa: u64) -> Option<u64>;
}
