//! The I/O and MSR permission maps (APM 2, 15.10 and 15.11). The IOPM is
//! one bit per port, as VMX's two I/O bitmaps back to back, plus a third
//! page; the MSRPM has two bits per MSR (read, write) for three ranges.

pub const IOPM_PAGES: usize = 3;
pub const MSRPM_PAGES: usize = 2;
const MSRPM_BYTES: usize = 2 * 4096;

/// The MSRPM: reads of `reads` exit; with `all_writes`, every write exits.
pub fn msrpm(reads: impl IntoIterator<Item = u32>, all_writes: bool) -> [u8; MSRPM_BYTES] {
    let mut map = [0u8; MSRPM_BYTES];
    for msr in reads {
        let base = match msr {
            0..=0x1fff => 0,
            0xc000_0000..=0xc000_1fff => 0x800,
            0xc001_0000..=0xc001_1fff => 0x1000,
            _ => continue, // MSRs outside the ranges always exit
        };
        let bit = (msr & 0x1fff) as usize * 2;
        map[base + bit / 8] |= 1 << (bit % 8);
    }
    if all_writes {
        for byte in &mut map[..0x1800] {
            *byte |= 0xaa; // the second bit of each pair
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_bits_per_msr_in_three_ranges() {
        let map = msrpm([0x3a, 0xc000_0080, 0xc001_0114], false);
        assert_eq!(map[0x3a * 2 / 8], 1 << ((0x3a * 2) % 8));
        assert_eq!(map[0x800 + 0x80 * 2 / 8], 1);
        assert_eq!(map[0x1000 + 0x114 * 2 / 8], 1 << ((0x114 * 2) % 8));
        assert_eq!(map.iter().map(|b| b.count_ones()).sum::<u32>(), 3);
    }

    #[test]
    fn every_write_exits() {
        let map = msrpm([], true);
        assert!(map[..0x1800].iter().all(|&b| b == 0xaa));
        assert!(
            map[0x1800..].iter().all(|&b| b == 0),
            "the last quarter is reserved"
        );
    }
}
