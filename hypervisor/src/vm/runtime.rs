//! Placement that acts while the guest runs, behind one trait as the static
//! policies are behind `numa::policy::Policy`: what the machine tells it
//! (sampled accesses, collapses, its periods) and what it may do (change
//! where pages are, as the `Owner`). Adaptive placement (`sampler.rs`) is
//! the one there is. A new one is a file with a type that implements
//! `RunTime`, its variant in `RunTimePolicy`, and a constructor like
//! `adaptive` that `vm::launch` calls for its `numa.policy`.

use super::host::Host;
use super::memory::{GuestMemory, Owner};
use super::sampler::{Sampler, Stats};
use crate::ept::Format;
use crate::numa::topology::MAX_NODES;
use crate::vcpu::Refusal;
use crate::vcpu::config::Sampling;

pub trait RunTime {
    /// A vCPU on `node` faulted on the page at `base` the policy had taken
    /// the access of (writing or not), or its CPU set the page's accessed
    /// bit: a sighting.
    fn hint(&self, base: u64, node: usize, write: bool);
    /// A write collapsed the replicated page at `base`.
    fn collapsed(&self, base: u64);
    /// Whether a period is due at TSC `now`: true for one caller per period.
    fn due(&self, now: u64) -> bool;
    /// A period's work on `memory`, as the `owner` of where pages are:
    /// `shootdown` has every vCPU flush and waits, `request` asks them to
    /// flush without waiting; `distance` between the nodes.
    fn tick<F: Format, H: Host>(
        &self,
        memory: &GuestMemory<F, H>,
        owner: &Owner,
        distance: &[[u8; MAX_NODES]],
        shootdown: &mut dyn FnMut(),
        request: &mut dyn FnMut(),
    );
    /// What it did, for the `placement` event.
    fn stats(&self) -> Stats;
}

/// The run-time policy a guest runs under, if any.
pub enum RunTimePolicy {
    Adaptive(Sampler),
}

/// What a run-time policy is built for: guest RAM's size, whether the CPU
/// keeps accessed bits in the second-level table and the guest's nodes walk
/// their own copies of it, and TSC ticks per millisecond.
pub struct Guest {
    pub size: u64,
    pub accessed_dirty: bool,
    pub copies: bool,
    pub per_ms: u64,
}

/// Adaptive placement sampling as `sampling` says.
pub fn adaptive(sampling: Sampling, g: &Guest) -> Result<RunTimePolicy, Refusal> {
    // Bits are read in each node's copy: with the vCPUs on one node, by faults.
    let bits = sampling
        .track
        .by_bits(g.accessed_dirty)
        .ok_or(Refusal::Unsupported(
            "numa.track=bits: this CPU keeps no accessed bits in EPT",
        ))?
        && g.copies;
    let sampler = Sampler::new(g.size, sampling, bits, g.per_ms).ok_or(Refusal::Unsupported(
        "no memory for adaptive placement's page records",
    ))?;
    Ok(RunTimePolicy::Adaptive(sampler))
}

impl RunTime for RunTimePolicy {
    fn hint(&self, base: u64, node: usize, write: bool) {
        match self {
            Self::Adaptive(s) => s.hint(base, node, write),
        }
    }

    fn collapsed(&self, base: u64) {
        match self {
            Self::Adaptive(s) => s.collapsed(base),
        }
    }

    fn due(&self, now: u64) -> bool {
        match self {
            Self::Adaptive(s) => s.due(now),
        }
    }

    fn tick<F: Format, H: Host>(
        &self,
        memory: &GuestMemory<F, H>,
        owner: &Owner,
        distance: &[[u8; MAX_NODES]],
        shootdown: &mut dyn FnMut(),
        request: &mut dyn FnMut(),
    ) {
        match self {
            Self::Adaptive(s) => s.tick(memory, owner, distance, shootdown, request),
        }
    }

    fn stats(&self) -> Stats {
        match self {
            Self::Adaptive(s) => s.stats(),
        }
    }
}
