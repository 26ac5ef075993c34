//! The Root System Description Pointer: from the loader's hint, else found by
//! scanning the BIOS areas (ACPI 6.5, 5.2.5.1).

use serde::Serialize;

use crate::phys::PhysMem;

const SIGNATURE: &[u8; 8] = b"RSD PTR ";
const V1_LEN: usize = 20;
const V2_LEN: u32 = 36;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    Loader,
    BiosScan,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rsdp {
    pub addr: u64,
    pub revision: u8,
    pub oem: [u8; 6],
    pub rsdt: u32,
    /// Only from revision 2 on.
    pub xsdt: Option<u64>,
    pub source: Source,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RsdpError {
    NotFound,
    BadSignature(u64),
    BadChecksum(u64),
    BadLength(u64),
}

impl core::fmt::Display for RsdpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NotFound => write!(f, "no RSDP from the loader nor in the BIOS areas"),
            Self::BadSignature(a) => write!(f, "RSDP at {a:#x}: bad signature"),
            Self::BadChecksum(a) => write!(f, "RSDP at {a:#x}: bad checksum"),
            Self::BadLength(a) => write!(f, "RSDP at {a:#x}: bad length"),
        }
    }
}

fn checksum_ok(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |sum, b| sum.wrapping_add(*b)) == 0
}

/// Validates the RSDP at `addr`.
pub fn read(mem: &impl PhysMem, addr: u64, source: Source) -> Result<Rsdp, RsdpError> {
    let v1 = mem.bytes(addr, V1_LEN).ok_or(RsdpError::BadLength(addr))?;
    if &v1[..8] != SIGNATURE {
        return Err(RsdpError::BadSignature(addr));
    }
    if !checksum_ok(v1) {
        return Err(RsdpError::BadChecksum(addr));
    }
    let revision = v1[15];
    let mut rsdp = Rsdp {
        addr,
        revision,
        oem: v1[9..15].try_into().expect("6 bytes"),
        rsdt: u32::from_le_bytes(v1[16..20].try_into().expect("4 bytes")),
        xsdt: None,
        source,
    };
    if revision >= 2 {
        let len = mem.u32(addr + 20).ok_or(RsdpError::BadLength(addr))?;
        if !(V2_LEN..=4096).contains(&len) {
            return Err(RsdpError::BadLength(addr));
        }
        let all = mem
            .bytes(addr, len as usize)
            .ok_or(RsdpError::BadLength(addr))?;
        if !checksum_ok(all) {
            return Err(RsdpError::BadChecksum(addr));
        }
        rsdp.xsdt = Some(u64::from_le_bytes(all[24..32].try_into().expect("8 bytes")));
    }
    Ok(rsdp)
}

/// The loader's RSDP when it gave one and it is valid, else the first valid
/// one in the first KiB of the EBDA or in 0xE0000-0xFFFFF.
pub fn find(mem: &impl PhysMem, hint: Option<u64>) -> Result<Rsdp, RsdpError> {
    if let Some(addr) = hint {
        return read(mem, addr, Source::Loader);
    }
    let ebda = mem
        .u16(0x40e)
        .map(|seg| u64::from(seg) << 4)
        .filter(|&a| a >= 0x8_0000);
    let areas = ebda
        .map(|a| (a, a + 1024))
        .into_iter()
        .chain([(0xe_0000, 0x10_0000)]);
    for (start, end) in areas {
        for addr in (start..end).step_by(16) {
            if mem.bytes(addr, 8) == Some(&SIGNATURE[..])
                && let Ok(rsdp) = read(mem, addr, Source::BiosScan)
            {
                return Ok(rsdp);
            }
        }
    }
    Err(RsdpError::NotFound)
}

/// Builds an RSDP for tests.
#[cfg(test)]
pub fn build(revision: u8, rsdt: u32, xsdt: u64) -> Vec<u8> {
    let mut v = SIGNATURE.to_vec();
    v.push(0);
    v.extend_from_slice(b"BOCHS ");
    v.push(revision);
    v.extend_from_slice(&rsdt.to_le_bytes());
    v[8] = 0u8.wrapping_sub(v.iter().fold(0u8, |s, b| s.wrapping_add(*b)));
    if revision >= 2 {
        v.extend_from_slice(&V2_LEN.to_le_bytes());
        v.extend_from_slice(&xsdt.to_le_bytes());
        v.extend_from_slice(&[0, 0, 0, 0]);
        v[32] = 0u8.wrapping_sub(v.iter().fold(0u8, |s, b| s.wrapping_add(*b)));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phys::FakeMem;

    fn bios() -> FakeMem {
        FakeMem::new(0x400, 0x10_0000 - 0x400)
    }

    #[test]
    fn finds_a_revision_0_rsdp_in_the_bios_area() {
        let mut m = bios();
        m.put(0xf_5a00, &build(0, 0x7fe_1234, 0));
        let r = find(&m, None).unwrap();
        assert_eq!(
            (r.addr, r.revision, r.rsdt, r.xsdt),
            (0xf_5a00, 0, 0x7fe_1234, None)
        );
        assert_eq!(&r.oem, b"BOCHS ");
        assert_eq!(r.source, Source::BiosScan);
    }

    #[test]
    fn prefers_the_ebda_and_reads_the_xsdt_of_revision_2() {
        let mut m = bios();
        m.put(0x40e, &0x9fc0u16.to_le_bytes());
        m.put(0x9_fc10, &build(2, 1, 0x1_2345_6789));
        m.put(0xf_5a00, &build(0, 2, 0));
        let r = find(&m, None).unwrap();
        assert_eq!((r.addr, r.xsdt), (0x9_fc10, Some(0x1_2345_6789)));
    }

    #[test]
    fn skips_candidates_with_bad_checksums_while_scanning() {
        let mut m = bios();
        let mut bad = build(0, 1, 0);
        bad[10] ^= 0xff;
        m.put(0xe_0000, &bad);
        m.put(0xf_0000, &build(0, 2, 0));
        assert_eq!(find(&m, None).unwrap().rsdt, 2);
        let mut m = bios();
        m.put(0xe_0000, &bad);
        assert_eq!(find(&m, None).unwrap_err(), RsdpError::NotFound);
    }

    #[test]
    fn a_loader_hint_is_checked_not_trusted() {
        let mut m = bios();
        m.put(0x8000, &build(2, 1, 2));
        assert_eq!(find(&m, Some(0x8000)).unwrap().source, Source::Loader);
        let mut v2 = build(2, 1, 2);
        v2[30] = 1; // breaks the extended checksum only
        m.put(0x8000, &v2);
        assert_eq!(
            find(&m, Some(0x8000)).unwrap_err(),
            RsdpError::BadChecksum(0x8000)
        );
        m.put(0x8000, b"NOT RSDP");
        assert_eq!(
            find(&m, Some(0x8000)).unwrap_err(),
            RsdpError::BadSignature(0x8000)
        );
        let mut v2 = build(2, 1, 2);
        v2[20] = 200; // length beyond what the table holds is re-summed and fails
        m.put(0x8000, &v2);
        assert!(find(&m, Some(0x8000)).is_err());
        assert_eq!(
            find(&m, Some(0xff_ffff)).unwrap_err(),
            RsdpError::BadLength(0xff_ffff)
        );
    }
}
