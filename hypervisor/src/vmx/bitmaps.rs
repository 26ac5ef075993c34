//! The MSR bitmap (read-low, read-high, write-low, write-high quarters of
//! one page; SDM 3C 25.6.9). A set bit makes the access exit. The I/O
//! bitmaps are the vendor-neutral `vcpu::io::bitmaps`.

use crate::vcpu::MsrWrites;

pub const PAGE: usize = 4096;

/// Where an MSR's bit lives in one half (read or write) of the MSR bitmap.
fn msr_bit(msr: u32) -> Option<(usize, u8)> {
    let (quarter, offset) = match msr {
        0..=0x1fff => (0, msr),
        0xc000_0000..=0xc000_1fff => (1, msr - 0xc000_0000),
        _ => return None, // MSRs outside both ranges always exit
    };
    Some((quarter * 1024 + offset as usize / 8, 1 << (offset % 8)))
}

/// The MSR bitmap: reads of `reads` exit, and the writes `writes` says.
pub fn msr_bitmap(reads: impl IntoIterator<Item = u32>, writes: MsrWrites) -> [u8; PAGE] {
    let mut map = [0u8; PAGE];
    for (byte, bit) in reads.into_iter().filter_map(msr_bit) {
        map[byte] |= bit;
    }
    match writes {
        MsrWrites::All => map[2048..].fill(0xff),
        MsrWrites::Only(msrs) => {
            for (byte, bit) in msrs.iter().copied().filter_map(msr_bit) {
                map[2048 + byte] |= bit;
            }
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msr_reads_low_and_high_and_every_write() {
        let map = msr_bitmap([0x3a, 0x480, 0xc000_0080, 0x4000_0000], MsrWrites::All);
        assert_eq!(map[0x3a / 8], 1 << (0x3a % 8));
        assert_eq!(map[0x480 / 8], 1);
        assert_eq!(map[1024 + 0x80 / 8], 1);
        assert!(map[2048..].iter().all(|&b| b == 0xff));
        assert_eq!(map[..2048].iter().map(|x| x.count_ones()).sum::<u32>(), 3);
        assert!(msr_bitmap([], MsrWrites::Only(&[])).iter().all(|&b| b == 0));
    }

    #[test]
    fn only_the_writes_asked_for_exit() {
        let map = msr_bitmap([0xc000_0080], MsrWrites::Only(&[0x1b, 0xc000_0080]));
        assert_eq!(map[2048 + 0x1b / 8], 1 << (0x1b % 8));
        assert_eq!(map[2048 + 1024 + 0x80 / 8], 1);
        assert_eq!(map.iter().map(|x| x.count_ones()).sum::<u32>(), 3);
    }
}
