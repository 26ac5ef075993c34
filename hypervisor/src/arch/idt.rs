//! The IDT: all 256 vectors go to the stubs in `trap.s`. Built by hand
//! because the `x86_64` crate's typed IDT does not expose the reserved
//! exception vectors (9, 15, 22-27, 31), and every vector must be reported.

use spin::Once;
use x86_64::VirtAddr;
use x86_64::instructions::tables::lidt;
use x86_64::structures::DescriptorTablePointer;
use x86_64::structures::gdt::SegmentSelector;

use super::gdt::Ist;

/// Each stub is padded to this many bytes (see `trap.s`).
const STUB_STRIDE: u64 = 16;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    flags: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

impl Gate {
    /// A present, ring-0, 64-bit interrupt gate (interrupts stay off inside).
    pub fn interrupt(handler: u64, selector: u16, ist: Ist) -> Self {
        Self {
            offset_low: handler as u16,
            selector,
            ist: ist as u8 + 1,
            flags: 0x8e,
            offset_mid: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        }
    }
}

/// The IST slot for a vector: NMI, #DF and #MC can strike while another
/// exception is being reported, so they get stacks of their own.
pub fn ist_for(vector: u8) -> Ist {
    match vector {
        2 => Ist::Nmi,
        8 => Ist::DoubleFault,
        18 => Ist::MachineCheck,
        _ => Ist::Exception,
    }
}

unsafe extern "C" {
    static isr_stubs: u8;
}

static IDT: Once<[Gate; 256]> = Once::new();

pub fn init(code: SegmentSelector) {
    let idt = IDT.call_once(|| {
        let base = &raw const isr_stubs as u64;
        core::array::from_fn(|v| {
            Gate::interrupt(base + v as u64 * STUB_STRIDE, code.0, ist_for(v as u8))
        })
    });
    let pointer = DescriptorTablePointer {
        limit: (size_of::<[Gate; 256]>() - 1) as u16,
        base: VirtAddr::from_ptr(idt.as_ptr()),
    };
    // SAFETY: the table is 'static and every gate points at a stub in `trap.s`.
    unsafe { lidt(&pointer) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_layout_matches_the_sdm() {
        assert_eq!(size_of::<Gate>(), 16);
        let g = Gate::interrupt(0x1234_5678_9abc_def0, 0x08, Ist::DoubleFault);
        // SAFETY: Gate is repr(C) plain data of 16 bytes.
        let bytes: [u8; 16] = unsafe { core::mem::transmute(g) };
        assert_eq!(
            bytes,
            [
                0xf0, 0xde, 0x08, 0x00, 2, 0x8e, 0xbc, 0x9a, 0x78, 0x56, 0x34, 0x12, 0, 0, 0, 0
            ]
        );
    }

    #[test]
    fn nmi_double_fault_and_machine_check_have_own_stacks() {
        assert_eq!(ist_for(2) as u8, Ist::Nmi as u8);
        assert_eq!(ist_for(8) as u8, Ist::DoubleFault as u8);
        assert_eq!(ist_for(18) as u8, Ist::MachineCheck as u8);
        assert_eq!(ist_for(14) as u8, Ist::Exception as u8);
        assert_eq!(ist_for(255) as u8, Ist::Exception as u8);
    }
}
