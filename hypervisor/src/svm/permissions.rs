//! The I/O and MSR permission maps (APM 2, 15.10 and 15.11). The IOPM is
//! one bit per port, as VMX's two I/O bitmaps back to back, plus a third
//! page; the MSRPM has two bits per MSR (read, write) for three ranges.

use crate::vcpu::MsrWrites;

pub const IOPM_PAGES: usize = 3;
pub const MSRPM_PAGES: usize = 2;
const MSRPM_BYTES: usize = 2 * 4096;

/// The read bit of `msr` in the MSRPM (its write bit follows); None for
/// MSRs outside the three ranges, which always exit.
fn read_bit(msr: u32) -> Option<usize> {
    let base = match msr {
        0..=0x1fff => 0,
        0xc000_0000..=0xc000_1fff => 0x800,
        0xc001_0000..=0xc001_1fff => 0x1000,
        _ => return None,
    };
    Some(base * 8 + (msr & 0x1fff) as usize * 2)
}

fn set(map: &mut [u8; MSRPM_BYTES], bit: usize) {
    map[bit / 8] |= 1 << (bit % 8);
}

/// The MSRPM: reads of `reads` exit, and the writes `writes` says.
pub fn msrpm(reads: impl IntoIterator<Item = u32>, writes: MsrWrites) -> [u8; MSRPM_BYTES] {
    let mut map = [0u8; MSRPM_BYTES];
    for bit in reads.into_iter().filter_map(read_bit) {
        set(&mut map, bit);
    }
    match writes {
        MsrWrites::All => {
            for byte in &mut map[..0x1800] {
                *byte |= 0xaa; // the second bit of each pair
            }
        }
        MsrWrites::Only(msrs) => {
            for bit in msrs.iter().copied().filter_map(read_bit) {
                set(&mut map, bit + 1);
            }
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_bits_per_msr_in_three_ranges() {
        let map = msrpm([0x3a, 0xc000_0080, 0xc001_0114], MsrWrites::Only(&[]));
        assert_eq!(map[0x3a * 2 / 8], 1 << ((0x3a * 2) % 8));
        assert_eq!(map[0x800 + 0x80 * 2 / 8], 1);
        assert_eq!(map[0x1000 + 0x114 * 2 / 8], 1 << ((0x114 * 2) % 8));
        assert_eq!(map.iter().map(|b| b.count_ones()).sum::<u32>(), 3);
    }

    #[test]
    fn every_write_exits() {
        let map = msrpm([], MsrWrites::All);
        assert!(map[..0x1800].iter().all(|&b| b == 0xaa));
        assert!(
            map[0x1800..].iter().all(|&b| b == 0),
            "the last quarter is reserved"
        );
    }

    #[test]
    fn only_the_writes_asked_for_exit() {
        let map = msrpm([0xc000_0080], MsrWrites::Only(&[0x1b, 0xc000_0080]));
        assert_eq!(
            map[0x1b * 2 / 8],
            2 << ((0x1b * 2) % 8),
            "APIC base: write only"
        );
        assert_eq!(map[0x800 + 0x80 * 2 / 8], 3, "EFER: read and write");
        assert_eq!(map.iter().map(|b| b.count_ones()).sum::<u32>(), 3);
    }
}
