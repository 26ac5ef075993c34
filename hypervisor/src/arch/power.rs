//! Ending the run: QEMU's isa-debug-exit (port 0xf4) exits with
//! `(code << 1) | 1`; Bochs ends on "Shutdown" written to port 0x8900.

use x86_64::instructions::port::Port;

use crate::serial;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitCode {
    /// QEMU exit status 33.
    Success = 0x10,
    /// QEMU exit status 35.
    Failure = 0x11,
}

pub fn exit(code: ExitCode) -> ! {
    serial::drain();
    // SAFETY: both ports are the emulators' exit devices; writing them ends
    // the run or, on an emulator without them, does nothing.
    unsafe {
        Port::<u32>::new(0xf4).write(code as u32);
        let mut bochs = Port::<u8>::new(0x8900);
        for &b in b"Shutdown" {
            bochs.write(b);
        }
    }
    halt_forever()
}

pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}
