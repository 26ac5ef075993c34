//! The MCFG (PCI Firmware Specification 3.2, 4.1.2): where PCI Express's
//! memory-mapped configuration space (ECAM) is, which an OS guest writes
//! through the hypervisor (`chipset`).

use super::sdt::{Reader, Table, TableError};

/// One ECAM window: configuration space of buses `buses` of PCI segment
/// `segment`, at `base` + (bus << 20 | device << 15 | function << 12).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ecam {
    pub base: u64,
    pub segment: u16,
    pub start_bus: u8,
    pub end_bus: u8,
}

impl Ecam {
    /// The window's physical addresses.
    pub fn range(&self) -> core::ops::Range<u64> {
        let first = self.base + (u64::from(self.start_bus) << 20);
        first..self.base + ((u64::from(self.end_bus) + 1) << 20)
    }
}

/// Segment 0's window (the one machine the hypervisor runs on has one
/// segment), None when the table lists none.
pub fn parse(table: &Table) -> Result<Option<Ecam>, TableError> {
    let r = Reader {
        signature: table.signature,
        bytes: table.bytes,
    };
    // The header, 8 reserved bytes, then 16-byte entries.
    let mut at = 44;
    while at < r.bytes.len() {
        let ecam = Ecam {
            base: r.u64(at)?,
            segment: r.u16(at + 8)?,
            start_bus: r.u8(at + 10)?,
            end_bus: r.u8(at + 11)?,
        };
        r.u32(at + 12)?;
        if ecam.segment == 0 && ecam.start_bus <= ecam.end_bus {
            return Ok(Some(ecam));
        }
        at += 16;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acpi::sdt;

    fn parsed(entries: &[(u64, u16, u8, u8)], tail: usize) -> Result<Option<Ecam>, TableError> {
        let mut body = vec![0u8; 8];
        for &(base, seg, start, end) in entries {
            body.extend_from_slice(&base.to_le_bytes());
            body.extend_from_slice(&seg.to_le_bytes());
            body.extend_from_slice(&[start, end, 0, 0, 0, 0]);
        }
        body.truncate(body.len() - tail);
        let bytes = sdt::build(b"MCFG", 1, &body);
        parse(&Table {
            signature: *b"MCFG",
            revision: 1,
            bytes: &bytes,
        })
    }

    #[test]
    fn q35s_window() {
        let e = parsed(&[(0xb000_0000, 0, 0, 0xff)], 0).unwrap().unwrap();
        assert_eq!(e.range(), 0xb000_0000..0xc000_0000);
    }

    #[test]
    fn segment_0_is_taken_and_an_empty_table_has_none() {
        let e = parsed(&[(0xe000_0000, 1, 0, 0xff), (0xb000_0000, 0, 2, 3)], 0)
            .unwrap()
            .unwrap();
        assert_eq!(e.range(), 0xb020_0000..0xb040_0000);
        assert_eq!(parsed(&[], 0), Ok(None));
    }

    #[test]
    fn a_truncated_entry_is_refused() {
        assert!(matches!(
            parsed(&[(0xb000_0000, 0, 0, 0xff)], 2),
            Err(TableError::Truncated { .. })
        ));
    }
}
