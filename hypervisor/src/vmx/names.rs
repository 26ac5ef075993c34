//! Names for VM-instruction error numbers (SDM 3C 31.4) and basic exit
//! reasons (SDM 3D appendix C), for events a person can read.

pub fn instruction_error(n: u32) -> &'static str {
    match n {
        1 => "VMCALL executed in VMX root operation",
        2 => "VMCLEAR with invalid physical address",
        3 => "VMCLEAR with VMXON pointer",
        4 => "VMLAUNCH with non-clear VMCS",
        5 => "VMRESUME with non-launched VMCS",
        6 => "VMRESUME after VMXOFF",
        7 => "VM entry with invalid control field(s)",
        8 => "VM entry with invalid host-state field(s)",
        9 => "VMPTRLD with invalid physical address",
        10 => "VMPTRLD with VMXON pointer",
        11 => "VMPTRLD with incorrect VMCS revision identifier",
        12 => "VMREAD/VMWRITE from/to unsupported VMCS component",
        13 => "VMWRITE to read-only VMCS component",
        15 => "VMXON executed in VMX root operation",
        16 => "VM entry with invalid executive-VMCS pointer",
        17 => "VM entry with non-launched executive VMCS",
        18 => "VM entry with executive-VMCS pointer not VMXON pointer",
        19 => "VMCALL with non-clear VMCS",
        20 => "VMCALL with invalid VM-exit control fields",
        22 => "VMCALL with incorrect MSEG revision identifier",
        23 => "VMXOFF under dual-monitor treatment of SMIs and SMM",
        24 => "VMCALL with invalid SMM-monitor features",
        25 => "VM entry with invalid VM-execution control fields in executive VMCS",
        26 => "VM entry with events blocked by MOV SS",
        28 => "invalid operand to INVEPT/INVVPID",
        _ => "unknown VM-instruction error",
    }
}

pub fn exit_reason(basic: u16) -> &'static str {
    match basic {
        0 => "exception-or-nmi",
        1 => "external-interrupt",
        2 => "triple-fault",
        3 => "init",
        4 => "sipi",
        7 => "interrupt-window",
        8 => "nmi-window",
        9 => "task-switch",
        10 => "cpuid",
        11 => "getsec",
        12 => "hlt",
        13 => "invd",
        14 => "invlpg",
        15 => "rdpmc",
        16 => "rdtsc",
        17 => "rsm",
        18 => "vmcall",
        19 => "vmclear",
        20 => "vmlaunch",
        21 => "vmptrld",
        22 => "vmptrst",
        23 => "vmread",
        24 => "vmresume",
        25 => "vmwrite",
        26 => "vmxoff",
        27 => "vmxon",
        28 => "cr-access",
        29 => "dr-access",
        30 => "io-instruction",
        31 => "rdmsr",
        32 => "wrmsr",
        33 => "entry-failure-guest-state",
        34 => "entry-failure-msr-loading",
        36 => "mwait",
        37 => "monitor-trap-flag",
        39 => "monitor",
        40 => "pause",
        41 => "entry-failure-machine-check",
        43 => "tpr-below-threshold",
        44 => "apic-access",
        46 => "gdtr-idtr-access",
        47 => "ldtr-tr-access",
        48 => "ept-violation",
        49 => "ept-misconfiguration",
        50 => "invept",
        51 => "rdtscp",
        52 => "preemption-timer",
        53 => "invvpid",
        54 => "wbinvd",
        55 => "xsetbv",
        57 => "rdrand",
        58 => "invpcid",
        59 => "vmfunc",
        61 => "rdseed",
        63 => "xsaves",
        64 => "xrstors",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_errors_and_reasons() {
        assert_eq!(
            instruction_error(7),
            "VM entry with invalid control field(s)"
        );
        assert_eq!(
            instruction_error(8),
            "VM entry with invalid host-state field(s)"
        );
        assert_eq!(instruction_error(99), "unknown VM-instruction error");
        assert_eq!(exit_reason(10), "cpuid");
        assert_eq!(exit_reason(48), "ept-violation");
        assert_eq!(exit_reason(33), "entry-failure-guest-state");
        assert_eq!(exit_reason(5), "unknown");
    }
}
