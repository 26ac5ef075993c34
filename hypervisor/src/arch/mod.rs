//! x86-64 CPU setup: descriptor tables, exception reporting, power-off.

pub mod gdt;
pub mod idt;
pub mod power;
pub mod trap;

/// Loads this CPU's GDT, TSS and IDT.
pub fn init() {
    let selectors = gdt::init();
    idt::init(selectors.code);
}
