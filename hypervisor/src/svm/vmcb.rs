//! The VMCB (AMD APM vol. 2, appendix B): a 1 KiB control area and the
//! state-save area, in one 4 KiB page. Every offset is checked at compile
//! time against the APM.

use core::mem::{offset_of, size_of};

#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct ControlArea {
    pub intercept_cr: u32,           // 0x000
    pub intercept_dr: u32,           // 0x004
    pub intercept_exceptions: u32,   // 0x008
    pub intercept_misc1: u32,        // 0x00c
    pub intercept_misc2: u32,        // 0x010
    pub intercept_misc3: u32,        // 0x014
    _reserved0: [u8; 0x24],          // 0x018
    pub pause_filter_threshold: u16, // 0x03c
    pub pause_filter_count: u16,     // 0x03e
    pub iopm_base_pa: u64,           // 0x040
    pub msrpm_base_pa: u64,          // 0x048
    pub tsc_offset: u64,             // 0x050
    pub guest_asid: u32,             // 0x058
    pub tlb_control: u8,             // 0x05c
    _reserved1: [u8; 3],             // 0x05d
    pub vintr: u64,                  // 0x060
    pub interrupt_shadow: u64,       // 0x068
    pub exit_code: u64,              // 0x070
    pub exit_info1: u64,             // 0x078
    pub exit_info2: u64,             // 0x080
    pub exit_int_info: u64,          // 0x088
    pub np_control: u64,             // 0x090
    pub avic_apic_bar: u64,          // 0x098
    pub ghcb_pa: u64,                // 0x0a0
    pub event_inject: u64,           // 0x0a8
    pub nested_cr3: u64,             // 0x0b0
    pub lbr_virtualization: u64,     // 0x0b8
    pub clean_bits: u32,             // 0x0c0
    _reserved2: u32,                 // 0x0c4
    pub next_rip: u64,               // 0x0c8
    pub bytes_fetched: u8,           // 0x0d0
    pub instruction_bytes: [u8; 15], // 0x0d1
    _reserved3: [u8; 0x320],         // 0x0e0
}

/// A segment register in the save area; `attrib` packs the access rights:
/// bits 0-7 as the descriptor's byte 5, bits 8-11 its flags nibble.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Segment {
    pub selector: u16,
    pub attrib: u16,
    pub limit: u32,
    pub base: u64,
}

#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct SaveArea {
    pub es: Segment,         // 0x000
    pub cs: Segment,         // 0x010
    pub ss: Segment,         // 0x020
    pub ds: Segment,         // 0x030
    pub fs: Segment,         // 0x040
    pub gs: Segment,         // 0x050
    pub gdtr: Segment,       // 0x060
    pub ldtr: Segment,       // 0x070
    pub idtr: Segment,       // 0x080
    pub tr: Segment,         // 0x090
    _reserved0: [u8; 0x2b],  // 0x0a0
    pub cpl: u8,             // 0x0cb
    _reserved1: u32,         // 0x0cc
    pub efer: u64,           // 0x0d0
    _reserved2: [u8; 0x70],  // 0x0d8
    pub cr4: u64,            // 0x148
    pub cr3: u64,            // 0x150
    pub cr0: u64,            // 0x158
    pub dr7: u64,            // 0x160
    pub dr6: u64,            // 0x168
    pub rflags: u64,         // 0x170
    pub rip: u64,            // 0x178
    _reserved3: [u8; 0x58],  // 0x180
    pub rsp: u64,            // 0x1d8
    pub s_cet: u64,          // 0x1e0
    pub ssp: u64,            // 0x1e8
    pub isst_addr: u64,      // 0x1f0
    pub rax: u64,            // 0x1f8
    pub star: u64,           // 0x200
    pub lstar: u64,          // 0x208
    pub cstar: u64,          // 0x210
    pub sfmask: u64,         // 0x218
    pub kernel_gs_base: u64, // 0x220
    pub sysenter_cs: u64,    // 0x228
    pub sysenter_esp: u64,   // 0x230
    pub sysenter_eip: u64,   // 0x238
    pub cr2: u64,            // 0x240
    _reserved4: [u8; 0x20],  // 0x248
    pub g_pat: u64,          // 0x268
    pub dbgctl: u64,         // 0x270
    pub br_from: u64,        // 0x278
    pub br_to: u64,          // 0x280
    pub last_excp_from: u64, // 0x288
    pub last_excp_to: u64,   // 0x290
}

/// Offsets of the saved RIP, RSP and CR3 in a VMCB-shaped page: the VMCB,
/// or the host save area as QEMU keeps it (a real CPU's layout of that area
/// is its own).
pub const SAVE_RIP: u64 = (0x400 + offset_of!(SaveArea, rip)) as u64;
pub const SAVE_RSP: u64 = (0x400 + offset_of!(SaveArea, rsp)) as u64;
pub const SAVE_CR3: u64 = (0x400 + offset_of!(SaveArea, cr3)) as u64;

#[repr(C, align(4096))]
pub struct Vmcb {
    pub control: ControlArea,
    pub save: SaveArea,
    _rest: [u8; 0x1000 - 0x400 - 0x298],
}

const _: () = {
    assert!(size_of::<ControlArea>() == 0x400);
    assert!(size_of::<Segment>() == 16);
    assert!(size_of::<SaveArea>() == 0x298);
    assert!(size_of::<Vmcb>() == 0x1000);
    assert!(offset_of!(ControlArea, intercept_misc1) == 0x00c);
    assert!(offset_of!(ControlArea, intercept_misc2) == 0x010);
    assert!(offset_of!(ControlArea, pause_filter_threshold) == 0x03c);
    assert!(offset_of!(ControlArea, iopm_base_pa) == 0x040);
    assert!(offset_of!(ControlArea, msrpm_base_pa) == 0x048);
    assert!(offset_of!(ControlArea, guest_asid) == 0x058);
    assert!(offset_of!(ControlArea, tlb_control) == 0x05c);
    assert!(offset_of!(ControlArea, exit_code) == 0x070);
    assert!(offset_of!(ControlArea, exit_info1) == 0x078);
    assert!(offset_of!(ControlArea, exit_info2) == 0x080);
    assert!(offset_of!(ControlArea, np_control) == 0x090);
    assert!(offset_of!(ControlArea, event_inject) == 0x0a8);
    assert!(offset_of!(ControlArea, nested_cr3) == 0x0b0);
    assert!(offset_of!(ControlArea, clean_bits) == 0x0c0);
    assert!(offset_of!(ControlArea, next_rip) == 0x0c8);
    assert!(offset_of!(ControlArea, instruction_bytes) == 0x0d1);
    assert!(offset_of!(Vmcb, save) == 0x400);
    assert!(offset_of!(SaveArea, tr) == 0x090);
    assert!(offset_of!(SaveArea, cpl) == 0x0cb);
    assert!(offset_of!(SaveArea, efer) == 0x0d0);
    assert!(offset_of!(SaveArea, cr4) == 0x148);
    assert!(offset_of!(SaveArea, cr0) == 0x158);
    assert!(offset_of!(SaveArea, rflags) == 0x170);
    assert!(offset_of!(SaveArea, rip) == 0x178);
    assert!(offset_of!(SaveArea, rsp) == 0x1d8);
    assert!(offset_of!(SaveArea, rax) == 0x1f8);
    assert!(offset_of!(SaveArea, cr2) == 0x240);
    assert!(offset_of!(SaveArea, g_pat) == 0x268);
    assert!(offset_of!(SaveArea, last_excp_to) == 0x290);
};

/// Intercept bits in the control area (APM 2, table B-1).
pub mod intercept {
    pub const INTR: u32 = 1 << 0;
    pub const NMI: u32 = 1 << 1;
    pub const INVD: u32 = 1 << 22;
    pub const CPUID: u32 = 1 << 18;
    pub const HLT: u32 = 1 << 24;
    pub const IOIO: u32 = 1 << 27;
    pub const MSR: u32 = 1 << 28;
    pub const SHUTDOWN: u32 = 1 << 31;
    // misc2
    pub const VMRUN: u32 = 1 << 0;
    pub const VMMCALL: u32 = 1 << 1;
    pub const VMLOAD: u32 = 1 << 2;
    pub const VMSAVE: u32 = 1 << 3;
    pub const STGI: u32 = 1 << 4;
    pub const CLGI: u32 = 1 << 5;
    pub const SKINIT: u32 = 1 << 6;
    pub const XSETBV: u32 = 1 << 13;
    /// `intercept_cr`: writes of CR4 (the high half is writes, by CR number).
    pub const CR4_WRITE: u32 = 1 << (16 + 4);
}

/// `vintr`: the guest's RFLAGS.IF masks only its virtual interrupts; the
/// host's IF, saved by VMRUN, masks the physical ones (APM 2, 15.21.1).
pub const V_INTR_MASKING: u64 = 1 << 24;

/// VMX access rights (the layout `vcpu::guest` uses) packed as a VMCB attrib.
pub fn attrib(access: u32) -> u16 {
    if access & crate::vcpu::guest::access::UNUSABLE != 0 {
        return 0; // not present
    }
    ((access & 0xff) | ((access >> 4) & 0xf00)) as u16
}

/// The EVENTINJ that delivers again the event an exit interrupted
/// (`exitintinfo`, APM 2, 15.7.2), or 0 for none. QEMU reports an external
/// interrupt or an NMI it was delivering as an exception (type 3) of its
/// vector, which VMRUN then refuses (no exception has a vector above 31, and
/// vector 2 is NMI's type): such an event goes back as what it was.
pub fn redelivered(exit_int_info: u64) -> u64 {
    const VALID: u64 = 1 << 31;
    if exit_int_info & VALID == 0 {
        return 0;
    }
    as_it_was(exit_int_info)
}

/// A valid `exitintinfo` as the event it was (`redelivered`); out of line,
/// off the common exits' path.
#[cold]
#[inline(never)]
fn as_it_was(exit_int_info: u64) -> u64 {
    const TYPE: u64 = 7 << 8;
    const EXCEPTION: u64 = 3 << 8;
    const NMI: u64 = 2 << 8; // an external interrupt's type is 0
    let vector = exit_int_info & 0xff;
    match exit_int_info & TYPE {
        EXCEPTION if vector >= 32 => exit_int_info & !TYPE,
        EXCEPTION if vector == 2 => (exit_int_info & !TYPE) | NMI,
        _ => exit_int_info,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vcpu::guest::access;

    #[test]
    fn an_interrupted_event_is_delivered_as_what_it_was() {
        assert_eq!(redelivered(0x3ec), 0, "not valid: nothing");
        // A page fault with its error code stays one.
        assert_eq!(redelivered(0x2_8000_0b0e), 0x2_8000_0b0e);
        // QEMU's external interrupt 0xec and NMI, reported as exceptions.
        assert_eq!(redelivered(0x8000_03ec), 0x8000_00ec);
        assert_eq!(redelivered(0x8000_0302), 0x8000_0202);
        // As hardware reports them: unchanged.
        assert_eq!(redelivered(0x8000_00ec), 0x8000_00ec);
        assert_eq!(redelivered(0x8000_0202), 0x8000_0202);
    }

    #[test]
    fn access_rights_pack_into_attrib() {
        assert_eq!(attrib(access::CODE64), 0xa9b); // G and L land in bits 11 and 9
        assert_eq!(attrib(access::DATA32), 0xc93);
        assert_eq!(attrib(access::CODE16), 0x09b);
        assert_eq!(attrib(access::TSS_BUSY), 0x08b);
        assert_eq!(attrib(access::UNUSABLE), 0);
    }
}
