//! The HMAT (ACPI 6.5, 5.2.28): measured latencies and bandwidths between
//! initiator and target proximity domains. Only its System Locality
//! Latency and Bandwidth structures are read.

use heapless::Vec;
use serde::Serialize;

use super::sdt::{Reader, Table, TableError};

pub const MAX_VALUES: usize = 64;

/// One measurement: picoseconds for latencies, MB/s for bandwidths.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Value {
    pub kind: &'static str,
    pub initiator: u32,
    pub target: u32,
    pub value: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hmat {
    pub values: Vec<Value, MAX_VALUES>,
    pub dropped: u32,
}

fn kind(data_type: u8) -> &'static str {
    match data_type {
        0 => "access-latency",
        1 => "read-latency",
        2 => "write-latency",
        3 => "access-bandwidth",
        4 => "read-bandwidth",
        5 => "write-bandwidth",
        _ => "unknown",
    }
}

pub fn parse(table: &Table) -> Result<Hmat, TableError> {
    let r = Reader {
        signature: table.signature,
        bytes: table.bytes,
    };
    let mut hmat = Hmat::default();
    let mut at = 40;
    while at < r.bytes.len() {
        let (kind_code, len) = (r.u16(at)?, r.u32(at + 4)? as usize);
        if len < 8 || at + len > r.bytes.len() {
            return Err(TableError::Truncated {
                signature: r.signature,
                at,
            });
        }
        if kind_code == 1 {
            let data_type = r.u8(at + 9)?;
            let (initiators, targets) = (r.u32(at + 12)? as usize, r.u32(at + 16)? as usize);
            let unit = r.u64(at + 24)?;
            let lists = at + 32;
            let entries = lists + 4 * (initiators + targets);
            if entries + 2 * initiators * targets > at + len {
                return Err(TableError::Truncated {
                    signature: r.signature,
                    at,
                });
            }
            for i in 0..initiators {
                for t in 0..targets {
                    let v = Value {
                        kind: kind(data_type),
                        initiator: r.u32(lists + 4 * i)?,
                        target: r.u32(lists + 4 * (initiators + t))?,
                        value: u64::from(r.u16(entries + 2 * (i * targets + t))?)
                            .saturating_mul(unit),
                    };
                    if hmat.values.push(v).is_err() {
                        hmat.dropped += 1;
                    }
                }
            }
        }
        at += len;
    }
    Ok(hmat)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locality(
        data_type: u8,
        initiators: &[u32],
        targets: &[u32],
        unit: u64,
        values: &[u16],
    ) -> std::vec::Vec<u8> {
        let mut s = vec![1, 0, 0, 0, 0, 0, 0, 0, 0, data_type, 0, 0];
        s.extend_from_slice(&(initiators.len() as u32).to_le_bytes());
        s.extend_from_slice(&(targets.len() as u32).to_le_bytes());
        s.extend_from_slice(&[0; 4]);
        s.extend_from_slice(&unit.to_le_bytes());
        for x in initiators.iter().chain(targets) {
            s.extend_from_slice(&x.to_le_bytes());
        }
        for v in values {
            s.extend_from_slice(&v.to_le_bytes());
        }
        let len = s.len() as u32;
        s[4..8].copy_from_slice(&len.to_le_bytes());
        s
    }

    fn table(structures: &[std::vec::Vec<u8>]) -> std::vec::Vec<u8> {
        let mut body = vec![0; 4];
        for s in structures {
            body.extend_from_slice(s);
        }
        crate::acpi::sdt::build(b"HMAT", 2, &body)
    }

    #[test]
    fn reads_latencies_and_bandwidths() {
        let t = table(&[
            locality(0, &[0], &[0, 1], 1000, &[10, 20]),
            locality(3, &[0], &[1], 1, &[200]),
        ]);
        let h = parse(&Table {
            signature: *b"HMAT",
            revision: 2,
            bytes: &t,
        })
        .unwrap();
        assert_eq!(
            h.values.as_slice(),
            &[
                Value {
                    kind: "access-latency",
                    initiator: 0,
                    target: 0,
                    value: 10_000
                },
                Value {
                    kind: "access-latency",
                    initiator: 0,
                    target: 1,
                    value: 20_000
                },
                Value {
                    kind: "access-bandwidth",
                    initiator: 0,
                    target: 1,
                    value: 200
                },
            ]
        );
    }

    #[test]
    fn entries_beyond_the_structure_are_an_error() {
        let mut s = locality(0, &[0, 1], &[0, 1], 1, &[1, 2, 3, 4]);
        s.truncate(s.len() - 2);
        let len = s.len() as u32;
        s[4..8].copy_from_slice(&len.to_le_bytes());
        let t = table(&[s]);
        assert!(matches!(
            parse(&Table {
                signature: *b"HMAT",
                revision: 2,
                bytes: &t
            }),
            Err(TableError::Truncated { .. })
        ));
    }
}
