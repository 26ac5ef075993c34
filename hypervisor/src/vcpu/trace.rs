//! What the run loop tells about exits, by level (`trace=`):
//! - `summary` (the default): only the guest's own messages (its `report`,
//!   `print`, `result`, `assert` and `exit` hypercalls, accesses to the ports
//!   it asked to have reported) and the exit that ended it are `vmexit`
//!   events; every exit is counted by reason, and the last ones are kept in a
//!   ring that is printed (`recent-exits`) when the guest ends failed;
//! - `exits`: every exit is a `vmexit` event, for the small scenarios that
//!   assert on each one.
//!
//! An exit that is not reported costs a count and a ring slot: the event is
//! built only when it is written.

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::event::{self, Event, Hex};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Level {
    #[default]
    Summary,
    Exits,
}

/// An exit's reason, as `vmexit`'s `reason` and `guest-end`'s `counts` name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Cpuid,
    Xsetbv,
    Hypercall,
    Hlt,
    Io,
    Msr,
    Exception,
    EptViolation,
    /// An OS guest's write to its local APIC, emulated (INIT, SIPI) or done for it.
    ApicWrite,
    /// An OS guest's write to device registers the hypervisor checks (PCI
    /// configuration, the IOAPIC, the HPET).
    DeviceWrite,
    CrWrite,
    Invd,
    Watchdog,
    IllegalState,
    TripleFault,
    LostState,
    Unhandled,
    /// The host's interrupt (timer, kick) ended the slice: in the ring only.
    Interrupt,
}

impl Reason {
    const ALL: [Self; 18] = [
        Self::Cpuid,
        Self::Xsetbv,
        Self::Hypercall,
        Self::Hlt,
        Self::Io,
        Self::Msr,
        Self::Exception,
        Self::EptViolation,
        Self::ApicWrite,
        Self::DeviceWrite,
        Self::CrWrite,
        Self::Invd,
        Self::Watchdog,
        Self::IllegalState,
        Self::TripleFault,
        Self::LostState,
        Self::Unhandled,
        Self::Interrupt,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Cpuid => "cpuid",
            Self::Xsetbv => "xsetbv",
            Self::Hypercall => "hypercall",
            Self::Hlt => "hlt",
            Self::Io => "io",
            Self::Msr => "msr",
            Self::Exception => "exception",
            Self::EptViolation => "ept-violation",
            Self::ApicWrite => "apic-write",
            Self::DeviceWrite => "device-write",
            Self::CrWrite => "cr-write",
            Self::Invd => "invd",
            Self::Watchdog => "watchdog",
            Self::IllegalState => "illegal-state",
            Self::TripleFault => "triple-fault",
            Self::LostState => "lost-state",
            Self::Unhandled => "unhandled",
            Self::Interrupt => "interrupt",
        }
    }
}

/// Exits by reason; serialized as an object of the reasons seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts([u32; Reason::ALL.len()]);

impl Counts {
    pub fn add(&mut self, r: Reason) {
        // 2^32 exits of one reason would take hours of emulation; wrapping is cheaper.
        self.0[r as usize] = self.0[r as usize].wrapping_add(1);
    }

    pub fn get(&self, r: Reason) -> u32 {
        self.0[r as usize]
    }

    pub fn total(&self) -> u32 {
        self.0.iter().fold(0, |a, &n| a.saturating_add(n))
    }
}

impl Serialize for Counts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let seen = Reason::ALL.iter().filter(|&&r| self.get(r) > 0);
        let mut map = s.serialize_map(Some(seen.clone().count()))?;
        for &r in seen {
            map.serialize_entry(r.name(), &self.get(r))?;
        }
        map.end()
    }
}

/// One exit in the ring: its reason, where, and the one value that says
/// most about it (CPUID leaf, port, MSR, vector, guest-physical address,
/// hypercall number, value written, exit code).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Recent {
    #[serde(serialize_with = "reason_name")]
    pub reason: Reason,
    pub rip: Hex,
    pub info: Hex,
}

fn reason_name<S: Serializer>(r: &Reason, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(r.name())
}

/// How many exits the ring keeps.
pub const RING: usize = 16;

/// The last `RING` exits, oldest first when read.
#[derive(Clone, Copy, Debug)]
pub struct Ring {
    slots: [Option<Recent>; RING],
    next: usize,
}

impl Default for Ring {
    fn default() -> Self {
        Self {
            slots: [None; RING],
            next: 0,
        }
    }
}

impl Ring {
    pub fn push(&mut self, e: Recent) {
        self.slots[self.next] = Some(e);
        self.next = (self.next + 1) % RING;
    }

    pub fn oldest_first(&self) -> impl Iterator<Item = Recent> + '_ {
        let (newer, older) = self.slots.split_at(self.next);
        older.iter().chain(newer).flatten().copied()
    }
}

/// One exit as an event (`vmexit`); a field is present where the reason has it.
#[derive(serde::Serialize, Default)]
pub struct VmExit<'a> {
    pub vcpu: u32,
    pub reason: &'static str,
    pub rip: Hex,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaf: Option<Hex>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subleaf: Option<Hex>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eax: Option<Hex>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ebx: Option<Hex>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ecx: Option<Hex>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edx: Option<Hex>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Hex>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<Hex>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<Hex>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Hex>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<Hex>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msr: Option<Hex>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<Hex>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instruction: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpa: Option<Hex>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mapped: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<Hex>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpl: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left: Option<Hex>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub right: Option<Hex>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cr: Option<u8>,
}
impl Event for VmExit<'_> {
    const NAME: &'static str = "vmexit";
}

#[derive(serde::Serialize)]
struct GuestEndEvent<'a> {
    vcpu: u32,
    how: &'a str,
    failed: bool,
    exits: u32,
    /// Every exit by reason: scenarios count and bound them.
    counts: &'a Counts,
    /// Pages of guest RAM backed (by the loader and on demand); the
    /// faults that backed them are not exits the guest sees, nor counted.
    backed: u64,
    /// TLB flushes this vCPU made because the second-level table changed.
    flushes: u32,
}
impl Event for GuestEndEvent<'_> {
    const NAME: &'static str = "guest-end";
}

#[derive(serde::Serialize)]
struct RecentExits {
    vcpu: u32,
    exits: heapless::Vec<Recent, RING>,
}
impl Event for RecentExits {
    const NAME: &'static str = "recent-exits";
}

/// Whether an exit is one the guest meant the scenario to see (or the one
/// that ended it): reported at every level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notable {
    Yes,
    No,
}

/// One vCPU's trace: its level, counts and ring.
#[derive(Debug)]
pub struct Tracer {
    pub level: Level,
    pub vcpu: u32,
    pub counts: Counts,
    /// TLB flushes asked by the machine (`Handlers::service`).
    pub flushes: u32,
    /// Accesses refused so far (`refusal`).
    refused: u32,
    ring: Ring,
}

/// Refusals reported one by one per vCPU; the rest are counted only, so
/// that a guest cannot flood the hypervisor's channel with them.
const REFUSALS_REPORTED: u32 = 64;

impl Tracer {
    pub fn new(level: Level, vcpu: u32) -> Self {
        Self {
            level,
            vcpu,
            counts: Counts::default(),
            flushes: 0,
            refused: 0,
            ring: Ring::default(),
        }
    }

    /// Whether a refused access (a port or register the guest may not
    /// reach) is reported: the first `REFUSALS_REPORTED` are.
    pub fn refusal(&mut self) -> Notable {
        self.refused = self.refused.saturating_add(1);
        if self.refused <= REFUSALS_REPORTED {
            Notable::Yes
        } else {
            Notable::No
        }
    }

    /// Counts an exit and keeps it in the ring; writes the event `f` builds
    /// from the common fields when the level or `notable` asks for it.
    /// Inlined, so that an exit not reported never builds `f`'s captures.
    #[inline(always)]
    pub fn exit<'e>(
        &mut self,
        reason: Reason,
        rip: u64,
        info: u64,
        notable: Notable,
        f: impl FnOnce(VmExit<'e>) -> VmExit<'e>,
    ) {
        self.counts.add(reason);
        self.ring.push(Recent {
            reason,
            rip: Hex(rip),
            info: Hex(info),
        });
        if notable == Notable::Yes || self.level == Level::Exits {
            event::emit(&f(VmExit {
                vcpu: self.vcpu,
                reason: reason.name(),
                rip: Hex(rip),
                ..Default::default()
            }));
        }
    }

    /// Keeps an exit in the ring without counting it.
    pub fn ring_only(&mut self, reason: Reason, rip: u64) {
        self.ring.push(Recent {
            reason,
            rip: Hex(rip),
            info: Hex(0),
        });
    }

    /// The guest's end: the ring first when it failed and exits were not
    /// traced one by one, then `guest-end` with the counts.
    pub fn end(&self, how: &str, failed: bool, backed: u64) {
        if failed && self.level == Level::Summary {
            event::emit(&RecentExits {
                vcpu: self.vcpu,
                exits: self.ring.oldest_first().collect(),
            });
        }
        event::emit(&GuestEndEvent {
            vcpu: self.vcpu,
            how,
            failed,
            exits: self.counts.total(),
            counts: &self.counts,
            backed,
            flushes: self.flushes,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_last_exits_oldest_first() {
        let mut ring = Ring::default();
        let at = |i: u64| Recent {
            reason: Reason::Cpuid,
            rip: Hex(i),
            info: Hex(0),
        };
        for i in 0..3 {
            ring.push(at(i));
        }
        let rips = |r: &Ring| r.oldest_first().map(|e| e.rip.0).collect::<Vec<_>>();
        assert_eq!(rips(&ring), [0, 1, 2]);
        for i in 3..(RING as u64 + 5) {
            ring.push(at(i));
        }
        assert_eq!(rips(&ring), (5..RING as u64 + 5).collect::<Vec<_>>());
    }

    #[test]
    fn interrupts_are_kept_in_the_ring_but_not_counted() {
        let mut t = Tracer::new(Level::Summary, 0);
        t.exit(Reason::Io, 0x10, 0xcf8, Notable::No, |e| e);
        t.ring_only(Reason::Interrupt, 0x12);
        let kept: Vec<_> = t
            .ring
            .oldest_first()
            .map(|e| (e.reason.name(), e.rip.0))
            .collect();
        assert_eq!(kept, [("io", 0x10), ("interrupt", 0x12)]);
        assert_eq!(t.counts.total(), 1);
        assert_eq!(t.counts.get(Reason::Interrupt), 0);
    }

    #[test]
    fn counts_serialize_the_reasons_seen() {
        let mut c = Counts::default();
        c.add(Reason::Hlt);
        c.add(Reason::Cpuid);
        c.add(Reason::Cpuid);
        assert_eq!(serde_json::to_string(&c).unwrap(), r#"{"cpuid":2,"hlt":1}"#);
        assert_eq!(c.total(), 3);
    }
}
