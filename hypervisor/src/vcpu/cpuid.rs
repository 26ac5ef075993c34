//! What the guest sees of CPUID: the host's values, with the hypervisor
//! present bit set, VMX and SVM hidden, and Scalevisor's leaves at
//! 0x40000000.

/// "ScalevisorSV" in EBX, ECX, EDX of leaf 0x40000000.
pub const SIGNATURE: &[u8; 12] = b"ScalevisorSV";
/// Leaf 0x40000001 EAX: the hypercall ABI version (docs/hypercalls.md).
pub const ABI_VERSION: u32 = 1;

const LEAF_BASE: u32 = 0x4000_0000;

/// `host` is what the real CPUID returned for `leaf` (EAX, EBX, ECX, EDX).
pub fn filter(leaf: u32, host: [u32; 4]) -> [u32; 4] {
    let [eax, ebx, mut ecx, edx] = host;
    match leaf {
        1 => {
            ecx &= !(1 << 5); // VMX
            ecx &= !(1 << 21); // x2APIC: the guest's ICR stays MMIO, which exits
            ecx &= !(3 << 26); // XSAVE, OSXSAVE: the host keeps XCR0 (FXSAVE only)
            ecx |= 1 << 31; // hypervisor present
            [eax, ebx, ecx, edx]
        }
        // SVM, and MWAITX (Bochs never ends its wait)
        0x8000_0001 => [eax, ebx, ecx & !(1 << 2 | 1 << 29), edx],
        0x8000_000a => [0; 4], // SVM features
        0xd => [0; 4],         // XSAVE state components
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

/// Whether the CPU has NX (the guest sees the host's bit).
pub fn has_nx() -> bool {
    raw_cpuid::cpuid!(0x8000_0001).edx & (1 << 20) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_vmx_and_svm_and_says_a_hypervisor_is_present() {
        let [_, _, ecx, _] = filter(1, [0, 0, 0x7ffa_3223, 0]);
        assert_eq!(ecx & (1 << 5), 0);
        assert_eq!(filter(1, [0, 0, u32::MAX, 0])[2] & (3 << 26), 0, "no XSAVE");
        assert_eq!(filter(0xd, [7, 1, 2, 3]), [0; 4]);
        assert_ne!(ecx & (1 << 31), 0);
        assert_eq!(filter(0x8000_0001, [0, 0, 0xffff_ffff, 0])[2] & 4, 0);
        assert_eq!(filter(0x8000_000a, [1, 2, 3, 4]), [0; 4]);
    }

    #[test]
    fn answers_its_own_leaves() {
        let [max, b, c, d] = filter(0x4000_0000, [0; 4]);
        assert_eq!(max, 0x4000_0001);
        let mut sig = Vec::new();
        for r in [b, c, d] {
            sig.extend_from_slice(&r.to_le_bytes());
        }
        assert_eq!(&sig, SIGNATURE);
        assert_eq!(filter(0x4000_0001, [9; 4]), [ABI_VERSION, 0, 0, 0]);
        assert_eq!(filter(0x4000_0010, [9; 4]), [0; 4]);
    }

    #[test]
    fn passes_other_leaves_through() {
        assert_eq!(filter(0, [0xd, 1, 2, 3]), [0xd, 1, 2, 3]);
        assert_eq!(filter(7, [5, 6, 7, 8]), [5, 6, 7, 8]);
    }
}
