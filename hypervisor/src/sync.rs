//! The atomics and the lock of the concurrent guest-memory code: `loom`'s
//! when its model checker runs the host tests (`RUSTFLAGS="--cfg loom"`),
//! `core`'s otherwise, so that the code checked is the code run.

#[cfg(not(all(test, loom)))]
pub use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
#[cfg(all(test, loom))]
pub use loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Waits a little in a loop that waits for another CPU (under `loom`, lets
/// the other threads run).
pub fn spin_loop() {
    #[cfg(not(all(test, loom)))]
    core::hint::spin_loop();
    #[cfg(all(test, loom))]
    loom::thread::yield_now();
}

/// A lock that is only ever tried: its would-be holders keep serving other
/// CPUs' requests while they wait (`vm::Vm::exclusive`), which a blocking
/// lock would not let them do.
pub struct TryLock(AtomicBool);

/// Held while the lock is; dropping it lets the lock go.
pub struct Held<'a>(&'a AtomicBool);

impl TryLock {
    pub fn new() -> Self {
        Self(AtomicBool::new(false))
    }

    pub fn try_lock(&self) -> Option<Held<'_>> {
        self.0
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| Held(&self.0))
    }
}

impl Default for TryLock {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}
