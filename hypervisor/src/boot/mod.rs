//! What the loader tells the kernel: protocol, command line, memory map,
//! modules and where the ACPI RSDP is. One model for both protocols.

pub mod multiboot2;
pub mod pvh;

use core::fmt;
use heapless::{String, Vec};
use serde::Serialize;

use crate::phys::PhysMem;

pub const MAX_REGIONS: usize = 128;
pub const MAX_MODULES: usize = 16;
pub const CMDLINE_MAX: usize = 1024;
const NAME_MAX: usize = 128;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Pvh,
    Multiboot2,
}

/// Memory region types, numbered as in the E820 map (both protocols use it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemoryKind {
    Usable,
    Reserved,
    AcpiReclaimable,
    AcpiNvs,
    Bad,
    Persistent,
    Other,
}

impl MemoryKind {
    pub fn from_e820(kind: u32) -> Self {
        match kind {
            1 => Self::Usable,
            2 => Self::Reserved,
            3 => Self::AcpiReclaimable,
            4 => Self::AcpiNvs,
            5 => Self::Bad,
            7 => Self::Persistent,
            _ => Self::Other,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryRegion {
    pub base: u64,
    pub len: u64,
    pub kind: MemoryKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    pub start: u64,
    pub end: u64,
    pub cmdline: String<NAME_MAX>,
}

/// Where the loader said the RSDP is (a multiboot2 loader hands a copy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RsdpHint {
    pub addr: u64,
}

#[derive(Debug)]
pub struct BootInfo {
    pub protocol: Protocol,
    pub loader: String<NAME_MAX>,
    pub cmdline: String<CMDLINE_MAX>,
    pub memory: Vec<MemoryRegion, MAX_REGIONS>,
    pub modules: Vec<Module, MAX_MODULES>,
    pub rsdp: Option<RsdpHint>,
    /// Entries dropped because a table above was full.
    pub dropped: u32,
}

impl BootInfo {
    fn new(protocol: Protocol) -> Self {
        Self {
            protocol,
            loader: String::new(),
            cmdline: String::new(),
            memory: Vec::new(),
            modules: Vec::new(),
            rsdp: None,
            dropped: 0,
        }
    }

    fn add_region(&mut self, region: MemoryRegion) {
        if region.len != 0 && self.memory.push(region).is_err() {
            self.dropped += 1;
        }
    }

    fn add_module(&mut self, module: Module) {
        if self.modules.push(module).is_err() {
            self.dropped += 1;
        }
    }

    /// Bytes of usable RAM in the memory map.
    pub fn usable_bytes(&self) -> u64 {
        self.memory
            .iter()
            .filter(|r| r.kind == MemoryKind::Usable)
            .map(|r| r.len)
            .sum()
    }

    /// Where the highest usable region ends.
    pub fn usable_end(&self) -> u64 {
        self.memory
            .iter()
            .filter(|r| r.kind == MemoryKind::Usable)
            .map(|r| r.base.saturating_add(r.len))
            .max()
            .unwrap_or(0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootError {
    UnknownMagic(u32),
    Unreadable {
        what: &'static str,
        addr: u64,
    },
    BadMagic {
        what: &'static str,
        found: u32,
    },
    Malformed(&'static str),
    NoMemoryMap,
    /// A command line longer than `CMDLINE_MAX`: refused, not cut.
    TooLong {
        what: &'static str,
        max: usize,
    },
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownMagic(m) => write!(f, "unknown boot magic {m:#x}: not multiboot2 or PVH"),
            Self::Unreadable { what, addr } => write!(f, "{what} at {addr:#x} is not readable"),
            Self::BadMagic { what, found } => write!(f, "{what}: bad magic {found:#x}"),
            Self::Malformed(why) => write!(f, "malformed boot information: {why}"),
            Self::NoMemoryMap => write!(f, "the loader gave no memory map"),
            Self::TooLong { what, max } => write!(f, "{what} is longer than {max} bytes"),
        }
    }
}

pub const MULTIBOOT2_MAGIC: u32 = 0x36d7_6289;
pub const PVH_MAGIC: u32 = 0x336e_c578;

/// Parses the boot information at `info`; `magic` says which protocol the
/// entry code was reached by.
pub fn parse(mem: &impl PhysMem, magic: u32, info: u64) -> Result<BootInfo, BootError> {
    match magic {
        MULTIBOOT2_MAGIC => multiboot2::parse(mem, info),
        PVH_MAGIC => pvh::parse(mem, info),
        other => Err(BootError::UnknownMagic(other)),
    }
}

/// The kernel command line from a loader's bytes (up to a NUL), or
/// `TooLong`: an option cut off could change what the run means.
fn cmdline(bytes: &[u8]) -> Result<String<CMDLINE_MAX>, BootError> {
    if bytes.len() > CMDLINE_MAX {
        return Err(CMDLINE_TOO_LONG);
    }
    Ok(text(bytes))
}

const CMDLINE_TOO_LONG: BootError = BootError::TooLong {
    what: "the kernel command line",
    max: CMDLINE_MAX,
};

/// Copies a loader string, replacing what is not printable ASCII with '?'
/// and truncating at the capacity.
fn text<const N: usize>(bytes: &[u8]) -> String<N> {
    let mut s = String::new();
    for &b in bytes.iter().take(N) {
        let c = if (0x20..0x7f).contains(&b) {
            b as char
        } else {
            '?'
        };
        let _ = s.push(c); // cannot fail: at most N pushes
    }
    s
}
