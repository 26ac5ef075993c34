//! What the scenario's command line asks of a guest: its kind, mode and
//! memory, what is traced, and where its pages go.

use heapless::Vec;

use super::guest::GuestMode;
use super::trace;
use crate::ept::PageSize;
use crate::numa::policy::Spec;

/// What the scenario's command line asks of the guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestConfig {
    pub mode: GuestMode,
    pub memory: u64,
    /// Ports whose accesses are reported as the scenario's; every port but
    /// the guest's console exits (`io.rs`).
    pub intercept_io: Vec<u16, 16>,
    /// Emulated milliseconds after which the guest is stopped (0: never).
    pub watchdog_ms: u64,
    /// Start the guest with a state VM entry must refuse (RFLAGS bit 1
    /// clear), to test how entry failures are reported.
    pub invalid_state: bool,
    /// Which exits become events (`trace.rs`).
    pub trace: trace::Level,
    /// Where its pages are backed.
    pub placement: Placement,
    /// What the boot module is: a flat payload, or a multiboot kernel.
    pub image: Image,
}

impl GuestConfig {
    /// Whether the guest is an OS kernel on the whole machine (`Image::Linux`).
    pub fn os(&self) -> bool {
        self.image == Image::Linux
    }
}

/// What the guest's boot module holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Image {
    /// Code loaded at 0x8000 and entered there (docs/hypercalls.md), on every vCPU.
    #[default]
    Payload,
    /// A multiboot (version 1) ELF kernel: its segments loaded where it
    /// says, entered in protected mode with the multiboot registers and
    /// information, on the boot CPU's vCPU alone.
    Multiboot,
    /// The same for a multiboot2 kernel, with multiboot2 information.
    Multiboot2,
    /// An OS kernel (Linux's vmlinux by PVH, or a bzImage by the x86 boot
    /// protocol) on the whole machine: devices passed through, ACPI without
    /// the NUMA tables (`platform`, `os`).
    Linux,
}

/// Where a guest's pages are backed (`numa.policy=`, `numa.page=`), and
/// whether the map is reported when it ends (`numa.dump`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub policy: Spec,
    pub page: PageSize,
    pub dump: bool,
    /// `numa.guest=mirror`: an OS guest sees the real nodes, each backed on
    /// its own (instead of one node, placed by `policy`).
    pub mirror: bool,
    /// `adaptive`'s sampling (`numa.sample=`, `numa.period=`).
    pub sampling: Sampling,
}

impl Default for Placement {
    fn default() -> Self {
        Self {
            policy: Spec::FirstTouch,
            page: PageSize::Small,
            dump: false,
            mirror: false,
            sampling: Sampling::default(),
        }
    }
}

/// How adaptive placement samples: a window of `pages` 4 KiB pages of guest
/// RAM every `period_ms`, the window moving on each time, by hinting faults
/// or by accessed and dirty bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sampling {
    pub pages: u64,
    pub period_ms: u64,
    pub track: Track,
}

/// How the sampler sees accesses (`numa.track`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Track {
    /// By accessed and dirty bits where the CPU keeps them in the
    /// second-level table (no fault to pay), else by hinting faults.
    Best,
    Faults,
    Bits,
}

impl Track {
    /// Whether to sample by bits on a CPU that keeps them in the
    /// second-level table (`kept`) or not; None: bits asked for, not kept.
    pub fn by_bits(self, kept: bool) -> Option<bool> {
        match self {
            Track::Best => Some(kept),
            Track::Faults => Some(false),
            Track::Bits => kept.then_some(true),
        }
    }
}

impl Default for Sampling {
    fn default() -> Self {
        Self {
            pages: 1024,
            period_ms: 10,
            track: Track::Best,
        }
    }
}
