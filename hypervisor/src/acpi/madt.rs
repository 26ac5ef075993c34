//! The MADT (ACPI 6.5, 5.2.12): the local APIC address and every CPU's
//! local APIC or x2APIC, and the I/O APICs.

use heapless::Vec;

use super::sdt::{Reader, Table, TableError};

pub const MAX_CPUS: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cpu {
    pub apic_id: u32,
    pub uid: u32,
    /// Usable now (not merely online-capable).
    pub enabled: bool,
    /// Listed as an x2APIC entry.
    pub x2apic: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoApic {
    pub id: u8,
    pub address: u32,
    pub gsi_base: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Madt {
    pub local_apic: u64,
    pub cpus: Vec<Cpu, MAX_CPUS>,
    pub io_apics: Vec<IoApic, 8>,
    /// Entries left out because a list above was full.
    pub dropped: u32,
}

impl Madt {
    pub fn enabled_cpus(&self) -> impl Iterator<Item = &Cpu> {
        self.cpus.iter().filter(|c| c.enabled)
    }
}

pub fn parse(table: &Table) -> Result<Madt, TableError> {
    let r = Reader {
        signature: table.signature,
        bytes: table.bytes,
    };
    let mut madt = Madt {
        local_apic: r.u32(36)?.into(),
        ..Default::default()
    };
    for entry in r.entries(44) {
        let (kind, at, len) = entry?;
        let need = |min| r.need(at, len, min);
        let full = match kind {
            0 => {
                need(8)?;
                let flags = r.u32(at + 4)?;
                let cpu = Cpu {
                    uid: r.u8(at + 2)?.into(),
                    apic_id: r.u8(at + 3)?.into(),
                    enabled: flags & 1 != 0,
                    x2apic: false,
                };
                madt.cpus.push(cpu).is_err()
            }
            1 => {
                need(12)?;
                let io = IoApic {
                    id: r.u8(at + 2)?,
                    address: r.u32(at + 4)?,
                    gsi_base: r.u32(at + 8)?,
                };
                madt.io_apics.push(io).is_err()
            }
            5 => {
                need(12)?;
                madt.local_apic = r.u64(at + 4)?;
                false
            }
            9 => {
                need(16)?;
                let flags = r.u32(at + 8)?;
                let cpu = Cpu {
                    apic_id: r.u32(at + 4)?,
                    uid: r.u32(at + 12)?,
                    enabled: flags & 1 != 0,
                    x2apic: true,
                };
                madt.cpus.push(cpu).is_err()
            }
            _ => false,
        };
        if full {
            madt.dropped += 1;
        }
    }
    Ok(madt)
}

/// MADT bodies for tests.
#[cfg(test)]
pub mod build {
    pub fn lapic(uid: u8, apic_id: u8, enabled: bool) -> Vec<u8> {
        vec![0, 8, uid, apic_id, enabled as u8, 0, 0, 0]
    }
    pub fn x2apic(apic_id: u32, enabled: bool) -> Vec<u8> {
        let mut e = vec![9, 16, 0, 0];
        e.extend_from_slice(&apic_id.to_le_bytes());
        e.extend_from_slice(&(enabled as u32).to_le_bytes());
        e.extend_from_slice(&apic_id.to_le_bytes());
        e
    }
    pub fn table(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut body = 0xfee0_0000u32.to_le_bytes().to_vec();
        body.extend_from_slice(&1u32.to_le_bytes());
        for e in entries {
            body.extend_from_slice(e);
        }
        crate::acpi::sdt::build(b"APIC", 4, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_bytes(bytes: &[u8]) -> Result<Madt, TableError> {
        parse(&Table {
            signature: *b"APIC",
            revision: 4,
            bytes,
        })
    }

    #[test]
    fn reads_local_apics_x2apics_and_io_apics() {
        let io = vec![1, 12, 2, 0, 0, 0, 0xc0, 0xfe, 0, 0, 0, 0];
        let t = build::table(&[
            build::lapic(0, 0, true),
            build::lapic(1, 1, false),
            build::x2apic(300, true),
            io,
        ]);
        let m = parse_bytes(&t).unwrap();
        assert_eq!(m.local_apic, 0xfee0_0000);
        assert_eq!(m.cpus.len(), 3);
        assert_eq!(
            m.enabled_cpus()
                .map(|c| c.apic_id)
                .collect::<std::vec::Vec<_>>(),
            [0, 300]
        );
        assert!(m.cpus[2].x2apic);
        assert_eq!(
            m.io_apics[0],
            IoApic {
                id: 2,
                address: 0xfec0_0000,
                gsi_base: 0
            }
        );
    }

    #[test]
    fn a_short_or_overrunning_entry_is_an_error() {
        let short = build::table(&[vec![0, 6, 0, 0, 1, 0]]);
        assert!(matches!(
            parse_bytes(&short),
            Err(TableError::Truncated { .. })
        ));
        let mut over = build::table(&[build::lapic(0, 0, true)]);
        let n = over.len();
        over[n - 7] = 40; // the entry claims more than the table holds
        assert!(matches!(
            parse_bytes(&over),
            Err(TableError::Truncated { .. })
        ));
    }

    #[test]
    fn more_cpus_than_fit_are_counted() {
        let entries: std::vec::Vec<_> = (0..70).map(|i| build::lapic(i, i, true)).collect();
        let m = parse_bytes(&build::table(&entries)).unwrap();
        assert_eq!((m.cpus.len(), m.dropped), (MAX_CPUS, 6));
    }
}
