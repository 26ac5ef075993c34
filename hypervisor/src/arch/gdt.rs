//! GDT and TSS, one pair per CPU. Every exception runs on an IST stack: the
//! prebuilt `core` is compiled with a red zone, which an exception on the
//! interrupted stack would overwrite.

use spin::Once;
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;

pub use crate::acpi::madt::MAX_CPUS;

/// IST slots (the IDT names them 1-based: slot + 1).
#[derive(Clone, Copy)]
#[repr(u8)]
pub enum Ist {
    Exception = 0,
    DoubleFault = 1,
    Nmi = 2,
    MachineCheck = 3,
}
pub const IST_COUNT: usize = 4;
pub const IST_STACK: usize = 16 * 1024;

#[repr(C, align(16))]
struct Stack([u8; IST_STACK]);

/// The boot CPU's IST stacks; the others get theirs from their node's memory.
static mut BSP_IST_STACKS: [Stack; IST_COUNT] = [const { Stack([0; IST_STACK]) }; IST_COUNT];

#[derive(Clone, Copy)]
pub struct Selectors {
    pub code: SegmentSelector,
    pub data: SegmentSelector,
    pub tss: SegmentSelector,
}

static TSS: [Once<TaskStateSegment>; MAX_CPUS] = [const { Once::new() }; MAX_CPUS];
static GDT: [Once<(GlobalDescriptorTable, Selectors)>; MAX_CPUS] =
    [const { Once::new() }; MAX_CPUS];

/// The tops of the boot CPU's IST stacks.
pub fn bsp_ist_tops() -> [u64; IST_COUNT] {
    let stacks = &raw const BSP_IST_STACKS;
    // SAFETY: only the addresses of the stacks in the static are taken.
    core::array::from_fn(|slot| unsafe { &raw const (*stacks)[slot] } as u64 + IST_STACK as u64)
}

/// Loads CPU `cpu`'s GDT and TSS, whose IST stacks end at `ist_tops`.
pub fn init(cpu: usize, ist_tops: [u64; IST_COUNT]) -> Selectors {
    let tss = TSS[cpu].call_once(|| {
        let mut tss = TaskStateSegment::new();
        // The TSS is packed: fill a copy of the table, then store it whole.
        let mut table = tss.interrupt_stack_table;
        for (entry, &top) in table.iter_mut().zip(&ist_tops) {
            *entry = VirtAddr::new(top);
        }
        tss.interrupt_stack_table = table;
        tss
    });
    let (gdt, selectors) = GDT[cpu].call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let code = gdt.append(Descriptor::kernel_code_segment());
        let data = gdt.append(Descriptor::kernel_data_segment());
        let tss = gdt.append(Descriptor::tss_segment(tss));
        (gdt, Selectors { code, data, tss })
    });
    gdt.load();
    // SAFETY: the selectors index the GDT just loaded, whose descriptors are
    // valid 64-bit code, data and TSS descriptors.
    unsafe {
        CS::set_reg(selectors.code);
        SS::set_reg(selectors.data);
        DS::set_reg(selectors.data);
        ES::set_reg(selectors.data);
        load_tss(selectors.tss);
    }
    *selectors
}

/// The boot CPU's selectors (the VMCS host state needs them).
pub fn selectors() -> Selectors {
    GDT[0].get().expect("arch::init ran first").1
}

/// Where CPU `cpu`'s TSS is (the VMCS host state needs it).
pub fn tss_base(cpu: usize) -> u64 {
    TSS[cpu]
        .get()
        .map_or(0, |tss| tss as *const TaskStateSegment as u64)
}
