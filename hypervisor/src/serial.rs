//! The hypervisor's console: the 16550 UART on COM2, 115200 8N1, polled.
//! No guest can write to it, so the harness trusts what it reads there.
//!
//! Bochs' UART starts in 5-bit mode and drops bytes written while the
//! transmitter is busy, so the line control is always programmed and every
//! byte waits for THRE; `drain` waits for TEMT before power-off.

use spin::Mutex;
use x86_64::instructions::port::Port;

/// COM2: COM1 belongs to the guest (`vcpu::io`), which never reaches this one.
const COM2: u16 = 0x2f8;
const LSR_THRE: u8 = 1 << 5;
const LSR_TEMT: u8 = 1 << 6;

pub struct Uart {
    base: u16,
}

impl Uart {
    const fn new(base: u16) -> Self {
        Self { base }
    }

    fn out(&self, reg: u16, value: u8) {
        // SAFETY: the registers of the UART this console owns.
        unsafe { Port::new(self.base + reg).write(value) }
    }

    fn lsr(&self) -> u8 {
        // SAFETY: reading the line status register has no side effect.
        unsafe { Port::new(self.base + 5).read() }
    }

    #[cfg_attr(test, allow(dead_code))]
    fn init(&self) {
        self.out(1, 0x00); // no interrupts
        self.out(3, 0x80); // DLAB on
        self.out(0, 0x01); // divisor 1: 115200 baud
        self.out(1, 0x00);
        self.out(3, 0x03); // DLAB off, 8 data bits, no parity, 1 stop bit
        self.out(2, 0xc7); // FIFOs on and cleared
        self.out(4, 0x03); // DTR, RTS
    }

    #[cfg_attr(test, allow(dead_code))]
    fn put(&self, byte: u8) {
        while self.lsr() & LSR_THRE == 0 {
            core::hint::spin_loop();
        }
        self.out(0, byte);
    }

    #[cfg(not(test))]
    pub fn write(&self, bytes: &[u8]) {
        for &b in bytes {
            self.put(b);
        }
    }

    /// Host tests capture the console per thread instead of touching ports.
    #[cfg(test)]
    pub fn write(&self, bytes: &[u8]) {
        CAPTURED.with(|c| c.borrow_mut().extend_from_slice(bytes));
    }

    fn drain(&self) {
        while self.lsr() & LSR_TEMT == 0 {
            core::hint::spin_loop();
        }
    }
}

impl core::fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.write(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
std::thread_local! {
    static CAPTURED: core::cell::RefCell<std::vec::Vec<u8>> = const { core::cell::RefCell::new(std::vec::Vec::new()) };
}

/// Host tests: the events written so far on this thread, as JSON strings, cleared.
#[cfg(test)]
pub fn take_events() -> std::vec::Vec<std::string::String> {
    let text = CAPTURED.with(|c| std::string::String::from_utf8(c.take()).expect("UTF-8 console"));
    text.lines()
        .filter_map(|l| l.strip_prefix(crate::event::PREFIX))
        .map(str::to_owned)
        .collect()
}

/// One lock for the console, so that lines from several CPUs never interleave.
static CONSOLE: Mutex<Uart> = Mutex::new(Uart::new(COM2));

pub fn init() {
    CONSOLE.lock().init();
}

/// Runs `f` with the console locked.
pub fn with<R>(f: impl FnOnce(&mut Uart) -> R) -> R {
    f(&mut CONSOLE.lock())
}

/// Takes the console from whoever holds it: for the fatal paths (exception,
/// panic) that end the run and may have interrupted a writer.
pub fn with_forced<R>(f: impl FnOnce(&mut Uart) -> R) -> R {
    if CONSOLE.is_locked() {
        // SAFETY: only called on paths that never return to the interrupted
        // holder; a torn line is acceptable, a deadlock is not.
        unsafe { CONSOLE.force_unlock() };
    }
    with(f)
}

/// Waits until every byte has left the transmitter.
pub fn drain() {
    with_forced(|uart| uart.drain());
}
