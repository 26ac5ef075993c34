//! The atomics and the lock of the concurrent guest-memory code: `loom`'s
//! when its model checker runs the host tests (`RUSTFLAGS="--cfg loom"`),
//! `core`'s and `spin`'s otherwise, so that the code checked is the code run.

#[cfg(not(all(test, loom)))]
pub use core::sync::atomic::{AtomicU64, Ordering};
#[cfg(all(test, loom))]
pub use loom::sync::atomic::{AtomicU64, Ordering};

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
pub struct TryLock {
    #[cfg(not(all(test, loom)))]
    inner: spin::Mutex<()>,
    #[cfg(all(test, loom))]
    inner: loom::sync::Mutex<()>,
}

/// Held while the lock is.
pub struct Held<'a> {
    #[cfg(not(all(test, loom)))]
    _guard: spin::MutexGuard<'a, ()>,
    #[cfg(all(test, loom))]
    _guard: loom::sync::MutexGuard<'a, ()>,
}

impl TryLock {
    pub fn new() -> Self {
        Self {
            #[cfg(not(all(test, loom)))]
            inner: spin::Mutex::new(()),
            #[cfg(all(test, loom))]
            inner: loom::sync::Mutex::new(()),
        }
    }

    pub fn try_lock(&self) -> Option<Held<'_>> {
        #[cfg(not(all(test, loom)))]
        let guard = self.inner.try_lock();
        #[cfg(all(test, loom))]
        let guard = self.inner.try_lock().ok();
        guard.map(|_guard| Held { _guard })
    }
}

impl Default for TryLock {
    fn default() -> Self {
        Self::new()
    }
}
