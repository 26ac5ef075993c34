//! The guest a scenario asks for: its memory layout and its state at the
//! first instruction, in real, protected or long mode. Vendor-neutral: the
//! VMX and SVM layers translate `GuestState` into a VMCS or a VMCB.
//!
//! Guest-physical layout:
//!   0x1000 PML4, 0x2000 PDPT, 0x3000 PD (long mode: the first GiB identity-mapped)
//!   0x4000 GDT; vCPU i's stack below 0x7000 - i * 0x200; payload loaded and entered at 0x8000.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GuestMode {
    Real,
    Protected,
    Long,
}

pub const LOAD_ADDRESS: u64 = 0x8000;
pub const STACK_TOP: u64 = 0x7000;
/// Each vCPU's stack, from `STACK_TOP` down (docs/hypercalls.md).
pub const STACK_BYTES: u64 = 0x200;

/// Where vCPU `index`'s stack starts (grows down from).
pub fn stack_top(index: usize) -> u64 {
    STACK_TOP - index as u64 * STACK_BYTES
}
pub const PML4: u64 = 0x1000;
pub const PDPT: u64 = 0x2000;
pub const PD: u64 = 0x3000;
pub const GDT: u64 = 0x4000;
/// Guest RAM: [0, this), backed by frames of the hypervisor's choosing.
pub const DEFAULT_MEMORY: u64 = 2 << 20;

/// Selectors of the guest GDT.
pub const CODE64: u16 = 0x08;
pub const DATA: u16 = 0x10;
pub const CODE32: u16 = 0x18;
pub const TSS: u16 = 0x20;

/// Access rights in the VMX layout (SDM 3C 25.4.1): type in bits 0-3, S 4,
/// DPL 5-6, P 7, AVL 12, L 13, D/B 14, G 15, unusable 16. AMD's VMCB
/// attributes are the same bits packed (0-7 and 12-15).
pub mod access {
    pub const UNUSABLE: u32 = 1 << 16;
    pub const CODE16: u32 = 0x009b; // present, S, execute/read, accessed
    pub const DATA16: u32 = 0x0093; // present, S, read/write, accessed
    pub const CODE32: u32 = 0xc09b; // + G, D
    pub const DATA32: u32 = 0xc093;
    pub const CODE64: u32 = 0xa09b; // + G, L
    pub const TSS_BUSY: u32 = 0x008b; // present, busy TSS (64-bit in long mode, 32-bit otherwise)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub selector: u16,
    pub base: u64,
    pub limit: u32,
    pub access: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DescriptorTable {
    pub base: u64,
    pub limit: u16,
}

/// The guest's state at its first instruction, as the guest sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestState {
    pub mode: GuestMode,
    pub rip: u64,
    pub rsp: u64,
    pub rflags: u64,
    pub cr0: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub efer: u64,
    pub cs: Segment,
    /// DS, ES, FS, GS and SS.
    pub data: Segment,
    pub tr: Segment,
    pub gdtr: DescriptorTable,
    pub idtr: DescriptorTable,
}

pub const CR0_PE: u64 = 1 << 0;
pub const CR0_ET: u64 = 1 << 4;
pub const CR0_NE: u64 = 1 << 5;
pub const CR0_PG: u64 = 1 << 31;
pub const CR4_PAE: u64 = 1 << 5;
pub const EFER_LME: u64 = 1 << 8;
pub const EFER_LMA: u64 = 1 << 10;

pub fn initial_state(mode: GuestMode) -> GuestState {
    let seg = |selector, limit, access| Segment {
        selector,
        base: 0,
        limit,
        access,
    };
    let (cs, data, cr0, cr3, cr4, efer) = match mode {
        GuestMode::Real => (
            seg(0, 0xffff, access::CODE16),
            seg(0, 0xffff, access::DATA16),
            CR0_ET,
            0,
            0,
            0,
        ),
        GuestMode::Protected => (
            seg(CODE32, 0xffff_ffff, access::CODE32),
            seg(DATA, 0xffff_ffff, access::DATA32),
            CR0_ET | CR0_PE,
            0,
            0,
            0,
        ),
        GuestMode::Long => (
            seg(CODE64, 0xffff_ffff, access::CODE64),
            seg(DATA, 0xffff_ffff, access::DATA32),
            CR0_ET | CR0_NE | CR0_PE | CR0_PG,
            PML4,
            CR4_PAE,
            EFER_LME | EFER_LMA,
        ),
    };
    GuestState {
        mode,
        rip: LOAD_ADDRESS,
        rsp: STACK_TOP,
        rflags: 0x2,
        cr0,
        cr3,
        cr4,
        efer,
        cs,
        data,
        // VM entry wants a usable TR even when the guest has none.
        tr: Segment {
            selector: if mode == GuestMode::Real { 0 } else { TSS },
            base: 0,
            limit: 0x67,
            access: access::TSS_BUSY,
        },
        gdtr: DescriptorTable {
            base: if mode == GuestMode::Real { 0 } else { GDT },
            limit: if mode == GuestMode::Real {
                0xffff
            } else {
                5 * 8 - 1
            },
        },
        idtr: DescriptorTable {
            base: 0,
            limit: if mode == GuestMode::Real { 0x3ff } else { 0 },
        },
    }
}

/// The guest GDT: null, 64-bit code, data, 32-bit code, and a TSS
/// descriptor (base 0), matching the selectors above.
pub fn gdt() -> [u64; 5] {
    [
        0,
        0x00af_9b00_0000_ffff,
        0x00cf_9300_0000_ffff,
        0x00cf_9b00_0000_ffff,
        0x0000_8b00_0000_0067,
    ]
}

/// Long-mode page tables: PML4[0] -> PDPT[0] -> PD with 512 2 MiB pages,
/// identity-mapping the first GiB of guest-physical space.
pub fn page_tables() -> [(u64, [u64; 512]); 3] {
    const P_RW: u64 = 0x3;
    const PS: u64 = 1 << 7;
    let mut pml4 = [0; 512];
    pml4[0] = PDPT | P_RW;
    let mut pdpt = [0; 512];
    pdpt[0] = PD | P_RW;
    let pd = core::array::from_fn(|i| ((i as u64) << 21) | P_RW | PS);
    [(PML4, pml4), (PDPT, pdpt), (PD, pd)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mode_starts_at_the_payload_with_its_paging_and_segments() {
        let real = initial_state(GuestMode::Real);
        assert_eq!(
            (real.rip, real.rsp, real.cr0 & (CR0_PE | CR0_PG)),
            (0x8000, 0x7000, 0)
        );
        assert_eq!(real.cs.access, 0x9b);
        let prot = initial_state(GuestMode::Protected);
        assert_eq!(prot.cr0 & (CR0_PE | CR0_PG), CR0_PE);
        assert_eq!((prot.cs.selector, prot.cs.access), (CODE32, 0xc09b));
        let long = initial_state(GuestMode::Long);
        assert_eq!(long.cr0 & (CR0_PE | CR0_PG), CR0_PE | CR0_PG);
        assert_eq!(
            (long.cr3, long.cr4, long.efer),
            (PML4, CR4_PAE, EFER_LME | EFER_LMA)
        );
        assert_eq!(
            (long.cs.selector, long.cs.access & (1 << 13)),
            (CODE64, 1 << 13)
        );
    }

    #[test]
    fn gdt_descriptors_match_the_access_rights_of_the_segments() {
        // Access byte and flags nibble of a descriptor, in the VMX layout.
        let rights = |d: u64| (((d >> 40) & 0xff) | (((d >> 52) & 0xf) << 12)) as u32;
        let g = gdt();
        assert_eq!(rights(g[(CODE64 / 8) as usize]), access::CODE64);
        assert_eq!(rights(g[(DATA / 8) as usize]), access::DATA32);
        assert_eq!(rights(g[(CODE32 / 8) as usize]), access::CODE32);
        assert_eq!(rights(g[(TSS / 8) as usize]), access::TSS_BUSY);
    }

    #[test]
    fn long_mode_tables_identity_map_the_first_gib() {
        let [(pml4_at, pml4), (pdpt_at, pdpt), (pd_at, pd)] = page_tables();
        assert_eq!((pml4_at, pml4[0]), (PML4, PDPT | 3));
        assert_eq!((pdpt_at, pdpt[0]), (PDPT, PD | 3));
        assert_eq!(pd_at, PD);
        assert_eq!(pd[0], 0x83);
        assert_eq!(pd[511], (511 << 21) | 0x83);
    }
}
