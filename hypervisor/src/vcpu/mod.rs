//! The vendor-neutral virtual CPU: what a VM exit means, how each is
//! handled, and the run loop. The VMX and SVM layers only enter the guest,
//! decode their exits into `Exit` and give access to the guest's registers;
//! everything else (CPUID, hypercalls, I/O, MSRs, faults) is settled here.

pub mod checks;
pub mod config;
pub mod cpuid;
pub mod decode;
pub mod exits;
pub mod fetch;
pub mod guest;
pub mod hypercall;
pub mod io;
pub mod machine;
pub mod trace;

use heapless::{String, Vec};
use serde::Serialize;

use crate::event::{Event, Hex};
#[cfg(test)]
use crate::serial;
pub use config::{GuestConfig, Image};
use exits::{Action, Handlers};
pub use machine::{BackError, Backing, GuestRam, MAX_VCPUS, Machine, Trap, Written};

/// General registers of the guest; RSP and RIP live in the VMCS or VMCB.
/// `gpr` reads them by their number in instruction encodings.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct GuestRegs {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
}

/// What the vendors' entry code (`vmx/run.s`, `svm/run.s`) works on: the
/// guest's general registers and the FXSAVE areas of guest and host. The
/// offsets are fixed in the assembly.
#[repr(C, align(16))]
pub struct CpuContext {
    pub regs: GuestRegs,
    _pad: u64,
    guest_fx: [u8; 512],
    host_fx: [u8; 512],
}
const _: () = {
    assert!(core::mem::offset_of!(CpuContext, regs) == 0);
    assert!(core::mem::offset_of!(CpuContext, guest_fx) == 128);
    assert!(core::mem::offset_of!(CpuContext, host_fx) == 640);
};

impl GuestRegs {
    /// Register `n` (0 RAX, 1 RCX, 2 RDX, 3 RBX, 4 RSP, 5 RBP, 6 RSI, 7 RDI,
    /// 8-15 R8-R15); RSP is passed in, as it lives in the VMCS or VMCB.
    pub fn gpr(&self, n: u8, rsp: u64) -> u64 {
        match n & 15 {
            0 => self.rax,
            1 => self.rcx,
            2 => self.rdx,
            3 => self.rbx,
            4 => rsp,
            5 => self.rbp,
            6 => self.rsi,
            7 => self.rdi,
            8 => self.r8,
            9 => self.r9,
            10 => self.r10,
            11 => self.r11,
            12 => self.r12,
            13 => self.r13,
            14 => self.r14,
            _ => self.r15,
        }
    }
}

impl CpuContext {
    /// Zeroed registers, and the FPU/SSE state of a CPU after reset: x87
    /// control word 0x37f, MXCSR 0x1f80.
    pub fn new() -> Self {
        let mut guest_fx = [0u8; 512];
        guest_fx[0..2].copy_from_slice(&0x037fu16.to_le_bytes());
        guest_fx[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
        Self {
            regs: GuestRegs::default(),
            _pad: 0,
            guest_fx,
            host_fx: [0; 512],
        }
    }
}

impl Default for CpuContext {
    fn default() -> Self {
        Self::new()
    }
}

/// Why the guest stopped running, in words common to both vendors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Cpuid,
    /// XSETBV: XCR0 from EDX:EAX, the register ECX names.
    Xsetbv,
    Hypercall,
    Hlt,
    Io {
        port: u16,
        size: u8,
        input: bool,
        string: bool,
    },
    Msr {
        index: u32,
        write: bool,
    },
    /// An instruction the guest's CPU does not have (VMX, SVM, XSETBV: the
    /// guest sees none of them in CPUID): the guest gets #UD.
    VirtInstruction(&'static str),
    Exception {
        vector: u8,
        error_code: Option<u32>,
    },
    /// A second-level page fault: an EPT violation or an AMD nested page fault.
    NestedFault {
        gpa: u64,
        read: bool,
        write: bool,
        fetch: bool,
        mapped: bool,
    },
    TripleFault,
    /// A MOV to a control register, with the value written: CR4, which the
    /// hypervisor checks on both vendors, or on AMD a MOV to CR0/CR3/CR4 that
    /// the emulator refused (`svm::Vcpu::refused_cr_write`).
    CrWrite {
        cr: u8,
        value: u64,
    },
    /// INVD: would drop dirty cache lines of memory that is not the guest's
    /// alone; done as a no-op (as WBINVD would be).
    Invd,
    /// The watchdog's deadline passed: the vendor did not enter the guest again.
    Deadline,
    /// The host's own interrupt ended the guest's slice: the vendor's timer
    /// (the deadline is checked at the next entry) or a kick IPI (the run
    /// loop checks whether the guest is stopping).
    Timer,
    /// The vendor did not enter the guest: its state is one the hardware
    /// would have refused with #GP, which the emulator let through.
    IllegalState(&'static str),
    /// The emulator's #VMEXIT (exit `code`) saved the host's state over the
    /// guest's: the guest cannot go on (AMD under QEMU's multi-threaded TCG,
    /// docs/numa.md).
    LostState {
        code: u64,
    },
    /// Anything else, by the vendor's name for it: reported, and the guest stops.
    Unhandled {
        code: u64,
        name: &'static str,
    },
}

/// The watchdog's deadline (a TSC value), checked by each vendor before it
/// enters the guest, and how often the guest must come back besides (for
/// adaptive placement's sampler): the vendor's timer is armed for the
/// sooner of the two.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deadline {
    at: Option<u64>,
    every: Option<u64>,
}

impl Deadline {
    pub fn at(tsc: u64) -> Self {
        Self {
            at: Some(tsc),
            every: None,
        }
    }

    /// The guest also comes back every `ticks` of the TSC.
    pub fn every(self, ticks: u64) -> Self {
        Self {
            every: Some(ticks),
            ..self
        }
    }

    /// Calls `arm` with the TSC ticks left from `now` until the guest must
    /// come back; `false` once the deadline has passed. With neither a
    /// deadline nor a period nothing is armed.
    pub fn arm(self, now: u64, arm: impl FnOnce(u64)) -> bool {
        let left = match self.at.map(|at| at.saturating_sub(now)) {
            Some(0) => return false,
            left => left,
        };
        if let Some(ticks) = match (left, self.every) {
            (Some(l), Some(e)) => Some(l.min(e)),
            (l, e) => l.or(e),
        } {
            arm(ticks);
        }
        true
    }
}

/// An OS guest's clock for the hypervisor's periods (adaptive placement's):
/// the guest owns the timers, and no timer of the hypervisor's leaves its
/// interrupts alone on both vendors, so a period that passed is seen at the
/// guest's next exit, by the TSC read before each entry. The guest's own
/// timer interrupts' EOIs exit (docs/guests.md): a busy vCPU comes back at
/// least at its tick rate.
#[derive(Clone, Copy, Debug, Default)]
pub struct ExitClock {
    next: Option<u64>,
}

impl ExitClock {
    /// Whether a period of the `deadline` passed by `now`: true once per
    /// period, from the second (the first entry starts the clock).
    pub fn due(&mut self, now: u64, deadline: Deadline) -> bool {
        let Some(every) = deadline.every else {
            return false;
        };
        match self.next {
            Some(at) if now < at => false,
            next => {
                self.next = Some(now.saturating_add(every));
                next.is_some()
            }
        }
    }
}

/// The `entry-failure` event: the vendor's instruction, its error (number
/// and name) and the guest state it was asked to load, in the vendor's terms.
#[derive(Serialize)]
pub struct EntryFailed<'a, G: Serialize> {
    pub vcpu: u32,
    pub instruction: &'a str,
    pub code: Hex,
    pub reason: &'a str,
    pub guest: G,
}
impl<G: Serialize> Event for EntryFailed<'_, G> {
    const NAME: &'static str = "entry-failure";
}

/// The vendor could not enter the guest.
#[derive(Clone, Copy, Debug)]
pub struct EntryFailure {
    pub code: u64,
    pub reason: &'static str,
}

pub trait VirtCpu {
    fn run(&mut self) -> Result<Exit, EntryFailure>;
    fn regs(&mut self) -> &mut GuestRegs;
    fn rip(&self) -> u64;
    /// Moves RIP past the instruction that exited.
    fn skip_instruction(&mut self);
    /// Delivers an exception to the guest at the next entry.
    fn inject_exception(&mut self, vector: u8, error_code: Option<u32>);
    fn set_efer(&mut self, efer: u64);
    /// CR4 as the guest sees it, after a write the run loop checked.
    fn set_cr4(&mut self, cr4: u64);
    /// After `deadline` the guest is not entered again; the vendor arms a
    /// timer (VMX preemption timer, APIC timer) so that a guest that never
    /// exits is stopped there too.
    fn set_deadline(&mut self, deadline: Deadline);
    /// The guest's current privilege level and CR0.
    fn cpl(&self) -> u8;
    fn cr0(&self) -> u64;
    /// CR4 as the guest sees it (without the VMXE that VMX forces on).
    fn cr4(&self) -> u64;
    /// EFER as the guest may see it (without SVME on AMD).
    fn efer(&self) -> u64;
    /// Guest memory, for hypercalls that pass buffers.
    fn read_guest(&self, gpa: u64, out: &mut [u8]) -> bool;
    /// Forgets this CPU's cached translations of guest memory before the
    /// next entry (another vCPU changed the second-level table).
    fn flush_tlb(&mut self);
    /// Up to `out.len()` bytes of code at the guest's RIP (fewer where a
    /// page is not backed), and whether the code is 64-bit: for handlers
    /// that decode the instruction themselves (an APIC write).
    fn code(&mut self, out: &mut [u8]) -> (usize, bool);
    /// The length of the instruction that exited, as a handler decoded it:
    /// what `skip_instruction` then skips.
    fn set_instruction_len(&mut self, len: u64);
    /// RSP, which lives in the VMCS or VMCB.
    fn rsp(&self) -> u64;
    /// Emulates a MOV to CR0 the handler allowed (EFER.LMA follows PG and LME).
    fn set_cr0(&mut self, cr0: u64);
}

/// A vendor's virtualization extension (VMX, SVM): turned on for the whole
/// guest run, making the vCPU, turned off at the end.
pub trait Virtualization: Sized {
    /// The second-level table format (EPT, nested page tables).
    type Format: crate::ept::Format;
    type Cpu<'m>: VirtCpu;

    /// Turns the extension on, or says why this CPU cannot run a guest.
    fn enable() -> Result<Self, Refusal>;
    fn vcpu<'m>(
        &self,
        config: &GuestConfig,
        state: &guest::GuestState,
        memory: &'m dyn GuestRam,
        seat: Seat,
    ) -> Result<Self::Cpu<'m>, Refusal>;
    /// Turns the extension off; `exits` is reported.
    fn disable(self, exits: u32);
    /// Whether the CPU sets accessed and dirty bits in the second-level
    /// table's leaves.
    fn accessed_dirty(&self) -> bool;
}

/// Which vCPU a vendor's vCPU is, and the CPU it is pinned to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seat {
    pub vcpu: u32,
    pub cpu: usize,
}

/// How a guest run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestEnd {
    pub how: &'static str,
    /// The guest reported a failed check or exited with a non-zero status,
    /// or the hypervisor could not serve it.
    pub failed: bool,
    pub exits: u32,
}

/// Why no guest ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// This CPU lacks what the guest needs: the run is skipped, saying what.
    Unsupported(&'static str),
    /// Something went wrong that should not have.
    Failed(Message),
}

impl Refusal {
    /// `Failed`, with a message formatted (and truncated to fit).
    pub fn failed(args: core::fmt::Arguments) -> Self {
        let mut m = Message::new();
        let _ = core::fmt::Write::write_fmt(&mut m, args);
        Self::Failed(m)
    }
}

/// The VMX capability MSRs: the guest sees no VMX, so reading them faults.
pub const VMX_MSRS: core::ops::RangeInclusive<u32> = 0x480..=0x493;
/// AMD's SVM MSRs: VM_CR and VM_HSAVE_PA. The guest sees no SVM either.
pub const SVM_MSRS: [u32; 2] = [0xc001_0114, 0xc001_0117];
/// MSR reads that exit: the rest read the hardware (or the guest's loaded
/// values). EFER is read through the hypervisor so that the guest never sees
/// AMD's EFER.SVME, on either vendor alike.
pub const INTERCEPTED_MSR_READS: [core::ops::RangeInclusive<u32>; 5] = [
    0x3a..=0x3a, // IA32_FEATURE_CONTROL
    VMX_MSRS,
    exits::IA32_EFER..=exits::IA32_EFER,
    SVM_MSRS[0]..=SVM_MSRS[0],
    SVM_MSRS[1]..=SVM_MSRS[1],
];

/// Which MSR writes exit, for both vendors' maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsrWrites {
    All,
    Only(&'static [u32]),
}

/// A payload guest's every MSR write exits (its MSRs are emulated or
/// refused); an OS guest's only those the hypervisor owns.
pub fn msr_writes(os: bool) -> MsrWrites {
    if os {
        MsrWrites::Only(&INTERCEPTED_MSR_WRITES)
    } else {
        MsrWrites::All
    }
}

/// MSR writes that exit for an OS guest (every other write reaches the
/// hardware): EFER (SVME), the APIC base (no x2APIC, no move), and the
/// virtualization MSRs the guest does not see.
const INTERCEPTED_MSR_WRITES: [u32; 5] = [
    crate::arch::apic::IA32_APIC_BASE,
    0x3a,
    exits::IA32_EFER,
    SVM_MSRS[0],
    SVM_MSRS[1],
];

/// Runs the guest until it halts, exits, faults beyond repair or the
/// hypervisor cannot serve it; each exit goes to its handler (`exits.rs`),
/// whose action is applied here. Never panics on what the guest does.
pub fn run(
    cpu: &mut impl VirtCpu,
    config: &GuestConfig,
    machine: &dyn Machine,
    vcpu: u32,
) -> GuestEnd {
    let mut h = Handlers::new(cpu, config, machine, vcpu);
    let attention = machine.attention();
    // Unlike any value it takes: the first entry looks (the guest may be
    // stopping before this vCPU started).
    let mut seen = u64::MAX;
    let (how, failed) = loop {
        // One load per exit; a closer look only when something changed.
        let now = attention.load(core::sync::atomic::Ordering::Acquire);
        if now != seen {
            seen = now;
            // Another vCPU failed: this one was kicked, or had not entered yet.
            if machine.stopping() {
                break ("stopped", false);
            }
            h.service();
        }
        let exit = match h.cpu.run() {
            Ok(exit) => exit,
            Err(_) => break ("entry-failure", true),
        };
        match h.handle(exit) {
            Action::Resume => {}
            Action::Skip => h.cpu.skip_instruction(),
            Action::Inject(vector, code) => h.cpu.inject_exception(vector, code),
            Action::Stop { how, failed } => break (how, failed),
        }
    };
    h.trace.end(how, failed, machine.backed_pages());
    GuestEnd {
        how,
        failed,
        exits: h.trace.counts.total(),
    }
}

/// Parses a port list like `0x80,0x70,113`.
pub fn parse_ports(list: &str) -> Option<Vec<u16, 16>> {
    let mut ports = Vec::new();
    for item in list.split(',') {
        let port = match item.strip_prefix("0x") {
            Some(hex) => u16::from_str_radix(hex, 16).ok()?,
            None => item.parse().ok()?,
        };
        ports.push(port).ok()?;
    }
    Some(ports)
}

/// Small enough that `Result<_, Refusal>` stays cheap to return.
pub type Message = String<96>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_port_lists() {
        assert_eq!(parse_ports("0x80,113").unwrap().as_slice(), &[0x80, 113]);
        assert!(parse_ports("0x80,").is_none());
        assert!(parse_ports("0x10000").is_none());
        assert!(parse_ports("zz").is_none());
    }

    #[test]
    fn an_exit_clock_is_due_once_a_period() {
        let mut clock = ExitClock::default();
        assert!(!clock.due(5, Deadline::default()), "no period asked");
        let every = Deadline::default().every(100);
        assert!(!clock.due(10, every), "the first entry starts it");
        assert!(!clock.due(109, every));
        assert!(clock.due(110, every));
        assert!(!clock.due(111, every), "once");
        // Exits far apart: one period seen, the next from there.
        assert!(clock.due(500, every));
        assert!(!clock.due(599, every));
        assert!(clock.due(600, every));
    }
}

#[cfg(test)]
mod run_tests {
    use super::exits::{GP, IA32_EFER, UD};
    use super::*;
    use serde_json::{Value, json};
    use std::collections::VecDeque;

    /// A vCPU that replays scripted exits and records what the handler did.
    struct FakeCpu {
        exits: VecDeque<(Exit, GuestRegs)>,
        regs: GuestRegs,
        /// The registers as the handler left them after each exit.
        after: std::vec::Vec<GuestRegs>,
        skipped: u32,
        injected: std::vec::Vec<(u8, Option<u32>)>,
        efer: Option<u64>,
        cr4: Option<u64>,
        cpl: u8,
        started: bool,
        flushes: u32,
        /// The bytes at RIP, for handlers that decode.
        code: std::vec::Vec<u8>,
        instruction_len: Option<u64>,
        cr0: Option<u64>,
    }

    impl FakeCpu {
        fn new(exits: impl IntoIterator<Item = (Exit, GuestRegs)>) -> Self {
            Self {
                exits: exits.into_iter().collect(),
                regs: GuestRegs::default(),
                after: std::vec::Vec::new(),
                skipped: 0,
                injected: std::vec::Vec::new(),
                efer: None,
                cr4: None,
                cpl: 0,
                started: false,
                flushes: 0,
                code: std::vec::Vec::new(),
                instruction_len: None,
                cr0: None,
            }
        }
    }

    const MEMORY: &[u8] = b"hello from the guest";

    impl VirtCpu for FakeCpu {
        fn run(&mut self) -> Result<Exit, EntryFailure> {
            if self.started {
                self.after.push(self.regs);
            }
            self.started = true;
            let (exit, regs) = self.exits.pop_front().ok_or(EntryFailure {
                code: 0,
                reason: "script ended",
            })?;
            self.regs = regs;
            Ok(exit)
        }
        fn regs(&mut self) -> &mut GuestRegs {
            &mut self.regs
        }
        fn rip(&self) -> u64 {
            0x8000
        }
        fn skip_instruction(&mut self) {
            self.skipped += 1;
        }
        fn inject_exception(&mut self, vector: u8, error_code: Option<u32>) {
            self.injected.push((vector, error_code));
        }
        fn flush_tlb(&mut self) {
            self.flushes += 1;
        }
        fn set_efer(&mut self, efer: u64) {
            self.efer = Some(efer);
        }
        fn efer(&self) -> u64 {
            self.efer.unwrap_or(0xd01)
        }
        fn cpl(&self) -> u8 {
            self.cpl
        }
        fn set_deadline(&mut self, _deadline: Deadline) {}
        fn set_cr4(&mut self, cr4: u64) {
            self.cr4 = Some(cr4);
        }
        fn cr0(&self) -> u64 {
            0x8000_0011
        }
        fn cr4(&self) -> u64 {
            self.cr4.unwrap_or(0x20)
        }
        fn read_guest(&self, gpa: u64, out: &mut [u8]) -> bool {
            let Some(src) = MEMORY.get(gpa as usize..gpa as usize + out.len()) else {
                return false;
            };
            out.copy_from_slice(src);
            true
        }
        fn code(&mut self, out: &mut [u8]) -> (usize, bool) {
            let n = self.code.len().min(out.len());
            out[..n].copy_from_slice(&self.code[..n]);
            (n, true)
        }
        fn set_instruction_len(&mut self, len: u64) {
            self.instruction_len = Some(len);
        }
        fn rsp(&self) -> u64 {
            0x7000
        }
        fn set_cr0(&mut self, cr0: u64) {
            self.cr0 = Some(cr0);
        }
    }

    fn config() -> GuestConfig {
        GuestConfig {
            mode: guest::GuestMode::Long,
            memory: guest::DEFAULT_MEMORY,
            intercept_io: Vec::new(),
            watchdog_ms: 0,
            invalid_state: false,
            trace: trace::Level::Exits,
            placement: Default::default(),
            image: Image::Payload,
        }
    }

    fn regs(rax: u64, rbx: u64, rcx: u64) -> GuestRegs {
        GuestRegs {
            rax,
            rbx,
            rcx,
            ..Default::default()
        }
    }

    /// Guest RAM of `guest::DEFAULT_MEMORY` bytes whose pages are backed as asked.
    #[derive(Default)]
    struct FakeRam(
        std::cell::RefCell<std::collections::BTreeSet<u64>>,
        /// The TLB generation: each release bumps it, and the attention count.
        std::cell::Cell<u64>,
        core::sync::atomic::AtomicU64,
    );

    impl Backing for FakeRam {
        fn back(&self, gpa: u64, _vcpu: usize) -> Result<(), BackError> {
            if gpa >= guest::DEFAULT_MEMORY {
                return Err(BackError::Outside);
            }
            self.0.borrow_mut().insert(gpa & !0xfff);
            Ok(())
        }
        fn backed_pages(&self) -> u64 {
            self.0.borrow().len() as u64
        }
    }

    impl Machine for FakeRam {
        fn barrier(&self, _: &mut dyn FnMut()) -> bool {
            true
        }
        fn stopping(&self) -> bool {
            false
        }
        fn release(
            &self,
            _: usize,
            gpa: u64,
            service: &mut dyn FnMut(),
        ) -> Result<bool, BackError> {
            if gpa >= guest::DEFAULT_MEMORY {
                return Err(BackError::Outside);
            }
            let was = self.0.borrow_mut().remove(&(gpa & !0xfff));
            self.1.set(self.1.get() + 1);
            self.2.fetch_add(1, core::sync::atomic::Ordering::SeqCst);
            service();
            Ok(was)
        }
        fn tlb_generation(&self) -> u64 {
            self.1.get()
        }
        fn flushed(&self, _: usize, _: u64) {}
        fn attention(&self) -> &core::sync::atomic::AtomicU64 {
            &self.2
        }
    }

    /// Runs the script; returns how it ended and the events it wrote, parsed.
    fn run_script(cpu: &mut FakeCpu, config: &GuestConfig) -> (GuestEnd, std::vec::Vec<Value>) {
        let _ = serial::take_events();
        let end = run(cpu, config, &FakeRam::default(), 0);
        let events = serial::take_events()
            .iter()
            .map(|e| serde_json::from_str(e).expect("JSON"))
            .collect();
        (end, events)
    }

    /// Asserts that `event` has these fields with these values.
    fn has(event: &Value, fields: Value) {
        for (k, v) in fields.as_object().expect("an object") {
            assert_eq!(&event[k], v, "field {k} of {event}");
        }
    }

    #[test]
    fn cpuid_is_filtered_into_the_guest_registers() {
        let mut cpu = FakeCpu::new([
            (Exit::Cpuid, regs(0x4000_0000, 0, 0)),
            (Exit::Hlt, regs(0, 0, 0)),
        ]);
        let (end, e) = run_script(&mut cpu, &config());
        assert_eq!(
            end,
            GuestEnd {
                how: "hlt",
                failed: false,
                exits: 2
            }
        );
        has(
            &e[0],
            json!({"ev": "vmexit", "reason": "cpuid", "rip": "0x8000", "leaf": "0x40000000", "eax": "0x40000001"}),
        );
        has(&e[1], json!({"reason": "hlt"}));
        has(
            &e[2],
            json!({"ev": "guest-end", "how": "hlt", "failed": false, "exits": 2, "counts": {"cpuid": 1, "hlt": 1}}),
        );
        assert_eq!(
            (cpu.after[0].rax, cpu.after[0].rbx),
            (0x4000_0001, 0x6c61_6353),
            "the guest sees the filtered values"
        );
        assert_eq!(cpu.skipped, 1, "CPUID is skipped; HLT ends the guest");
    }

    #[test]
    fn hypercalls_report_print_judge_and_exit() {
        let mut cpu = FakeCpu::new([
            (Exit::Hypercall, regs(hypercall::REPORT, 0x5ca1ab1e, 7)),
            (Exit::Hypercall, regs(hypercall::PRINT, 6, 4)),
            (Exit::Hypercall, regs(hypercall::PRINT, 10, 100)), // runs past guest memory
            (Exit::Hypercall, regs(hypercall::RESULT, 1, 3)),
            (Exit::Hypercall, regs(99, 0, 0)),
            (Exit::Hypercall, regs(hypercall::EXIT, 0, 0)),
        ]);
        let (end, e) = run_script(&mut cpu, &config());
        assert_eq!(
            end,
            GuestEnd {
                how: "hypercall-exit",
                failed: true,
                exits: 6
            },
            "a failed check fails the guest"
        );
        has(
            &e[0],
            json!({"reason": "hypercall", "call": "report", "value": "0x5ca1ab1e", "tag": "0x7"}),
        );
        has(&e[1], json!({"call": "print", "text": "from"}));
        has(
            &e[2],
            json!({"call": "print", "text": "<outside guest memory>"}),
        );
        has(
            &e[3],
            json!({"call": "result", "passed": false, "check": "0x3"}),
        );
        has(&e[4], json!({"call": "unknown", "value": "0x63"}));
        has(&e[5], json!({"call": "exit", "status": "0x0"}));
        let results: std::vec::Vec<u64> = cpu.after.iter().map(|r| r.rax).collect();
        assert_eq!(results, [0, 0, hypercall::UNKNOWN, 0, hypercall::UNKNOWN]);
        assert_eq!(cpu.skipped, 5);
    }

    #[test]
    fn msr_accesses_are_emulated_or_fault() {
        let mut cpu = FakeCpu::new([
            (
                Exit::Msr {
                    index: 0x3a,
                    write: false,
                },
                regs(0, 0, 0x3a),
            ),
            (
                Exit::Msr {
                    index: 0x480,
                    write: false,
                },
                regs(0, 0, 0x480),
            ),
            (
                Exit::Msr {
                    index: IA32_EFER,
                    write: true,
                },
                regs(0x500, 0, IA32_EFER.into()),
            ),
            (
                Exit::Msr {
                    index: 0x1b,
                    write: true,
                },
                regs(0, 0, 0x1b),
            ),
            (Exit::Hlt, GuestRegs::default()),
        ]);
        let (_, e) = run_script(&mut cpu, &config());
        assert_eq!(cpu.injected, [(GP, Some(0)), (GP, Some(0))]);
        assert_eq!(cpu.efer, Some(0x500));
        assert_eq!(cpu.skipped, 2, "only emulated accesses move RIP");
        assert_eq!(
            (cpu.after[0].rax, cpu.after[0].rdx),
            (1, 0),
            "IA32_FEATURE_CONTROL: locked, VMX off"
        );
        has(
            &e[0],
            json!({"reason": "msr", "msr": "0x3a", "dir": "read", "value": "0x1", "action": "emulated"}),
        );
        has(&e[1], json!({"msr": "0x480", "action": "gp"}));
        has(
            &e[2],
            json!({"msr": "0xc0000080", "dir": "write", "value": "0x500", "action": "emulated"}),
        );
        has(
            &e[3],
            json!({"msr": "0x1b", "dir": "write", "action": "gp"}),
        );
    }

    #[test]
    fn intercepted_io_reads_all_ones_and_string_io_faults() {
        let mut cpu = FakeCpu::new([
            (
                Exit::Io {
                    port: 0x71,
                    size: 1,
                    input: true,
                    string: false,
                },
                regs(0x1200, 0, 0),
            ),
            (
                Exit::Io {
                    port: 0x80,
                    size: 2,
                    input: false,
                    string: false,
                },
                regs(0xabcd_1234, 0, 0),
            ),
            (
                Exit::Io {
                    port: 0x80,
                    size: 1,
                    input: false,
                    string: true,
                },
                GuestRegs::default(),
            ),
            (Exit::Hlt, GuestRegs::default()),
        ]);
        let mut c = config();
        c.intercept_io.push(0x80).unwrap();
        let (end, e) = run_script(&mut cpu, &c);
        assert_eq!((end.how, end.failed), ("hlt", false));
        assert_eq!(cpu.injected, [(GP, Some(0))], "string I/O: #GP");
        assert_eq!(
            cpu.after[0].rax, 0x12ff,
            "IN without a device reads all ones"
        );
        has(
            &e[0],
            json!({"reason": "io", "port": "0x71", "size": 1, "dir": "in", "action": "blocked"}),
        );
        has(
            &e[1],
            json!({"port": "0x80", "size": 2, "dir": "out", "value": "0x1234", "action": "reported"}),
        );
        has(&e[2], json!({"port": "0x80", "action": "gp"}));
    }

    #[test]
    fn virtualization_instructions_get_ud_and_faults_stop_the_guest() {
        let fault = Exit::NestedFault {
            gpa: 0x3000_0000,
            read: true,
            write: false,
            fetch: false,
            mapped: false,
        };
        let mut cpu = FakeCpu::new([
            (Exit::VirtInstruction("vmxon"), GuestRegs::default()),
            (fault, GuestRegs::default()),
        ]);
        let (end, e) = run_script(&mut cpu, &config());
        assert_eq!(cpu.injected, [(UD, None)]);
        assert_eq!((end.how, end.failed), ("ept-violation", false));
        has(
            &e[0],
            json!({"reason": "exception", "vector": 6, "instruction": "vmxon", "action": "injected"}),
        );
        has(
            &e[1],
            json!({"reason": "ept-violation", "gpa": "0x30000000", "access": "read", "mapped": false}),
        );
    }

    #[test]
    fn an_entry_failure_or_an_unknown_exit_fails_the_guest() {
        let mut cpu = FakeCpu::new([(
            Exit::Unhandled {
                code: 55,
                name: "xsetbv",
            },
            GuestRegs::default(),
        )]);
        let (end, e) = run_script(&mut cpu, &config());
        assert_eq!((end.how, end.failed), ("unhandled", true));
        has(
            &e[0],
            json!({"reason": "unhandled", "name": "xsetbv", "code": "0x37"}),
        );
        let (end, _) = run_script(&mut FakeCpu::new([]), &config());
        assert_eq!(
            end,
            GuestEnd {
                how: "entry-failure",
                failed: true,
                exits: 0
            }
        );
    }

    #[test]
    fn hypercalls_from_user_mode_are_denied() {
        let mut cpu = FakeCpu::new([
            (Exit::Hypercall, regs(hypercall::EXIT, 0, 0)),
            (Exit::Hlt, GuestRegs::default()),
        ]);
        cpu.cpl = 3;
        let (end, e) = run_script(&mut cpu, &config());
        assert_eq!(end.how, "hlt", "the exit call was not honoured");
        has(&e[0], json!({"call": "denied", "cpl": 3, "value": "0x3"}));
        assert_eq!(cpu.after[0].rax, hypercall::UNKNOWN);
    }

    #[test]
    fn bad_efer_writes_and_owned_cr_bits_get_gp() {
        let efer_write = |value: u64| {
            (
                Exit::Msr {
                    index: IA32_EFER,
                    write: true,
                },
                GuestRegs {
                    rax: value & 0xffff_ffff,
                    rdx: value >> 32,
                    rcx: IA32_EFER.into(),
                    ..Default::default()
                },
            )
        };
        let mut cpu = FakeCpu::new([
            efer_write(0xd01 | 1 << 12), // SVME
            efer_write(0x501),           // LME cleared... kept: LMA stays, LME set
            efer_write(0x001),           // LME cleared in long mode
            efer_write(1 << 40),         // reserved
            (
                Exit::CrWrite {
                    cr: 4,
                    value: 0x2020,
                },
                GuestRegs::default(),
            ),
            (
                Exit::CrWrite {
                    cr: 4,
                    value: 0x620,
                },
                GuestRegs::default(),
            ),
            (Exit::Invd, GuestRegs::default()),
            (Exit::Hlt, GuestRegs::default()),
        ]);
        let (end, e) = run_script(&mut cpu, &config());
        assert_eq!((end.how, end.failed), ("hlt", false));
        assert_eq!(cpu.injected, [(GP, Some(0)); 4]);
        assert_eq!(cpu.efer, Some(0x501), "the one valid write");
        assert_eq!(cpu.cr4, Some(0x620));
        assert_eq!(cpu.skipped, 3, "EFER, CR4, INVD");
        has(&e[5], json!({"reason": "cr-write", "action": "emulated"}));
        has(&e[6], json!({"reason": "invd", "action": "ignored"}));
        has(&e[0], json!({"msr": "0xc0000080", "action": "gp"}));
        has(&e[1], json!({"action": "emulated", "value": "0x501"}));
        has(
            &e[4],
            json!({"reason": "cr-write", "cr": 4, "action": "gp"}),
        );
    }

    #[test]
    fn power_off_and_reset_requests_end_the_guest() {
        let out = |port: u16, value: u64| {
            (
                Exit::Io {
                    port,
                    size: 2,
                    input: false,
                    string: false,
                },
                regs(value, 0, 0),
            )
        };
        for (port, value, how) in [
            (0x604, 0x2000, "power-off"),
            (0xb004, 0x3c00, "power-off"),
            (0xcf9, 0x6, "reset"),
            (0x64, 0xfe, "reset"),
        ] {
            let mut cpu = FakeCpu::new([out(0xcf8, 0x8000_0000), out(port, value)]);
            let (end, e) = run_script(&mut cpu, &config());
            assert_eq!((end.how, end.failed), (how, false), "{port:#x}");
            has(&e[0], json!({"port": "0xcf8", "action": "blocked"}));
            has(&e[1], json!({"action": how}));
            has(&e[2], json!({"ev": "guest-end", "how": how}));
        }
    }

    #[test]
    fn the_watchdog_ends_the_guest() {
        let mut cpu = FakeCpu::new([
            (Exit::Cpuid, GuestRegs::default()),
            (Exit::Deadline, GuestRegs::default()),
        ]);
        let mut c = config();
        c.watchdog_ms = 500;
        let (end, e) = run_script(&mut cpu, &c);
        assert_eq!((end.how, end.failed, end.exits), ("watchdog", true, 2));
        has(&e[1], json!({"reason": "watchdog", "value": "0x1f4"}));
    }

    #[test]
    fn a_state_the_vendor_will_not_enter_ends_the_guest() {
        let mut cpu = FakeCpu::new([(
            Exit::IllegalState("CR0.NW set without CR0.CD"),
            GuestRegs::default(),
        )]);
        let (end, e) = run_script(&mut cpu, &config());
        assert_eq!((end.how, end.failed), ("illegal-state", true));
        has(
            &e[0],
            json!({"reason": "illegal-state", "name": "CR0.NW set without CR0.CD"}),
        );
    }

    #[test]
    fn a_failed_guest_assert_reports_its_line_and_ends_the_guest() {
        // MEMORY holds "hello from the guest" at 0; the text runs to its end.
        let assert = GuestRegs {
            rax: hypercall::ASSERT,
            rbx: 5,
            rcx: 3,
            rdx: 6,
            rsi: 42,
            ..Default::default()
        };
        let mut cpu = FakeCpu::new([(Exit::Hypercall, assert)]);
        let (end, e) = run_script(&mut cpu, &config());
        assert_eq!((end.how, end.failed), ("assert", true));
        has(
            &e[0],
            json!({"call": "assert", "text": "from the guest", "left": "0x5", "right": "0x3", "line": 42}),
        );
    }

    #[test]
    fn by_default_only_the_guests_messages_and_its_end_are_events() {
        let mut cpu = FakeCpu::new([
            (Exit::Cpuid, regs(0, 0, 0)),
            (Exit::Hypercall, regs(hypercall::NOP, 0, 0)),
            (Exit::Hypercall, regs(hypercall::REPORT, 1, 2)),
            (Exit::Cpuid, regs(1, 0, 0)),
            (Exit::VirtInstruction("vmxon"), GuestRegs::default()),
            (Exit::TripleFault, GuestRegs::default()),
        ]);
        let mut c = config();
        c.trace = trace::Level::Summary;
        let (end, e) = run_script(&mut cpu, &c);
        assert_eq!((end.how, end.exits), ("triple-fault", 6));
        assert_eq!(e.len(), 3, "{e:?}");
        has(
            &e[0],
            json!({"reason": "hypercall", "call": "report", "value": "0x1"}),
        );
        has(&e[1], json!({"reason": "triple-fault"}));
        has(
            &e[2],
            json!({"ev": "guest-end", "exits": 6, "counts": {"cpuid": 2, "hypercall": 2, "exception": 1, "triple-fault": 1}}),
        );
        assert_eq!(cpu.after[1].rax, 0, "nop returns 0");
    }

    #[test]
    fn a_failed_guest_leaves_its_last_exits() {
        let mut cpu = FakeCpu::new(
            (0..20u64)
                .map(|leaf| (Exit::Cpuid, regs(leaf, 0, 0)))
                .chain([(Exit::Deadline, GuestRegs::default())]),
        );
        let mut c = config();
        c.trace = trace::Level::Summary;
        let (end, e) = run_script(&mut cpu, &c);
        assert_eq!((end.how, end.failed), ("watchdog", true));
        has(&e[1], json!({"ev": "recent-exits", "vcpu": 0}));
        let ring = e[1]["exits"].as_array().unwrap();
        assert_eq!(ring.len(), trace::RING);
        has(&ring[0], json!({"reason": "cpuid", "info": "0x5"}));
        has(&ring[trace::RING - 1], json!({"reason": "watchdog"}));
    }

    #[test]
    fn a_first_access_to_guest_ram_backs_it_without_an_event() {
        let fault = |gpa: u64, mapped: bool| {
            (
                Exit::NestedFault {
                    gpa,
                    read: false,
                    write: true,
                    fetch: false,
                    mapped,
                },
                GuestRegs::default(),
            )
        };
        let mut cpu = FakeCpu::new([
            fault(0x10_0008, false),
            fault(0x10_1000, false),
            fault(0x10_0010, true), // backed, yet refused: not a missing page
        ]);
        let (end, e) = run_script(&mut cpu, &config());
        assert_eq!(
            (end.how, end.failed, end.exits),
            ("ept-violation", false, 1)
        );
        assert_eq!(e.len(), 2, "{e:?}");
        has(
            &e[0],
            json!({"reason": "ept-violation", "gpa": "0x100010", "mapped": true}),
        );
        has(&e[1], json!({"ev": "guest-end", "backed": 2}));
        assert_eq!(cpu.skipped, 0, "the faulting access runs again");
    }

    #[test]
    fn a_released_page_is_unbacked_and_the_tlb_flushed() {
        let release = |gpa| regs(hypercall::RELEASE, gpa, 0);
        let mut cpu = FakeCpu::new([
            (
                Exit::NestedFault {
                    gpa: 0x10_0000,
                    read: true,
                    write: false,
                    fetch: false,
                    mapped: false,
                },
                GuestRegs::default(),
            ),
            (Exit::Hypercall, release(0x10_0000)),
            (Exit::Hypercall, release(0x4000_0000)), // not guest RAM
            (Exit::Hlt, GuestRegs::default()),
        ]);
        let (end, e) = run_script(&mut cpu, &config());
        assert_eq!(end.how, "hlt");
        has(&e[0], json!({"call": "release", "gpa": "0x100000"}));
        has(&e[3], json!({"ev": "guest-end", "backed": 0, "flushes": 1}));
        assert_eq!(cpu.after[1].rax, 0);
        assert_eq!(cpu.after[2].rax, hypercall::UNKNOWN);
        assert_eq!(cpu.flushes, 1, "the one release flushed this vCPU's TLB");
    }
}
