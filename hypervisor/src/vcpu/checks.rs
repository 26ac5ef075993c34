//! Guest-controlled values checked as the hardware checks them, so that a
//! guest gets #GP where a CPU would raise it and a VM entry that fails is
//! only ever a hypervisor bug. Pure functions over register values.

use super::guest::{CR0_PE, CR0_PG, CR4_PAE, EFER_LMA, EFER_LME};

pub const EFER_SCE: u64 = 1 << 0;
pub const EFER_NXE: u64 = 1 << 11;
const CR0_NW: u64 = 1 << 29;
pub const CR4_OSXSAVE: u64 = 1 << 18;
const CR0_CD: u64 = 1 << 30;
/// CR4 bits a guest may hold whatever its CPU: VME, PVI, TSD, DE, PSE, PAE,
/// MCE, PGE, PCE, OSFXSR, OSXMMEXCPT. Others (UMIP, FSGSBASE, PCIDE, SMEP,
/// SMAP, PKE, OSXSAVE) only where CPUID has them (`cpuid::guest_cr4_bits`);
/// VMXE and SMXE never: the guest sees no VMX or SMX.
pub const CR4_BASE_BITS: u64 = 0x7ff;

/// A WRMSR to EFER: the value the guest's EFER takes, or `None` for #GP.
/// Only SCE, LME and NXE (where the CPU has NX) are writable; LMA is the
/// CPU's to set and keeps its value; LME cannot change while paging is on.
pub fn efer_write(current: u64, value: u64, paging: bool, nx: bool) -> Option<u64> {
    let writable = EFER_SCE | EFER_LME | if nx { EFER_NXE } else { 0 };
    if value & !(writable | EFER_LMA) != 0 {
        return None;
    }
    if paging && (value ^ current) & EFER_LME != 0 {
        return None;
    }
    Some((value & writable) | (current & EFER_LMA))
}

/// A MOV to CR0 that exits (bits the hypervisor owns changed): the value
/// CR0 takes, or `None` for #GP: bits 63:32, NW without CD, PG without PE.
pub fn cr0_write(value: u64) -> Option<u64> {
    let bad = value >> 32 != 0
        || (value & CR0_NW != 0 && value & CR0_CD == 0)
        || (value & CR0_PG != 0 && value & CR0_PE == 0);
    (!bad).then_some(value)
}

/// EFER after CR0 became `cr0`: long mode (LMA) is on while paging is on
/// with LME set, off otherwise.
pub fn efer_after_cr0(cr0: u64, efer: u64) -> u64 {
    if cr0 & CR0_PG != 0 && efer & EFER_LME != 0 {
        efer | EFER_LMA
    } else {
        efer & !EFER_LMA
    }
}

/// A MOV to CR4: the value CR4 takes, or `None` for #GP. Bits outside
/// `allowed` (what the guest's CPU has) are refused, and so is clearing PAE
/// in long mode or setting PCIDE outside it.
pub fn cr4_write(value: u64, long_mode: bool, allowed: u64) -> Option<u64> {
    const PCIDE: u64 = 1 << 17;
    if value & !allowed != 0 {
        return None;
    }
    if long_mode && value & CR4_PAE == 0 {
        return None;
    }
    if !long_mode && value & PCIDE != 0 {
        return None;
    }
    Some(value)
}

/// Why a guest state would make VM entry fail (APM 2 15.5.1, SDM 3C 27.3.1),
/// for states a guest can reach only where its emulator skipped a #GP the
/// hardware raises. `None`: the state is enterable.
pub fn illegal_state(cr0: u64, cr4: u64, efer: u64, cr4_allowed: u64) -> Option<&'static str> {
    if cr0 >> 32 != 0 {
        return Some("CR0 bits 63:32 set");
    }
    if cr0 & CR0_NW != 0 && cr0 & CR0_CD == 0 {
        return Some("CR0.NW set without CR0.CD");
    }
    if cr0 & CR0_PG != 0 && cr0 & CR0_PE == 0 {
        return Some("CR0.PG set without CR0.PE");
    }
    if cr4 & !cr4_allowed != 0 {
        return Some("a reserved or hypervisor-owned CR4 bit set");
    }
    if efer & !(EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE) != 0 {
        return Some("a reserved EFER bit set");
    }
    let long = efer & EFER_LME != 0 && cr0 & CR0_PG != 0;
    if long && cr4 & CR4_PAE == 0 {
        return Some("EFER.LME and CR0.PG set without CR4.PAE");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn efer_writes_are_checked_as_wrmsr_checks_them() {
        let long = EFER_LME | EFER_LMA;
        assert_eq!(efer_write(0, EFER_SCE | EFER_NXE, false, true), Some(0x801));
        assert_eq!(efer_write(0, EFER_NXE, false, false), None, "no NX");
        assert_eq!(efer_write(0, 1 << 12, false, true), None, "SVME");
        assert_eq!(efer_write(0, 1 << 2, false, true), None, "reserved");
        assert_eq!(
            efer_write(long, 0, true, true),
            None,
            "LME cleared in long mode"
        );
        assert_eq!(
            efer_write(0, EFER_LME, true, true),
            None,
            "LME set with paging on"
        );
        assert_eq!(efer_write(0, EFER_LME, false, true), Some(EFER_LME));
        assert_eq!(
            efer_write(long, long | EFER_SCE, true, true),
            Some(long | EFER_SCE)
        );
        assert_eq!(
            efer_write(long, EFER_LME, true, true),
            Some(long),
            "LMA is kept"
        );
        assert_eq!(
            efer_write(0, EFER_LMA, false, true),
            Some(0),
            "LMA is not set"
        );
    }

    /// A CPU with SMEP and PCID, without PKE.
    const ALLOWED: u64 = CR4_BASE_BITS | 1 << 17 | 1 << 20;

    fn cr4_write(value: u64, long_mode: bool) -> Option<u64> {
        super::cr4_write(value, long_mode, ALLOWED)
    }

    fn illegal_state(cr0: u64, cr4: u64, efer: u64) -> Option<&'static str> {
        super::illegal_state(cr0, cr4, efer, ALLOWED)
    }

    #[test]
    fn long_mode_follows_paging_with_lme() {
        let lme = EFER_LME | 1; // SCE kept
        assert_eq!(efer_after_cr0(CR0_PG | CR0_PE, lme), lme | EFER_LMA);
        assert_eq!(efer_after_cr0(CR0_PE, lme | EFER_LMA), lme, "paging off");
        assert_eq!(efer_after_cr0(CR0_PG | CR0_PE, 1), 1, "no LME");
    }

    #[test]
    fn cr4_writes_are_checked_as_mov_to_cr4_checks_them() {
        assert_eq!(cr4_write(CR4_PAE | 0x600, true), Some(0x620));
        assert_eq!(cr4_write(CR4_PAE | 1 << 13, true), None, "VMXE");
        assert_eq!(
            cr4_write(CR4_PAE | CR4_OSXSAVE, true),
            None,
            "XSAVE, which this CPU lacks"
        );
        assert_eq!(cr4_write(1 << 24, false), None, "reserved");
        assert_eq!(cr4_write(1 << 22, false), None, "PKE, which this CPU lacks");
        assert_eq!(cr4_write(CR4_PAE | 1 << 20, true), Some(0x100020), "SMEP");
        assert_eq!(cr4_write(0, true), None, "PAE cleared in long mode");
        assert_eq!(cr4_write(0, false), Some(0));
        assert_eq!(cr4_write(1 << 17, false), None, "PCIDE outside long mode");
    }

    #[test]
    fn illegal_states_are_named() {
        let pe = CR0_PE | (1 << 4);
        assert_eq!(illegal_state(pe, 0, 0), None);
        assert_eq!(
            illegal_state(pe | CR0_PG, CR4_PAE, EFER_LME | EFER_LMA),
            None
        );
        assert!(illegal_state(pe | CR0_NW, 0, 0).unwrap().contains("NW"));
        assert_eq!(illegal_state(pe | CR0_NW | CR0_CD, 0, 0), None);
        assert!(illegal_state(CR0_PG, 0, 0).unwrap().contains("PG"));
        assert!(
            illegal_state(pe, 1 << 13, 0).unwrap().contains("CR4"),
            "VMXE"
        );
        assert!(
            illegal_state(pe, 0, 1 << 12).unwrap().contains("EFER"),
            "SVME"
        );
        assert!(
            illegal_state(pe | CR0_PG, 0, EFER_LME)
                .unwrap()
                .contains("PAE")
        );
        assert!(illegal_state(1 << 32 | pe, 0, 0).unwrap().contains("63:32"));
    }
}
