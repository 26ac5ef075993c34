//! System description tables: the common header, checksums, and finding a
//! table through the RSDT or XSDT (ACPI 6.5, 5.2.6-5.2.8).

use super::rsdp::Rsdp;
use crate::phys::PhysMem;

pub const HEADER_LEN: usize = 36;
/// Larger tables are taken for corruption.
const MAX_LEN: u32 = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableError {
    Unreadable { signature: [u8; 4], addr: u64 },
    BadSignature { expected: [u8; 4], addr: u64 },
    BadLength { signature: [u8; 4], len: u32 },
    BadChecksum { signature: [u8; 4] },
    Truncated { signature: [u8; 4], at: usize },
}

fn sig(s: &[u8; 4]) -> &str {
    core::str::from_utf8(s).unwrap_or("????")
}

impl core::fmt::Display for TableError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Unreadable { signature, addr } => {
                write!(f, "{} at {addr:#x} is not readable", sig(signature))
            }
            Self::BadSignature { expected, addr } => write!(f, "no {} at {addr:#x}", sig(expected)),
            Self::BadLength { signature, len } => {
                write!(f, "{}: length {len} out of range", sig(signature))
            }
            Self::BadChecksum { signature } => write!(f, "{}: bad checksum", sig(signature)),
            Self::Truncated { signature, at } => write!(
                f,
                "{}: entry at offset {at} runs past the end",
                sig(signature)
            ),
        }
    }
}

/// A table, whole and checksummed: `bytes` includes the header.
#[derive(Clone, Copy, Debug)]
pub struct Table<'a> {
    pub signature: [u8; 4],
    pub revision: u8,
    pub bytes: &'a [u8],
}

impl<'a> Table<'a> {
    /// Reads and checks the table at `addr`; `expected` is its signature, if known.
    pub fn read(
        mem: &'a impl PhysMem,
        addr: u64,
        expected: Option<[u8; 4]>,
    ) -> Result<Self, TableError> {
        let unreadable = |signature| TableError::Unreadable { signature, addr };
        let head = mem
            .bytes(addr, HEADER_LEN)
            .ok_or(unreadable(expected.unwrap_or(*b"????")))?;
        let signature: [u8; 4] = head[0..4].try_into().expect("4 bytes");
        if let Some(want) = expected
            && want != signature
        {
            return Err(TableError::BadSignature {
                expected: want,
                addr,
            });
        }
        let len = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes"));
        if !(HEADER_LEN as u32..=MAX_LEN).contains(&len) {
            return Err(TableError::BadLength { signature, len });
        }
        let bytes = mem.bytes(addr, len as usize).ok_or(unreadable(signature))?;
        if bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b)) != 0 {
            return Err(TableError::BadChecksum { signature });
        }
        Ok(Self {
            signature,
            revision: head[8],
            bytes,
        })
    }

    /// The bytes after the header.
    pub fn body(&self) -> &'a [u8] {
        &self.bytes[HEADER_LEN..]
    }
}

/// The addresses of every table the RSDT (or the XSDT, when there is one) lists.
pub fn table_addresses<'a>(
    mem: &'a impl PhysMem,
    rsdp: &Rsdp,
) -> Result<impl Iterator<Item = u64> + 'a, TableError> {
    let (table, width) = match rsdp.xsdt.filter(|&x| x != 0) {
        Some(x) => (Table::read(mem, x, Some(*b"XSDT"))?, 8),
        None => (Table::read(mem, rsdp.rsdt.into(), Some(*b"RSDT"))?, 4),
    };
    Ok(table.body().chunks_exact(width).map(move |c| {
        if width == 8 {
            u64::from_le_bytes(c.try_into().expect("8 bytes"))
        } else {
            u32::from_le_bytes(c.try_into().expect("4 bytes")).into()
        }
    }))
}

/// The first valid table with `signature`: None when absent; an error when
/// the root table or the table itself is broken.
pub fn find<'a>(
    mem: &'a impl PhysMem,
    rsdp: &Rsdp,
    signature: [u8; 4],
) -> Result<Option<Table<'a>>, TableError> {
    for addr in table_addresses(mem, rsdp)? {
        if mem.bytes(addr, 4) == Some(&signature[..]) {
            return Table::read(mem, addr, Some(signature)).map(Some);
        }
    }
    Ok(None)
}

/// Little-endian reads within a table's bytes; out of range gives `Truncated`.
pub struct Reader<'a> {
    pub signature: [u8; 4],
    pub bytes: &'a [u8],
}

impl Reader<'_> {
    pub fn u8(&self, at: usize) -> Result<u8, TableError> {
        self.bytes.get(at).copied().ok_or(TableError::Truncated {
            signature: self.signature,
            at,
        })
    }
    pub fn u16(&self, at: usize) -> Result<u16, TableError> {
        Ok(u16::from_le_bytes(self.take::<2>(at)?))
    }
    pub fn u32(&self, at: usize) -> Result<u32, TableError> {
        Ok(u32::from_le_bytes(self.take::<4>(at)?))
    }
    pub fn u64(&self, at: usize) -> Result<u64, TableError> {
        Ok(u64::from_le_bytes(self.take::<8>(at)?))
    }
    fn take<const N: usize>(&self, at: usize) -> Result<[u8; N], TableError> {
        self.bytes
            .get(at..at + N)
            .map(|b| b.try_into().expect("N bytes"))
            .ok_or(TableError::Truncated {
                signature: self.signature,
                at,
            })
    }

    /// An entry at `at` of `len` bytes must hold at least `min`.
    pub fn need(&self, at: usize, len: usize, min: usize) -> Result<(), TableError> {
        if len < min {
            Err(TableError::Truncated {
                signature: self.signature,
                at,
            })
        } else {
            Ok(())
        }
    }

    /// Walks `type, length` entries from `start` (a byte of each, as the
    /// MADT and SRAT have them), checking each length.
    pub fn entries(&self, start: usize) -> Entries<'_> {
        self.entries_with(start, Header::Bytes)
    }

    /// Walks entries whose header is laid out as `header` says.
    pub fn entries_with(&self, start: usize, header: Header) -> Entries<'_> {
        Entries {
            reader: self,
            at: start,
            header,
        }
    }
}

/// How a table's entries begin: their type and length.
#[derive(Clone, Copy, Debug)]
pub enum Header {
    /// A byte of type, a byte of length (MADT, SRAT).
    Bytes,
    /// A byte of type, a byte of flags, a word of length (IVRS).
    ByteTypeWordLength,
    /// A word of type, a word of length (DMAR).
    Words,
}

impl Header {
    /// The type and length of the entry at `at`, and the header's size.
    fn read(self, r: &Reader, at: usize) -> Result<(u16, usize, usize), TableError> {
        Ok(match self {
            Self::Bytes => (r.u8(at)?.into(), r.u8(at + 1)?.into(), 2),
            Self::ByteTypeWordLength => (r.u8(at)?.into(), r.u16(at + 2)?.into(), 4),
            Self::Words => (r.u16(at)?, r.u16(at + 2)?.into(), 4),
        })
    }
}

pub struct Entries<'a> {
    reader: &'a Reader<'a>,
    at: usize,
    header: Header,
}

impl Iterator for Entries<'_> {
    /// The entry's type and its bytes (header included).
    type Item = Result<(u16, usize, usize), TableError>;

    fn next(&mut self) -> Option<Self::Item> {
        let r = self.reader;
        if self.at >= r.bytes.len() {
            return None;
        }
        let at = self.at;
        let entry = (|| {
            let (kind, len, header) = self.header.read(r, at)?;
            if len < header || at + len > r.bytes.len() {
                return Err(TableError::Truncated {
                    signature: r.signature,
                    at,
                });
            }
            Ok((kind, at, len))
        })();
        self.at = match entry {
            Ok((_, _, len)) => at + len,
            Err(_) => r.bytes.len(), // stop after reporting
        };
        Some(entry)
    }
}

/// Builds tables for tests: a header with the right length and checksum.
#[cfg(test)]
pub fn build(signature: &[u8; 4], revision: u8, body: &[u8]) -> Vec<u8> {
    let mut t = signature.to_vec();
    t.extend_from_slice(&((HEADER_LEN + body.len()) as u32).to_le_bytes());
    t.push(revision);
    t.push(0); // checksum
    t.extend_from_slice(b"BOCHS BXPC    \x01\x00\x00\x00BXPC\x01\x00\x00\x00");
    assert_eq!(t.len(), HEADER_LEN);
    t.extend_from_slice(body);
    t[9] = 0u8.wrapping_sub(t.iter().fold(0u8, |s, b| s.wrapping_add(*b)));
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acpi::rsdp::{self, Source};
    use crate::phys::FakeMem;

    fn machine() -> (FakeMem, Rsdp) {
        let mut m = FakeMem::new(0x1000, 0x10000);
        let apic = build(b"APIC", 4, &[1, 2, 3]);
        let srat = build(b"SRAT", 3, &[0; 12]);
        m.put(0x3000, &apic);
        m.put(0x4000, &srat);
        let mut body = Vec::new();
        body.extend_from_slice(&0x3000u32.to_le_bytes());
        body.extend_from_slice(&0x4000u32.to_le_bytes());
        m.put(0x2000, &build(b"RSDT", 1, &body));
        let r = rsdp::Rsdp {
            addr: 0,
            revision: 0,
            oem: *b"BOCHS ",
            rsdt: 0x2000,
            xsdt: None,
            source: Source::BiosScan,
        };
        (m, r)
    }

    #[test]
    fn finds_tables_through_the_rsdt() {
        let (m, r) = machine();
        let apic = find(&m, &r, *b"APIC").unwrap().unwrap();
        assert_eq!((apic.revision, apic.body()), (4, &[1u8, 2, 3][..]));
        assert!(find(&m, &r, *b"SLIT").unwrap().is_none());
    }

    #[test]
    fn prefers_the_xsdt() {
        let (mut m, mut r) = machine();
        let mut body = Vec::new();
        body.extend_from_slice(&0x4000u64.to_le_bytes());
        m.put(0x5000, &build(b"XSDT", 1, &body));
        r.xsdt = Some(0x5000);
        assert!(
            find(&m, &r, *b"APIC").unwrap().is_none(),
            "the XSDT lists only the SRAT"
        );
        assert!(find(&m, &r, *b"SRAT").unwrap().is_some());
    }

    #[test]
    fn refuses_bad_checksums_lengths_and_signatures() {
        let (mut m, r) = machine();
        m.put(0x3000 + 36, &[9]); // body changed, checksum not
        assert_eq!(
            find(&m, &r, *b"APIC").unwrap_err(),
            TableError::BadChecksum {
                signature: *b"APIC"
            }
        );
        m.put(0x3004, &9u32.to_le_bytes());
        assert!(matches!(
            find(&m, &r, *b"APIC").unwrap_err(),
            TableError::BadLength { len: 9, .. }
        ));
        m.put(0x3004, &0x20_0000u32.to_le_bytes());
        assert!(matches!(
            find(&m, &r, *b"APIC").unwrap_err(),
            TableError::BadLength { .. }
        ));
        let bad_root = Rsdp { rsdt: 0x3000, ..r };
        assert!(matches!(
            find(&m, &bad_root, *b"APIC").unwrap_err(),
            TableError::BadSignature { .. }
        ));
        let gone = Rsdp {
            rsdt: 0xf_0000,
            ..r
        };
        assert!(matches!(
            find(&m, &gone, *b"APIC").unwrap_err(),
            TableError::Unreadable { .. }
        ));
    }

    #[test]
    fn entries_with_bad_lengths_stop_the_walk_with_an_error() {
        let bytes = [0u8, 4, 0, 0, 1, 8, 0, 0];
        let r = Reader {
            signature: *b"APIC",
            bytes: &bytes,
        };
        let e: Vec<_> = r.entries(0).collect();
        assert_eq!(e[0], Ok((0, 0, 4)));
        assert!(matches!(e[1], Err(TableError::Truncated { at: 4, .. })));
        assert_eq!(e.len(), 2);
        let zero = [0u8, 0];
        assert!(
            Reader {
                signature: *b"APIC",
                bytes: &zero
            }
            .entries(0)
            .next()
            .unwrap()
            .is_err()
        );
    }
}
