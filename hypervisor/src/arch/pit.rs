//! Busy-wait delays on PIT channel 2, which every PC and emulator has and
//! which needs no calibration (1.193182 MHz), polled through port 0x61.

use x86_64::instructions::port::Port;

const HZ: u64 = 1_193_182;
const MAX_COUNT: u64 = 0xffff;

/// Waits at least `us` microseconds.
pub fn delay_us(us: u64) {
    let mut ticks = us * HZ / 1_000_000 + 1;
    while ticks > 0 {
        let count = ticks.min(MAX_COUNT);
        one_shot(count as u16);
        ticks -= count;
    }
}

fn one_shot(count: u16) {
    let mut gate: Port<u8> = Port::new(0x61);
    let mut command: Port<u8> = Port::new(0x43);
    let mut channel2: Port<u8> = Port::new(0x42);
    // SAFETY: channel 2 and its gate belong to the speaker, which is unused;
    // only the gate bit is changed in port 0x61, the speaker stays off.
    unsafe {
        let g = gate.read() & !0x03;
        gate.write(g); // gate low: stop
        command.write(0b1011_0000); // channel 2, low then high byte, mode 0
        channel2.write(count as u8);
        channel2.write((count >> 8) as u8);
        gate.write(g | 0x01); // gate high: count
        while gate.read() & 0x20 == 0 {
            core::hint::spin_loop();
        }
        gate.write(g);
    }
}
