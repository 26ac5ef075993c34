//! AMD SVM (APM vol. 2, chapter 15): bring-up, one VMCB per vCPU, nested
//! paging, #VMEXIT decoded into the vendor-neutral `vcpu::Exit`, and SVM
//! disabled at the end. RIP is never advanced from the VMCB's nRIP (QEMU's
//! TCG does not provide it): the instruction is decoded instead.

pub mod names;
pub mod permissions;
pub mod vmcb;

use serde::Serialize;
use x86_64::registers::model_specific::Msr;

use crate::arch::apic::Apic;
use crate::ept::format::Npt;
use crate::event::{self, Event, Hex};
use crate::mm;
use crate::phys::{IdentityMapped, PhysMem};
use crate::vcpu::GuestRam;
use crate::vcpu::decode::{self, Insn};
use crate::vcpu::fetch;
use crate::vcpu::guest::{CR0_PE, CR0_PG, EFER_LMA, GuestState};
use crate::vcpu::{
    self, CpuContext, Deadline, EntryFailure, Exit, GuestConfig, GuestRegs, Refusal, VirtCpu,
};
use vmcb::{Vmcb, intercept};

core::arch::global_asm!(include_str!("run.s"), options(att_syntax));

unsafe extern "C" {
    /// `host_interrupts`: whether the host takes interrupts that arrive
    /// while the guest runs (its watchdog's timer, kicks), or leaves them
    /// pending for the guest (an OS guest's devices).
    fn svm_enter(ctx: *mut CpuContext, vmcb: u64, host_save: u64, host_interrupts: u64) -> u64;
    /// The instruction after `svm_enter`'s VMRUN: the host RIP it saves.
    static svm_resume: u8;
}

const IA32_EFER: u32 = 0xc000_0080;
const VM_CR: u32 = 0xc001_0114;
const VM_HSAVE_PA: u32 = 0xc001_0117;
const EFER_SVME: u64 = 1 << 12;
const VM_CR_SVMDIS: u64 = 1 << 4;
/// The PAT after reset: QEMU refuses nested paging with an invalid G_PAT.
const RESET_PAT: u64 = 0x0007_0406_0007_0406;
const UD: u32 = 6;
const DB: u32 = 1;

/// #UD: VMCALL (Intel's hypercall) and VMX instructions fault there on AMD.
/// #DB: QEMU's TCG delivers a guest's code-breakpoint #DB again and again
/// without taking interrupts (a breakpoint on its own handler), so the
/// watchdog would never come; intercepted, each one passes the hypervisor.
const INTERCEPT_EXCEPTIONS: u32 = 1 << UD | 1 << DB;
/// INTR: the watchdog's APIC timer brings the guest back (the host takes
/// the interrupt itself once GIF is set again, in `run.s`).
const INTERCEPT_MISC1: u32 = intercept::INTR
    | intercept::INVD
    | intercept::CPUID
    | intercept::HLT
    | intercept::IOIO
    | intercept::MSR
    | intercept::SHUTDOWN;
/// An OS guest owns the interrupts and halts as it likes: its devices'
/// interrupts reach it without exits, HLT waits in the guest. The
/// hypervisor's kicks are NMIs, which exit.
const INTERCEPT_MISC1_OS: u32 =
    (INTERCEPT_MISC1 & !(intercept::INTR | intercept::HLT)) | intercept::NMI;
/// Every SVM instruction: the guest sees no SVM (and VMRUN's own intercept is mandatory).
const INTERCEPT_MISC2: u32 = intercept::VMRUN
    | intercept::VMMCALL
    | intercept::VMLOAD
    | intercept::VMSAVE
    | intercept::STGI
    | intercept::CLGI
    | intercept::SKINIT
    | intercept::XSETBV;

fn oom(what: &str) -> Refusal {
    Refusal::failed(format_args!("out of memory for {what}"))
}

#[derive(Serialize)]
struct SvmOn {
    asids: u32,
    nrip_save: bool,
    hsave: Hex,
}
impl Event for SvmOn {
    const NAME: &'static str = "svm-on";
}

/// A SHUTDOWN #VMEXIT (the guest triple-faulted): the guest state the VMCB
/// holds, the event it was injecting or delivering, and the host state in
/// this CPU's host save area as QEMU keeps it (VMCB-shaped; meaningless on
/// a real CPU), to tell a guest's own triple fault from one entered with
/// host values (docs/numa.md, the open problem of multi-threaded TCG).
#[derive(Serialize)]
struct SvmShutdown {
    vcpu: u32,
    rip: Hex,
    rsp: Hex,
    cr3: Hex,
    cs: Hex,
    efer: Hex,
    event_inject: Hex,
    exit_int_info: Hex,
    host_rip: Hex,
    host_rsp: Hex,
    host_cr3: Hex,
}
impl Event for SvmShutdown {
    const NAME: &'static str = "svm-shutdown";
}

/// A #VMEXIT whose guest state is the host's as VMRUN saved it (RIP after
/// VMRUN, the host's RSP and CR3): the emulator wrote the host's state over
/// the guest's, which is lost (docs/numa.md, the open problem of
/// multi-threaded TCG). `entered_*` is what this VMRUN loaded.
#[derive(Serialize)]
struct SvmLostState {
    vcpu: u32,
    exit_code: Hex,
    exit_info1: Hex,
    exit_info2: Hex,
    exit_int_info: Hex,
    entered_rip: Hex,
    entered_rsp: Hex,
    entered_cr3: Hex,
}
impl Event for SvmLostState {
    const NAME: &'static str = "svm-lost-state";
}

#[derive(Serialize)]
struct VmRun {
    vcpu: u32,
    vmcb: Hex,
    asid: u32,
}
impl Event for VmRun {
    const NAME: &'static str = "vmrun";
}

#[derive(Serialize)]
struct SvmOff {
    exits: u32,
}
impl Event for SvmOff {
    const NAME: &'static str = "svm-off";
}

/// The state-save area, dumped when VMRUN refuses the VMCB.
#[derive(Serialize)]
struct GuestDump {
    cr0: Hex,
    cr3: Hex,
    cr4: Hex,
    efer: Hex,
    rip: Hex,
    rsp: Hex,
    rflags: Hex,
    cs: Hex,
    cs_attrib: Hex,
    cs_limit: Hex,
    ss_attrib: Hex,
    tr_attrib: Hex,
    cpl: u8,
    asid: u32,
    intercepts: Hex,
    nested_cr3: Hex,
}

impl GuestDump {
    /// What VMRUN is asked to load: the save area's fields, taken before it
    /// field by field (emulators overwrite the save area when they refuse
    /// VMRUN; a copy of all of it would cost every entry). The control
    /// area's stay where they are until `with_controls`.
    fn asked(v: &Vmcb) -> Self {
        let s = &v.save;
        Self {
            cr0: Hex(s.cr0),
            cr3: Hex(s.cr3),
            cr4: Hex(s.cr4),
            efer: Hex(s.efer),
            rip: Hex(s.rip),
            rsp: Hex(s.rsp),
            rflags: Hex(s.rflags),
            cs: Hex(s.cs.selector.into()),
            cs_attrib: Hex(s.cs.attrib.into()),
            cs_limit: Hex(s.cs.limit.into()),
            ss_attrib: Hex(s.ss.attrib.into()),
            tr_attrib: Hex(s.tr.attrib.into()),
            cpl: s.cpl,
            asid: 0,
            intercepts: Hex(0),
            nested_cr3: Hex(0),
        }
    }

    /// The dump completed with the control area's fields, which a refused
    /// VMRUN leaves as they were.
    fn with_controls(self, v: &Vmcb) -> Self {
        let c = &v.control;
        Self {
            asid: c.guest_asid,
            intercepts: Hex((u64::from(c.intercept_misc2) << 32) | u64::from(c.intercept_misc1)),
            nested_cr3: Hex(c.nested_cr3),
            ..self
        }
    }
}

fn rdmsr(msr: u32) -> u64 {
    // SAFETY: only called for MSRs every CPU with SVM has.
    unsafe { Msr::new(msr).read() }
}

fn wrmsr(msr: u32, value: u64) {
    // SAFETY: EFER.SVME and VM_HSAVE_PA, written as SVM's bring-up requires.
    unsafe { Msr::new(msr).write(value) }
}

/// SVM enabled on this CPU.
pub struct Svm {
    /// Where VMSAVE keeps the host's FS, GS, TR, ... while a guest runs.
    host_save: u64,
    /// The CPU saves the next RIP of an intercepted instruction (nRIP):
    /// instruction lengths need no decoding.
    nrip_save: bool,
}

impl Svm {
    /// Enables SVM, or says why this CPU cannot run a guest.
    pub fn enable() -> Result<Self, Refusal> {
        let cpuid = raw_cpuid::CpuId::new();
        if !cpuid
            .get_extended_processor_and_feature_identifiers()
            .is_some_and(|f| f.has_svm())
        {
            return Err(Refusal::Unsupported("the CPU has no SVM"));
        }
        let features = cpuid.get_svm_info();
        if !features.as_ref().is_some_and(|f| f.has_nested_paging()) {
            return Err(Refusal::Unsupported("the CPU has no NPT"));
        }
        if rdmsr(VM_CR) & VM_CR_SVMDIS != 0 {
            return Err(Refusal::Unsupported(
                "SVM is disabled by firmware (VM_CR.SVMDIS)",
            ));
        }
        let hsave = mm::alloc_zeroed().ok_or_else(|| oom("the host save area"))?;
        let host_save = mm::alloc_zeroed().ok_or_else(|| oom("the host VMSAVE area"))?;
        wrmsr(IA32_EFER, rdmsr(IA32_EFER) | EFER_SVME);
        wrmsr(VM_HSAVE_PA, hsave);
        let nrip_save = features.as_ref().is_some_and(|f| f.has_nrip());
        event::emit(&SvmOn {
            asids: features.as_ref().map_or(0, |f| f.supported_asids()),
            nrip_save,
            hsave: Hex(hsave),
        });
        Ok(Self {
            host_save,
            nrip_save,
        })
    }

    /// Disables SVM: EFER.SVME clear, VM_HSAVE_PA cleared.
    pub fn disable(self, exits: u32) {
        wrmsr(VM_HSAVE_PA, 0);
        wrmsr(IA32_EFER, rdmsr(IA32_EFER) & !EFER_SVME);
        event::emit(&SvmOff { exits });
    }
}

pub struct Vcpu<'m> {
    ctx: CpuContext,
    /// The vCPU's index, in events.
    index: u32,
    vmcb_pa: u64,
    host_save: u64,
    memory: &'m dyn GuestRam,
    launched: bool,
    /// Length of the instruction that exited, decoded, for `skip_instruction`.
    exit_len: u64,
    /// The last walk to the guest's code, reused while it holds.
    code: fetch::CodeWalk,
    nrip_save: bool,
    /// The watchdog's TSC deadline, armed on `apic`'s timer before VMRUN.
    deadline: Deadline,
    /// The TSC value by which the armed timer fires (None: not armed).
    timer_armed: Option<u64>,
    /// CR0, CR4 and EFER as last found legal (`checks::illegal_state`).
    checked: Option<(u64, u64, u64)>,
    /// Where the emulator last refused a MOV to CR (see `refused_cr_write`).
    refused_at: Option<u64>,
    apic: Apic,
    /// An OS guest: it owns interrupts, the APIC timer and the devices.
    os: bool,
    clock: vcpu::ExitClock,
}

impl Drop for Vcpu<'_> {
    fn drop(&mut self) {
        if !self.os {
            self.apic.timer_one_shot(0); // stopped: nothing fires after the guest
        }
    }
}

impl<'m> Vcpu<'m> {
    pub fn new(
        svm: &Svm,
        config: &GuestConfig,
        state: &GuestState,
        memory: &'m dyn GuestRam,
        seat: vcpu::Seat,
    ) -> Result<Self, Refusal> {
        let vmcb_pa = mm::alloc_zeroed().ok_or_else(|| oom("the VMCB"))?;
        let iopm = mm::alloc_run_zeroed(permissions::IOPM_PAGES).ok_or_else(|| oom("the IOPM"))?;
        let msrpm =
            mm::alloc_run_zeroed(permissions::MSRPM_PAGES).ok_or_else(|| oom("the MSRPM"))?;
        let os = config.os();
        // The IOPM's first two pages are VMX's I/O bitmaps A and B back to
        // back; its third (ports past 0xffff by a wide access) stays clear.
        let io = vcpu::io::bitmaps(os);
        let reads = vcpu::INTERCEPTED_MSR_READS.iter().flat_map(|r| r.clone());
        let msr = permissions::msrpm(reads, vcpu::msr_writes(os));
        // SAFETY: frames just allocated for these maps.
        unsafe {
            crate::phys::write(iopm, &io[0]);
            crate::phys::write(iopm + 0x1000, &io[1]);
            crate::phys::write(msrpm, &msr);
        }
        let mut cpu = Self {
            ctx: CpuContext::new(),
            index: seat.vcpu,
            vmcb_pa,
            host_save: svm.host_save,
            memory,
            launched: false,
            exit_len: 0,
            code: fetch::CodeWalk::default(),
            nrip_save: svm.nrip_save,
            deadline: Deadline::default(),
            timer_armed: None,
            clock: vcpu::ExitClock::default(),
            checked: None,
            refused_at: None,
            // Software-enabled: a disabled APIC masks its timer. An OS
            // guest's APIC is its own: left as the host has it.
            apic: if os {
                Apic::current()
            } else {
                Apic::enable(false)
            },
            os,
        };
        let v = cpu.vmcb();
        let c = &mut v.control;
        c.intercept_exceptions = INTERCEPT_EXCEPTIONS;
        c.intercept_misc1 = if os {
            INTERCEPT_MISC1_OS
        } else {
            INTERCEPT_MISC1
        };
        c.intercept_misc2 = INTERCEPT_MISC2;
        // Every CR4 write is checked (`vcpu::checks`), as on Intel.
        c.intercept_cr = intercept::CR4_WRITE;
        c.iopm_base_pa = iopm;
        c.msrpm_base_pa = msrpm;
        c.guest_asid = 1;
        c.tlb_control = 1; // flush this ASID's translations at the first VMRUN
        c.np_control = 1;
        // Without V_INTR_MASKING the guest's IF masks physical interrupts:
        // they are delivered through its IDT.
        c.vintr = if os { 0 } else { vmcb::V_INTR_MASKING };
        c.nested_cr3 = memory.root(crate::arch::percpu::this().node());
        let s = &mut v.save;
        let seg = |g: &crate::vcpu::guest::Segment| vmcb::Segment {
            selector: g.selector,
            attrib: vmcb::attrib(g.access),
            limit: g.limit,
            base: g.base,
        };
        s.cs = seg(&state.cs);
        (s.ds, s.es, s.fs, s.gs, s.ss) = (
            seg(&state.data),
            seg(&state.data),
            seg(&state.data),
            seg(&state.data),
            seg(&state.data),
        );
        s.tr = seg(&state.tr);
        s.ldtr = vmcb::Segment::default();
        s.gdtr = vmcb::Segment {
            limit: state.gdtr.limit.into(),
            base: state.gdtr.base,
            ..Default::default()
        };
        s.idtr = vmcb::Segment {
            limit: state.idtr.limit.into(),
            base: state.idtr.base,
            ..Default::default()
        };
        s.cpl = 0;
        // SVM requires EFER.SVME in the guest; the guest's reads do not show it.
        // Clearing it is what `guest.selftest=entry-failure` asks for.
        s.efer = if config.invalid_state {
            state.efer
        } else {
            state.efer | EFER_SVME
        };
        s.cr0 = state.cr0;
        s.cr3 = state.cr3;
        s.cr4 = state.cr4;
        s.dr7 = 0x400;
        s.dr6 = 0xffff_0ff0;
        s.rflags = state.rflags;
        s.rip = state.rip;
        s.rsp = state.rsp;
        s.g_pat = RESET_PAT;
        Ok(cpu)
    }

    fn vmcb(&mut self) -> &mut Vmcb {
        // SAFETY: `vmcb_pa` is a frame this vCPU owns, identity-mapped and
        // page-aligned; only this vCPU touches it, and never while in VMRUN.
        unsafe { &mut *(self.vmcb_pa as *mut Vmcb) }
    }

    fn vmcb_ref(&self) -> &Vmcb {
        // SAFETY: as in `vmcb`.
        unsafe { &*(self.vmcb_pa as *const Vmcb) }
    }

    /// The host frame of the guest's code page that holds linear address
    /// `at`, through the guest's page tables (the walk remembered while it
    /// holds: `vcpu::fetch`).
    #[inline]
    fn code_frame(&mut self, at: u64) -> Option<u64> {
        let s = &self.vmcb_ref().save;
        let key = fetch::Key {
            cr3: s.cr3,
            page: at & !0xfff,
            paging: s.cr0 & CR0_PG != 0,
            long_mode: s.efer & EFER_LMA != 0,
        };
        let memory = self.memory;
        self.code.frame(
            key,
            |gpa| memory.host_address(gpa),
            |hpa| IdentityMapped.atomic_u64(hpa),
        )
    }

    /// The guest's RIP as a linear address.
    fn linear_rip(&self) -> u64 {
        let s = &self.vmcb_ref().save;
        s.cs.base.wrapping_add(s.rip)
    }

    /// Up to `out.len()` bytes at the guest's RIP, one copy per page they
    /// touch; how many were read (a page that is not mapped ends them).
    fn fetch(&mut self, out: &mut [u8]) -> usize {
        let linear = self.linear_rip();
        let mut n = 0;
        while n < out.len() {
            let at = linear.wrapping_add(n as u64);
            let piece = (0x1000 - (at & 0xfff) as usize).min(out.len() - n);
            let frame = self.code_frame(at);
            let Some(b) = frame.and_then(|f| IdentityMapped.bytes(f + (at & 0xfff), piece)) else {
                break;
            };
            out[n..n + piece].copy_from_slice(b);
            n += piece;
        }
        n
    }

    /// The `N` bytes at the guest's RIP when they lie in one mapped page:
    /// an exit's plain encoding, read with no loop (every exit without nRIP
    /// reads one). None: `fetch` them.
    fn head<const N: usize>(&mut self) -> Option<[u8; N]> {
        let at = self.linear_rip();
        if (at & 0xfff) as usize > 0x1000 - N {
            return None;
        }
        let frame = self.code_frame(at)?;
        IdentityMapped
            .bytes(frame + (at & 0xfff), N)?
            .try_into()
            .ok()
    }

    /// The instruction at the guest's RIP, decoded.
    fn instruction(&mut self) -> decode::Decoded {
        let mut bytes = [0u8; 15];
        let n = self.fetch(&mut bytes);
        let s = &self.vmcb_ref().save;
        let long_mode = s.efer & EFER_LMA != 0;
        decode::decode(&bytes[..n], long_mode && s.cs.attrib & (1 << 9) != 0)
    }

    /// QEMU's TCG ends an SVM guest with VMEXIT_INVALID, its RIP on the
    /// instruction, for a MOV to CR0, CR3 or CR4 that hardware refuses with
    /// #GP (reserved bits, CR0.NW without CD): that is the guest's write,
    /// handed to the run loop, which refuses it as hardware would. A second
    /// refusal at the same RIP means VMRUN itself failed: an entry failure.
    fn refused_cr_write(&mut self) -> Option<Exit> {
        let rip = self.vmcb_ref().save.rip;
        if self.refused_at == Some(rip) {
            return None;
        }
        let d = self.instruction();
        let Insn::MovToCr { cr, gpr } = d.insn else {
            return None;
        };
        self.refused_at = Some(rip);
        self.exit_len = d.len as u64;
        Some(self.cr_write(cr, gpr))
    }

    /// A decoded MOV to control register `cr` from general register `gpr`.
    fn cr_write(&self, cr: u8, gpr: u8) -> Exit {
        Exit::CrWrite {
            cr,
            value: self.ctx.regs.gpr(gpr, self.vmcb_ref().save.rsp),
        }
    }

    /// A save-state field of the host save area, at the VMCB's offsets
    /// (QEMU's layout; on hardware the area's format is the CPU's own).
    fn host_saved(&self, offset: u64) -> u64 {
        IdentityMapped
            .bytes(rdmsr(VM_HSAVE_PA) + offset, 8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_le_bytes)
    }

    /// Whether this #VMEXIT saved the host's state as the guest's: its RIP
    /// is `svm_resume` (one compare per exit) and its RSP and CR3 the host's
    /// (a guest can only match them on purpose, and then only stops itself).
    /// Reported with the exit's code; the guest cannot be resumed.
    fn lost_state(&self, entered: &GuestDump) -> Option<u64> {
        let v = self.vmcb_ref();
        let resume = core::ptr::addr_of!(svm_resume) as u64;
        if v.save.rip != resume
            || v.save.rsp != self.host_saved(vmcb::SAVE_RSP)
            || v.save.cr3 != self.host_saved(vmcb::SAVE_CR3)
        {
            return None;
        }
        let c = &v.control;
        event::emit(&SvmLostState {
            vcpu: self.index,
            exit_code: Hex(c.exit_code),
            exit_info1: Hex(c.exit_info1),
            exit_info2: Hex(c.exit_info2),
            exit_int_info: Hex(c.exit_int_info),
            entered_rip: entered.rip,
            entered_rsp: entered.rsp,
            entered_cr3: entered.cr3,
        });
        Some(c.exit_code)
    }

    /// Reports a SHUTDOWN #VMEXIT (`SvmShutdown`).
    fn report_shutdown(&self) {
        let saved = |offset: u64| self.host_saved(offset);
        let v = self.vmcb_ref();
        event::emit(&SvmShutdown {
            vcpu: self.index,
            rip: Hex(v.save.rip),
            rsp: Hex(v.save.rsp),
            cr3: Hex(v.save.cr3),
            cs: Hex(v.save.cs.selector.into()),
            efer: Hex(v.save.efer),
            event_inject: Hex(v.control.event_inject),
            exit_int_info: Hex(v.control.exit_int_info),
            host_rip: Hex(saved(vmcb::SAVE_RIP)),
            host_rsp: Hex(saved(vmcb::SAVE_RSP)),
            host_cr3: Hex(saved(vmcb::SAVE_CR3)),
        });
    }

    /// Whether an OS guest's period passed by `now` (`vcpu::ExitClock`);
    /// out of line, off the payloads' path.
    #[cold]
    #[inline(never)]
    fn clock_due(&mut self, now: u64) -> bool {
        self.clock.due(now, self.deadline)
    }

    /// Arms the APIC timer to fire `left` TSC ticks from now.
    fn arm_timer(&self, left: u64) {
        let ticks = u128::from(left) * u128::from(self.apic.timer_per_ms())
            / u128::from(crate::arch::tsc::per_ms());
        self.apic
            .timer_one_shot(ticks.clamp(1, u32::MAX.into()) as u32);
    }

    fn decode(&mut self) -> Option<Exit> {
        let c = self.vmcb_ref().control;
        let rip = self.vmcb_ref().save.rip;
        self.exit_len = 0;
        let known = |insn: Insn, d: decode::Decoded| (d.insn == insn).then_some(d.len as u64);
        let exit = match c.exit_code {
            names::CPUID => (Exit::Cpuid, Insn::Cpuid),
            names::HLT => (Exit::Hlt, Insn::Hlt),
            names::VMMCALL => (Exit::Hypercall, Insn::Hypercall),
            names::MSR => {
                let write = c.exit_info1 & 1 != 0;
                (
                    Exit::Msr {
                        index: self.ctx.regs.rcx as u32,
                        write,
                    },
                    if write { Insn::Wrmsr } else { Insn::Rdmsr },
                )
            }
            names::IOIO => {
                let info = c.exit_info1;
                // EXITINFO2 holds the next RIP for IOIO: the length is architectural.
                self.exit_len = c.exit_info2.wrapping_sub(rip);
                return Some(Exit::Io {
                    port: (info >> 16) as u16,
                    size: ((info >> 4) & 7) as u8,
                    input: info & 1 != 0,
                    string: info & 4 != 0,
                });
            }
            code if code == names::EXCEPTION_BASE + u64::from(DB) => {
                self.inject_exception(DB as u8, None); // reflected: the guest's own
                return None;
            }
            code if code == names::EXCEPTION_BASE + u64::from(UD) => {
                let d = self.instruction();
                return match d.insn {
                    // VMCALL on AMD (or VMMCALL) is a hypercall, whichever vendor the payload targets.
                    Insn::Hypercall => {
                        self.exit_len = d.len as u64;
                        Some(Exit::Hypercall)
                    }
                    Insn::Vmx(name) => Some(Exit::VirtInstruction(name)),
                    // The guest's own #UD: deliver it and run on.
                    _ => {
                        self.inject_exception(UD as u8, None);
                        None
                    }
                };
            }
            code @ names::VMRUN..=names::SKINIT => {
                return Some(Exit::VirtInstruction(names::exit_code(code)));
            }
            names::XSETBV => (Exit::Xsetbv, Insn::Xsetbv),
            names::INVD | names::CR4_WRITE => {
                let d = self.instruction();
                self.exit_len = d.len as u64;
                return Some(match d.insn {
                    Insn::Invd => Exit::Invd,
                    Insn::MovToCr { cr, gpr } => self.cr_write(cr, gpr),
                    _ => Exit::Unhandled {
                        code: c.exit_code,
                        name: names::exit_code(c.exit_code),
                    },
                });
            }
            code @ 0x40..=0x5f => {
                return Some(Exit::Exception {
                    vector: (code - 0x40) as u8,
                    error_code: Some(c.exit_info1 as u32),
                });
            }
            names::SHUTDOWN => {
                self.report_shutdown();
                return Some(Exit::TripleFault);
            }
            // The host took the interrupt after the exit (its timer, a kick):
            // the run loop decides, the deadline too.
            names::INTR => {
                self.timer_armed = None; // it fired, or a kick came first: arm it again
                return Some(Exit::Timer);
            }
            // An OS guest's kick: the host takes the NMI once GIF is set.
            names::NMI => return Some(Exit::Timer),
            names::NPF => {
                let e = c.exit_info1;
                let (write, fetch) = (e & 2 != 0, e & 0x10 != 0);
                return Some(Exit::NestedFault {
                    gpa: c.exit_info2,
                    read: !write && !fetch,
                    write,
                    fetch,
                    mapped: e & 1 != 0,
                });
            }
            code => {
                return Some(Exit::Unhandled {
                    code,
                    name: names::exit_code(code),
                });
            }
        };
        // The intercept names the instruction; nRIP gives its length.
        if self.nrip_save && (1..=15).contains(&c.next_rip.wrapping_sub(rip)) {
            self.exit_len = c.next_rip.wrapping_sub(rip);
            return Some(exit.0);
        }
        // Without nRIP: the instruction's plain encoding (no prefix) is the
        // common case, and its length; anything else is decoded in full.
        if let Some(len) = self
            .head::<3>()
            .and_then(|h| decode::plain_length(exit.1, &h))
        {
            self.exit_len = len;
            return Some(exit.0);
        }
        let d = self.instruction();
        match known(exit.1, d) {
            Some(len) => {
                self.exit_len = len;
                Some(exit.0)
            }
            None => Some(Exit::Unhandled {
                code: c.exit_code,
                name: "undecodable instruction",
            }),
        }
    }

    /// Reports a refused VMRUN with `guest`, the state VMRUN was asked to
    /// load (emulators may overwrite the VMCB's own copy when they refuse it).
    fn entry_failed(&mut self, asked: GuestDump) -> EntryFailure {
        let guest = asked.with_controls(self.vmcb_ref());
        let reason = names::exit_code(names::INVALID);
        event::emit(&vcpu::EntryFailed {
            vcpu: self.index,
            instruction: "vmrun",
            code: Hex(names::INVALID),
            reason,
            guest,
        });
        EntryFailure {
            code: names::INVALID,
            reason,
        }
    }
}

impl VirtCpu for Vcpu<'_> {
    fn run(&mut self) -> Result<Exit, EntryFailure> {
        loop {
            // The APIC timer counts down in host and guest alike: armed once
            // for the deadline, again after an interrupt ended a slice, or
            // once it should have fired (the host may have taken it between
            // two exits, the guest never seeing it). While it is armed and
            // not due, nothing is to do: it is armed for the sooner of the
            // deadline and the period, and a new deadline disarms it.
            let now = crate::arch::tsc::now();
            if self.timer_armed.is_none_or(|at| now >= at) {
                let mut arm = None;
                if !self.deadline.arm(now, |left| arm = Some(left)) {
                    return Ok(Exit::Deadline);
                }
                if self.os {
                    // It owns the APIC timer (never armed here, so this
                    // runs at each entry): its periods are seen here.
                    if self.clock_due(now) {
                        return Ok(Exit::Timer);
                    }
                } else if let Some(left) = arm {
                    self.arm_timer(left);
                    self.timer_armed = Some(now.saturating_add(left));
                }
            }
            if !self.launched {
                event::emit(&VmRun {
                    vcpu: self.index,
                    vmcb: Hex(self.vmcb_pa),
                    asid: self.vmcb_ref().control.guest_asid,
                });
            }
            let rax = self.ctx.regs.rax;
            self.vmcb().save.rax = rax;
            let asked = GuestDump::asked(self.vmcb_ref());
            // Emulators let some MOV to CR0/CR4 through that AMD hardware
            // refuses with #GP; VMRUN would then fail on the guest's account.
            // Checked when they change.
            let state = (asked.cr0.0, asked.cr4.0, asked.efer.0 & !EFER_SVME);
            if self.checked != Some(state) {
                let cr4_bits = vcpu::cpuid::guest_cr4_bits();
                if let Some(why) = vcpu::checks::illegal_state(state.0, state.1, state.2, cr4_bits)
                {
                    return Ok(Exit::IllegalState(why));
                }
                self.checked = Some(state);
            }
            // SAFETY: the VMCB, its maps and the nested tables are complete;
            // `run.s` saves and restores every register the host uses.
            unsafe {
                svm_enter(
                    &mut self.ctx,
                    self.vmcb_pa,
                    self.host_save,
                    u64::from(!self.os),
                )
            };
            self.launched = true;
            if let Some(code) = self.lost_state(&asked) {
                return Ok(Exit::LostState { code });
            }
            let v = self.vmcb();
            v.control.tlb_control = 0;
            // An event the exit interrupted while it was delivered (a fault on
            // a page not backed yet, say) is delivered again (APM 15.7.2).
            v.control.event_inject = vmcb::redelivered(v.control.exit_int_info);
            let (rax, code) = (v.save.rax, v.control.exit_code);
            self.ctx.regs.rax = rax;
            if names::is_invalid(code) {
                if let Some(exit) = self.refused_cr_write() {
                    return Ok(exit);
                }
                return Err(self.entry_failed(asked));
            }
            self.refused_at = None;
            if let Some(exit) = self.decode() {
                return Ok(exit);
            }
        }
    }

    fn regs(&mut self) -> &mut GuestRegs {
        &mut self.ctx.regs
    }

    fn rip(&self) -> u64 {
        self.vmcb_ref().save.rip
    }

    fn skip_instruction(&mut self) {
        let len = self.exit_len;
        self.vmcb().save.rip += len;
    }

    fn inject_exception(&mut self, vector: u8, error_code: Option<u32>) {
        const EXCEPTION: u64 = 3 << 8;
        const ERROR_VALID: u64 = 1 << 11;
        const VALID: u64 = 1 << 31;
        // Real mode delivers no error code.
        let protected = self.vmcb_ref().save.cr0 & CR0_PE != 0;
        let mut event = u64::from(vector) | EXCEPTION | VALID;
        if let Some(code) = error_code.filter(|_| protected) {
            event |= ERROR_VALID | (u64::from(code) << 32);
        }
        self.vmcb().control.event_inject = event;
    }

    fn set_efer(&mut self, efer: u64) {
        self.vmcb().save.efer = efer | EFER_SVME;
    }

    fn efer(&self) -> u64 {
        self.vmcb_ref().save.efer & !EFER_SVME
    }

    fn cpl(&self) -> u8 {
        self.vmcb_ref().save.cpl
    }

    fn set_deadline(&mut self, deadline: Deadline) {
        self.deadline = deadline;
        self.timer_armed = None;
    }

    fn flush_tlb(&mut self) {
        self.vmcb().control.tlb_control = 1; // at the next VMRUN: every ASID, the simplest sure flush
        // The walk to the guest's code may go through a page that moved.
        self.code.forget();
    }

    fn set_cr4(&mut self, cr4: u64) {
        let v = self.vmcb();
        v.save.cr4 = cr4;
        v.control.tlb_control = 1; // paging bits may have changed: flush the ASID
    }

    fn cr0(&self) -> u64 {
        self.vmcb_ref().save.cr0
    }

    fn cr4(&self) -> u64 {
        self.vmcb_ref().save.cr4
    }

    fn read_guest(&self, gpa: u64, out: &mut [u8]) -> bool {
        self.memory.read(gpa, out)
    }

    fn code(&mut self, out: &mut [u8]) -> (usize, bool) {
        let n = self.fetch(out);
        let s = &self.vmcb_ref().save;
        (n, s.efer & EFER_LMA != 0 && s.cs.attrib & (1 << 9) != 0)
    }

    fn set_instruction_len(&mut self, len: u64) {
        self.exit_len = len;
    }

    fn rsp(&self) -> u64 {
        self.vmcb_ref().save.rsp
    }

    fn set_cr0(&mut self, cr0: u64) {
        let s = &mut self.vmcb().save;
        s.cr0 = cr0;
        s.efer = vcpu::checks::efer_after_cr0(cr0, s.efer);
        self.vmcb().control.tlb_control = 1; // paging may have changed
    }
}

impl vcpu::Virtualization for Svm {
    type Format = Npt;
    type Cpu<'m> = Vcpu<'m>;

    fn enable() -> Result<Self, Refusal> {
        Svm::enable()
    }
    fn vcpu<'m>(
        &self,
        config: &GuestConfig,
        state: &GuestState,
        memory: &'m dyn GuestRam,
        seat: vcpu::Seat,
    ) -> Result<Vcpu<'m>, Refusal> {
        Vcpu::new(self, config, state, memory, seat)
    }
    fn disable(self, exits: u32) {
        Svm::disable(self, exits)
    }
    /// Nested paging always sets them (AMD APM vol. 2, nested paging).
    fn accessed_dirty(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intercepts_what_the_exit_handling_needs() {
        assert_eq!(
            INTERCEPT_MISC2 & intercept::VMRUN,
            intercept::VMRUN,
            "VMRUN must be intercepted"
        );
        assert_eq!(
            INTERCEPT_MISC2.count_ones(),
            8,
            "VMRUN, VMMCALL, VMLOAD, VMSAVE, STGI, CLGI, SKINIT, XSETBV"
        );
        assert_eq!(
            INTERCEPT_MISC1,
            1 | (1 << 18) | (1 << 22) | (1 << 24) | (1 << 27) | (1 << 28) | (1 << 31)
        );
        assert_eq!(INTERCEPT_EXCEPTIONS, (1 << 6) | (1 << 1));
    }
}
