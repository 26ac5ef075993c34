//! Names for #VMEXIT codes (APM 2, appendix C).

pub const EXCEPTION_BASE: u64 = 0x40;
pub const INTR: u64 = 0x60;
pub const NMI: u64 = 0x61;
pub const CR4_WRITE: u64 = 0x14;
pub const INVD: u64 = 0x76;
pub const XSETBV: u64 = 0x8d;
pub const CPUID: u64 = 0x72;
pub const HLT: u64 = 0x78;
pub const IOIO: u64 = 0x7b;
pub const MSR: u64 = 0x7c;
pub const SHUTDOWN: u64 = 0x7f;
pub const VMRUN: u64 = 0x80;
pub const VMMCALL: u64 = 0x81;
pub const SKINIT: u64 = 0x86;
pub const NPF: u64 = 0x400;
pub const INVALID: u64 = u64::MAX;

/// VMRUN refused the VMCB: the APM's -1, which QEMU writes as a 32-bit -1.
pub fn is_invalid(code: u64) -> bool {
    code as u32 == u32::MAX
}

pub fn exit_code(code: u64) -> &'static str {
    match code {
        0x00..=0x0f => "cr-read",
        0x10..=0x1f => "cr-write",
        0x20..=0x2f => "dr-read",
        0x30..=0x3f => "dr-write",
        0x40..=0x5f => "exception",
        0x60 => "intr",
        0x61 => "nmi",
        0x62 => "smi",
        0x63 => "init",
        0x64 => "vintr",
        0x65 => "cr0-selective-write",
        0x66..=0x6d => "descriptor-table-access",
        0x6e => "rdtsc",
        0x6f => "rdpmc",
        0x70 => "pushf",
        0x71 => "popf",
        0x72 => "cpuid",
        0x73 => "rsm",
        0x74 => "iret",
        0x75 => "swint",
        0x76 => "invd",
        0x77 => "pause",
        0x78 => "hlt",
        0x79 => "invlpg",
        0x7a => "invlpga",
        0x7b => "ioio",
        0x7c => "msr",
        0x7d => "task-switch",
        0x7e => "ferr-freeze",
        0x7f => "shutdown",
        0x80 => "vmrun",
        0x81 => "vmmcall",
        0x82 => "vmload",
        0x83 => "vmsave",
        0x84 => "stgi",
        0x85 => "clgi",
        0x86 => "skinit",
        0x87 => "rdtscp",
        0x88 => "icebp",
        0x89 => "wbinvd",
        0x8a => "monitor",
        0x8b => "mwait",
        0x8c => "mwait-conditional",
        0x8d => "xsetbv",
        0x8e => "rdpru",
        0x8f => "efer-write-trap",
        0x400 => "npf",
        code if is_invalid(code) => "invalid-vmcb",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_exit_codes() {
        assert_eq!(exit_code(CPUID), "cpuid");
        assert_eq!(exit_code(0x46), "exception");
        assert_eq!(exit_code(NPF), "npf");
        assert_eq!(exit_code(INVALID), "invalid-vmcb");
        assert_eq!(exit_code(0xffff_ffff), "invalid-vmcb", "as QEMU writes it");
        assert_eq!(exit_code(0x300), "unknown");
    }
}
