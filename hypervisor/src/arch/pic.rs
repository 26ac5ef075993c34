//! The legacy 8259 PICs: moved off the exception vectors (firmware leaves
//! them at 0x08, where IRQ 0 would look like a double fault) and masked.
//! The hypervisor takes no device interrupts; the APIC timer is its clock.

use x86_64::instructions::port::Port;

const BASE: u8 = 0x20;
/// Where a spurious IRQ 7 or 15 lands once remapped: acknowledged by nobody.
pub const SPURIOUS: [u64; 2] = [BASE as u64 + 7, BASE as u64 + 15];

pub fn remap_and_mask() {
    let out = |port: u16, value: u8| {
        // SAFETY: the PICs' command and data ports; the ICW sequence below
        // is the standard initialisation, ending with every line masked.
        unsafe { Port::<u8>::new(port).write(value) }
    };
    for (command, data, base, wiring) in [(0x20, 0x21, BASE, 4), (0xa0, 0xa1, BASE + 8, 2)] {
        out(command, 0x11); // ICW1: initialise, ICW4 follows
        out(data, base); // ICW2: vector base
        out(data, wiring); // ICW3: slave on IRQ 2 / cascade identity 2
        out(data, 0x01); // ICW4: 8086 mode
        out(data, 0xff); // every line masked
    }
}
