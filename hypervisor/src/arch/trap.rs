//! Reports an exception or unexpected interrupt as an event and ends the run;
//! the host's own interrupts (the watchdog's APIC timer, the kick IPI,
//! spurious ones) are acknowledged and return.

use core::sync::atomic::{AtomicBool, Ordering};
use serde::Serialize;
use x86_64::registers::control::{Cr2, Cr3};

use super::power::{self, ExitCode};
use crate::event::{self, Event, Hex};

core::arch::global_asm!(include_str!("trap.s"), options(att_syntax));

/// The stack as `trap.s` leaves it: general registers, then vector and error
/// code, then what the CPU pushed.
#[derive(Debug)]
#[repr(C)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

pub fn vector_name(vector: u64) -> &'static str {
    const NAMES: [&str; 32] = [
        "divide-error",
        "debug",
        "nmi",
        "breakpoint",
        "overflow",
        "bound-range",
        "invalid-opcode",
        "device-not-available",
        "double-fault",
        "coprocessor-segment-overrun",
        "invalid-tss",
        "segment-not-present",
        "stack-segment-fault",
        "general-protection",
        "page-fault",
        "reserved",
        "x87-floating-point",
        "alignment-check",
        "machine-check",
        "simd-floating-point",
        "virtualization",
        "control-protection",
        "reserved",
        "reserved",
        "reserved",
        "reserved",
        "reserved",
        "reserved",
        "hypervisor-injection",
        "vmm-communication",
        "security",
        "reserved",
    ];
    NAMES.get(vector as usize).copied().unwrap_or("interrupt")
}

#[derive(Serialize)]
struct Registers {
    rax: Hex,
    rbx: Hex,
    rcx: Hex,
    rdx: Hex,
    rsi: Hex,
    rdi: Hex,
    rbp: Hex,
    r8: Hex,
    r9: Hex,
    r10: Hex,
    r11: Hex,
    r12: Hex,
    r13: Hex,
    r14: Hex,
    r15: Hex,
}

#[derive(Serialize)]
struct Exception {
    /// The CPU it struck (None before its per-CPU block is set up).
    cpu: Option<usize>,
    vector: u64,
    name: &'static str,
    error_code: Hex,
    rip: Hex,
    cs: Hex,
    rflags: Hex,
    rsp: Hex,
    ss: Hex,
    cr2: Hex,
    cr3: Hex,
    regs: Registers,
}

impl Event for Exception {
    const NAME: &'static str = "exception";
}

impl From<&TrapFrame> for Exception {
    fn from(f: &TrapFrame) -> Self {
        Self {
            cpu: super::percpu::current_index(),
            vector: f.vector,
            name: vector_name(f.vector),
            error_code: Hex(f.error_code),
            rip: Hex(f.rip),
            cs: Hex(f.cs),
            rflags: Hex(f.rflags),
            rsp: Hex(f.rsp),
            ss: Hex(f.ss),
            cr2: Hex(Cr2::read_raw()),
            cr3: Hex(Cr3::read_raw().0.start_address().as_u64()),
            regs: Registers {
                rax: Hex(f.rax),
                rbx: Hex(f.rbx),
                rcx: Hex(f.rcx),
                rdx: Hex(f.rdx),
                rsi: Hex(f.rsi),
                rdi: Hex(f.rdi),
                rbp: Hex(f.rbp),
                r8: Hex(f.r8),
                r9: Hex(f.r9),
                r10: Hex(f.r10),
                r11: Hex(f.r11),
                r12: Hex(f.r12),
                r13: Hex(f.r13),
                r14: Hex(f.r14),
                r15: Hex(f.r15),
            },
        }
    }
}

static REPORTING: AtomicBool = AtomicBool::new(false);

#[unsafe(no_mangle)]
extern "C" fn trap_entry(frame: &TrapFrame) {
    match frame.vector {
        v if v == u64::from(super::apic::TIMER_VECTOR) => return super::apic::eoi(),
        v if v == u64::from(super::apic::KICK_VECTOR) => return super::apic::eoi(),
        // An OS guest's kick (`apic::NMI_KICK`): it only had to end guest mode.
        2 => return,
        // An OS guest's device interrupt that came after its end.
        v if v >= 32 => return super::apic::eoi(),
        v if super::pic::SPURIOUS.contains(&v) || v == u64::from(super::apic::SPURIOUS_VECTOR) => {
            return; // spurious: no EOI
        }
        _ => {}
    }
    // A fault while reporting a fault: report nothing more, just stop.
    if !REPORTING.swap(true, Ordering::SeqCst) {
        event::emit_fatal(&Exception::from(frame));
    }
    power::exit(ExitCode::Failure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_matches_the_push_order_of_trap_s() {
        // 15 general registers, vector, error code, then 5 CPU-pushed words.
        assert_eq!(size_of::<TrapFrame>(), 22 * 8);
        assert_eq!(core::mem::offset_of!(TrapFrame, rax), 14 * 8);
        assert_eq!(core::mem::offset_of!(TrapFrame, vector), 15 * 8);
        assert_eq!(core::mem::offset_of!(TrapFrame, rip), 17 * 8);
    }

    #[test]
    fn names_vectors() {
        assert_eq!(vector_name(14), "page-fault");
        assert_eq!(vector_name(6), "invalid-opcode");
        assert_eq!(vector_name(31), "reserved");
        assert_eq!(vector_name(32), "interrupt");
    }
}
