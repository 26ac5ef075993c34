//! The SLIT (ACPI 6.5, 5.2.17): relative distances between localities
//! (proximity domains), 10 meaning local.

use super::sdt::{Reader, Table, TableError};

pub const MAX_LOCALITIES: usize = 16;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slit {
    pub localities: usize,
    pub distance: [[u8; MAX_LOCALITIES]; MAX_LOCALITIES],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlitError {
    Table(TableError),
    TooMany(u64),
    /// A distance to itself other than 10, or a distance below 10.
    BadDistance {
        from: usize,
        to: usize,
        value: u8,
    },
}

impl From<TableError> for SlitError {
    fn from(e: TableError) -> Self {
        Self::Table(e)
    }
}

impl core::fmt::Display for SlitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Table(e) => e.fmt(f),
            Self::TooMany(n) => write!(
                f,
                "SLIT: {n} localities, at most {MAX_LOCALITIES} supported"
            ),
            Self::BadDistance { from, to, value } => {
                write!(f, "SLIT: distance {from}->{to} is {value}")
            }
        }
    }
}

pub fn parse(table: &Table) -> Result<Slit, SlitError> {
    let r = Reader {
        signature: table.signature,
        bytes: table.bytes,
    };
    let n = r.u64(36)?;
    if n as usize > MAX_LOCALITIES {
        return Err(SlitError::TooMany(n));
    }
    let n = n as usize;
    let mut slit = Slit {
        localities: n,
        distance: [[0; MAX_LOCALITIES]; MAX_LOCALITIES],
    };
    for from in 0..n {
        for to in 0..n {
            let value = r.u8(44 + from * n + to)?;
            if (from == to && value != 10) || value < 10 {
                return Err(SlitError::BadDistance { from, to, value });
            }
            slit.distance[from][to] = value;
        }
    }
    Ok(slit)
}

#[cfg(test)]
pub fn build(rows: &[&[u8]]) -> Vec<u8> {
    let mut body = (rows.len() as u64).to_le_bytes().to_vec();
    for row in rows {
        body.extend_from_slice(row);
    }
    crate::acpi::sdt::build(b"SLIT", 1, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_bytes(bytes: &[u8]) -> Result<Slit, SlitError> {
        parse(&Table {
            signature: *b"SLIT",
            revision: 1,
            bytes,
        })
    }

    #[test]
    fn reads_an_asymmetric_matrix() {
        let s = parse_bytes(&build(&[&[10, 16, 22], &[16, 10, 28], &[22, 28, 10]])).unwrap();
        assert_eq!(s.localities, 3);
        assert_eq!(s.distance[1][2], 28);
        assert_eq!(s.distance[2][0], 22);
    }

    #[test]
    fn refuses_bad_diagonals_small_values_and_truncation() {
        assert!(matches!(
            parse_bytes(&build(&[&[10, 20], &[20, 11]])),
            Err(SlitError::BadDistance { from: 1, to: 1, .. })
        ));
        assert!(matches!(
            parse_bytes(&build(&[&[10, 9], &[20, 10]])),
            Err(SlitError::BadDistance { value: 9, .. })
        ));
        let mut t = build(&[&[10, 20], &[20, 10]]);
        t[36] = 3; // claims 3 localities: 9 bytes, 4 present
        t[9] = 0;
        t[9] = 0u8.wrapping_sub(t.iter().fold(0u8, |s, b| s.wrapping_add(*b)));
        assert!(matches!(
            parse_bytes(&t),
            Err(SlitError::Table(TableError::Truncated { .. }))
        ));
        let mut big = build(&[&[10]]);
        big[36] = 200;
        assert!(matches!(parse_bytes(&big), Err(SlitError::TooMany(200))));
    }
}
