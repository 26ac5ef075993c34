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
