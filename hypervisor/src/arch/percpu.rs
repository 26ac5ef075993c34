//! Per-CPU state: one block per CPU, reached through the GS base
//! (IA32_GS_BASE) with one load and no lock. VMX restores the host's GS base
//! from the VMCS at every exit, SVM with VMLOAD (`svm/run.s`).

use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use x86_64::registers::model_specific::Msr;

use super::gdt::MAX_CPUS;

const IA32_GS_BASE: u32 = 0xc000_0101;

#[repr(C)]
pub struct PerCpu {
    /// The block's own address, at GS:0, so that `this` is one load.
    this: AtomicU64,
    index: AtomicUsize,
    apic_id: AtomicU32,
    /// The CPU's NUMA node (an index into the topology), once SMP knows it.
    node: AtomicUsize,
}

static BLOCKS: [PerCpu; MAX_CPUS] = [const {
    PerCpu {
        this: AtomicU64::new(0),
        index: AtomicUsize::new(0),
        apic_id: AtomicU32::new(0),
        node: AtomicUsize::new(0),
    }
}; MAX_CPUS];

/// Makes block `index` this CPU's: first thing on every CPU, before `this`.
pub fn init(index: usize, apic_id: u32) {
    let block = &BLOCKS[index];
    let at = block as *const PerCpu as u64;
    block.this.store(at, Ordering::Relaxed);
    block.index.store(index, Ordering::Relaxed);
    block.apic_id.store(apic_id, Ordering::Relaxed);
    // SAFETY: the block is static; nothing else uses GS in the kernel.
    unsafe { Msr::new(IA32_GS_BASE).write(at) };
}

/// The GS base to restore after leaving a guest (the VMCS host state).
pub fn gs_base() -> u64 {
    // SAFETY: IA32_GS_BASE exists on every x86-64 CPU; only read.
    unsafe { Msr::new(IA32_GS_BASE).read() }
}

/// This CPU's index, for reports from paths that may run before `init`
/// (a fault at boot): None there.
pub fn current_index() -> Option<usize> {
    (gs_base() != 0).then(|| this().index())
}

/// This CPU's block.
pub fn this() -> &'static PerCpu {
    let at: u64;
    // SAFETY: `init` ran on this CPU first (boot and AP entry), so GS:0
    // holds the address of this CPU's static block.
    unsafe {
        core::arch::asm!("mov {}, gs:[0]", out(reg) at, options(nostack, readonly, preserves_flags));
        &*(at as *const PerCpu)
    }
}

impl PerCpu {
    /// The CPU's index: 0 for the boot CPU, then in the order they started.
    pub fn index(&self) -> usize {
        self.index.load(Ordering::Relaxed)
    }

    pub fn apic_id(&self) -> u32 {
        self.apic_id.load(Ordering::Relaxed)
    }

    pub fn node(&self) -> usize {
        self.node.load(Ordering::Relaxed)
    }

    pub fn set_node(&self, node: usize) {
        self.node.store(node, Ordering::Relaxed);
    }
}
