//! Intel VMX (SDM 3C chapters 24-33): bring-up, the VMCS of one vCPU, the
//! exits decoded into the vendor-neutral `vcpu::Exit`, and leaving VMX
//! operation. Every step is reported as an event.

pub mod bitmaps;
pub mod controls;
pub mod fields;
pub mod instructions;
pub mod names;
pub mod vmcs;

use serde::Serialize;
use x86_64::registers::control::{Cr0, Cr3, Cr4};
use x86_64::registers::model_specific::Msr;

use crate::ept::format::Ept;
use crate::event::{self, Event, Hex};
use crate::mm;
use crate::vcpu::GuestRam;
use crate::vcpu::guest::{CR0_PG, EFER_LMA, GuestMode, GuestState, Segment};
use crate::vcpu::{
    self, CpuContext, Deadline, EntryFailure, Exit, GuestConfig, GuestRegs, Refusal, VirtCpu,
};
use controls::{Capabilities, Controls, ept_vpid, proc2};
use fields::{Field16 as F16, Field32 as F32, Field64 as F64, FieldNatural as FN};
use instructions::VmFail;

core::arch::global_asm!(include_str!("run.s"), options(att_syntax));

unsafe extern "C" {
    fn vmx_enter(ctx: *mut CpuContext, launched: u64) -> u64;
    fn vmx_exit();
}

const IA32_FEATURE_CONTROL: u32 = 0x3a;
const IA32_VMX_BASIC: u32 = 0x480;
const IA32_VMX_MISC: u32 = 0x485;
const IA32_VMX_CR0_FIXED0: u32 = 0x486;
const IA32_VMX_CR0_FIXED1: u32 = 0x487;
const IA32_VMX_CR4_FIXED0: u32 = 0x488;
const IA32_VMX_CR4_FIXED1: u32 = 0x489;
const IA32_VMX_EPT_VPID_CAP: u32 = 0x48c;
const IA32_EFER: u32 = 0xc000_0080;
const FEATURE_LOCK: u64 = 1 << 0;
const FEATURE_VMX_OUTSIDE_SMX: u64 = 1 << 2;
const CR4_VMXE: u64 = 1 << 13;

fn rdmsr(msr: u32) -> u64 {
    // SAFETY: only called for MSRs that exist once CPUID reports VMX.
    unsafe { Msr::new(msr).read() }
}

fn failed(what: &str, e: VmFail) -> Refusal {
    match e {
        VmFail::Invalid => Refusal::failed(format_args!("{what} failed: VMfailInvalid")),
        VmFail::Valid(n) => Refusal::failed(format_args!(
            "{what} failed: {} ({n})",
            names::instruction_error(n)
        )),
    }
}

#[derive(Serialize)]
struct VmxOn {
    revision: u32,
    vmcs_size: u32,
    true_controls: bool,
    region: Hex,
    vpid: bool,
}
impl Event for VmxOn {
    const NAME: &'static str = "vmxon";
}

/// vmclear, vmptrld, vmlaunch and vmxoff: the step and the VMCS it concerns.
#[derive(Serialize)]
struct Step {
    vcpu: u32,
    vmcs: Hex,
}
macro_rules! step_event {
    ($ty:ident, $name:literal) => {
        #[derive(Serialize)]
        #[serde(transparent)]
        struct $ty(Step);
        impl Event for $ty {
            const NAME: &'static str = $name;
        }
    };
}
step_event!(VmClear, "vmclear");
step_event!(VmPtrLd, "vmptrld");
step_event!(VmLaunch, "vmlaunch");

#[derive(Serialize)]
struct VmxOff {
    exits: u32,
}
impl Event for VmxOff {
    const NAME: &'static str = "vmxoff";
}

/// The guest-state area, dumped when VM entry fails.
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
    cs_access: Hex,
    cs_limit: Hex,
    ss_access: Hex,
    ds_access: Hex,
    tr_access: Hex,
    ldtr_access: Hex,
    gdtr: Hex,
    idtr: Hex,
    interruptibility: Hex,
    activity: Hex,
    link: Hex,
    entry_controls: Hex,
    proc_controls: Hex,
    secondary_controls: Hex,
}

fn dump() -> GuestDump {
    GuestDump {
        cr0: Hex(vmcs::read(FN::GuestCr0)),
        cr3: Hex(vmcs::read(FN::GuestCr3)),
        cr4: Hex(vmcs::read(FN::GuestCr4)),
        efer: Hex(vmcs::read64(F64::GuestEfer)),
        rip: Hex(vmcs::read(FN::GuestRip)),
        rsp: Hex(vmcs::read(FN::GuestRsp)),
        rflags: Hex(vmcs::read(FN::GuestRflags)),
        cs: Hex(vmcs::read16(F16::GuestCsSelector).into()),
        cs_access: Hex(vmcs::read32(F32::GuestCsAccess).into()),
        cs_limit: Hex(vmcs::read32(F32::GuestCsLimit).into()),
        ss_access: Hex(vmcs::read32(F32::GuestSsAccess).into()),
        ds_access: Hex(vmcs::read32(F32::GuestDsAccess).into()),
        tr_access: Hex(vmcs::read32(F32::GuestTrAccess).into()),
        ldtr_access: Hex(vmcs::read32(F32::GuestLdtrAccess).into()),
        gdtr: Hex(vmcs::read(FN::GuestGdtrBase)),
        idtr: Hex(vmcs::read(FN::GuestIdtrBase)),
        interruptibility: Hex(vmcs::read32(F32::GuestInterruptibility).into()),
        activity: Hex(vmcs::read32(F32::GuestActivityState).into()),
        link: Hex(vmcs::read64(F64::VmcsLinkPointer)),
        entry_controls: Hex(vmcs::read32(F32::EntryControls).into()),
        proc_controls: Hex(vmcs::read32(F32::ProcControls).into()),
        secondary_controls: Hex(vmcs::read32(F32::SecondaryControls).into()),
    }
}

/// VMX operation on this CPU.
pub struct Vmx {
    revision: u32,
    caps: Capabilities,
    cr0_fixed: (u64, u64),
    cr4_fixed: (u64, u64),
}

impl Vmx {
    /// Enters VMX operation, or says why this CPU cannot.
    pub fn enable() -> Result<Self, Refusal> {
        let cpuid = raw_cpuid::CpuId::new();
        if !cpuid.get_feature_info().is_some_and(|f| f.has_vmx()) {
            return Err(Refusal::Unsupported("the CPU has no VMX"));
        }
        let basic = rdmsr(IA32_VMX_BASIC);
        let true_controls = basic & (1 << 55) != 0;
        let msr = |plain: u32, true_msr: u32| rdmsr(if true_controls { true_msr } else { plain });
        let mut caps = Capabilities {
            pin: msr(0x481, 0x48d),
            proc: msr(0x482, 0x48e),
            exit: msr(0x483, 0x48f),
            entry: msr(0x484, 0x490),
            misc: rdmsr(IA32_VMX_MISC),
            ..Default::default()
        };
        if (caps.proc >> 32) & u64::from(controls::proc::ACTIVATE_SECONDARY) != 0 {
            caps.proc2 = rdmsr(0x48b);
        }
        if (caps.proc2 >> 32) & u64::from(proc2::ENABLE_EPT | proc2::ENABLE_VPID) != 0 {
            caps.ept_vpid = rdmsr(IA32_VMX_EPT_VPID_CAP);
        }
        if let Err(missing) = controls::compute(&caps, false, false) {
            return Err(Refusal::Unsupported(
                if missing.bits & proc2::ENABLE_EPT != 0 {
                    "the CPU has no EPT"
                } else if missing.bits & proc2::UNRESTRICTED_GUEST != 0 {
                    "the CPU has no unrestricted guest"
                } else {
                    "the CPU lacks a VMX control Scalevisor needs"
                },
            ));
        }
        if caps.ept_vpid & (ept_vpid::WALK_4 | ept_vpid::MEMORY_TYPE_WB)
            != ept_vpid::WALK_4 | ept_vpid::MEMORY_TYPE_WB
        {
            return Err(Refusal::Unsupported(
                "the CPU's EPT lacks 4-level walks or write-back memory",
            ));
        }

        let mut feature = Msr::new(IA32_FEATURE_CONTROL);
        // SAFETY: IA32_FEATURE_CONTROL exists on every CPU with VMX.
        let value = unsafe { feature.read() };
        if value & FEATURE_LOCK == 0 {
            // SAFETY: enabling VMX outside SMX and locking is what firmware would do.
            unsafe { feature.write(value | FEATURE_LOCK | FEATURE_VMX_OUTSIDE_SMX) };
        } else if value & FEATURE_VMX_OUTSIDE_SMX == 0 {
            return Err(Refusal::Unsupported(
                "VMX is disabled by firmware (IA32_FEATURE_CONTROL locked)",
            ));
        }

        let vmx = Self {
            revision: (basic & 0x7fff_ffff) as u32,
            caps,
            cr0_fixed: (rdmsr(IA32_VMX_CR0_FIXED0), rdmsr(IA32_VMX_CR0_FIXED1)),
            cr4_fixed: (rdmsr(IA32_VMX_CR4_FIXED0), rdmsr(IA32_VMX_CR4_FIXED1)),
        };
        let cr0 = controls::fixed_cr(Cr0::read_raw(), vmx.cr0_fixed.0, vmx.cr0_fixed.1, 0);
        let cr4 = controls::fixed_cr(
            Cr4::read_raw() | CR4_VMXE,
            vmx.cr4_fixed.0,
            vmx.cr4_fixed.1,
            0,
        );
        // SAFETY: the VMX fixed bits (CR0.NE, CR4.VMXE) change nothing the
        // kernel relies on.
        unsafe {
            Cr0::write_raw(cr0);
            Cr4::write_raw(cr4);
        }
        let region = vmx
            .region()
            .ok_or(Refusal::failed(format_args!("out of memory for VMXON")))?;
        // SAFETY: a fresh frame with the revision id; CR0/CR4 fixed above.
        unsafe { instructions::vmxon(region) }.map_err(|e| failed("VMXON", e))?;
        event::emit(&VmxOn {
            revision: vmx.revision,
            vmcs_size: ((basic >> 32) & 0x1fff) as u32,
            true_controls,
            region: Hex(region),
            vpid: (caps.proc2 >> 32) & u64::from(proc2::ENABLE_VPID) != 0,
        });
        Ok(vmx)
    }

    /// A zeroed frame starting with the VMCS revision id (VMXON region or VMCS).
    fn region(&self) -> Option<u64> {
        let frame = mm::alloc_zeroed()?;
        // SAFETY: the frame was just allocated for this region.
        unsafe { crate::phys::write(frame, &self.revision.to_le_bytes()) };
        Some(frame)
    }

    /// Leaves VMX operation and clears CR4.VMXE.
    pub fn disable(self, exits: u32) {
        // SAFETY: the vCPU's VMCS was cleared; nothing runs in VMX anymore.
        let _ = unsafe { instructions::vmxoff() };
        // SAFETY: clearing VMXE outside VMX operation is always allowed.
        unsafe { Cr4::write_raw(Cr4::read_raw() & !CR4_VMXE) };
        event::emit(&VmxOff { exits });
    }
}

/// The longest a vCPU stays in the guest without an exit, in emulated ms.
const QUANTUM_MS: u64 = 10;

pub struct Vcpu<'m> {
    ctx: CpuContext,
    eptp: u64,
    /// The INVEPT type that forgets this guest's translations (1 single
    /// context, 2 all), when the CPU has INVEPT.
    invept: Option<u64>,
    /// The vCPU's index, in events.
    index: u32,
    vmcs: u64,
    launched: bool,
    memory: &'m dyn GuestRam,
    controls: Controls,
    /// The watchdog's TSC deadline, and the preemption timer's rate
    /// (it counts down once every 2^rate TSC ticks).
    deadline: Deadline,
    timer_rate: u32,
    /// Where there is no preemption timer (an OS guest owns its time).
    clock: vcpu::ExitClock,
    /// The exiting instruction's length when a handler decoded it (the
    /// VMCS has none for EPT violations).
    decoded_len: Option<u64>,
    /// IA32_VMX_CR0_FIXED0 and FIXED1: what CR0 must hold in VMX operation.
    cr0_fixed: (u64, u64),
}

fn vmwrites(writes: &[(u32, u64)]) -> Result<(), Refusal> {
    for &(field, value) in writes {
        // SAFETY: our VMCS is current; VM entry checks the values.
        unsafe { instructions::vmwrite(field, value) }.map_err(|e| failed("VMWRITE", e))?;
    }
    Ok(())
}

impl<'m> Vcpu<'m> {
    pub fn new(
        vmx: &Vmx,
        config: &GuestConfig,
        state: &GuestState,
        memory: &'m dyn GuestRam,
        seat: vcpu::Seat,
    ) -> Result<Self, Refusal> {
        let (index, cpu) = (seat.vcpu, seat.cpu);
        let os = config.os();
        // Linux under it stops after its initramfs on Bochs (docs/numa.md,
        // "Adaptive placement for Linux"): skipped until that is found.
        if os && config.placement.policy == crate::numa::policy::Spec::Adaptive {
            return Err(Refusal::Unsupported(
                "numa.policy=adaptive for an OS guest: not on VMX yet",
            ));
        }
        let oom = || Refusal::failed(format_args!("out of memory for the VMCS"));
        let vmcs = vmx.region().ok_or_else(oom)?;
        // SAFETY: our fresh VMCS region.
        unsafe { instructions::vmclear(vmcs) }.map_err(|e| failed("VMCLEAR", e))?;
        event::emit(&VmClear(Step {
            vcpu: index,
            vmcs: Hex(vmcs),
        }));
        // SAFETY: the region was just cleared and carries the revision id.
        unsafe { instructions::vmptrld(vmcs) }.map_err(|e| failed("VMPTRLD", e))?;
        let current = instructions::vmptrst().map_err(|e| failed("VMPTRST", e))?;
        if current != vmcs {
            return Err(Refusal::failed(format_args!(
                "VMPTRST gave {current:#x}, not {vmcs:#x}"
            )));
        }
        event::emit(&VmPtrLd(Step {
            vcpu: index,
            vmcs: Hex(vmcs),
        }));

        let controls =
            controls::compute(&vmx.caps, state.mode == GuestMode::Long, os).map_err(|m| {
                Refusal::failed(format_args!("{} controls lack bits {:#x}", m.field, m.bits))
            })?;
        let io = vcpu::io::bitmaps(os);
        let reads = vcpu::INTERCEPTED_MSR_READS.iter().flat_map(|r| r.clone());
        let msr = bitmaps::msr_bitmap(reads, vcpu::msr_writes(os));
        let mut pages = [0u64; 3];
        for (page, bytes) in pages.iter_mut().zip([&io[0], &io[1], &msr]) {
            *page = mm::alloc_zeroed().ok_or_else(oom)?;
            // SAFETY: a frame just allocated for this bitmap.
            unsafe { crate::phys::write(*page, bytes) };
        }
        // Accessed and dirty bits where the CPU keeps them (EPTP bit 6).
        let ad = if vcpu::Virtualization::accessed_dirty(vmx) {
            1 << 6
        } else {
            0
        };
        let eptp = memory.root(crate::arch::percpu::this().node())
            | ad
            | (3 << 3)
            | crate::ept::format::MEMORY_TYPE_WB;
        let vpid = controls.proc2 & proc2::ENABLE_VPID != 0;

        // Host state: what the CPU reloads at every VM exit.
        let gdt = x86_64::instructions::tables::sgdt();
        let idt = x86_64::instructions::tables::sidt();
        let selectors = crate::arch::gdt::selectors();
        let host = [
            (F16::HostCsSelector as u32, u64::from(selectors.code.0)),
            (F16::HostSsSelector as u32, u64::from(selectors.data.0)),
            (F16::HostDsSelector as u32, u64::from(selectors.data.0)),
            (F16::HostEsSelector as u32, u64::from(selectors.data.0)),
            (F16::HostFsSelector as u32, 0),
            (F16::HostGsSelector as u32, 0),
            (F16::HostTrSelector as u32, u64::from(selectors.tss.0)),
            (FN::HostCr0 as u32, Cr0::read_raw()),
            (
                FN::HostCr3 as u32,
                Cr3::read_raw().0.start_address().as_u64(),
            ),
            (FN::HostCr4 as u32, Cr4::read_raw()),
            (FN::HostFsBase as u32, 0),
            (FN::HostGsBase as u32, crate::arch::percpu::gs_base()),
            (FN::HostTrBase as u32, crate::arch::gdt::tss_base(cpu)),
            (FN::HostGdtrBase as u32, gdt.base.as_u64()),
            (FN::HostIdtrBase as u32, idt.base.as_u64()),
            (FN::HostSysenterEsp as u32, 0),
            (FN::HostSysenterEip as u32, 0),
            (F32::HostSysenterCs as u32, 0),
            (F64::HostEfer as u32, rdmsr(IA32_EFER)),
            (FN::HostRip as u32, vmx_exit as *const () as u64),
        ];
        let execution = [
            (F32::PinControls as u32, u64::from(controls.pin)),
            (F32::ProcControls as u32, u64::from(controls.proc)),
            (F32::SecondaryControls as u32, u64::from(controls.proc2)),
            (F32::ExitControls as u32, u64::from(controls.exit)),
            (F32::EntryControls as u32, u64::from(controls.entry)),
            (F32::ExceptionBitmap as u32, 0),
            (F32::Cr3TargetCount as u32, 0),
            (F32::ExitMsrStoreCount as u32, 0),
            (F32::ExitMsrLoadCount as u32, 0),
            (F32::EntryMsrLoadCount as u32, 0),
            (F32::EntryInterruptionInfo as u32, 0),
            (F64::IoBitmapA as u32, pages[0]),
            (F64::IoBitmapB as u32, pages[1]),
            (F64::MsrBitmap as u32, pages[2]),
            (F64::EptPointer as u32, eptp),
            (F16::Vpid as u32, u64::from(vpid)),
            // CR4 is the hypervisor's: the guest reads the shadow (without
            // the VMXE that VMX operation forces on), and every change
            // exits to be checked, as every CR4 write does on AMD.
            // CR0's bits that VMX operation fixes (NE; PE and PG are the
            // unrestricted guest's): the guest reads and writes the shadow's,
            // a change exits (a kernel may clear NE, as Linux's PVH entry does).
            (
                FN::Cr0GuestHostMask as u32,
                vmx.cr0_fixed.0 & !(crate::vcpu::guest::CR0_PE | CR0_PG),
            ),
            (FN::Cr4GuestHostMask as u32, u64::MAX),
            (FN::Cr0ReadShadow as u32, state.cr0),
            (FN::Cr4ReadShadow as u32, state.cr4),
            (F64::VmcsLinkPointer as u32, u64::MAX),
        ];
        let (cr0_0, cr0_1) = vmx.cr0_fixed;
        let (cr4_0, cr4_1) = vmx.cr4_fixed;
        // An unrestricted guest may run with paging or protection off.
        let cr0 = controls::fixed_cr(
            state.cr0,
            cr0_0,
            cr0_1,
            crate::vcpu::guest::CR0_PE | crate::vcpu::guest::CR0_PG,
        );
        let cr4 = controls::fixed_cr(state.cr4, cr4_0, cr4_1, 0);
        let guest = [
            (FN::GuestCr0 as u32, cr0),
            (FN::GuestCr3 as u32, state.cr3),
            (FN::GuestCr4 as u32, cr4),
            (FN::GuestDr7 as u32, 0x400),
            (FN::GuestRsp as u32, state.rsp),
            (FN::GuestRip as u32, state.rip),
            // Bit 1 of RFLAGS is reserved as 1: clearing it makes entry fail.
            (
                FN::GuestRflags as u32,
                if config.invalid_state {
                    0
                } else {
                    state.rflags
                },
            ),
            (FN::GuestPendingDebug as u32, 0),
            (FN::GuestSysenterEsp as u32, 0),
            (FN::GuestSysenterEip as u32, 0),
            (F32::GuestSysenterCs as u32, 0),
            (F32::GuestInterruptibility as u32, 0),
            (F32::GuestActivityState as u32, 0),
            (F64::GuestDebugCtl as u32, 0),
            (F64::GuestEfer as u32, state.efer),
            (FN::GuestGdtrBase as u32, state.gdtr.base),
            (F32::GuestGdtrLimit as u32, state.gdtr.limit.into()),
            (FN::GuestIdtrBase as u32, state.idtr.base),
            (F32::GuestIdtrLimit as u32, state.idtr.limit.into()),
            (F16::GuestLdtrSelector as u32, 0),
            (FN::GuestLdtrBase as u32, 0),
            (F32::GuestLdtrLimit as u32, 0),
            (
                F32::GuestLdtrAccess as u32,
                u64::from(crate::vcpu::guest::access::UNUSABLE),
            ),
        ];
        vmwrites(&host)?;
        vmwrites(&execution)?;
        vmwrites(&guest)?;
        let segments: [(F16, FN, F32, F32, &Segment); 7] = [
            (
                F16::GuestCsSelector,
                FN::GuestCsBase,
                F32::GuestCsLimit,
                F32::GuestCsAccess,
                &state.cs,
            ),
            (
                F16::GuestSsSelector,
                FN::GuestSsBase,
                F32::GuestSsLimit,
                F32::GuestSsAccess,
                &state.data,
            ),
            (
                F16::GuestDsSelector,
                FN::GuestDsBase,
                F32::GuestDsLimit,
                F32::GuestDsAccess,
                &state.data,
            ),
            (
                F16::GuestEsSelector,
                FN::GuestEsBase,
                F32::GuestEsLimit,
                F32::GuestEsAccess,
                &state.data,
            ),
            (
                F16::GuestFsSelector,
                FN::GuestFsBase,
                F32::GuestFsLimit,
                F32::GuestFsAccess,
                &state.data,
            ),
            (
                F16::GuestGsSelector,
                FN::GuestGsBase,
                F32::GuestGsLimit,
                F32::GuestGsAccess,
                &state.data,
            ),
            (
                F16::GuestTrSelector,
                FN::GuestTrBase,
                F32::GuestTrLimit,
                F32::GuestTrAccess,
                &state.tr,
            ),
        ];
        for (sel, base, limit, access, s) in segments {
            vmwrites(&[
                (sel as u32, s.selector.into()),
                (base as u32, s.base),
                (limit as u32, s.limit.into()),
                (access as u32, s.access.into()),
            ])?;
        }
        // Translations cached from an earlier use of these frames must go.
        let invept = match vmx.caps.ept_vpid {
            c if c & ept_vpid::INVEPT == 0 => None,
            c if c & ept_vpid::INVEPT_SINGLE != 0 => Some(1),
            _ => Some(2),
        };
        if let Some(kind) = invept {
            instructions::invept(kind, eptp).map_err(|e| failed("INVEPT", e))?;
        }
        Ok(Self {
            eptp,
            invept,
            ctx: CpuContext::new(),
            index,
            vmcs,
            launched: false,
            memory,
            controls,
            deadline: Deadline::default(),
            timer_rate: (vmx.caps.misc & 0x1f) as u32,
            clock: vcpu::ExitClock::default(),
            decoded_len: None,
            cr0_fixed: vmx.cr0_fixed,
        })
    }

    /// Arms the preemption timer to exit `left` TSC ticks from now: false
    /// for a vCPU without one (an OS guest, which owns its time, or a CPU
    /// that has none: a guest stopped at its deadline only when it exits).
    fn arm_timer(&self, left: u64) -> bool {
        if self.controls.pin & controls::pin::PREEMPTION_TIMER == 0 {
            return false;
        }
        // Rounded up, so that the exit comes at or after the deadline.
        let ticks = left.div_ceil(1 << self.timer_rate);
        let _ = vmcs::write32(F32::PreemptionTimer, ticks.min(u32::MAX.into()) as u32);
        true
    }

    /// Whether a period passed without a timer (`vcpu::ExitClock`); out of
    /// line, off the path of guests with one.
    #[cold]
    #[inline(never)]
    fn clock_due(&mut self) -> bool {
        self.clock.due(crate::arch::tsc::now(), self.deadline)
    }

    /// One VM entry, to the guest's next exit.
    fn enter(&mut self) -> Result<Exit, EntryFailure> {
        let instruction = if self.launched {
            "vmresume"
        } else {
            "vmlaunch"
        };
        if !self.launched {
            event::emit(&VmLaunch(Step {
                vcpu: self.index,
                vmcs: Hex(self.vmcs),
            }));
        }
        // SAFETY: our VMCS is current and complete; `run.s` saves and
        // restores every register the host uses.
        let status = unsafe { vmx_enter(&mut self.ctx, u64::from(self.launched)) };
        if status != 0 {
            let error = if status == 2 {
                vmcs::read32(F32::InstructionError)
            } else {
                0
            };
            let name = if status == 2 {
                names::instruction_error(error)
            } else {
                "VMfailInvalid"
            };
            return Err(self.entry_failed(instruction, error.into(), name));
        }
        self.launched = true;
        let reason = vmcs::read32(F32::ExitReason);
        if reason & (1 << 31) != 0 {
            let basic = reason as u16;
            return Err(self.entry_failed(instruction, basic.into(), names::exit_reason(basic)));
        }
        // Only these exits can interrupt an event's delivery (exception or
        // NMI, external interrupt, triple fault, task switch, APIC access,
        // EPT violation and misconfiguration; SDM 3C 27.2.4): instruction
        // exits never do, and skip the VMREAD.
        if matches!(reason as u16, 0 | 1 | 2 | 9 | 44 | 48 | 49) {
            self.reinject();
        }
        Ok(self.decode(reason))
    }

    /// An event the exit interrupted while the CPU delivered it (a fault
    /// on a page not backed yet, say) is delivered again at the next entry
    /// (SDM 3C 27.2.4): the guest never loses it.
    fn reinject(&self) {
        const VALID: u32 = 1 << 31;
        const ERROR_CODE: u32 = 1 << 11;
        let info = vmcs::read32(F32::IdtVectoringInfo);
        if info & VALID == 0 {
            return;
        }
        if info & ERROR_CODE != 0 {
            let code = vmcs::read32(F32::IdtVectoringErrorCode);
            let _ = vmcs::write32(F32::EntryExceptionErrorCode, code);
        }
        // Software interrupts and exceptions (types 4 to 6) need their length.
        if (4..=6).contains(&((info >> 8) & 7)) {
            let len = vmcs::read32(F32::ExitInstructionLength);
            let _ = vmcs::write32(F32::EntryInstructionLength, len);
        }
        // Bits 30:12 of the entry field are reserved (12 is NMI unblocking here).
        let _ = vmcs::write32(F32::EntryInterruptionInfo, info & !0x7fff_f000);
    }

    fn decode(&self, reason: u32) -> Exit {
        let basic = reason as u16;
        // Read where the exit has one: a VMREAD less on the common exits.
        let qualification = || vmcs::read(FN::ExitQualification);
        match basic {
            0 => {
                let info = vmcs::read32(F32::ExitInterruptionInfo);
                // An NMI: an OS guest's kick (NMI exiting). The run loop decides.
                if (info >> 8) & 7 == 2 {
                    return Exit::Timer;
                }
                let error_code =
                    (info & (1 << 11) != 0).then(|| vmcs::read32(F32::ExitInterruptionErrorCode));
                Exit::Exception {
                    vector: info as u8,
                    error_code,
                }
            }
            // The host's own interrupt, acknowledged by the exit: the kick
            // IPI or a timer. Nothing for the guest; the run loop decides.
            1 => {
                crate::arch::apic::eoi();
                Exit::Timer
            }
            2 => Exit::TripleFault,
            10 => Exit::Cpuid,
            12 => Exit::Hlt,
            18 => Exit::Hypercall,
            13 => Exit::Invd,
            55 => Exit::Xsetbv,
            52 => Exit::Timer,
            // A MOV to CR4 that changes it.
            28 if (qualification() >> 4) & 3 == 0 => {
                let q = qualification();
                Exit::CrWrite {
                    cr: (q & 0xf) as u8,
                    value: self.ctx.regs.gpr((q >> 8) as u8, vmcs::read(FN::GuestRsp)),
                }
            }
            19..=27 | 50 | 53 => Exit::VirtInstruction(names::exit_reason(basic)),
            30 => {
                let q = qualification();
                Exit::Io {
                    size: (q & 7) as u8 + 1,
                    input: q & (1 << 3) != 0,
                    string: q & (1 << 4) != 0,
                    port: (q >> 16) as u16,
                }
            }
            31 | 32 => Exit::Msr {
                index: self.ctx.regs.rcx as u32,
                write: basic == 32,
            },
            48 => {
                let q = qualification();
                Exit::NestedFault {
                    gpa: vmcs::read64(F64::GuestPhysicalAddress),
                    read: q & 1 != 0,
                    write: q & 2 != 0,
                    fetch: q & 4 != 0,
                    mapped: q & 0x38 != 0,
                }
            }
            _ => Exit::Unhandled {
                code: basic.into(),
                name: names::exit_reason(basic),
            },
        }
    }

    fn entry_failed(&self, instruction: &str, code: u64, reason: &'static str) -> EntryFailure {
        event::emit(&vcpu::EntryFailed {
            vcpu: self.index,
            instruction,
            code: Hex(code),
            reason,
            guest: dump(),
        });
        EntryFailure { code, reason }
    }
}

/// Clears the VMCS, so that VMX operation can end.
impl Drop for Vcpu<'_> {
    fn drop(&mut self) {
        // SAFETY: our VMCS; nothing enters the guest after this.
        let _ = unsafe { instructions::vmclear(self.vmcs) };
    }
}

impl vcpu::Virtualization for Vmx {
    type Format = Ept;
    type Cpu<'m> = Vcpu<'m>;

    fn enable() -> Result<Self, Refusal> {
        Vmx::enable()
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
        Vmx::disable(self, exits)
    }
    fn accessed_dirty(&self) -> bool {
        self.caps.ept_vpid & ept_vpid::ACCESSED_DIRTY != 0
    }
}

impl VirtCpu for Vcpu<'_> {
    fn run(&mut self) -> Result<Exit, EntryFailure> {
        // The timer also ends every slice after QUANTUM_MS: a vCPU that never
        // exits still sees, in bounded time, that the guest is stopping,
        // where the kick IPI does not bring it out (Bochs 2.7 keeps host
        // interrupts masked in a guest entered with IF=0).
        let quantum = QUANTUM_MS * crate::arch::tsc::per_ms();
        let mut slice = quantum;
        if !self
            .deadline
            .arm(crate::arch::tsc::now(), |left| slice = left.min(quantum))
        {
            return Ok(Exit::Deadline);
        }
        if !self.arm_timer(slice) && self.clock_due() {
            // No timer (an OS guest, or a CPU without one): periods are
            // seen at the guest's exits.
            return Ok(Exit::Timer);
        }
        self.enter()
    }

    fn set_deadline(&mut self, deadline: Deadline) {
        self.deadline = deadline;
    }

    fn flush_tlb(&mut self) {
        if let Some(kind) = self.invept {
            // An EPTP of ours, a type the CPU has: it cannot fail.
            let _ = instructions::invept(kind, self.eptp);
        }
    }

    fn regs(&mut self) -> &mut GuestRegs {
        &mut self.ctx.regs
    }

    fn rip(&self) -> u64 {
        vmcs::read(FN::GuestRip)
    }

    fn skip_instruction(&mut self) {
        let len = self
            .decoded_len
            .take()
            .unwrap_or_else(|| vmcs::read32(F32::ExitInstructionLength).into());
        let _ = vmcs::write(FN::GuestRip, self.rip() + len);
    }

    fn inject_exception(&mut self, vector: u8, error_code: Option<u32>) {
        const HARDWARE_EXCEPTION: u32 = 3 << 8;
        const DELIVER_ERROR_CODE: u32 = 1 << 11;
        const VALID: u32 = 1 << 31;
        // Real mode delivers no error code (SDM 3C 27.2.1.3).
        let protected = vmcs::read(FN::GuestCr0) & crate::vcpu::guest::CR0_PE != 0;
        let code = error_code.filter(|_| protected);
        let mut info = u32::from(vector) | HARDWARE_EXCEPTION | VALID;
        if let Some(c) = code {
            info |= DELIVER_ERROR_CODE;
            let _ = vmcs::write32(F32::EntryExceptionErrorCode, c);
        }
        let _ = vmcs::write32(F32::EntryInterruptionInfo, info);
    }

    fn set_efer(&mut self, efer: u64) {
        let _ = vmcs::write64(F64::GuestEfer, efer);
        // IA-32e mode follows EFER.LMA.
        let lma = efer & crate::vcpu::guest::EFER_LMA != 0;
        let ia32e = controls::entry::IA32E_MODE_GUEST;
        self.controls.entry = if lma {
            self.controls.entry | ia32e
        } else {
            self.controls.entry & !ia32e
        };
        let _ = vmcs::write32(F32::EntryControls, self.controls.entry);
    }

    fn efer(&self) -> u64 {
        vmcs::read64(F64::GuestEfer)
    }

    fn set_cr0(&mut self, cr0: u64) {
        let (fixed0, fixed1) = self.cr0_fixed;
        let free = crate::vcpu::guest::CR0_PE | CR0_PG;
        let _ = vmcs::write(FN::Cr0ReadShadow, cr0);
        let _ = vmcs::write(FN::GuestCr0, controls::fixed_cr(cr0, fixed0, fixed1, free));
        // LMA follows, and with it IA-32e mode at entry (`set_efer`).
        self.set_efer(vcpu::checks::efer_after_cr0(cr0, self.efer()));
    }

    fn set_cr4(&mut self, cr4: u64) {
        let _ = vmcs::write(FN::Cr4ReadShadow, cr4);
        let _ = vmcs::write(FN::GuestCr4, cr4 | CR4_VMXE);
    }

    fn cpl(&self) -> u8 {
        // SS.DPL is the CPL (SDM 3C 27.3.1.2); 0 in real mode.
        ((vmcs::read32(F32::GuestSsAccess) >> 5) & 3) as u8
    }

    fn cr0(&self) -> u64 {
        vmcs::read(FN::GuestCr0)
    }

    fn cr4(&self) -> u64 {
        vmcs::read(FN::Cr4ReadShadow)
    }

    fn read_guest(&self, gpa: u64, out: &mut [u8]) -> bool {
        self.memory.read(gpa, out)
    }

    fn code(&mut self, out: &mut [u8]) -> (usize, bool) {
        let long = vmcs::read64(F64::GuestEfer) & EFER_LMA != 0;
        let paging = vmcs::read(FN::GuestCr0) & CR0_PG != 0;
        let cr3 = vmcs::read(FN::GuestCr3);
        let linear = vmcs::read(FN::GuestCsBase).wrapping_add(self.rip());
        let memory = self.memory;
        let quad = |gpa| {
            let mut b = [0u8; 8];
            memory.read(gpa, &mut b).then(|| u64::from_le_bytes(b))
        };
        let mut n = 0;
        while n < out.len() {
            let at = linear.wrapping_add(n as u64);
            let piece = (0x1000 - (at & 0xfff) as usize).min(out.len() - n);
            let Some(gpa) = crate::vcpu::decode::translate(quad, paging, long, cr3, at) else {
                break;
            };
            if !memory.read(gpa, &mut out[n..n + piece]) {
                break;
            }
            n += piece;
        }
        let code64 = long && vmcs::read32(F32::GuestCsAccess) & (1 << 13) != 0;
        (n, code64)
    }

    fn set_instruction_len(&mut self, len: u64) {
        self.decoded_len = Some(len);
    }

    fn rsp(&self) -> u64 {
        vmcs::read(FN::GuestRsp)
    }
}
