//! x86-64 CPU setup: per-CPU blocks, descriptor tables, exception reporting,
//! interrupts and IPIs, timers, power-off.

pub mod apic;
pub mod gdt;
pub mod idt;
pub mod percpu;
pub mod pic;
pub mod pit;
pub mod ports;
pub mod power;
pub mod smp;
pub mod trap;
pub mod tsc;

/// Sets up the boot CPU's per-CPU block, loads its GDT, TSS and IDT; masks
/// the legacy PICs.
pub fn init() {
    percpu::init(0, smp::apic_id());
    crate::cpu::enable_xsave();
    let selectors = gdt::init(0, gdt::bsp_ist_tops());
    idt::init(selectors.code);
    pic::remap_and_mask();
}

/// Sets up another CPU's per-CPU block, loads its GDT and TSS, and the
/// shared IDT.
pub fn init_ap(cpu: usize, ist_tops: [u64; gdt::IST_COUNT]) {
    percpu::init(cpu, smp::apic_id());
    crate::cpu::enable_xsave();
    let selectors = gdt::init(cpu, ist_tops);
    idt::init(selectors.code);
}
