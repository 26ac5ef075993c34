//! VM-execution, exit and entry controls computed from the capability MSRs
//! (SDM 3D A.3-A.5): each MSR says which bits may be 0 (low half: a 1 means
//! the bit must be 1) and which may be 1 (high half). Nothing is hard-coded
//! past what Scalevisor needs and what the CPU insists on.

/// The capability MSRs that bound the controls; with IA32_VMX_BASIC bit 55
/// set the TRUE_* MSRs are read instead, which allow more defaults to be 0.
#[derive(Clone, Copy, Debug, Default)]
pub struct Capabilities {
    pub pin: u64,
    pub proc: u64,
    pub proc2: u64,
    pub exit: u64,
    pub entry: u64,
    pub ept_vpid: u64,
    /// IA32_VMX_MISC: bits 4:0 are the preemption timer's rate.
    pub misc: u64,
}

pub mod pin {
    /// Host interrupts (the hypervisor's kick IPI) exit instead of reaching the guest.
    pub const EXTERNAL_INTERRUPT_EXITING: u32 = 1 << 0;
    /// NMIs exit: an OS guest's kicks, as it owns every interrupt vector.
    pub const NMI_EXITING: u32 = 1 << 3;
    pub const PREEMPTION_TIMER: u32 = 1 << 6;
}

pub mod proc {
    pub const HLT_EXITING: u32 = 1 << 7;
    pub const CR3_LOAD_EXITING: u32 = 1 << 15;
    pub const CR3_STORE_EXITING: u32 = 1 << 16;
    pub const USE_IO_BITMAPS: u32 = 1 << 25;
    pub const USE_MSR_BITMAPS: u32 = 1 << 28;
    pub const ACTIVATE_SECONDARY: u32 = 1 << 31;
}

pub mod proc2 {
    pub const ENABLE_EPT: u32 = 1 << 1;
    pub const ENABLE_RDTSCP: u32 = 1 << 3;
    pub const ENABLE_VPID: u32 = 1 << 5;
    pub const UNRESTRICTED_GUEST: u32 = 1 << 7;
    pub const ENABLE_INVPCID: u32 = 1 << 12;
    pub const ENABLE_XSAVES: u32 = 1 << 20;
}

pub mod exit {
    pub const HOST_ADDRESS_SPACE_SIZE: u32 = 1 << 9;
    /// The exit acknowledges the interrupt that caused it (the host EOIs it).
    pub const ACK_INTERRUPT: u32 = 1 << 15;
    pub const SAVE_EFER: u32 = 1 << 20;
    pub const LOAD_EFER: u32 = 1 << 21;
}

pub mod entry {
    pub const IA32E_MODE_GUEST: u32 = 1 << 9;
    pub const LOAD_EFER: u32 = 1 << 15;
}

/// EPT and VPID capabilities (IA32_VMX_EPT_VPID_CAP).
pub mod ept_vpid {
    pub const WALK_4: u64 = 1 << 6;
    pub const MEMORY_TYPE_WB: u64 = 1 << 14;
    pub const ACCESSED_DIRTY: u64 = 1 << 21;
    pub const INVEPT: u64 = 1 << 20;
    pub const INVEPT_SINGLE: u64 = 1 << 25;
    pub const INVEPT_ALL: u64 = 1 << 26;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Controls {
    pub pin: u32,
    pub proc: u32,
    pub proc2: u32,
    pub exit: u32,
    pub entry: u32,
}

/// A control the CPU does not allow but Scalevisor needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Missing {
    pub field: &'static str,
    pub bits: u32,
}

/// `required` and whatever of `optional` the CPU allows, plus what it
/// insists on; `Missing` names required bits it does not allow.
pub fn adjust(
    field: &'static str,
    capability: u64,
    required: u32,
    optional: u32,
) -> Result<u32, Missing> {
    let must = capability as u32;
    let may = (capability >> 32) as u32;
    let missing = required & !may;
    if missing != 0 {
        return Err(Missing {
            field,
            bits: missing,
        });
    }
    Ok(must | required | (optional & may))
}

/// The controls for a guest starting in long mode or not; `os`: an OS guest,
/// which owns interrupts and halts in the guest (no external-interrupt or
/// HLT exiting, no timer), the hypervisor's kicks being NMIs.
pub fn compute(caps: &Capabilities, long_mode_guest: bool, os: bool) -> Result<Controls, Missing> {
    let pin = if os {
        adjust("pin-based", caps.pin, pin::NMI_EXITING, 0)?
    } else {
        adjust(
            "pin-based",
            caps.pin,
            pin::EXTERNAL_INTERRUPT_EXITING,
            pin::PREEMPTION_TIMER,
        )?
    };
    let hlt = if os { 0 } else { proc::HLT_EXITING };
    let proc = adjust(
        "processor-based",
        caps.proc,
        hlt | proc::USE_IO_BITMAPS | proc::USE_MSR_BITMAPS | proc::ACTIVATE_SECONDARY,
        0,
    )?;
    let proc2 = adjust(
        "secondary processor-based",
        caps.proc2,
        proc2::ENABLE_EPT | proc2::UNRESTRICTED_GUEST,
        proc2::ENABLE_VPID | proc2::ENABLE_RDTSCP | proc2::ENABLE_INVPCID | proc2::ENABLE_XSAVES,
    )?;
    let ack = if os { 0 } else { exit::ACK_INTERRUPT };
    let exit = adjust(
        "VM-exit",
        caps.exit,
        exit::HOST_ADDRESS_SPACE_SIZE | ack | exit::SAVE_EFER | exit::LOAD_EFER,
        0,
    )?;
    let guest_mode = if long_mode_guest {
        entry::IA32E_MODE_GUEST
    } else {
        0
    };
    let entry = adjust("VM-entry", caps.entry, entry::LOAD_EFER | guest_mode, 0)?;
    Ok(Controls {
        pin,
        proc,
        proc2,
        exit,
        entry,
    })
}

/// CR0 or CR4 as VMX operation requires: FIXED0 bits set, bits outside
/// FIXED1 clear; `free` bits keep their value (PE and PG for an unrestricted guest).
pub fn fixed_cr(value: u64, fixed0: u64, fixed1: u64, free: u64) -> u64 {
    ((value | (fixed0 & !free)) & fixed1) | (value & free)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tiger Lake-like TRUE_* values as Bochs reports them (allowed-0 low, allowed-1 high).
    fn caps() -> Capabilities {
        Capabilities {
            pin: 0x0000_00ff_0000_0016,
            proc: 0xfff9_fffe_0401_e172,
            proc2: 0x0010_00af_0000_0000, // EPT, RDTSCP, VPID, UG, XSAVES; no INVPCID
            exit: 0x01ff_ffff_0003_6dfb,
            entry: 0x0003_ffff_0000_11fb,
            ept_vpid: 0,
            misc: 0,
        }
    }

    #[test]
    fn required_bits_and_the_cpus_defaults_are_set() {
        let c = compute(&caps(), true, false).unwrap();
        assert_eq!(
            c.pin,
            0x16 | pin::EXTERNAL_INTERRUPT_EXITING | pin::PREEMPTION_TIMER,
            "what the CPU insists on, host interrupts and the timer"
        );
        assert_ne!(c.proc & proc::HLT_EXITING, 0);
        assert_ne!(c.proc & proc::ACTIVATE_SECONDARY, 0);
        assert_eq!(c.proc & 0x0401_e172, 0x0401_e172, "default-1 bits kept");
        assert_eq!(
            c.proc2,
            proc2::ENABLE_EPT
                | proc2::UNRESTRICTED_GUEST
                | proc2::ENABLE_VPID
                | proc2::ENABLE_RDTSCP
                | proc2::ENABLE_XSAVES
        );
        assert_ne!(c.exit & exit::HOST_ADDRESS_SPACE_SIZE, 0);
        assert_ne!(c.entry & entry::IA32E_MODE_GUEST, 0);
        assert_eq!(
            compute(&caps(), false, false).unwrap().entry & entry::IA32E_MODE_GUEST,
            0
        );
    }

    #[test]
    fn an_os_guest_keeps_its_interrupts_and_halts_and_exits_on_nmis() {
        let c = compute(&caps(), false, true).unwrap();
        assert_eq!(
            c.pin,
            0x16 | pin::NMI_EXITING,
            "no external-interrupt exiting, no timer"
        );
        assert_eq!(c.proc & proc::HLT_EXITING, 0);
        assert_eq!(c.exit & exit::ACK_INTERRUPT, 0);
    }

    #[test]
    fn a_missing_required_control_is_named() {
        let mut no_ept = caps();
        no_ept.proc2 &= !(u64::from(proc2::ENABLE_EPT) << 32);
        assert_eq!(
            compute(&no_ept, true, false),
            Err(Missing {
                field: "secondary processor-based",
                bits: proc2::ENABLE_EPT
            })
        );
        let mut no_hlt = caps();
        no_hlt.proc &= !(u64::from(proc::HLT_EXITING) << 32);
        assert_eq!(
            compute(&no_hlt, true, false).unwrap_err().field,
            "processor-based"
        );
    }

    #[test]
    fn optional_controls_only_when_allowed() {
        assert_eq!(adjust("x", 0x0000_0005_0000_0000, 0, 0b110).unwrap(), 0b100);
        assert_eq!(adjust("x", 0x0000_0007_0000_0001, 0b10, 0).unwrap(), 0b11);
    }

    #[test]
    fn control_registers_obey_the_fixed_bits() {
        // CR0: PE, NE, PG fixed to 1; an unrestricted guest may clear PE and PG.
        let (f0, f1) = (0x8000_0021, 0xffff_ffff);
        assert_eq!(fixed_cr(0x10, f0, f1, 0x8000_0001), 0x30);
        assert_eq!(fixed_cr(0x10, f0, f1, 0), 0x8000_0031);
        // CR4: VMXE fixed to 1, bits above 0x3fffff not allowed.
        assert_eq!(fixed_cr(0x1_0000_0020, 0x2000, 0x3f_ffff, 0), 0x2020);
    }
}
