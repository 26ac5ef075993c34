//! Guest images besides flat payloads: multiboot (versions 1 and 2) ELF
//! kernels, the way many OS test kernels are built, and PVH kernels (an
//! ELF64 with Xen's PHYS32_ENTRY note: Linux's vmlinux). Pure: it reads the
//! image and says what goes where, and builds the boot information;
//! `vm::launch::prepare_memory` writes them. A bad image is refused with a
//! reason, never loaded in part.

use heapless::Vec;

/// The multiboot header's magic, and what the kernel finds in EAX.
pub const HEADER_MAGIC: u32 = 0x1bad_b002;
pub const BOOT_MAGIC: u32 = 0x2bad_b002;
/// The same for multiboot2, whose header lies in the first 32 KiB, 8-aligned.
pub const HEADER2_MAGIC: u32 = 0xe852_50d6;
pub const BOOT2_MAGIC: u32 = 0x36d7_6289;
const HEADER2_SEARCH: usize = 32768;
/// The header must lie within the image's first 8 KiB, 4-aligned.
const HEADER_SEARCH: usize = 8192;
/// Flags a kernel may require: page-aligned modules (0), memory info (1).
const SUPPORTED_FLAGS: u32 = 0b11;
/// Kernels load at 1 MiB and up: below are the guest's tables and the
/// multiboot information.
pub const LOW_LIMIT: u64 = 0x10_0000;
pub const MAX_SEGMENTS: usize = 8;

/// One loadable segment: `bytes` at `addr`, then zeros up to `mem` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment<'a> {
    pub addr: u64,
    pub bytes: &'a [u8],
    pub mem: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kernel<'a> {
    pub entry: u32,
    pub segments: Vec<Segment<'a>, MAX_SEGMENTS>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageError {
    NoHeader,
    BadChecksum,
    /// The header asks for something the loader does not do (a.out
    /// kludge, video mode): the flag bits.
    UnsupportedFlags(u32),
    /// A multiboot2 header tag the loader does not honour and the kernel
    /// does not mark optional: its type.
    UnsupportedTag(u16),
    NotElf32,
    /// Not a 64-bit little-endian x86 ELF (PVH).
    NotElf64,
    /// An ELF64 without the PVH entry note: not bootable in 32-bit mode.
    NoPvhNote,
    /// A bzImage older than boot protocol 2.10 (no preferred address or
    /// init size): the version.
    OldBootProtocol(u16),
    Truncated,
    NoSegments,
    TooManySegments,
    /// A segment below 1 MiB or past guest RAM.
    Outside {
        addr: u64,
        end: u64,
    },
}

impl core::fmt::Display for ImageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoHeader => write!(f, "no multiboot header in the image's first 8 KiB"),
            Self::BadChecksum => write!(f, "the multiboot header's checksum is wrong"),
            Self::UnsupportedFlags(b) => write!(f, "the multiboot header requires flags {b:#x}"),
            Self::UnsupportedTag(t) => write!(f, "the multiboot2 header requires tag type {t}"),
            Self::NotElf32 => write!(f, "the image is not a 32-bit little-endian x86 ELF"),
            Self::NotElf64 => write!(f, "the image is not a 64-bit little-endian x86 ELF"),
            Self::NoPvhNote => write!(f, "the ELF image has no PVH entry note (Xen note 18)"),
            Self::OldBootProtocol(v) => write!(
                f,
                "the bzImage speaks boot protocol {}.{:02}; 2.10 or later is needed",
                v >> 8,
                v & 0xff
            ),
            Self::Truncated => write!(f, "the ELF image is truncated"),
            Self::NoSegments => write!(f, "the ELF image has no loadable segment"),
            Self::TooManySegments => write!(f, "the ELF image has more than 8 loadable segments"),
            Self::Outside { addr, end } => write!(
                f,
                "a segment at {addr:#x}-{end:#x} lies outside guest RAM from 1 MiB"
            ),
        }
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Reads a multiboot ELF kernel for a guest of `ram` bytes.
pub fn multiboot(image: &[u8], ram: u64) -> Result<Kernel<'_>, ImageError> {
    let header = (0..image.len().min(HEADER_SEARCH))
        .step_by(4)
        .find(|&at| u32_at(image, at) == Some(HEADER_MAGIC))
        .ok_or(ImageError::NoHeader)?;
    let flags = u32_at(image, header + 4).ok_or(ImageError::Truncated)?;
    let checksum = u32_at(image, header + 8).ok_or(ImageError::Truncated)?;
    if HEADER_MAGIC.wrapping_add(flags).wrapping_add(checksum) != 0 {
        return Err(ImageError::BadChecksum);
    }
    if flags & 0xffff & !SUPPORTED_FLAGS != 0 || flags & (1 << 16) != 0 {
        return Err(ImageError::UnsupportedFlags(flags & !SUPPORTED_FLAGS));
    }
    elf32(image, ram)
}

/// Reads a multiboot2 kernel (an ELF32 image) for a guest of `ram` bytes.
pub fn multiboot2(image: &[u8], ram: u64) -> Result<Kernel<'_>, ImageError> {
    let header = (0..image.len().min(HEADER2_SEARCH))
        .step_by(8)
        .find(|&at| u32_at(image, at) == Some(HEADER2_MAGIC))
        .ok_or(ImageError::NoHeader)?;
    let field = |n: usize| u32_at(image, header + 4 * n).ok_or(ImageError::Truncated);
    let (arch, length, checksum) = (field(1)?, field(2)?, field(3)?);
    if HEADER2_MAGIC
        .wrapping_add(arch)
        .wrapping_add(length)
        .wrapping_add(checksum)
        != 0
    {
        return Err(ImageError::BadChecksum);
    }
    if arch != 0 {
        return Err(ImageError::NotElf32); // not i386
    }
    let end = header + length as usize;
    let mut at = header + 16;
    let mut entry = None;
    while at + 8 <= end {
        let kind = u16_at(image, at).ok_or(ImageError::Truncated)?;
        let optional = u16_at(image, at + 2).ok_or(ImageError::Truncated)? & 1 != 0;
        let size = u32_at(image, at + 4).ok_or(ImageError::Truncated)? as usize;
        match kind {
            0 => break,
            // An information request: the command line, basic memory
            // information and the memory map are what this loader gives.
            1 if !optional => {
                for t in (at + 8..at + size).step_by(4) {
                    let wanted = u32_at(image, t).ok_or(ImageError::Truncated)?;
                    if ![1, 4, 6].contains(&wanted) {
                        return Err(ImageError::UnsupportedTag(1));
                    }
                }
            }
            // The entry address tag: where to start instead of the ELF's entry.
            3 => entry = Some(u32_at(image, at + 8).ok_or(ImageError::Truncated)?),
            // Module alignment and relocatability need nothing of us.
            6 | 10 => {}
            _ if optional => {}
            _ => return Err(ImageError::UnsupportedTag(kind)),
        }
        at += size.max(8).next_multiple_of(8);
    }
    let mut kernel = elf32(image, ram)?;
    kernel.entry = entry.unwrap_or(kernel.entry);
    Ok(kernel)
}

/// The loadable segments and entry of an ELF32 x86 image.
fn elf32(image: &[u8], ram: u64) -> Result<Kernel<'_>, ImageError> {
    // ELF32, little-endian, i386.
    if image.get(..4) != Some(b"\x7fELF") || image.get(4..6) != Some(&[1, 1]) {
        return Err(ImageError::NotElf32);
    }
    if u16_at(image, 18) != Some(3) {
        return Err(ImageError::NotElf32);
    }
    let entry = u32_at(image, 24).ok_or(ImageError::Truncated)?;
    let phoff = u32_at(image, 28).ok_or(ImageError::Truncated)? as usize;
    let phentsize = usize::from(u16_at(image, 42).ok_or(ImageError::Truncated)?);
    let phnum = usize::from(u16_at(image, 44).ok_or(ImageError::Truncated)?);
    let mut segments = Vec::new();
    for i in 0..phnum {
        let at = phoff
            .checked_add(i.checked_mul(phentsize).ok_or(ImageError::Truncated)?)
            .ok_or(ImageError::Truncated)?;
        let field = |n: usize| u32_at(image, at + 4 * n).ok_or(ImageError::Truncated);
        if field(0)? != 1 {
            continue; // not PT_LOAD
        }
        let (offset, paddr, filesz, memsz) = (field(1)?, field(3)?, field(4)?, field(5)?);
        let bytes = file_bytes(image, offset.into(), filesz.into())?;
        segments
            .push(load_segment(bytes, paddr.into(), memsz.into(), ram)?)
            .map_err(|_| ImageError::TooManySegments)?;
    }
    if segments.is_empty() {
        return Err(ImageError::NoSegments);
    }
    Ok(Kernel { entry, segments })
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// `len` bytes of `image` from `offset`.
fn file_bytes(image: &[u8], offset: u64, len: u64) -> Result<&[u8], ImageError> {
    usize::try_from(offset)
        .ok()
        .zip(usize::try_from(len).ok())
        .and_then(|(o, n)| image.get(o..o.checked_add(n)?))
        .ok_or(ImageError::Truncated)
}

/// A PT_LOAD segment (of an ELF32 or ELF64 image): its file `bytes`,
/// loaded at `paddr` and taking `memsz` bytes there; refused below 1 MiB or
/// past guest RAM.
fn load_segment(bytes: &[u8], paddr: u64, memsz: u64, ram: u64) -> Result<Segment<'_>, ImageError> {
    let end = paddr
        .checked_add(memsz.max(bytes.len() as u64))
        .ok_or(ImageError::Outside {
            addr: paddr,
            end: u64::MAX,
        })?;
    if paddr < LOW_LIMIT || end > ram {
        return Err(ImageError::Outside { addr: paddr, end });
    }
    Ok(Segment {
        addr: paddr,
        bytes,
        mem: end - paddr,
    })
}

/// Xen's ELF note type for the 32-bit physical entry (`XEN_ELFNOTE_PHYS32_ENTRY`).
const PHYS32_ENTRY: u32 = 18;

/// Reads a PVH kernel (an ELF64 with the PHYS32_ENTRY note, as Linux's
/// vmlinux is) for a guest of `ram` bytes: its segments by physical address,
/// and the note's entry, entered in 32-bit protected mode without paging.
pub fn pvh(image: &[u8], ram: u64) -> Result<Kernel<'_>, ImageError> {
    if image.get(..4) != Some(b"\x7fELF") || image.get(4..6) != Some(&[2, 1]) {
        return Err(ImageError::NotElf64);
    }
    if u16_at(image, 18) != Some(62) {
        return Err(ImageError::NotElf64); // not x86-64
    }
    let phoff = u64_at(image, 32).ok_or(ImageError::Truncated)? as usize;
    let phentsize = usize::from(u16_at(image, 54).ok_or(ImageError::Truncated)?);
    let phnum = usize::from(u16_at(image, 56).ok_or(ImageError::Truncated)?);
    let mut segments = Vec::new();
    let mut entry = None;
    for i in 0..phnum {
        let at = i
            .checked_mul(phentsize)
            .and_then(|o| o.checked_add(phoff))
            .ok_or(ImageError::Truncated)?;
        let kind = u32_at(image, at).ok_or(ImageError::Truncated)?;
        let field = |n: usize| u64_at(image, at + 8 * n).ok_or(ImageError::Truncated);
        let (offset, paddr, filesz, memsz) = (field(1)?, field(3)?, field(4)?, field(5)?);
        let bytes = file_bytes(image, offset, filesz)?;
        match kind {
            1 => {
                segments
                    .push(load_segment(bytes, paddr, memsz, ram)?)
                    .map_err(|_| ImageError::TooManySegments)?;
            }
            4 => entry = entry.or(pvh_note(bytes)), // PT_NOTE
            _ => {}
        }
    }
    if segments.is_empty() {
        return Err(ImageError::NoSegments);
    }
    let entry = entry.ok_or(ImageError::NoPvhNote)?;
    Ok(Kernel { entry, segments })
}

/// The PHYS32_ENTRY address among the notes in `notes`.
fn pvh_note(notes: &[u8]) -> Option<u32> {
    let mut at = 0;
    while at + 12 <= notes.len() {
        let namesz = u32_at(notes, at)? as usize;
        let descsz = u32_at(notes, at + 4)? as usize;
        let kind = u32_at(notes, at + 8)?;
        let name = at + 12;
        let desc = name + namesz.next_multiple_of(4);
        if notes.get(name..name + namesz) == Some(b"Xen\0") && kind == PHYS32_ENTRY {
            return u32_at(notes, desc);
        }
        at = desc + descsz.next_multiple_of(4);
    }
    None
}

/// A bzImage's protected-mode kernel, where it goes, and its setup header
/// (the x86 boot protocol, Documentation/arch/x86/boot.rst).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BzImage<'a> {
    /// Where the kernel is loaded, and entered (32-bit entry, `code32_start`).
    pub load: u64,
    pub kernel: &'a [u8],
    /// Bytes from `load` the kernel needs to decompress itself (`init_size`).
    pub size: u64,
    /// The setup header, from offset 0x1f1 to its end (`boot_params` carries it).
    pub header: &'a [u8],
}

/// Where the setup header starts, in the image and in `boot_params`.
pub const SETUP_HEADER: usize = 0x1f1;

/// Whether `image` is a bzImage (its setup header says "HdrS").
pub fn is_bzimage(image: &[u8]) -> bool {
    image.get(0x202..0x206) == Some(b"HdrS")
}

/// Reads a bzImage for a guest of `ram` bytes: the kernel goes at its
/// preferred address when relocatable (else 1 MiB), and needs `init_size`
/// bytes there to decompress itself.
pub fn bzimage(image: &[u8], ram: u64) -> Result<BzImage<'_>, ImageError> {
    if !is_bzimage(image) {
        return Err(ImageError::NotElf64);
    }
    let version = u16_at(image, 0x206).ok_or(ImageError::Truncated)?;
    if version < 0x20a {
        return Err(ImageError::OldBootProtocol(version));
    }
    let setup_sects = match image[SETUP_HEADER] {
        0 => 4,
        n => usize::from(n),
    };
    let header_end = 0x202 + usize::from(*image.get(0x201).ok_or(ImageError::Truncated)?);
    let header = image
        .get(SETUP_HEADER..header_end)
        .ok_or(ImageError::Truncated)?;
    let kernel = image
        .get((setup_sects + 1) * 512..)
        .filter(|k| !k.is_empty())
        .ok_or(ImageError::Truncated)?;
    let relocatable = *image.get(0x234).ok_or(ImageError::Truncated)? != 0;
    let preferred = u64_at(image, 0x258).ok_or(ImageError::Truncated)?;
    let load = if relocatable {
        preferred.max(LOW_LIMIT)
    } else {
        LOW_LIMIT
    };
    let init_size = u64::from(u32_at(image, 0x260).ok_or(ImageError::Truncated)?);
    let size = init_size.max(kernel.len() as u64);
    if load + size > ram {
        return Err(ImageError::Outside {
            addr: load,
            end: load + size,
        });
    }
    Ok(BzImage {
        load,
        kernel,
        size,
        header,
    })
}

/// Where the multiboot information goes in guest memory (below 1 MiB,
/// above the payload area): the structure, the command line, the memory map.
pub const INFO: u64 = 0x9000;
const CMDLINE: u64 = INFO + 0x100;
const MMAP: u64 = INFO + 0x200;
/// The multiboot information, command line and memory map for a guest of
/// `ram` bytes, as the bytes to write at `INFO` (one page).
pub fn info(ram: u64, cmdline: &[u8]) -> [u8; 4096] {
    const MEM: u32 = 1 << 0;
    const CMDLINE_FLAG: u32 = 1 << 2;
    const MMAP_FLAG: u32 = 1 << 6;
    let mut page = [0u8; 4096];
    let mut put = |at: u64, bytes: &[u8]| {
        let at = (at - INFO) as usize;
        page[at..at + bytes.len()].copy_from_slice(bytes);
    };
    let low_kib = 0x9_fc00u32 / 1024;
    let high_kib = (ram.saturating_sub(LOW_LIMIT) / 1024) as u32;
    let regions = [
        (0u64, 0x9_fc00u64),
        (LOW_LIMIT, ram.saturating_sub(LOW_LIMIT)),
    ];
    put(INFO, &(MEM | CMDLINE_FLAG | MMAP_FLAG).to_le_bytes());
    put(INFO + 4, &low_kib.to_le_bytes());
    put(INFO + 8, &high_kib.to_le_bytes());
    put(INFO + 16, &(CMDLINE as u32).to_le_bytes());
    put(INFO + 44, &(regions.len() as u32 * 24).to_le_bytes());
    put(INFO + 48, &(MMAP as u32).to_le_bytes());
    for (i, (base, len)) in regions.iter().enumerate() {
        let at = MMAP + i as u64 * 24;
        put(at, &20u32.to_le_bytes()); // the entry's size, without this field
        put(at + 4, &base.to_le_bytes());
        put(at + 12, &len.to_le_bytes());
        put(at + 20, &1u32.to_le_bytes()); // available RAM
    }
    let n = cmdline.len().min(0xff);
    put(CMDLINE, &cmdline[..n]); // NUL-terminated: the page is zeroed
    page
}

/// The multiboot2 information for a guest of `ram` bytes, as the bytes to
/// write at `INFO`: the command line, basic memory information and the
/// memory map, each an 8-aligned tag, then the end tag.
pub fn info2(ram: u64, cmdline: &[u8]) -> [u8; 4096] {
    let mut page = [0u8; 4096];
    let mut at = 8;
    let mut tag = |page: &mut [u8; 4096], kind: u32, body: &[u8]| {
        let size = 8 + body.len();
        page[at..at + 4].copy_from_slice(&kind.to_le_bytes());
        page[at + 4..at + 8].copy_from_slice(&(size as u32).to_le_bytes());
        page[at + 8..at + size].copy_from_slice(body);
        at += size.next_multiple_of(8);
    };
    let mut text = [0u8; 256];
    let n = cmdline.len().min(255);
    text[..n].copy_from_slice(&cmdline[..n]);
    tag(&mut page, 1, &text[..=n]); // NUL-terminated
    let mut mem = [0u8; 8];
    mem[..4].copy_from_slice(&(0x9_fc00u32 / 1024).to_le_bytes());
    mem[4..].copy_from_slice(&((ram.saturating_sub(LOW_LIMIT) / 1024) as u32).to_le_bytes());
    tag(&mut page, 4, &mem);
    let mut map = [0u8; 8 + 2 * 24];
    map[..4].copy_from_slice(&24u32.to_le_bytes()); // entry size; version 0
    for (i, (base, len)) in [
        (0u64, 0x9_fc00u64),
        (LOW_LIMIT, ram.saturating_sub(LOW_LIMIT)),
    ]
    .iter()
    .enumerate()
    {
        let e = 8 + i * 24;
        map[e..e + 8].copy_from_slice(&base.to_le_bytes());
        map[e + 8..e + 16].copy_from_slice(&len.to_le_bytes());
        map[e + 16..e + 20].copy_from_slice(&1u32.to_le_bytes()); // available
    }
    tag(&mut page, 6, &map);
    tag(&mut page, 0, &[]);
    let total = (at as u32).to_le_bytes();
    page[..4].copy_from_slice(&total);
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A multiboot ELF: one segment of `code` at `addr`, `bss` zeros after.
    fn kernel(addr: u32, code: &[u8], bss: u32, flags: u32) -> std::vec::Vec<u8> {
        let mut elf = vec![0u8; 0x100];
        elf[..6].copy_from_slice(b"\x7fELF\x01\x01");
        elf[18..20].copy_from_slice(&3u16.to_le_bytes());
        elf[24..28].copy_from_slice(&(addr + 0x100).to_le_bytes());
        elf[28..32].copy_from_slice(&52u32.to_le_bytes());
        elf[42..44].copy_from_slice(&32u16.to_le_bytes());
        elf[44..46].copy_from_slice(&1u16.to_le_bytes());
        let ph = [
            1,
            0x100,
            addr,
            addr,
            code.len() as u32,
            code.len() as u32 + bss,
        ];
        for (i, v) in ph.iter().enumerate() {
            elf[52 + 4 * i..56 + 4 * i].copy_from_slice(&v.to_le_bytes());
        }
        let header = [
            HEADER_MAGIC,
            flags,
            0u32.wrapping_sub(HEADER_MAGIC.wrapping_add(flags)),
        ];
        for (i, v) in header.iter().enumerate() {
            elf[0x80 + 4 * i..0x84 + 4 * i].copy_from_slice(&v.to_le_bytes());
        }
        elf.extend_from_slice(code);
        elf
    }

    #[test]
    fn loads_the_segments_and_finds_the_entry() {
        let image = kernel(0x10_0000, &[0xf4; 16], 0x1000, 3);
        let m = multiboot(&image, 2 << 20).unwrap();
        assert_eq!(m.entry, 0x10_0100);
        assert_eq!(
            m.segments.as_slice(),
            [Segment {
                addr: 0x10_0000,
                bytes: &[0xf4; 16],
                mem: 0x1010
            }]
        );
    }

    #[test]
    fn bad_images_are_refused_with_a_reason() {
        let good = kernel(0x10_0000, &[0xf4; 16], 0, 0);
        assert_eq!(multiboot(&good[..0x80], 2 << 20), Err(ImageError::NoHeader));
        let mut sum = good.clone();
        sum[0x88] ^= 1;
        assert_eq!(multiboot(&sum, 2 << 20), Err(ImageError::BadChecksum));
        let video = kernel(0x10_0000, &[0xf4; 16], 0, 1 << 2);
        assert_eq!(
            multiboot(&video, 2 << 20),
            Err(ImageError::UnsupportedFlags(4))
        );
        let mut not_elf = good.clone();
        not_elf[4] = 2; // 64-bit
        assert_eq!(multiboot(&not_elf, 2 << 20), Err(ImageError::NotElf32));
        assert_eq!(
            multiboot(&good[..good.len() - 1], 2 << 20),
            Err(ImageError::Truncated)
        );
        let low = kernel(0x8000, &[0xf4; 16], 0, 0);
        assert!(matches!(
            multiboot(&low, 2 << 20),
            Err(ImageError::Outside { .. })
        ));
        let big = kernel(0x10_0000, &[0xf4; 16], 4 << 20, 0);
        assert!(matches!(
            multiboot(&big, 2 << 20),
            Err(ImageError::Outside { .. })
        ));
    }

    #[test]
    fn the_information_says_memory_command_line_and_map() {
        let page = info(8 << 20, b"hello");
        let u32_at = |at: usize| u32::from_le_bytes(page[at..at + 4].try_into().unwrap());
        assert_eq!(u32_at(0), 0x45, "memory, command line, memory map");
        assert_eq!((u32_at(4), u32_at(8)), (639, 7 * 1024));
        assert_eq!(u32_at(16), 0x9100);
        assert_eq!(&page[0x100..0x106], b"hello\0");
        assert_eq!((u32_at(44), u32_at(48)), (48, 0x9200));
        assert_eq!(
            u32_at(0x200 + 24 + 4),
            0x10_0000,
            "the second region's base"
        );
    }

    /// A multiboot2 ELF: `tags` (type, flags, body) after the header.
    fn kernel2(tags: &[(u16, u16, &[u8])]) -> std::vec::Vec<u8> {
        let mut elf = kernel(0x10_0000, &[0xf4; 16], 0, 0);
        let mut header = std::vec::Vec::new();
        for &(kind, flags, body) in tags.iter().chain([(0u16, 0u16, &[][..])].iter()) {
            let start = header.len();
            header.extend_from_slice(&kind.to_le_bytes());
            header.extend_from_slice(&flags.to_le_bytes());
            header.extend_from_slice(&((8 + body.len()) as u32).to_le_bytes());
            header.extend_from_slice(body);
            header.resize(start + (8 + body.len()).next_multiple_of(8), 0);
        }
        let length = 16 + header.len() as u32;
        let sum = 0u32.wrapping_sub(HEADER2_MAGIC.wrapping_add(length));
        let at = 0xa0; // 8-aligned, past the multiboot1 header
        for (i, v) in [HEADER2_MAGIC, 0, length, sum].iter().enumerate() {
            elf[at + 4 * i..at + 4 * i + 4].copy_from_slice(&v.to_le_bytes());
        }
        elf[at + 16..at + 16 + header.len()].copy_from_slice(&header);
        elf
    }

    #[test]
    fn multiboot2_headers_are_checked_tag_by_tag() {
        let entry = 0x10_0040u32.to_le_bytes();
        let k = kernel2(&[(3, 0, &entry), (1, 0, &[6, 0, 0, 0, 1, 0, 0, 0])]);
        assert_eq!(multiboot2(&k, 2 << 20).map(|m| m.entry), Ok(0x10_0040));
        let framebuffer = kernel2(&[(5, 0, &[0; 12])]);
        assert_eq!(
            multiboot2(&framebuffer, 2 << 20),
            Err(ImageError::UnsupportedTag(5))
        );
        let optional = kernel2(&[(5, 1, &[0; 12])]);
        assert!(
            multiboot2(&optional, 2 << 20).is_ok(),
            "an optional tag is ignored"
        );
        let apm = kernel2(&[(1, 0, &[10, 0, 0, 0])]);
        assert_eq!(
            multiboot2(&apm, 2 << 20),
            Err(ImageError::UnsupportedTag(1))
        );
        let mut sum = kernel2(&[]);
        sum[0xa0 + 12] ^= 1;
        assert_eq!(multiboot2(&sum, 2 << 20), Err(ImageError::BadChecksum));
    }

    #[test]
    fn multiboot2_information_is_tags() {
        let page = info2(8 << 20, b"hi");
        let u32_at = |at: usize| u32::from_le_bytes(page[at..at + 4].try_into().unwrap());
        assert_eq!((u32_at(8), u32_at(12)), (1, 11), "the command line tag");
        assert_eq!(&page[16..19], b"hi\0");
        assert_eq!(
            (u32_at(24), u32_at(28)),
            (4, 16),
            "basic memory information"
        );
        assert_eq!((u32_at(32), u32_at(36)), (639, 7 * 1024));
        assert_eq!(
            (u32_at(40), u32_at(44), u32_at(48)),
            (6, 64, 24),
            "the memory map"
        );
        assert_eq!(u32_at(104), 0, "the end tag");
        assert_eq!(u32_at(0), 112, "the total size");
    }

    /// A PVH ELF64: one segment of `code` at `addr` and, when `entry` is
    /// given, a PT_NOTE with Xen's PHYS32_ENTRY note.
    fn pvh_kernel(addr: u64, code: &[u8], entry: Option<u32>) -> std::vec::Vec<u8> {
        let mut elf = vec![0u8; 0x200];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[18..20].copy_from_slice(&62u16.to_le_bytes());
        elf[32..40].copy_from_slice(&64u64.to_le_bytes()); // phoff
        elf[54..56].copy_from_slice(&56u16.to_le_bytes());
        elf[56..58].copy_from_slice(&2u16.to_le_bytes());
        let ph = |elf: &mut [u8], at: usize, kind: u32, offset: u64, paddr: u64, size: u64| {
            elf[at..at + 4].copy_from_slice(&kind.to_le_bytes());
            for (i, v) in [offset, paddr, paddr, size, size].iter().enumerate() {
                elf[at + 8 + 8 * i..at + 16 + 8 * i].copy_from_slice(&v.to_le_bytes());
            }
        };
        ph(&mut elf, 64, 1, 0x200, addr, code.len() as u64);
        let mut note = std::vec::Vec::new();
        if let Some(e) = entry {
            // An unrelated note first, then "Xen" type 18 with the entry.
            for (kind, desc) in [
                (6u32, b"linux\0\0\0".to_vec()),
                (18, e.to_le_bytes().to_vec()),
            ] {
                note.extend_from_slice(&4u32.to_le_bytes());
                note.extend_from_slice(&(desc.len() as u32).to_le_bytes());
                note.extend_from_slice(&kind.to_le_bytes());
                note.extend_from_slice(b"Xen\0");
                note.extend_from_slice(&desc);
            }
        }
        ph(&mut elf, 120, 4, 0x100, 0, note.len() as u64);
        elf[0x100..0x100 + note.len()].copy_from_slice(&note);
        elf.extend_from_slice(code);
        elf
    }

    #[test]
    fn pvh_kernels_load_by_physical_address_and_enter_at_the_note() {
        let k = pvh_kernel(0x100_0000, &[0x90; 32], Some(0x100_0010));
        let got = pvh(&k, 64 << 20).unwrap();
        assert_eq!(got.entry, 0x100_0010);
        assert_eq!(
            got.segments.as_slice(),
            [Segment {
                addr: 0x100_0000,
                bytes: &[0x90; 32],
                mem: 32
            }]
        );
        let no_note = pvh_kernel(0x100_0000, &[0x90; 32], None);
        assert_eq!(pvh(&no_note, 64 << 20), Err(ImageError::NoPvhNote));
        assert!(matches!(pvh(&k, 16 << 20), Err(ImageError::Outside { .. })));
        assert_eq!(pvh(&k[..0x100], 64 << 20), Err(ImageError::Truncated));
        let elf32 = kernel(0x10_0000, &[0xf4; 16], 0, 0);
        assert_eq!(pvh(&elf32, 64 << 20), Err(ImageError::NotElf64));
    }

    /// A bzImage: 1 setup sector, a header of protocol `version`, `kernel` after it.
    fn bz(version: u16, kernel: &[u8]) -> std::vec::Vec<u8> {
        let mut image = vec![0u8; 1024];
        image[SETUP_HEADER] = 1;
        image[0x201] = 0x6a; // the header ends at 0x26c
        image[0x202..0x206].copy_from_slice(b"HdrS");
        image[0x206..0x208].copy_from_slice(&version.to_le_bytes());
        image[0x234] = 1; // relocatable
        image[0x258..0x260].copy_from_slice(&0x100_0000u64.to_le_bytes());
        image[0x260..0x264].copy_from_slice(&0x40_0000u32.to_le_bytes());
        image.extend_from_slice(kernel);
        image
    }

    #[test]
    fn bzimages_load_at_their_preferred_address_with_room_to_decompress() {
        let image = bz(0x20f, &[0x90; 64]);
        assert!(is_bzimage(&image));
        let b = bzimage(&image, 64 << 20).unwrap();
        assert_eq!(
            (b.load, b.kernel.len(), b.size),
            (0x100_0000, 64, 0x40_0000)
        );
        assert_eq!(b.header.len(), 0x26c - SETUP_HEADER);
        assert!(matches!(
            bzimage(&image, 0x120_0000),
            Err(ImageError::Outside { .. })
        ));
        assert_eq!(
            bzimage(&bz(0x209, &[0x90]), 64 << 20),
            Err(ImageError::OldBootProtocol(0x209))
        );
        assert_eq!(
            bzimage(&bz(0x20f, &[]), 64 << 20),
            Err(ImageError::Truncated)
        );
        assert!(!is_bzimage(&image[..0x204]));
    }
}
