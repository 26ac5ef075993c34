//! The time-stamp counter as the hypervisor's clock for deadlines,
//! calibrated once against the PIT. Under emulation it counts emulated time
//! (Bochs with `clock: sync=none` ties it to instructions), as the guest's
//! own clock does.

use spin::Once;

pub fn now() -> u64 {
    // SAFETY: RDTSC has no side effect; every x86-64 CPU has it.
    unsafe { core::arch::x86_64::_rdtsc() }
}

static PER_MS: Once<u64> = Once::new();

/// TSC ticks per millisecond, measured over 10 ms of the PIT.
pub fn per_ms() -> u64 {
    *PER_MS.call_once(|| {
        let start = now();
        super::pit::delay_us(10_000);
        ((now() - start) / 10).max(1)
    })
}
