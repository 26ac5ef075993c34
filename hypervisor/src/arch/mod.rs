//! x86-64 CPU setup: descriptor tables, exception reporting, power-off.

pub mod apic;
pub mod gdt;
pub mod idt;
pub mod pic;
pub mod pit;
pub mod power;
pub mod smp;
pub mod trap;
pub mod tsc;

/// Loads the boot CPU's GDT, TSS and IDT; masks the legacy PICs.
pub fn init() {
    let selectors = gdt::init(0, gdt::bsp_ist_tops());
    idt::init(selectors.code);
    pic::remap_and_mask();
}

/// Loads another CPU's GDT and TSS, and the shared IDT.
pub fn init_ap(cpu: usize, ist_tops: [u64; gdt::IST_COUNT]) {
    let selectors = gdt::init(cpu, ist_tops);
    idt::init(selectors.code);
}
