//! The kernel command line: space-separated `key=value` options.
//!
//! - `guest=real|protected|long`: run the first boot module as a guest that
//!   starts in that mode (docs/hypercalls.md describes the payload contract);
//!   `guest=multiboot` or `multiboot2`: run it as a multiboot ELF kernel;
//!   `guest=linux`: run it as an OS kernel on the whole machine (a PVH ELF
//!   such as Linux's vmlinux; its module string is its command line, the
//!   second module its initrd; docs/guests.md);
//! - `guest.io=PORT,PORT,...`: I/O ports whose accesses exit and are reported;
//! - `guest.memory=MIB`: guest RAM, 2 MiB by default (256 for `linux`);
//! - `guest.watchdog=MS`: stop the guest after MS emulated milliseconds
//!   (default 10000; 0 never; `linux` has none: its APIC timer is its own);
//! - `trace=summary|exits`: by default a guest's exits are counted and only
//!   its own messages are events; `exits` makes every exit an event;
//! - `guest.selftest=entry-failure`: start the guest in a state VM entry refuses;
//! - `numa=off`: ignore the SRAT, one node; `numa=fake:N`: N nodes made up
//!   from the memory map, for machines without NUMA tables (Bochs);
//! - `smp.x2apic`: start the other CPUs in x2APIC mode even when xAPIC would do;
//! - `numa.probe`: allocate a 4 KiB and a 2 MiB frame on every node and report where they came from;
//! - `numa.policy=first-touch|interleave|weighted-interleave|bind:N[,M...]|preferred:N|adaptive`:
//!   where the guest's pages are backed (nodes by their domain; default first-touch);
//! - `numa.sample=PAGES`, `numa.period=MS`: adaptive placement samples a window of PAGES backed
//!   4 KiB pages (default 1024) every MS emulated milliseconds (default 10); `numa.track=faults|bits`:
//!   by hinting faults or by the accessed and dirty bits of each node's table (default: bits where
//!   the CPU keeps them, AMD nested paging and Intel EPT with A/D; faults otherwise);
//! - `numa.page=4k|2m`: the size of the pages backing the guest (default 4k; 2m for `linux`);
//! - `numa.dump`: report the guest-physical to node map when the guest ends;
//! - `numa.guest=uma|mirror`: a `linux` guest sees one node (default), or
//!   the real ones, each node's guest memory backed on that node;
//! - `selftest=...`: provoke a fault, for the harness's own tests.
//!
//! Each option may be given once: a second one is an error, not an override.

use core::fmt;
use heapless::Vec;

use crate::ept::PageSize;
use crate::numa::policy::{self, Spec};
use crate::vcpu::config::{Placement, Track};
use crate::vcpu::guest::{DEFAULT_MEMORY, GuestMode};

/// An OS guest's RAM unless `guest.memory` says.
const LINUX_MEMORY: u64 = 256 << 20;
use crate::vcpu::trace::Level;
use crate::vcpu::{GuestConfig, Image};

/// Faults the kernel can be told to provoke, so that the harness's crash and
/// timeout verdicts are tested against a real emulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelfTest {
    /// Spin forever with interrupts off.
    Hang,
    /// Execute `ud2`.
    InvalidOpcode,
    /// Read an address outside the identity map.
    PageFault,
    /// Fault with no usable IDT: the CPU shuts down.
    TripleFault,
    /// A Rust panic.
    Panic,
    /// Contradictory evidence: two `exit` events, then a clean power-off.
    Contradiction,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Numa {
    /// The SRAT and SLIT when there are, one node otherwise.
    #[default]
    Tables,
    Off,
    Fake(usize),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub selftest: Option<SelfTest>,
    pub guest: Option<GuestConfig>,
    pub numa: Numa,
    pub numa_probe: bool,
    pub x2apic: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionError<'a> {
    Unknown(&'a str),
    BadValue {
        key: &'a str,
        value: &'a str,
        expected: &'static str,
    },
    /// `guest.*` given without `guest=`.
    NoGuest(&'a str),
    /// The same option twice.
    Twice(&'a str),
}

impl fmt::Display for OptionError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(opt) => write!(f, "unknown option '{opt}'"),
            Self::BadValue {
                key,
                value,
                expected,
            } => {
                write!(f, "bad value '{value}' for '{key}': expected {expected}")
            }
            Self::Twice(key) => write!(f, "option '{key}' given twice"),
            Self::NoGuest(opt) => write!(
                f,
                "'{opt}' needs 'guest=' to say which mode the guest starts in"
            ),
        }
    }
}

const SELFTESTS: &str =
    "one of hang, invalid-opcode, page-fault, triple-fault, panic, contradiction";
/// Guest RAM bounds, in MiB: room for the layout below the payload, and for
/// the first GiB the long-mode tables map.
const GUEST_MIB: core::ops::RangeInclusive<u64> = 1..=1024;
/// The watchdog's default and bound, in emulated milliseconds.
pub const DEFAULT_WATCHDOG_MS: u64 = 10_000;
const WATCHDOG_MS: core::ops::RangeInclusive<u64> = 0..=3_600_000;
/// At most this many options on a line (more is an error).
const MAX_OPTIONS: usize = 32;

/// Parses `line`; the first bad option is returned as an error.
pub fn parse(line: &str) -> Result<Options, OptionError<'_>> {
    let mut opts = Options::default();
    let mut io = None;
    let mut memory = None;
    let mut invalid_state = false;
    let mut watchdog = None;
    let mut trace = Level::default();
    let mut placement = Placement::default();
    let mut page = None;
    let mut guest_option = None;
    let mut seen: Vec<&str, MAX_OPTIONS> = Vec::new();
    for word in line.split_ascii_whitespace() {
        let (key, value) = word.split_once('=').unwrap_or((word, ""));
        if seen.contains(&key) {
            return Err(OptionError::Twice(key));
        }
        seen.push(key).map_err(|_| OptionError::Unknown(word))?;
        let bad = |expected| OptionError::BadValue {
            key,
            value,
            expected,
        };
        match key {
            "selftest" => {
                opts.selftest = Some(match value {
                    "hang" => SelfTest::Hang,
                    "invalid-opcode" => SelfTest::InvalidOpcode,
                    "page-fault" => SelfTest::PageFault,
                    "triple-fault" => SelfTest::TripleFault,
                    "panic" => SelfTest::Panic,
                    "contradiction" => SelfTest::Contradiction,
                    _ => return Err(bad(SELFTESTS)),
                })
            }
            "numa" => {
                opts.numa = match value.strip_prefix("fake:").map(str::parse::<usize>) {
                    _ if value == "off" => Numa::Off,
                    Some(Ok(n @ 1..=16)) => Numa::Fake(n),
                    _ => return Err(bad("off, or fake:N with N from 1 to 16")),
                }
            }
            "trace" => {
                trace = match value {
                    "summary" => Level::Summary,
                    "exits" => Level::Exits,
                    _ => return Err(bad("summary or exits")),
                }
            }
            "numa.probe" if value.is_empty() => opts.numa_probe = true,
            "numa.policy" => {
                placement.policy = Spec::parse(value).ok_or(bad(policy::SPECS))?;
            }
            "numa.page" => {
                page = Some(match value {
                    "4k" => PageSize::Small,
                    "2m" => PageSize::Large,
                    _ => return Err(bad("4k or 2m")),
                })
            }
            "numa.dump" if value.is_empty() => placement.dump = true,
            "numa.sample" => {
                let pages = value.parse().ok().filter(|p| (1..=1 << 18).contains(p));
                placement.sampling.pages = pages.ok_or(bad("4 KiB pages from 1 to 262144"))?;
            }
            "numa.period" => {
                let ms = value.parse().ok().filter(|m| (1..=10_000).contains(m));
                placement.sampling.period_ms = ms.ok_or(bad("milliseconds from 1 to 10000"))?;
            }
            "numa.track" => {
                placement.sampling.track = match value {
                    "faults" => Track::Faults,
                    "bits" => Track::Bits,
                    _ => return Err(bad("faults or bits")),
                }
            }
            "numa.guest" => {
                placement.mirror = match value {
                    "uma" => false,
                    "mirror" => true,
                    _ => return Err(bad("uma or mirror")),
                };
                guest_option.get_or_insert(word);
            }
            "smp.x2apic" if value.is_empty() => opts.x2apic = true,
            "guest" => {
                let (mode, image) = match value {
                    "real" => (GuestMode::Real, Image::Payload),
                    "protected" => (GuestMode::Protected, Image::Payload),
                    "long" => (GuestMode::Long, Image::Payload),
                    "multiboot" => (GuestMode::Protected, Image::Multiboot),
                    "multiboot2" => (GuestMode::Protected, Image::Multiboot2),
                    "linux" => (GuestMode::Protected, Image::Linux),
                    _ => {
                        return Err(bad(
                            "one of real, protected, long, multiboot, multiboot2, linux",
                        ));
                    }
                };
                opts.guest = Some(GuestConfig {
                    mode,
                    memory: DEFAULT_MEMORY,
                    intercept_io: Vec::new(),
                    watchdog_ms: DEFAULT_WATCHDOG_MS,
                    invalid_state: false,
                    trace: Level::default(),
                    placement: Placement::default(),
                    image,
                });
            }
            "guest.io" => {
                io = Some(
                    crate::vcpu::parse_ports(value).ok_or(bad("up to 16 ports, e.g. 0x80,0x70"))?,
                );
                guest_option.get_or_insert(word);
            }
            "guest.selftest" => {
                if value != "entry-failure" {
                    return Err(bad("entry-failure"));
                }
                invalid_state = true;
                guest_option.get_or_insert(word);
            }
            "guest.watchdog" => {
                let ms = value
                    .parse::<u64>()
                    .ok()
                    .filter(|m| WATCHDOG_MS.contains(m));
                watchdog = Some(ms.ok_or(bad("milliseconds from 0 (never) to 3600000"))?);
                guest_option.get_or_insert(word);
            }
            "guest.memory" => {
                let mib = value.parse::<u64>().ok().filter(|m| GUEST_MIB.contains(m));
                memory = Some(mib.ok_or(bad("a size in MiB from 1 to 1024"))? << 20);
                guest_option.get_or_insert(word);
            }
            _ => return Err(OptionError::Unknown(word)),
        }
    }
    match (&mut opts.guest, guest_option) {
        (Some(guest), _) => {
            let os = guest.os();
            if placement.mirror && (!os || placement.policy != Spec::FirstTouch) {
                return Err(OptionError::BadValue {
                    key: "numa.guest",
                    value: "mirror",
                    expected: "uma: mirror is for guest=linux, and places pages itself (no numa.policy)",
                });
            }
            let sampling = seen
                .iter()
                .find(|k| ["numa.sample", "numa.period"].contains(k));
            if let Some(&key) = sampling.filter(|_| placement.policy != Spec::Adaptive) {
                return Err(OptionError::BadValue {
                    key,
                    value: "",
                    expected: "numa.policy=adaptive: only it samples",
                });
            }
            if os && watchdog.is_some_and(|ms| ms != 0) {
                return Err(OptionError::BadValue {
                    key: "guest.watchdog",
                    value: "",
                    expected: "0: a linux guest owns its APIC timer, no watchdog can run",
                });
            }
            guest.intercept_io = io.unwrap_or_default();
            guest.memory = memory.unwrap_or(if os { LINUX_MEMORY } else { DEFAULT_MEMORY });
            guest.invalid_state = invalid_state;
            guest.watchdog_ms = if os {
                0
            } else {
                watchdog.unwrap_or(DEFAULT_WATCHDOG_MS)
            };
            guest.trace = trace;
            guest.placement = placement.clone();
            // An OS kernel's RAM is backed by 2 MiB pages unless asked: fewer
            // faults and shorter nested walks, as hypervisors back guests.
            let large = if os { PageSize::Large } else { PageSize::Small };
            guest.placement.page = page.unwrap_or(large);
        }
        (None, Some(word)) => return Err(OptionError::NoGuest(word)),
        (None, None) => {}
    }
    Ok(opts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vcpu::config::Sampling;

    #[test]
    fn empty_and_blank_lines_give_defaults() {
        assert_eq!(parse(""), Ok(Options::default()));
        assert_eq!(parse("   \t "), Ok(Options::default()));
    }

    #[test]
    fn parses_selftests() {
        assert_eq!(
            parse("selftest=hang").unwrap().selftest,
            Some(SelfTest::Hang)
        );
        assert_eq!(
            parse(" selftest=page-fault ").unwrap().selftest,
            Some(SelfTest::PageFault)
        );
    }

    #[test]
    fn parses_guest_options_in_any_order() {
        let g = parse("guest.io=0x80,113 guest=real guest.memory=4")
            .unwrap()
            .guest
            .unwrap();
        assert_eq!(g.mode, GuestMode::Real);
        assert_eq!(g.intercept_io.as_slice(), &[0x80, 113]);
        assert_eq!(g.memory, 4 << 20);
        let g = parse("guest=long").unwrap().guest.unwrap();
        assert_eq!(
            (g.memory, g.intercept_io.len(), g.invalid_state),
            (DEFAULT_MEMORY, 0, false)
        );
        assert!(
            parse("guest=long guest.selftest=entry-failure")
                .unwrap()
                .guest
                .unwrap()
                .invalid_state
        );
        assert!(parse("guest=long guest.selftest=other").is_err());
    }

    #[test]
    fn parses_numa_options() {
        assert_eq!(parse("numa=fake:4").unwrap().numa, Numa::Fake(4));
        assert_eq!(
            parse("numa=off numa.probe").unwrap(),
            Options {
                numa: Numa::Off,
                numa_probe: true,
                ..Default::default()
            }
        );
        assert!(parse("numa=fake:0").is_err());
        assert!(parse("numa=fake:17").is_err());
        assert!(parse("numa=on").is_err());
        assert!(parse("numa.probe=1").is_err());
    }

    #[test]
    fn names_the_bad_option() {
        assert_eq!(
            parse("selftest=hang bogus"),
            Err(OptionError::Unknown("bogus"))
        );
        let err = parse("selftest=explode").unwrap_err();
        assert!(matches!(
            err,
            OptionError::BadValue {
                value: "explode",
                ..
            }
        ));
        let text = format!("{err}");
        assert!(text.contains("hang, invalid-opcode"), "{text}");
        assert!(matches!(
            parse("guest=virtual86"),
            Err(OptionError::BadValue { key: "guest", .. })
        ));
        assert!(matches!(
            parse("guest=long guest.memory=0"),
            Err(OptionError::BadValue { .. })
        ));
        assert!(matches!(
            parse("guest=long guest.io=0x80,zz"),
            Err(OptionError::BadValue { .. })
        ));
        assert_eq!(
            parse("guest.io=0x80"),
            Err(OptionError::NoGuest("guest.io=0x80"))
        );
        assert!(matches!(
            parse("guest=long guest.watchdog=soon"),
            Err(OptionError::BadValue { .. })
        ));
    }

    #[test]
    fn an_option_given_twice_is_an_error() {
        assert_eq!(
            parse("guest=long guest.memory=4 guest.memory=8"),
            Err(OptionError::Twice("guest.memory"))
        );
        assert_eq!(
            parse("numa.probe numa.probe"),
            Err(OptionError::Twice("numa.probe"))
        );
        let text = format!("{}", OptionError::Twice("guest"));
        assert_eq!(text, "option 'guest' given twice");
    }

    #[test]
    fn parses_placement_options() {
        let p = |line| parse(line).map(|o| o.guest.unwrap().placement);
        assert_eq!(p("guest=long"), Ok(Placement::default()));
        let got = p("guest=long numa.policy=bind:1,0 numa.page=2m numa.dump").unwrap();
        assert_eq!(got.policy, Spec::Bind([1, 0].into_iter().collect()));
        assert_eq!((got.page, got.dump), (PageSize::Large, true));
        assert!(matches!(
            parse("guest=long numa.policy=nearest"),
            Err(OptionError::BadValue {
                key: "numa.policy",
                ..
            })
        ));
        assert!(parse("guest=long numa.page=1g").is_err());
        let got = p("guest=long numa.policy=adaptive numa.sample=64 numa.period=5 numa.track=bits")
            .unwrap();
        assert_eq!(
            (got.policy, got.sampling),
            (
                Spec::Adaptive,
                Sampling {
                    pages: 64,
                    period_ms: 5,
                    track: Track::Bits
                }
            )
        );
        assert!(parse("guest=long numa.policy=adaptive numa.track=dirty").is_err());
        // By bits where the CPU keeps them, unless faults are asked for.
        assert_eq!(Track::Best.by_bits(true), Some(true));
        assert_eq!(Track::Best.by_bits(false), Some(false));
        assert_eq!(Track::Faults.by_bits(true), Some(false));
        assert_eq!(Track::Bits.by_bits(false), None);
        assert!(parse("guest=long numa.sample=64").is_err(), "not adaptive");
        assert!(parse("guest=long numa.policy=adaptive numa.period=0").is_err());
        // An OS guest too (its exits bring its periods; VMX skips it for now).
        assert!(parse("guest=linux numa.policy=adaptive").is_ok());
    }

    #[test]
    fn linux_guests_have_their_defaults_and_may_mirror_the_nodes() {
        let g = parse("guest=linux").unwrap().guest.unwrap();
        assert_eq!(
            (g.image, g.memory, g.watchdog_ms),
            (Image::Linux, 256 << 20, 0)
        );
        assert!(!g.placement.mirror);
        let g = parse("guest=linux numa.guest=mirror")
            .unwrap()
            .guest
            .unwrap();
        assert!(g.placement.mirror);
        assert!(
            parse("guest=long numa.guest=mirror").is_err(),
            "payloads see no NUMA"
        );
        assert!(parse("guest=linux numa.guest=mirror numa.policy=interleave").is_err());
        assert!(parse("guest=linux guest.watchdog=100").is_err());
        assert!(parse("guest=linux numa.guest=all").is_err());
    }

    #[test]
    fn the_watchdog_has_a_default_and_can_be_turned_off() {
        let watchdog = |line| parse(line).unwrap().guest.unwrap().watchdog_ms;
        assert_eq!(watchdog("guest=long"), DEFAULT_WATCHDOG_MS);
        assert_eq!(watchdog("guest=long guest.watchdog=250"), 250);
        assert_eq!(watchdog("guest=long guest.watchdog=0"), 0);
    }
}
