//! The local APIC, for starting the other CPUs and as the watchdog's timer
//! where the CPU has no VMX preemption timer (AMD): xAPIC through its MMIO
//! page, or x2APIC through MSRs (needed for APIC ids above 254).

use x86_64::registers::model_specific::Msr;

pub const IA32_APIC_BASE: u32 = 0x1b;
const X2APIC_ENABLE: u64 = 1 << 10;
const APIC_ENABLE: u64 = 1 << 11;
const X2APIC_ICR: u32 = 0x830;
const SVR: u64 = 0xf0;
const ICR_LOW: u64 = 0x300;
const ICR_HIGH: u64 = 0x310;
const DELIVERY_PENDING: u32 = 1 << 12;
/// Registers by their xAPIC offset; the x2APIC MSR is 0x800 + offset / 16.
const EOI: u64 = 0xb0;
const LVT_TIMER: u64 = 0x320;
const TIMER_INITIAL: u64 = 0x380;
const TIMER_CURRENT: u64 = 0x390;
const TIMER_DIVIDE: u64 = 0x3e0;
const DIVIDE_BY_1: u32 = 0b1011;
const MASKED: u32 = 1 << 16;

/// The vector of the APIC timer, which the host acknowledges and returns from.
pub const TIMER_VECTOR: u8 = 0xf0;
/// The hypervisor's own IPI: it only wakes a parked CPU, or brings a CPU in
/// guest mode back to the host; acknowledged and returned from.
pub const KICK_VECTOR: u8 = 0xf1;
/// A fixed interrupt to `KICK_VECTOR`.
pub const KICK: u32 = 0x4000 | KICK_VECTOR as u32;
/// An NMI: the kick while an OS guest runs, which owns every vector.
pub const NMI_KICK: u32 = 0x4400;
/// The spurious-interrupt vector (SVR).
pub const SPURIOUS_VECTOR: u8 = 0xff;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Apic {
    X { base: u64 },
    X2,
}

/// An OS guest's write to IA32_APIC_BASE, done on this CPU when it keeps
/// the base address and xAPIC mode (the guest's ICR writes must stay MMIO
/// the hypervisor sees): only the enable bit may change. Whether it was done.
pub fn guest_set_base(value: u64) -> bool {
    const FIXED: u64 = X2APIC_ENABLE | 0x000f_ffff_ffff_f000;
    // SAFETY: IA32_APIC_BASE exists on every CPU with an APIC; a value that
    // keeps the base and the mode only enables or disables this APIC.
    unsafe {
        let now = msr(IA32_APIC_BASE).read();
        if (now ^ value) & FIXED != 0 {
            return false;
        }
        msr(IA32_APIC_BASE).write(value);
    }
    true
}

/// The interrupt command for INIT (assert).
pub const INIT: u32 = 0x4500;
/// The interrupt command for a startup IPI to real-mode page `vector`.
pub fn startup(vector: u8) -> u32 {
    0x4600 | u32::from(vector)
}

fn msr(index: u32) -> Msr {
    Msr::new(index)
}

impl Apic {
    /// This CPU's local APIC, enabled; in x2APIC mode when `x2apic` (the
    /// CPU must support it) or when firmware already switched to it.
    pub fn enable(x2apic: bool) -> Self {
        // SAFETY: IA32_APIC_BASE exists on every CPU with an APIC; setting
        // the enable bits only turns on what the MADT says is there.
        let base = unsafe { msr(IA32_APIC_BASE).read() };
        let apic = if x2apic || base & X2APIC_ENABLE != 0 {
            // SAFETY: as above; x2APIC mode was checked in CPUID by the caller.
            unsafe { msr(IA32_APIC_BASE).write(base | APIC_ENABLE | X2APIC_ENABLE) };
            Apic::X2
        } else {
            Apic::X {
                base: base & 0xf_ffff_f000,
            }
        };
        apic.write(SVR, 0x100 | u32::from(SPURIOUS_VECTOR)); // software enable
        apic
    }

    /// This CPU's local APIC in the mode it is in now.
    pub fn current() -> Self {
        // SAFETY: as in `enable`; only read.
        let base = unsafe { msr(IA32_APIC_BASE).read() };
        if base & X2APIC_ENABLE != 0 {
            Apic::X2
        } else {
            Apic::X {
                base: base & 0xf_ffff_f000,
            }
        }
    }

    fn write(&self, reg: u64, value: u32) {
        match *self {
            // SAFETY: a register of this CPU's APIC, as its MSR.
            Apic::X2 => unsafe { msr(0x800 + (reg >> 4) as u32).write(value.into()) },
            Apic::X { base } => mmio_write(base + reg, value),
        }
    }

    fn read(&self, reg: u64) -> u32 {
        match *self {
            // SAFETY: as in `write`.
            Apic::X2 => unsafe { msr(0x800 + (reg >> 4) as u32).read() as u32 },
            Apic::X { base } => mmio_read(base + reg),
        }
    }

    /// Writes a register for an OS guest that owns this APIC (`vm::Vm`):
    /// `reg` is its xAPIC offset.
    pub fn guest_write(&self, reg: u64, value: u32) {
        self.write(reg & 0xff0, value);
    }

    /// The xAPIC base address; None in x2APIC mode.
    pub fn base(&self) -> Option<u64> {
        match *self {
            Apic::X { base } => Some(base),
            Apic::X2 => None,
        }
    }

    /// Fires `TIMER_VECTOR` once after `count` timer ticks (0 stops it).
    pub fn timer_one_shot(&self, count: u32) {
        self.write(TIMER_DIVIDE, DIVIDE_BY_1);
        self.write(LVT_TIMER, u32::from(TIMER_VECTOR));
        self.write(TIMER_INITIAL, count);
    }

    /// Timer ticks per millisecond, measured once over 10 ms of the PIT.
    pub fn timer_per_ms(&self) -> u64 {
        *TIMER_PER_MS.call_once(|| {
            self.write(TIMER_DIVIDE, DIVIDE_BY_1);
            self.write(LVT_TIMER, MASKED);
            self.write(TIMER_INITIAL, u32::MAX);
            super::pit::delay_us(10_000);
            let elapsed = u32::MAX - self.read(TIMER_CURRENT);
            self.write(TIMER_INITIAL, 0);
            (u64::from(elapsed) / 10).max(1)
        })
    }

    /// Sends the interrupt command `command` to the APIC `apic_id`.
    pub fn send(&self, apic_id: u32, command: u32) {
        match *self {
            // SAFETY: the ICR of this CPU's APIC; x2APIC sends at once.
            Apic::X2 => unsafe {
                msr(X2APIC_ICR).write((u64::from(apic_id) << 32) | u64::from(command))
            },
            Apic::X { base } => {
                // An OS guest may be between its own two ICR writes: its
                // destination is put back.
                let guests = mmio_read(base + ICR_HIGH);
                mmio_write(base + ICR_HIGH, apic_id << 24);
                mmio_write(base + ICR_LOW, command);
                while mmio_read(base + ICR_LOW) & DELIVERY_PENDING != 0 {
                    core::hint::spin_loop();
                }
                mmio_write(base + ICR_HIGH, guests);
            }
        }
    }
}

static TIMER_PER_MS: spin::Once<u64> = spin::Once::new();

/// Acknowledges the interrupt being handled on this CPU.
pub fn eoi() {
    Apic::current().write(EOI, 0);
}

fn mmio_write(addr: u64, value: u32) {
    // SAFETY: an APIC register in the identity-mapped MMIO page the MADT gives.
    unsafe { core::ptr::write_volatile(addr as *mut u32, value) }
}

fn mmio_read(addr: u64) -> u32 {
    // SAFETY: as in `mmio_write`.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interrupt_commands() {
        assert_eq!(INIT, 0b100_0101_0000_0000, "INIT, level assert");
        assert_eq!(startup(7), 0x4607, "STARTUP to 0x7000, level assert");
    }
}
