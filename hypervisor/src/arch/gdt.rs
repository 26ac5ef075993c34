//! GDT and TSS. Every exception runs on an IST stack: the prebuilt `core` is
//! compiled with a red zone, which an exception on the interrupted stack
//! would overwrite.

use spin::Once;
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;

/// IST slots (the IDT names them 1-based: slot + 1).
#[derive(Clone, Copy)]
#[repr(u8)]
pub enum Ist {
    Exception = 0,
    DoubleFault = 1,
    Nmi = 2,
    MachineCheck = 3,
}
const IST_COUNT: usize = 4;
const IST_STACK: usize = 16 * 1024;

#[repr(C, align(16))]
struct Stack([u8; IST_STACK]);

static mut IST_STACKS: [Stack; IST_COUNT] = [const { Stack([0; IST_STACK]) }; IST_COUNT];

#[derive(Clone, Copy)]
pub struct Selectors {
    pub code: SegmentSelector,
    pub data: SegmentSelector,
    pub tss: SegmentSelector,
}

static TSS: Once<TaskStateSegment> = Once::new();
static GDT: Once<(GlobalDescriptorTable, Selectors)> = Once::new();

pub fn init() -> Selectors {
    let tss = TSS.call_once(|| {
        let mut tss = TaskStateSegment::new();
        // The TSS is packed: fill a copy of the table, then store it whole.
        let mut table = tss.interrupt_stack_table;
        let stacks = &raw const IST_STACKS;
        for (slot, entry) in table.iter_mut().take(IST_COUNT).enumerate() {
            // SAFETY: only the address of a stack in the static is taken; the
            // stacks are used by the CPU alone.
            let base = unsafe { &raw const (*stacks)[slot] };
            *entry = VirtAddr::from_ptr(base) + IST_STACK as u64;
        }
        tss.interrupt_stack_table = table;
        tss
    });
    let (gdt, selectors) = GDT.call_once(|| {
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

/// The selectors of the loaded GDT (the VMCS host state needs them).
pub fn selectors() -> Selectors {
    GDT.get().expect("arch::init ran first").1
}

/// Where the TSS is (the VMCS host state needs it).
pub fn tss_base() -> u64 {
    TSS.get()
        .map_or(0, |tss| tss as *const TaskStateSegment as u64)
}
