//! The IOMMUs' tables: AMD's IVRS (AMD I/O Virtualization Technology
//! specification 48882, 5.2) and Intel's DMAR (VT-d specification 8.1):
//! where each IOMMU's registers are, which the hypervisor keeps (the guest
//! sees neither the tables nor the registers).

use heapless::Vec;

use super::sdt::{Header, Reader, Table, TableError};

pub const MAX_IOMMUS: usize = 4;

/// The register space an AMD IOMMU decodes (its MMIO base is 512 KiB aligned).
const AMD_REGISTERS: u64 = 512 << 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// AMD-Vi, itself a PCI function (`device`: its bus, device, function).
    /// `ioapics`: the IOAPICs the IVHD names, whose interrupts reach the
    /// CPUs through it as messages.
    Amd {
        device: u16,
        ioapics: [Option<IoApicSource>; MAX_IOAPICS],
    },
    /// Intel VT-d, a remapping unit.
    Intel,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Iommu {
    pub kind: Kind,
    /// Its registers: [base, base + len).
    pub base: u64,
    pub len: u64,
    pub segment: u16,
}

/// IVRS block types that describe an IOMMU (IVHD), with their header size.
const IVHD: [(u8, usize); 3] = [(0x10, 24), (0x11, 40), (0x40, 40)];

/// IOAPICs an IVHD names, at most.
pub const MAX_IOAPICS: usize = 4;

/// An IOAPIC an IVHD names: its id (the MADT's) and the requester id its
/// messages carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoApicSource {
    pub id: u8,
    pub device: u16,
}

/// The IOAPICs among an IVHD's device entries (spec 5.2.2.3): 4-byte
/// entries below type 0x40, 8-byte ones below 0x80 (0x48, a special
/// device: variety 1 is an IOAPIC, its id at byte 4, its requester id at
/// bytes 5-6), ACPI HID
/// entries (0xf0) of 22 bytes and their UID; a type of unknown length ends
/// the walk.
fn ioapics(
    r: &Reader,
    mut at: usize,
    end: usize,
) -> Result<[Option<IoApicSource>; MAX_IOAPICS], TableError> {
    const SPECIAL: u8 = 0x48;
    const IOAPIC: u8 = 1;
    let mut found = [None; MAX_IOAPICS];
    let mut slots = found.iter_mut();
    while at < end {
        let kind = r.u8(at)?;
        let len = match kind {
            0..0x40 => 4,
            0x40..0x80 => 8,
            0xf0 => 22 + usize::from(r.u8(at + 21)?),
            _ => break,
        };
        r.need(at, end - at, len)?;
        if kind == SPECIAL
            && r.u8(at + 7)? == IOAPIC
            && let Some(slot) = slots.next()
        {
            *slot = Some(IoApicSource {
                id: r.u8(at + 4)?,
                device: r.u16(at + 5)?,
            });
        }
        at += len;
    }
    Ok(found)
}

/// The IOMMUs an IVRS describes, each once (one IOMMU has an IVHD of each
/// type the firmware writes).
pub fn parse_ivrs(table: &Table) -> Result<Vec<Iommu, MAX_IOMMUS>, TableError> {
    let r = Reader {
        signature: table.signature,
        bytes: table.bytes,
    };
    let mut found = Vec::new();
    // The header, IVinfo, 8 reserved bytes; then blocks of type, flags, length.
    for block in r.entries_with(48, Header::ByteTypeWordLength) {
        let (kind, at, len) = block?;
        if let Some(&(_, header)) = IVHD.iter().find(|(t, _)| u16::from(*t) == kind) {
            r.need(at, len, header)?;
            let iommu = Iommu {
                kind: Kind::Amd {
                    device: r.u16(at + 4)?,
                    ioapics: ioapics(&r, at + header, at + len)?,
                },
                base: r.u64(at + 8)?,
                len: AMD_REGISTERS,
                segment: r.u16(at + 16)?,
            };
            if !found.iter().any(|i: &Iommu| i.base == iommu.base) {
                let _ = found.push(iommu);
            }
        }
    }
    Ok(found)
}

/// The remapping units a DMAR describes (DRHD structures).
pub fn parse_dmar(table: &Table) -> Result<Vec<Iommu, MAX_IOMMUS>, TableError> {
    const DRHD: u16 = 0;
    let r = Reader {
        signature: table.signature,
        bytes: table.bytes,
    };
    let mut found = Vec::new();
    // The header, host address width, flags, 10 reserved bytes; then
    // structures of type and length.
    for structure in r.entries_with(48, Header::Words) {
        let (kind, at, len) = structure?;
        if kind == DRHD {
            r.need(at, len, 16)?;
            // Size: its registers are 2^(size + 12) bytes.
            let size = u32::from(r.u8(at + 5)? & 0xf);
            let _ = found.push(Iommu {
                kind: Kind::Intel,
                base: r.u64(at + 8)?,
                len: 1 << (size + 12),
                segment: r.u16(at + 6)?,
            });
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acpi::sdt;

    fn table(signature: &[u8; 4], body: &[u8]) -> Vec<Iommu, MAX_IOMMUS> {
        let bytes = sdt::build(signature, 1, body);
        let t = Table {
            signature: *signature,
            revision: 1,
            bytes: &bytes,
        };
        match signature {
            b"IVRS" => parse_ivrs(&t),
            _ => parse_dmar(&t),
        }
        .unwrap()
    }

    /// An IVHD of `kind` for the IOMMU at 00:02.0 with registers at `base`,
    /// and one device entry (select all).
    fn ivhd(kind: u8, header: usize, base: u64) -> std::vec::Vec<u8> {
        let mut b = vec![0u8; header + 4];
        b[0] = kind;
        b[2..4].copy_from_slice(&((header + 4) as u16).to_le_bytes());
        b[4..6].copy_from_slice(&0x10u16.to_le_bytes());
        b[8..16].copy_from_slice(&base.to_le_bytes());
        b[header] = 1; // IVHD device entry: all devices
        b
    }

    #[test]
    fn an_ivrs_describes_each_iommu_once() {
        let mut body = vec![0u8; 12];
        let mut first = ivhd(0x10, 24, 0xfed8_0000);
        // An ACPI HID entry (UID of 2 bytes), then the IOAPIC at 00:14.0.
        first.extend([0xf0].iter().chain(&[0; 20]).chain(&[2, 0, 0]));
        first.extend([0x48, 0, 0, 0, 2, 0xa0, 0x00, 1]);
        first[2] = first.len() as u8;
        body.extend(first);
        body.extend(ivhd(0x11, 40, 0xfed8_0000));
        body.extend([0x20, 0, 32, 0]); // an IVMD: not an IOMMU
        body.extend([0u8; 28]);
        body.extend(ivhd(0x40, 40, 0xfeb0_0000));
        let found = table(b"IVRS", &body);
        assert_eq!(found.len(), 2);
        assert_eq!(
            found[0],
            Iommu {
                kind: Kind::Amd {
                    device: 0x10,
                    ioapics: [
                        Some(IoApicSource {
                            id: 2,
                            device: 0xa0
                        }),
                        None,
                        None,
                        None
                    ]
                },
                base: 0xfed8_0000,
                len: 512 << 10,
                segment: 0
            }
        );
        assert_eq!(found[1].base, 0xfeb0_0000);
    }

    #[test]
    fn a_device_entry_cut_by_its_block_is_refused() {
        let mut body = vec![0u8; 12];
        let mut b = ivhd(0x10, 24, 0xfed8_0000);
        b.extend([0x48, 0, 0, 0]); // half of an 8-byte entry
        b[2] = b.len() as u8;
        body.extend(b);
        let bytes = sdt::build(b"IVRS", 1, &body);
        let t = Table {
            signature: *b"IVRS",
            revision: 1,
            bytes: &bytes,
        };
        assert!(parse_ivrs(&t).is_err());
    }

    #[test]
    fn a_dmar_describes_its_remapping_units() {
        let mut body = vec![0u8; 12];
        let mut drhd = vec![0u8; 16];
        drhd[2] = 16;
        drhd[8..16].copy_from_slice(&0xfed9_0000u64.to_le_bytes());
        body.extend(&drhd);
        body.extend([1, 0, 8, 0, 0, 0, 0, 0]); // an RMRR head: not a unit
        let found = table(b"DMAR", &body);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].base, found[0].len), (0xfed9_0000, 4096));
    }

    #[test]
    fn a_block_that_runs_past_the_table_is_refused() {
        let mut body = vec![0u8; 12];
        let mut b = ivhd(0x10, 24, 0xfed8_0000);
        b[2] = 200;
        body.extend(b);
        let bytes = sdt::build(b"IVRS", 1, &body);
        let t = Table {
            signature: *b"IVRS",
            revision: 1,
            bytes: &bytes,
        };
        assert!(parse_ivrs(&t).is_err());
        let mut zero = vec![0u8; 12];
        zero.extend([0x10, 0, 0, 0]); // length 0 would loop forever
        let bytes = sdt::build(b"IVRS", 1, &zero);
        let t = Table {
            signature: *b"IVRS",
            revision: 1,
            bytes: &bytes,
        };
        assert!(parse_ivrs(&t).is_err());
    }
}
