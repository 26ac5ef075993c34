//! What the guest sees of CPUID: the host's values, with the hypervisor
//! present bit set, VMX, SVM, x2APIC, MWAITX and XSAVES hidden, OSXSAVE as
//! the guest's own CR4 says, and Scalevisor's leaves at 0x40000000.

/// "ScalevisorSV" in EBX, ECX, EDX of leaf 0x40000000.
pub const SIGNATURE: &[u8; 12] = b"ScalevisorSV";
/// Leaf 0x40000001 EAX: the hypercall ABI version (docs/hypercalls.md).
pub const ABI_VERSION: u32 = 1;

const LEAF_BASE: u32 = 0x4000_0000;

/// `host` is what the real CPUID returned for `leaf` and `subleaf` (EAX,
/// EBX, ECX, EDX); `osxsave`: the guest's CR4.OSXSAVE.
pub fn filter(leaf: u32, subleaf: u32, host: [u32; 4], osxsave: bool) -> [u32; 4] {
    let [mut eax, ebx, mut ecx, edx] = host;
    match leaf {
        1 => {
            ecx &= !(1 << 5); // VMX
            ecx &= !(1 << 21); // x2APIC: the guest's ICR stays MMIO, which exits
            // OSXSAVE mirrors the guest's CR4, not the host's.
            ecx = (ecx & !(1 << 27)) | if osxsave { 1 << 27 } else { 0 };
            ecx |= 1 << 31; // hypervisor present
            [eax, ebx, ecx, edx]
        }
        // XSAVES would need IA32_XSS managed per guest: hidden.
        0xd if subleaf == 1 => {
            eax &= !(1 << 3);
            [eax, ebx, ecx, edx]
        }
        // SVM, and MWAITX (Bochs never ends its wait)
        0x8000_0001 => [eax, ebx, ecx & !(1 << 2 | 1 << 29), edx],
        0x8000_000a => [0; 4], // SVM features
        LEAF_BASE => {
            let word =
                |i: usize| u32::from_le_bytes(SIGNATURE[i..i + 4].try_into().expect("4 bytes"));
            [LEAF_BASE + 1, word(0), word(4), word(8)]
        }
        0x4000_0001 => [ABI_VERSION, 0, 0, 0],
        0x4000_0002..=0x4000_00ff => [0; 4],
        _ => host,
    }
}

/// The CR4 bits a guest may set on this CPU (see `checks::CR4_BASE_BITS`),
/// read from CPUID once.
pub fn guest_cr4_bits() -> u64 {
    static BITS: spin::Once<u64> = spin::Once::new();
    *BITS.call_once(cr4_bits_from_cpuid)
}

fn cr4_bits_from_cpuid() -> u64 {
    let leaf1_ecx = raw_cpuid::cpuid!(1).ecx;
    let leaf7 = raw_cpuid::cpuid!(7, 0);
    let has = |word: u32, bit: u32| word & (1 << bit) != 0;
    [
        (has(leaf7.ecx, 2), 11),  // UMIP
        (has(leaf7.ebx, 0), 16),  // FSGSBASE
        (has(leaf1_ecx, 17), 17), // PCIDE
        (has(leaf1_ecx, 26), 18), // OSXSAVE
        (has(leaf7.ebx, 7), 20),  // SMEP
        (has(leaf7.ebx, 20), 21), // SMAP
        (has(leaf7.ecx, 3), 22),  // PKE
    ]
    .iter()
    .filter(|(present, _)| *present)
    .fold(super::checks::CR4_BASE_BITS, |bits, (_, bit)| {
        bits | 1 << bit
    })
}

/// The XCR0 bits the CPU supports (CPUID 0xD.0 EDX:EAX); 0 without XSAVE.
pub fn xcr0_supported() -> u64 {
    if raw_cpuid::cpuid!(1).ecx & (1 << 26) == 0 {
        return 0;
    }
    let r = raw_cpuid::cpuid!(0xd, 0);
    (u64::from(r.edx) << 32) | u64::from(r.eax)
}

/// An XSETBV: the value XCR0 takes, or `None` for #GP (SDM 2, XSETBV):
/// only XCR0, x87 always on, AVX only with SSE, the AVX-512 states
/// together and with AVX, and only what the CPU supports.
pub fn xsetbv(index: u32, value: u64, supported: u64) -> Option<u64> {
    const X87: u64 = 1;
    const SSE: u64 = 2;
    const AVX: u64 = 4;
    const AVX512: u64 = 0xe0;
    let bad = index != 0
        || value & !supported != 0
        || value & X87 == 0
        || (value & AVX != 0 && value & SSE == 0)
        || (value & AVX512 != 0 && (value & AVX512 != AVX512 || value & AVX == 0));
    (!bad).then_some(value)
}

/// Whether the CPU has NX (the guest sees the host's bit).
pub fn has_nx() -> bool {
    raw_cpuid::cpuid!(0x8000_0001).edx & (1 << 20) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_vmx_and_svm_and_says_a_hypervisor_is_present() {
        let [_, _, ecx, _] = filter(1, 0, [0, 0, 0x7ffa_3223, 0], false);
        assert_eq!(ecx & (1 << 5), 0);
        let xsave = |osxsave| filter(1, 0, [0, 0, u32::MAX, 0], osxsave)[2] & (3 << 26);
        assert_eq!(
            xsave(false),
            1 << 26,
            "XSAVE, OSXSAVE off until the guest's CR4 says"
        );
        assert_eq!(xsave(true), 3 << 26);
        assert_eq!(filter(0xd, 0, [7, 1, 2, 3], true), [7, 1, 2, 3]);
        assert_eq!(filter(0xd, 1, [0xf, 0, 0, 0], true)[0], 7, "no XSAVES");
        assert_ne!(ecx & (1 << 31), 0);
        assert_eq!(
            filter(0x8000_0001, 0, [0, 0, 0xffff_ffff, 0], false)[2] & 4,
            0
        );
        assert_eq!(filter(0x8000_000a, 0, [1, 2, 3, 4], false), [0; 4]);
    }

    #[test]
    fn xsetbv_is_checked_as_the_cpu_checks_it() {
        let cpu = 0xe7; // x87, SSE, AVX, AVX-512
        assert_eq!(xsetbv(0, 7, cpu), Some(7));
        assert_eq!(xsetbv(0, 0xe7, cpu), Some(0xe7));
        assert_eq!(xsetbv(1, 7, cpu), None, "XCR1");
        assert_eq!(xsetbv(0, 6, cpu), None, "x87 off");
        assert_eq!(xsetbv(0, 5, cpu), None, "AVX without SSE");
        assert_eq!(xsetbv(0, 0x27, cpu), None, "part of AVX-512");
        assert_eq!(xsetbv(0, 0x207, cpu), None, "unsupported");
    }

    #[test]
    fn answers_its_own_leaves() {
        let [max, b, c, d] = filter(0x4000_0000, 0, [0; 4], false);
        assert_eq!(max, 0x4000_0001);
        let mut sig = Vec::new();
        for r in [b, c, d] {
            sig.extend_from_slice(&r.to_le_bytes());
        }
        assert_eq!(&sig, SIGNATURE);
        assert_eq!(
            filter(0x4000_0001, 0, [9; 4], false),
            [ABI_VERSION, 0, 0, 0]
        );
        assert_eq!(filter(0x4000_0010, 0, [9; 4], false), [0; 4]);
    }

    #[test]
    fn passes_other_leaves_through() {
        assert_eq!(filter(0, 0, [0xd, 1, 2, 3], false), [0xd, 1, 2, 3]);
        assert_eq!(filter(7, 0, [5, 6, 7, 8], false), [5, 6, 7, 8]);
    }
}
