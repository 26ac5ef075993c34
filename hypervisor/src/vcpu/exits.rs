//! The exit handlers: one per kind of exit, each deciding an `Action` and
//! telling the trace what happened. The run loop (`vcpu::run`) applies the
//! action; the vendors never see these.

use super::hypercall::{self, Hypercall};
use super::machine::BackError;
use super::machine::Machine;
use super::trace::{Notable, Reason, Tracer, VmExit};
use super::{Exit, GuestConfig, Trap, VirtCpu, Written, checks, cpuid, decode, guest, io};
use crate::arch::apic;
use crate::chipset;
use crate::ept::MapError;
use crate::event::Hex;
use core::sync::atomic::Ordering;

pub const UD: u8 = 6;
pub const GP: u8 = 13;

const IA32_FEATURE_CONTROL: u32 = 0x3a;
pub const IA32_EFER: u32 = 0xc000_0080;

/// What the run loop does after an exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Enter the guest again where it stopped.
    Resume,
    /// Move RIP past the instruction that exited, then enter again.
    Skip,
    /// Deliver an exception, then enter again.
    Inject(u8, Option<u32>),
    /// The guest is done: how it ended, and whether it failed.
    Stop { how: &'static str, failed: bool },
}

/// One vCPU's exit handling: its vCPU, the guest's configuration, whether
/// the guest has reported a failure, and its trace.
pub struct Handlers<'a, C: VirtCpu> {
    pub cpu: &'a mut C,
    config: &'a GuestConfig,
    pub machine: &'a dyn Machine,
    /// The guest reported a failed check or a non-zero exit status.
    failed: bool,
    pub trace: Tracer,
    /// The TLB generation this vCPU last flushed for (`Machine`).
    tlb_seen: u64,
}

fn host_cpuid(leaf: u32, subleaf: u32) -> [u32; 4] {
    let r = raw_cpuid::cpuid!(leaf, subleaf);
    [r.eax, r.ebx, r.ecx, r.edx]
}

impl<'a, C: VirtCpu> Handlers<'a, C> {
    pub fn new(
        cpu: &'a mut C,
        config: &'a GuestConfig,
        machine: &'a dyn Machine,
        vcpu: u32,
    ) -> Self {
        Self {
            cpu,
            config,
            machine,
            failed: false,
            trace: Tracer::new(config.trace, vcpu),
            tlb_seen: 0,
        }
    }

    /// Answers the machine's requests before the next entry: a TLB flush
    /// another vCPU asked for. Also called while this vCPU waits.
    pub fn service(&mut self) {
        let generation = self.machine.tlb_generation();
        if generation != self.tlb_seen {
            self.cpu.flush_tlb();
            self.trace.flushes += 1;
            self.tlb_seen = generation;
            self.machine.flushed(self.trace.vcpu as usize, generation);
        }
    }

    fn stop(&self, how: &'static str, failed: bool) -> Action {
        Action::Stop {
            how,
            failed: self.failed || failed,
        }
    }

    pub fn handle(&mut self, exit: Exit) -> Action {
        let rip = self.cpu.rip();
        match exit {
            Exit::Cpuid => self.cpuid(rip),
            Exit::Xsetbv => self.xsetbv(rip),
            Exit::Hypercall => self.hypercall(rip),
            Exit::Hlt => {
                self.trace.exit(Reason::Hlt, rip, 0, Notable::Yes, |e| e);
                self.stop("hlt", false)
            }
            Exit::Io {
                port,
                size,
                input,
                string,
            } => self.io(rip, port, size, input, string),
            Exit::Msr { index, write } => self.msr(rip, index, write),
            Exit::VirtInstruction(name) => {
                self.trace
                    .exit(Reason::Exception, rip, UD.into(), Notable::No, |e| VmExit {
                        vector: Some(UD),
                        name: Some(crate::arch::trap::vector_name(UD.into())),
                        instruction: Some(name),
                        action: Some("injected"),
                        ..e
                    });
                Action::Inject(UD, None)
            }
            Exit::Exception { vector, error_code } => {
                self.trace
                    .exit(Reason::Exception, rip, vector.into(), Notable::Yes, |e| {
                        VmExit {
                            vector: Some(vector),
                            name: Some(crate::arch::trap::vector_name(vector.into())),
                            error_code: error_code.map(|c| Hex(c.into())),
                            ..e
                        }
                    });
                self.stop("exception", true)
            }
            Exit::NestedFault {
                gpa,
                read,
                write,
                fetch,
                mapped,
            } => self.nested_fault(rip, gpa, read, write, fetch, mapped),
            Exit::CrWrite { cr, value } => self.cr_write(rip, cr, value),
            Exit::Invd => {
                self.trace
                    .exit(Reason::Invd, rip, 0, Notable::No, |e| VmExit {
                        action: Some("ignored"),
                        ..e
                    });
                Action::Skip
            }
            Exit::Timer => {
                // Kept in the ring (not counted): a failed guest's last exits
                // show every time it left the guest.
                self.trace.ring_only(Reason::Interrupt, rip);
                // Nothing for the guest; the sampler's look if one is due.
                let (machine, vcpu) = (self.machine, self.trace.vcpu as usize);
                machine.tick(vcpu, &mut || self.service());
                Action::Resume
            }
            Exit::Deadline => {
                let ms = self.config.watchdog_ms;
                self.trace
                    .exit(Reason::Watchdog, rip, ms, Notable::Yes, |e| VmExit {
                        value: Some(Hex(ms)),
                        ..e
                    });
                self.stop("watchdog", true)
            }
            Exit::IllegalState(why) => {
                self.trace
                    .exit(Reason::IllegalState, rip, 0, Notable::Yes, |e| VmExit {
                        name: Some(why),
                        ..e
                    });
                self.stop("illegal-state", true)
            }
            Exit::TripleFault => {
                self.trace
                    .exit(Reason::TripleFault, rip, 0, Notable::Yes, |e| e);
                // A test payload may mean to; an OS kernel has failed.
                self.stop("triple-fault", self.config.os())
            }
            Exit::LostState { code } => {
                self.trace
                    .exit(Reason::LostState, rip, code, Notable::Yes, |e| VmExit {
                        code: Some(Hex(code)),
                        ..e
                    });
                self.stop("lost-state", true)
            }
            Exit::Unhandled { code, name } => {
                self.trace
                    .exit(Reason::Unhandled, rip, code, Notable::Yes, |e| VmExit {
                        name: Some(name),
                        code: Some(Hex(code)),
                        ..e
                    });
                self.stop("unhandled", true)
            }
        }
    }

    /// A second-level fault: a page of guest RAM accessed for the first
    /// time is backed and the guest resumes, with no event (the count is in
    /// `guest-end`'s `backed`); anything else stops the guest.
    fn nested_fault(
        &mut self,
        rip: u64,
        gpa: u64,
        read: bool,
        write: bool,
        fetch: bool,
        mapped: bool,
    ) -> Action {
        if write
            && mapped
            && let Some(trap) = self.machine.write_trap(gpa)
        {
            return self.trapped_write(rip, gpa, trap);
        }
        let (machine, vcpu) = (self.machine, self.trace.vcpu as usize);
        // A page the sampler revoked: seen, and given back; one adaptive
        // placement replicated: one again, and written; one being migrated:
        // the write waits (is retried) until it is remapped, the TLB
        // flushes this vCPU answers meanwhile letting it be.
        let resumed = if machine.hint(vcpu, gpa, write) {
            Some("sampled")
        } else if write && mapped && machine.collapse(vcpu, gpa, &mut || self.service()) {
            Some("collapsed")
        } else if write && mapped && machine.retry_write(gpa) {
            Some("retried")
        } else {
            None
        };
        if let Some(action) = resumed {
            self.trace
                .exit(Reason::EptViolation, rip, gpa, Notable::No, |e| VmExit {
                    gpa: Some(Hex(gpa)),
                    access: Some(if write { "write" } else { "read" }),
                    mapped: Some(mapped),
                    action: Some(action),
                    ..e
                });
            return Action::Resume;
        }
        let outcome = if mapped {
            Err(BackError::Present)
        } else {
            self.machine.back(gpa, self.trace.vcpu as usize)
        };
        let problem = match outcome {
            Ok(()) => return Action::Resume,
            Err(BackError::Outside | BackError::Present | BackError::Pinned) => None,
            Err(BackError::Map(MapError::OutOfMemory)) => Some("out of host memory"),
            Err(BackError::Map(_)) => Some("cannot map"),
        };
        let access = if fetch {
            "fetch"
        } else if write {
            "write"
        } else if read {
            "read"
        } else {
            "none"
        };
        self.trace
            .exit(Reason::EptViolation, rip, gpa, Notable::Yes, |e| VmExit {
                gpa: Some(Hex(gpa)),
                access: Some(access),
                mapped: Some(mapped),
                action: problem,
                ..e
            });
        self.stop("ept-violation", problem.is_some())
    }

    /// An OS guest's write to a device page the hypervisor checks: the
    /// store is decoded and done by the machine (`Machine::trapped_write`),
    /// the guest resumes after it. An instruction that is not a plain store
    /// stops the guest.
    fn trapped_write(&mut self, rip: u64, gpa: u64, trap: Trap) -> Action {
        let reason = match trap {
            Trap::Apic => Reason::ApicWrite,
            _ => Reason::DeviceWrite,
        };
        let mut code = [0u8; 15];
        let (n, long) = self.cpu.code(&mut code);
        let store = decode::store(&code[..n], long);
        let value = match store.map(|s| s.source) {
            Some(decode::Source::Reg(r)) => {
                let rsp = self.cpu.rsp();
                Some(self.cpu.regs().gpr(r, rsp))
            }
            Some(decode::Source::Imm(v)) => Some(v),
            None => None,
        };
        let (Some(store), Some(value)) = (store, value) else {
            self.trace.exit(reason, rip, gpa, Notable::Yes, |e| VmExit {
                gpa: Some(Hex(gpa)),
                name: Some(trap.name()),
                action: Some("not a store the hypervisor decodes"),
                ..e
            });
            return self.stop("unhandled", true);
        };
        let value = value & (u64::MAX >> (64 - 8 * u32::from(store.size)));
        let written =
            self.machine
                .trapped_write(self.trace.vcpu as usize, trap, gpa, store.size, value);
        let notable = match written {
            Written::Done => Notable::No,
            Written::Filtered | Written::Dropped => self.trace.refusal(),
        };
        self.trace.exit(reason, rip, gpa, notable, |e| VmExit {
            gpa: Some(Hex(gpa)),
            size: Some(store.size),
            value: Some(Hex(value)),
            name: (trap != Trap::Apic).then_some(trap.name()),
            action: (written != Written::Done).then_some(written.name()),
            ..e
        });
        self.cpu.set_instruction_len(store.len as u64);
        Action::Skip
    }

    fn cpuid(&mut self, rip: u64) -> Action {
        let osxsave = self.cpu.cr4() & checks::CR4_OSXSAVE != 0;
        let regs = self.cpu.regs();
        let (leaf, subleaf) = (regs.rax as u32, regs.rcx as u32);
        let [a, b, c, d] = cpuid::filter(leaf, subleaf, host_cpuid(leaf, subleaf), osxsave);
        (regs.rax, regs.rbx, regs.rcx, regs.rdx) = (a.into(), b.into(), c.into(), d.into());
        self.trace
            .exit(Reason::Cpuid, rip, leaf.into(), Notable::No, |e| VmExit {
                leaf: Some(Hex(leaf.into())),
                subleaf: Some(Hex(subleaf.into())),
                eax: Some(Hex(a.into())),
                ebx: Some(Hex(b.into())),
                ecx: Some(Hex(c.into())),
                edx: Some(Hex(d.into())),
                ..e
            });
        Action::Skip
    }

    /// XSETBV: checked as the CPU checks it, then done on this CPU, whose
    /// XCR0 is the guest's while it runs (the host uses no XSAVE state).
    fn xsetbv(&mut self, rip: u64) -> Action {
        let regs = *self.cpu.regs();
        let value = (regs.rdx << 32) | (regs.rax & 0xffff_ffff);
        let (action, then) = if self.cpu.cr4() & checks::CR4_OSXSAVE == 0 {
            ("ud", Action::Inject(UD, None))
        } else if self.cpu.cpl() != 0 {
            ("gp", Action::Inject(GP, Some(0)))
        } else {
            match cpuid::xsetbv(regs.rcx as u32, value, cpuid::xcr0_supported()) {
                Some(xcr0) => {
                    crate::cpu::set_xcr0(xcr0);
                    ("emulated", Action::Skip)
                }
                None => ("gp", Action::Inject(GP, Some(0))),
            }
        };
        self.trace
            .exit(Reason::Xsetbv, rip, value, Notable::No, |e| VmExit {
                value: Some(Hex(value)),
                action: Some(action),
                ..e
            });
        then
    }

    fn hypercall(&mut self, rip: u64) -> Action {
        let cpl = self.cpu.cpl();
        let regs = self.cpu.regs();
        let nr = regs.rax;
        // Only the guest's kernel speaks to the hypervisor (as KVM does).
        let call = match cpl {
            0 => Hypercall::decode(regs),
            _ => Hypercall::Denied { nr },
        };
        let base = |e| VmExit {
            call: Some(call.name()),
            cpl: (cpl != 0).then_some(cpl),
            ..e
        };
        let mut text = [0u8; hypercall::PRINT_MAX as usize];
        let mut result = 0;
        let t = &mut self.trace;
        match call {
            Hypercall::Report { value, tag } => {
                t.exit(Reason::Hypercall, rip, nr, Notable::Yes, |e| VmExit {
                    value: Some(Hex(value)),
                    tag: Some(Hex(tag)),
                    ..base(e)
                })
            }
            Hypercall::Print { gpa, len } => {
                let n = len.min(hypercall::PRINT_MAX) as usize;
                let shown = if self.cpu.read_guest(gpa, &mut text[..n]) {
                    core::str::from_utf8(&text[..n]).unwrap_or("<not UTF-8>")
                } else {
                    result = hypercall::UNKNOWN;
                    "<outside guest memory>"
                };
                t.exit(Reason::Hypercall, rip, nr, Notable::Yes, |e| VmExit {
                    text: Some(shown),
                    ..base(e)
                });
            }
            Hypercall::Result { passed, check } => {
                self.failed |= !passed;
                t.exit(Reason::Hypercall, rip, nr, Notable::Yes, |e| VmExit {
                    passed: Some(passed),
                    check: Some(Hex(check)),
                    ..base(e)
                })
            }
            Hypercall::Exit { status } => {
                t.exit(Reason::Hypercall, rip, nr, Notable::Yes, |e| VmExit {
                    status: Some(Hex(status)),
                    ..base(e)
                });
                return self.stop("hypercall-exit", status != 0);
            }
            Hypercall::Assert {
                left,
                right,
                text: gpa,
                line,
            } => {
                // Up to the NUL, byte by byte: the text may end at the end of guest RAM.
                let n = (0..text.len())
                    .take_while(|&i| {
                        self.cpu.read_guest(gpa + i as u64, &mut text[i..=i]) && text[i] != 0
                    })
                    .count();
                let shown = core::str::from_utf8(&text[..n]).unwrap_or("<not UTF-8>");
                t.exit(Reason::Hypercall, rip, nr, Notable::Yes, |e| VmExit {
                    text: Some(shown),
                    left: Some(Hex(left)),
                    right: Some(Hex(right)),
                    line: Some(line),
                    ..base(e)
                });
                return self.stop("assert", true);
            }
            Hypercall::Nop => t.exit(Reason::Hypercall, rip, nr, Notable::No, base),
            Hypercall::Barrier => {
                t.exit(Reason::Hypercall, rip, nr, Notable::No, base);
                let machine = self.machine;
                if !machine.barrier(&mut || self.service()) {
                    return self.stop("stopped", false);
                }
            }
            Hypercall::Release { gpa } => {
                t.exit(Reason::Hypercall, rip, nr, Notable::No, |e| VmExit {
                    gpa: Some(Hex(gpa)),
                    ..base(e)
                });
                let (machine, vcpu) = (self.machine, self.trace.vcpu as usize);
                if machine.release(vcpu, gpa, &mut || self.service()).is_err() {
                    result = hypercall::UNKNOWN; // not guest RAM, or pinned
                }
            }
            Hypercall::Migrate { gpa, node } => {
                t.exit(Reason::Hypercall, rip, nr, Notable::No, |e| VmExit {
                    gpa: Some(Hex(gpa)),
                    value: Some(Hex(node)),
                    ..base(e)
                });
                let (machine, vcpu) = (self.machine, self.trace.vcpu as usize);
                let domain = u32::try_from(node).unwrap_or(u32::MAX);
                if machine
                    .migrate(vcpu, gpa, domain, &mut || self.service())
                    .is_err()
                {
                    result = hypercall::UNKNOWN; // not guest RAM, not backed, no such node, pinned
                }
            }
            Hypercall::Unknown { nr } | Hypercall::Denied { nr } => {
                result = hypercall::UNKNOWN;
                t.exit(Reason::Hypercall, rip, nr, Notable::No, |e| VmExit {
                    value: Some(Hex(nr)),
                    ..base(e)
                })
            }
        }
        self.cpu.regs().rax = result;
        Action::Skip
    }

    fn io(&mut self, rip: u64, port: u16, size: u8, input: bool, string: bool) -> Action {
        let dir = if input { "in" } else { "out" };
        let event = |value: Option<u64>, action: &'static str| {
            move |e: VmExit<'static>| VmExit {
                port: Some(Hex(port.into())),
                size: Some(size),
                dir: Some(dir),
                value: value.map(Hex),
                action: Some(action),
                ..e
            }
        };
        if string {
            // No intercepted port takes string I/O: #GP, as for a port the
            // TSS's I/O permission bitmap denies.
            let notable = self.trace.refusal();
            let f = event(None, "gp");
            self.trace.exit(Reason::Io, rip, port.into(), notable, f);
            return Action::Inject(GP, Some(0));
        }
        let mask = u64::MAX >> (64 - 8 * u32::from(size.clamp(1, 4)));
        let os = self.config.os();
        let value = self.cpu.regs().rax & mask;
        let chipset = crate::chipset::get();
        let reported = &self.config.intercept_io;
        let action = io::classify(chipset, port, size, input, value, reported, os);
        let state = self.machine.port_state();
        if port == chipset::KBC_COMMAND && !input {
            // Any command ends a "write output port" that waited for its byte.
            state.inspect(|s| s.kbc_output.store(false, Ordering::SeqCst));
        }
        let forward = || {
            if input {
                crate::arch::ports::read(port, size).into()
            } else {
                crate::arch::ports::write(port, size, value as u32);
                mask
            }
        };
        // How the access is reported: quietly, always, or as a refusal.
        enum Seen {
            Quiet,
            Always,
            Refused,
        }
        let refused_if_os = if os { Seen::Refused } else { Seen::Quiet };
        let reset = || ("reset", Seen::Always, self.stop("reset", false));
        let mut read = mask; // no device: all ones
        let (name, seen, then) = match action {
            io::PortAction::Reported => ("reported", Seen::Always, Action::Skip),
            io::PortAction::Blocked => ("blocked", refused_if_os, Action::Skip),
            io::PortAction::Forward => {
                read = forward();
                ("forwarded", Seen::Quiet, Action::Skip)
            }
            io::PortAction::ForwardAs(v) => {
                crate::arch::ports::write(port, size, v);
                ("filtered", Seen::Refused, Action::Skip)
            }
            io::PortAction::PowerOff => ("power-off", Seen::Always, self.stop("power-off", false)),
            io::PortAction::Reset => reset(),
            io::PortAction::DebugExit => (
                "debug-exit",
                Seen::Always,
                self.stop("debug-exit", value != 0),
            ),
            io::PortAction::KbcWriteOutput => {
                state.inspect(|s| s.kbc_output.store(true, Ordering::SeqCst));
                ("emulated", Seen::Refused, Action::Skip)
            }
            io::PortAction::KbcData => {
                let output = state.is_some_and(|s| s.kbc_output.swap(false, Ordering::SeqCst));
                match output {
                    // The output port: its reset line low resets; the rest
                    // (A20 among it) stays as the hypervisor has it.
                    true if value as u8 & chipset::RESET_BIT == 0 => reset(),
                    true => ("blocked", Seen::Refused, Action::Skip),
                    false => {
                        read = forward();
                        ("forwarded", Seen::Quiet, Action::Skip)
                    }
                }
            }
            io::PortAction::PciAddress => {
                if let Some(s) = state {
                    // Where the machine has ECAM the address register reads
                    // as all ones, as where mechanism #1 is absent: an OS's
                    // probe then takes the MCFG's window, whose reads do not
                    // exit (Linux's boot: 17,617 port exits to 463). Code
                    // that uses #1 without probing it still works.
                    if input && chipset::get().ecam.is_some() {
                        read = u32::MAX.into();
                    } else if input {
                        read = s.pci_address.load(Ordering::SeqCst).into();
                    } else {
                        s.pci_address.store(value as u32, Ordering::SeqCst);
                    }
                }
                ("emulated", Seen::Quiet, Action::Skip)
            }
            io::PortAction::PciData => {
                let offset = port - chipset::PCI_DATA.start();
                if input {
                    read = self.machine.pci_data_read(offset, size).into();
                    ("emulated", Seen::Quiet, Action::Skip)
                } else {
                    match self.machine.pci_data_write(offset, size, value as u32) {
                        Written::Done => ("forwarded", Seen::Quiet, Action::Skip),
                        Written::Filtered => ("filtered", Seen::Refused, Action::Skip),
                        Written::Dropped => ("blocked", Seen::Refused, Action::Skip),
                    }
                }
            }
        };
        if input {
            let regs = self.cpu.regs();
            regs.rax = (regs.rax & !mask) | (read & mask);
        }
        let notable = match seen {
            Seen::Quiet => Notable::No,
            Seen::Always => Notable::Yes,
            Seen::Refused => self.trace.refusal(),
        };
        let f = event((!input).then_some(value), name);
        self.trace.exit(Reason::Io, rip, port.into(), notable, f);
        then
    }

    fn msr(&mut self, rip: u64, index: u32, write: bool) -> Action {
        let regs = *self.cpu.regs();
        let value = (regs.rdx << 32) | (regs.rax & 0xffff_ffff);
        let emulated = match (index, write) {
            // Locked, VMX off: what a CPU without VMX shows.
            (IA32_FEATURE_CONTROL, false) => Some(1),
            (IA32_EFER, false) => Some(self.cpu.efer()),
            (apic::IA32_APIC_BASE, true) if self.config.os() => {
                apic::guest_set_base(value).then_some(value)
            }
            (IA32_EFER, true) => {
                let paging = self.cpu.cr0() & guest::CR0_PG != 0;
                let efer = checks::efer_write(self.cpu.efer(), value, paging, cpuid::has_nx());
                if let Some(efer) = efer {
                    self.cpu.set_efer(efer);
                }
                efer
            }
            _ => None,
        };
        let (shown, action, then) = match emulated {
            Some(v) => {
                if !write {
                    let regs = self.cpu.regs();
                    (regs.rax, regs.rdx) = (v & 0xffff_ffff, v >> 32);
                }
                (Some(v), "emulated", Action::Skip)
            }
            None => (write.then_some(value), "gp", Action::Inject(GP, Some(0))),
        };
        self.trace
            .exit(Reason::Msr, rip, index.into(), Notable::No, |e| VmExit {
                msr: Some(Hex(index.into())),
                dir: Some(if write { "write" } else { "read" }),
                value: shown.map(Hex),
                action: Some(action),
                ..e
            });
        then
    }

    fn cr_write(&mut self, rip: u64, cr: u8, value: u64) -> Action {
        let long_mode = self.cpu.efer() & guest::EFER_LMA != 0;
        // CR4 writes all exit; CR0 writes when they change a bit VMX owns
        // (NE), or as writes the emulator refused (SVM on QEMU).
        let allowed = match cr {
            0 => checks::cr0_write(value),
            4 => checks::cr4_write(value, long_mode, cpuid::guest_cr4_bits()),
            _ => None,
        };
        let (action, then) = match allowed {
            Some(v) => {
                if cr == 0 {
                    self.cpu.set_cr0(v);
                } else {
                    self.cpu.set_cr4(v);
                }
                ("emulated", Action::Skip)
            }
            None => ("gp", Action::Inject(GP, Some(0))),
        };
        self.trace
            .exit(Reason::CrWrite, rip, value, Notable::No, |e| VmExit {
                cr: Some(cr),
                value: Some(Hex(value)),
                action: Some(action),
                ..e
            });
        then
    }
}
