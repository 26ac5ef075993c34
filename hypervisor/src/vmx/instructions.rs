//! Every VMX instruction, each behind one checked wrapper. VMX instructions
//! report failure in RFLAGS: CF for VMfailInvalid (no current VMCS), ZF for
//! VMfailValid (the error number is in the VMCS).

use core::arch::asm;

use super::fields::Field32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmFail {
    Invalid,
    /// With the VM-instruction error number.
    Valid(u32),
}

const CF: u64 = 1 << 0;
const ZF: u64 = 1 << 6;

fn check(rflags: u64) -> Result<(), VmFail> {
    if rflags & CF != 0 {
        Err(VmFail::Invalid)
    } else if rflags & ZF != 0 {
        Err(VmFail::Valid(
            vmread(Field32::InstructionError as u32).map_or(0, |v| v as u32),
        ))
    } else {
        Ok(())
    }
}

/// # Safety
/// `region` is a 4 KiB frame holding the VMCS revision id; CR4.VMXE is set
/// and CR0/CR4 obey the VMX fixed bits.
pub unsafe fn vmxon(region: u64) -> Result<(), VmFail> {
    let flags: u64;
    // SAFETY: per this function's contract.
    unsafe { asm!("vmxon qword ptr [{}]", "pushfq", "pop {}", in(reg) &region, out(reg) flags) };
    check(flags)
}

/// # Safety
/// In VMX operation; no guest state is used afterwards.
pub unsafe fn vmxoff() -> Result<(), VmFail> {
    let flags: u64;
    // SAFETY: per this function's contract.
    unsafe { asm!("vmxoff", "pushfq", "pop {}", out(reg) flags) };
    check(flags)
}

/// # Safety
/// `vmcs` is a VMCS region of ours.
pub unsafe fn vmclear(vmcs: u64) -> Result<(), VmFail> {
    let flags: u64;
    // SAFETY: per this function's contract.
    unsafe { asm!("vmclear qword ptr [{}]", "pushfq", "pop {}", in(reg) &vmcs, out(reg) flags) };
    check(flags)
}

/// # Safety
/// `vmcs` is a cleared VMCS region of ours with the right revision id.
pub unsafe fn vmptrld(vmcs: u64) -> Result<(), VmFail> {
    let flags: u64;
    // SAFETY: per this function's contract.
    unsafe { asm!("vmptrld qword ptr [{}]", "pushfq", "pop {}", in(reg) &vmcs, out(reg) flags) };
    check(flags)
}

/// The current-VMCS pointer.
pub fn vmptrst() -> Result<u64, VmFail> {
    let mut ptr: u64 = 0;
    let flags: u64;
    // SAFETY: stores the current-VMCS pointer into a local; no other effect.
    unsafe { asm!("vmptrst qword ptr [{}]", "pushfq", "pop {}", in(reg) &mut ptr, out(reg) flags) };
    check(flags).map(|()| ptr)
}

pub fn vmread(field: u32) -> Result<u64, VmFail> {
    let value: u64;
    let flags: u64;
    // SAFETY: reads a field of the current VMCS; no other effect.
    unsafe {
        asm!("vmread {}, {}", "pushfq", "pop {}", out(reg) value, in(reg) u64::from(field), out(reg) flags)
    };
    // Not through `check`: reading the error number must not recurse.
    if flags & (CF | ZF) != 0 {
        Err(VmFail::Invalid)
    } else {
        Ok(value)
    }
}

/// # Safety
/// The current VMCS is ours; the value is valid for the field (entry checks
/// catch the rest).
pub unsafe fn vmwrite(field: u32, value: u64) -> Result<(), VmFail> {
    let flags: u64;
    // SAFETY: per this function's contract.
    unsafe {
        asm!("vmwrite {}, {}", "pushfq", "pop {}", in(reg) u64::from(field), in(reg) value, out(reg) flags)
    };
    check(flags)
}

/// INVEPT of `kind` (1: single context, 2: all contexts) for `eptp`.
pub fn invept(kind: u64, eptp: u64) -> Result<(), VmFail> {
    let descriptor: [u64; 2] = [eptp, 0];
    let flags: u64;
    // SAFETY: only invalidates cached EPT translations.
    unsafe {
        asm!("invept {}, [{}]", "pushfq", "pop {}", in(reg) kind, in(reg) &descriptor, out(reg) flags)
    };
    check(flags)
}
