//! Port I/O on the hardware, on an OS guest's behalf (`vcpu::io`'s
//! `Forward`): the access it made, of its size.

use x86_64::instructions::port::Port;

/// Reads `size` bytes (1, 2 or 4) from `port`.
pub fn read(port: u16, size: u8) -> u32 {
    // SAFETY: the guest owns the devices and could have made this access
    // itself; the hypervisor keeps no state in these ports.
    unsafe {
        match size {
            1 => Port::<u8>::new(port).read().into(),
            2 => Port::<u16>::new(port).read().into(),
            _ => Port::<u32>::new(port).read(),
        }
    }
}

/// Writes the low `size` bytes (1, 2 or 4) of `value` to `port`.
pub fn write(port: u16, size: u8, value: u32) {
    // SAFETY: as in `read`.
    unsafe {
        match size {
            1 => Port::<u8>::new(port).write(value as u8),
            2 => Port::<u16>::new(port).write(value as u16),
            _ => Port::<u32>::new(port).write(value),
        }
    }
}
