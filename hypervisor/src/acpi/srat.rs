//! The SRAT (ACPI 6.5, 5.2.16): which proximity domain each CPU and each
//! memory range belongs to. Disabled entries are left out.

use heapless::Vec;

use super::madt::MAX_CPUS;
use super::sdt::{Reader, Table, TableError};

pub const MAX_RANGES: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuAffinity {
    pub apic_id: u32,
    pub domain: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryAffinity {
    pub domain: u32,
    pub base: u64,
    pub len: u64,
    pub hot_pluggable: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Srat {
    pub cpus: Vec<CpuAffinity, MAX_CPUS>,
    pub memory: Vec<MemoryAffinity, MAX_RANGES>,
    pub dropped: u32,
}

pub fn parse(table: &Table) -> Result<Srat, TableError> {
    let r = Reader {
        signature: table.signature,
        bytes: table.bytes,
    };
    let mut srat = Srat::default();
    for entry in r.entries(48) {
        let (kind, at, len) = entry?;
        let need = |min| r.need(at, len, min);
        let full = match kind {
            0 => {
                need(16)?;
                if r.u32(at + 4)? & 1 == 0 {
                    continue;
                }
                let high = u32::from(r.u8(at + 9)?)
                    | u32::from(r.u8(at + 10)?) << 8
                    | u32::from(r.u8(at + 11)?) << 16;
                let domain = u32::from(r.u8(at + 2)?) | high << 8;
                srat.cpus
                    .push(CpuAffinity {
                        apic_id: r.u8(at + 3)?.into(),
                        domain,
                    })
                    .is_err()
            }
            1 => {
                need(40)?;
                let flags = r.u32(at + 28)?;
                if flags & 1 == 0 {
                    continue;
                }
                let m = MemoryAffinity {
                    domain: r.u32(at + 2)?,
                    base: r.u64(at + 8)?,
                    len: r.u64(at + 16)?,
                    hot_pluggable: flags & 2 != 0,
                };
                m.len != 0 && srat.memory.push(m).is_err()
            }
            2 => {
                need(24)?;
                if r.u32(at + 12)? & 1 == 0 {
                    continue;
                }
                srat.cpus
                    .push(CpuAffinity {
                        domain: r.u32(at + 4)?,
                        apic_id: r.u32(at + 8)?,
                    })
                    .is_err()
            }
            _ => false,
        };
        if full {
            srat.dropped += 1;
        }
    }
    Ok(srat)
}

/// SRAT bodies for tests.
#[cfg(test)]
pub mod build {
    pub fn cpu(apic_id: u8, domain: u32, enabled: bool) -> Vec<u8> {
        let d = domain.to_le_bytes();
        vec![
            0,
            16,
            d[0],
            apic_id,
            enabled as u8,
            0,
            0,
            0,
            0,
            d[1],
            d[2],
            d[3],
            0,
            0,
            0,
            0,
        ]
    }
    pub fn x2cpu(apic_id: u32, domain: u32) -> Vec<u8> {
        let mut e = vec![2, 24, 0, 0];
        e.extend_from_slice(&domain.to_le_bytes());
        e.extend_from_slice(&apic_id.to_le_bytes());
        e.extend_from_slice(&1u32.to_le_bytes());
        e.extend_from_slice(&[0; 8]);
        e
    }
    pub fn memory(domain: u32, base: u64, len: u64, flags: u32) -> Vec<u8> {
        let mut e = vec![1, 40];
        e.extend_from_slice(&domain.to_le_bytes());
        e.extend_from_slice(&[0, 0]);
        e.extend_from_slice(&base.to_le_bytes());
        e.extend_from_slice(&len.to_le_bytes());
        e.extend_from_slice(&[0; 4]);
        e.extend_from_slice(&flags.to_le_bytes());
        e.extend_from_slice(&[0; 8]);
        e
    }
    pub fn table(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut body = vec![1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        for e in entries {
            body.extend_from_slice(e);
        }
        crate::acpi::sdt::build(b"SRAT", 3, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_bytes(bytes: &[u8]) -> Result<Srat, TableError> {
        parse(&Table {
            signature: *b"SRAT",
            revision: 3,
            bytes,
        })
    }

    #[test]
    fn reads_cpu_and_memory_affinity_and_skips_disabled_entries() {
        let t = build::table(&[
            build::cpu(0, 0, true),
            build::cpu(1, 0x0102_0301, true),
            build::cpu(2, 1, false),
            build::x2cpu(300, 2),
            build::memory(0, 0, 0xa_0000, 1),
            build::memory(1, 0x800_0000, 0x800_0000, 3),
            build::memory(2, 0x1000_0000, 0x100_0000, 0),
        ]);
        let s = parse_bytes(&t).unwrap();
        assert_eq!(
            s.cpus.as_slice(),
            &[
                CpuAffinity {
                    apic_id: 0,
                    domain: 0
                },
                CpuAffinity {
                    apic_id: 1,
                    domain: 0x0102_0301
                },
                CpuAffinity {
                    apic_id: 300,
                    domain: 2
                },
            ]
        );
        assert_eq!(s.memory.len(), 2);
        assert_eq!(
            s.memory[1],
            MemoryAffinity {
                domain: 1,
                base: 0x800_0000,
                len: 0x800_0000,
                hot_pluggable: true
            }
        );
    }

    #[test]
    fn a_truncated_entry_is_an_error() {
        let mut t = build::table(&[build::memory(0, 0, 0x1000, 1)]);
        t.truncate(t.len() - 8);
        let n = t.len() as u32;
        t[4..8].copy_from_slice(&n.to_le_bytes());
        t[9] = 0;
        t[9] = 0u8.wrapping_sub(t.iter().fold(0u8, |s, b| s.wrapping_add(*b)));
        assert!(matches!(parse_bytes(&t), Err(TableError::Truncated { .. })));
        let short = build::table(&[vec![
            1, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ]]);
        assert!(matches!(
            parse_bytes(&short),
            Err(TableError::Truncated { .. })
        ));
    }
}
