//! The freestanding kernel binary: boot entry, panic handler and the few
//! symbols the prebuilt `core` expects from a C runtime.
#![no_std]
#![no_main]

mod mem;

core::arch::global_asm!(include_str!("arch/entry.s"), options(att_syntax));

/// Called by `entry.s` in long mode with the loader's magic and information.
#[unsafe(no_mangle)]
extern "C" fn kernel_entry(magic: u32, info: u32) -> ! {
    hypervisor::kernel::main(magic, info)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    hypervisor::kernel::panic(info)
}

/// The prebuilt `core` references it even with `panic = "abort"`.
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}

/// The kernel has no heap: nothing in it allocates. A build that also
/// compiles the host tests (`cargo clippy --all-targets`) links `alloc`
/// through their dependencies, which then needs an allocator: this one
/// refuses every request.
struct NoHeap;

// SAFETY: it never hands out memory, so it cannot hand out memory wrongly.
unsafe impl core::alloc::GlobalAlloc for NoHeap {
    unsafe fn alloc(&self, _: core::alloc::Layout) -> *mut u8 {
        core::ptr::null_mut()
    }

    unsafe fn dealloc(&self, _: *mut u8, _: core::alloc::Layout) {}
}

#[global_allocator]
static HEAP: NoHeap = NoHeap;
