//! Just enough x86 decoding for the exits whose instruction length the CPU
//! does not give (AMD without nRIP, #UD intercepts): the instruction at the
//! guest's RIP, found through the guest's own page tables.

/// An instruction the hypervisor needs to recognise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insn {
    Cpuid,
    Hlt,
    Rdmsr,
    Wrmsr,
    /// VMCALL (Intel's hypercall) or VMMCALL (AMD's): both are hypercalls.
    Hypercall,
    /// A VMX instruction, by name.
    Vmx(&'static str),
    /// MOV to control register `cr` from general register `gpr` (0-15, in
    /// the encoding's order: RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8...).
    MovToCr {
        cr: u8,
        gpr: u8,
    },
    Invd,
    Xsetbv,
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub insn: Insn,
    /// Length in bytes, prefixes included (0 for `Other`).
    pub len: usize,
}

const MAX_LEN: usize = 15;

fn is_legacy_prefix(b: u8) -> bool {
    matches!(
        b,
        0x26 | 0x2e | 0x36 | 0x3e | 0x64 | 0x65 | 0x66 | 0x67 | 0xf0 | 0xf2 | 0xf3
    )
}

/// Decodes the start of `bytes`; `long_mode` allows REX prefixes.
pub fn decode(bytes: &[u8], long_mode: bool) -> Decoded {
    let other = Decoded {
        insn: Insn::Other,
        len: 0,
    };
    let mut i = 0;
    let (mut op_size, mut rep, mut repne, mut lock) = (false, false, false, false);
    while i < bytes.len().min(MAX_LEN) && is_legacy_prefix(bytes[i]) {
        op_size |= bytes[i] == 0x66;
        rep |= bytes[i] == 0xf3;
        repne |= bytes[i] == 0xf2;
        lock |= bytes[i] == 0xf0;
        i += 1;
    }
    // LOCK makes every instruction here #UD, on the hardware of both vendors.
    if lock {
        return other;
    }
    // 66, F2 and F3 select other opcodes in the 0F 01 group: no hypercall.
    let plain = !(op_size || rep || repne);
    let mut rex = 0;
    if long_mode && bytes.get(i).is_some_and(|b| b & 0xf0 == 0x40) {
        rex = bytes[i];
        i += 1;
    }
    let at = |k: usize| bytes.get(i + k).copied();
    let done = |insn, n: usize| {
        if i + n <= MAX_LEN {
            Decoded { insn, len: i + n }
        } else {
            other
        }
    };
    match (at(0), at(1), at(2)) {
        (Some(0xf4), _, _) => done(Insn::Hlt, 1),
        (Some(0x0f), Some(0xa2), _) => done(Insn::Cpuid, 2),
        (Some(0x0f), Some(0x32), _) => done(Insn::Rdmsr, 2),
        (Some(0x0f), Some(0x30), _) => done(Insn::Wrmsr, 2),
        (Some(0x0f), Some(0x01), Some(0xc1 | 0xd9)) if plain => done(Insn::Hypercall, 3),
        (Some(0x0f), Some(0x01), Some(0xd1)) => done(Insn::Xsetbv, 3),
        (Some(0x0f), Some(0x08), _) => done(Insn::Invd, 2),
        // The ModRM's mod bits are ignored: the operand is always a register.
        (Some(0x0f), Some(0x22), Some(modrm)) => done(
            Insn::MovToCr {
                cr: ((modrm >> 3) & 7) | ((rex & 4) << 1),
                gpr: (modrm & 7) | ((rex & 1) << 3),
            },
            3,
        ),
        (Some(0x0f), Some(0x01), Some(0xc2)) => done(Insn::Vmx("vmlaunch"), 3),
        (Some(0x0f), Some(0x01), Some(0xc3)) => done(Insn::Vmx("vmresume"), 3),
        (Some(0x0f), Some(0x01), Some(0xc4)) => done(Insn::Vmx("vmxoff"), 3),
        (Some(0x0f), Some(0x78), _) => done(Insn::Vmx("vmread"), 2),
        (Some(0x0f), Some(0x79), _) => done(Insn::Vmx("vmwrite"), 2),
        (Some(0x0f), Some(0x38), Some(0x80)) if op_size => done(Insn::Vmx("invept"), 3),
        (Some(0x0f), Some(0x38), Some(0x81)) if op_size => done(Insn::Vmx("invvpid"), 3),
        // 0F C7 with a memory operand: /6 is VMPTRLD, VMCLEAR (66) or VMXON (F3); /7 VMPTRST.
        (Some(0x0f), Some(0xc7), Some(modrm)) if modrm >> 6 != 3 => match (modrm >> 3) & 7 {
            6 if rep => done(Insn::Vmx("vmxon"), 3),
            6 if op_size => done(Insn::Vmx("vmclear"), 3),
            6 => done(Insn::Vmx("vmptrld"), 3),
            7 => done(Insn::Vmx("vmptrst"), 3),
            _ => other,
        },
        _ => other,
    }
}

/// The length of `insn` when `bytes` start with its plain encoding (no
/// prefix): the common case of an intercepted instruction, known without a
/// full decode. None: decode it.
pub fn plain_length(insn: Insn, bytes: &[u8]) -> Option<u64> {
    let encoding: &[u8] = match insn {
        Insn::Cpuid => &[0x0f, 0xa2],
        Insn::Hlt => &[0xf4],
        Insn::Rdmsr => &[0x0f, 0x32],
        Insn::Wrmsr => &[0x0f, 0x30],
        Insn::Hypercall => &[0x0f, 0x01, 0xd9], // VMMCALL: VMCALL comes by #UD
        Insn::Xsetbv => &[0x0f, 0x01, 0xd1],

        _ => return None,
    };
    // Byte by byte: a slice compare would call memcmp on every exit.
    let plain = bytes.len() >= encoding.len() && encoding.iter().zip(bytes).all(|(a, b)| a == b);
    plain.then_some(encoding.len() as u64)
}

/// A store to memory, as an OS guest writes a device register it must not
/// reach directly (the local APIC's): what is stored and how long the
/// instruction is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Store {
    pub len: usize,
    /// Bytes stored: 1, 2, 4 or 8.
    pub size: u8,
    pub source: Source,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// General register `n` (encoding order; byte stores name AL-BL only).
    Reg(u8),
    Imm(u64),
}

/// Decodes a MOV to memory (88, 89, C6 /0, C7 /0, and A2/A3 to an offset
/// the instruction holds) in 32- or 64-bit code (`long_mode`: 64-bit, REX
/// allowed) with 32/64-bit addressing; None for anything else.
pub fn store(bytes: &[u8], long_mode: bool) -> Option<Store> {
    let mut i = 0;
    let mut op16 = false;
    let mut addr_size = false;
    while i < MAX_LEN && bytes.get(i).is_some_and(|&b| is_legacy_prefix(b)) {
        match bytes[i] {
            0x66 => op16 = true,
            0x67 => addr_size = true,
            0xf0 | 0xf2 | 0xf3 => return None, // not a plain store
            _ => {}                            // segment overrides change nothing here
        }
        i += 1;
    }
    let mut rex = 0;
    if long_mode && bytes.get(i).is_some_and(|b| b & 0xf0 == 0x40) {
        rex = bytes[i];
        i += 1;
    }
    let wide = if rex & 0x8 != 0 {
        8
    } else if op16 {
        2
    } else {
        4
    };
    let opcode = *bytes.get(i)?;
    if let 0xa2 | 0xa3 = opcode {
        // AL, or AX/EAX/RAX, to the offset that follows: 8 bytes in 64-bit
        // code, 4 with 0x67 or in 32-bit code (compilers emit it for a
        // store to a constant address: `movabs %eax, 0xfee00310`).
        let offset = if long_mode && !addr_size { 8 } else { 4 };
        let len = i + 1 + offset;
        let size = if opcode == 0xa2 { 1 } else { wide };
        return (len <= MAX_LEN && bytes.len() >= len).then_some(Store {
            len,
            size,
            source: Source::Reg(0),
        });
    }
    if addr_size {
        return None; // a ModRM form with the other address size: not decoded
    }
    let modrm = *bytes.get(i + 1)?;
    let (md, reg, rm) = (modrm >> 6, (modrm >> 3) & 7, modrm & 7);
    if md == 3 {
        return None; // a register destination: not a store
    }
    let mut at = i + 2;
    let base = if rm == 4 {
        at += 1; // SIB
        *bytes.get(i + 2)? & 7
    } else {
        rm
    };
    at += match md {
        0 if rm == 5 || (rm == 4 && base == 5) => 4, // disp32 (RIP-relative for rm 5 in 64-bit)
        1 => 1,
        2 => 4,
        _ => 0,
    };
    let reg = reg | if rex & 0x4 != 0 { 8 } else { 0 };
    let (size, source, imm) = match opcode {
        0x88 if rex == 0 && reg < 4 => (1, Source::Reg(reg), 0),
        0x89 => (wide, Source::Reg(reg), 0),
        0xc6 if reg & 7 == 0 => (1, Source::Imm(0), 1),
        0xc7 if reg & 7 == 0 => (wide, Source::Imm(0), wide.min(4)),
        _ => return None,
    };
    let len = at + imm as usize;
    if len > MAX_LEN || bytes.len() < len {
        return None;
    }
    let source = match source {
        Source::Imm(_) => {
            let mut raw = [0u8; 8];
            raw[..imm as usize].copy_from_slice(&bytes[at..len]);
            let v = u64::from_le_bytes(raw);
            // A 32-bit immediate is sign-extended to a 64-bit store.
            Source::Imm(if size == 8 {
                v as u32 as i32 as i64 as u64
            } else {
                v
            })
        }
        r => r,
    };
    Some(Store { len, size, source })
}

/// The guest-physical address of `linear`, walking the guest's 4-level
/// tables at `cr3` (long mode; 1 GiB and 2 MiB pages included). `read`
/// reads a guest-physical quadword. None when not present or not long mode.
pub fn translate(
    read: impl Fn(u64) -> Option<u64>,
    paging: bool,
    long_mode: bool,
    cr3: u64,
    linear: u64,
) -> Option<u64> {
    if !paging {
        return Some(linear & 0xffff_ffff);
    }
    if !long_mode {
        return None; // 32-bit paging: no guest of ours uses it yet
    }
    const PRESENT: u64 = 1;
    const LARGE: u64 = 1 << 7;
    const ADDR: u64 = 0x000f_ffff_ffff_f000;
    let mut table = cr3 & ADDR;
    for level in (0..4).rev() {
        let shift = 12 + 9 * level;
        let entry = read(table + ((linear >> shift) & 0x1ff) * 8)?;
        if entry & PRESENT == 0 {
            return None;
        }
        if level == 0 || (entry & LARGE != 0 && level <= 2) {
            let size = 1u64 << shift;
            return Some((entry & ADDR & !(size - 1)) | (linear & (size - 1)));
        }
        table = entry & ADDR;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn d(bytes: &[u8]) -> (Insn, usize) {
        let r = decode(bytes, true);
        (r.insn, r.len)
    }

    #[test]
    fn plain_encodings_need_no_decoding() {
        assert_eq!(plain_length(Insn::Cpuid, &[0x0f, 0xa2, 0x90]), Some(2));
        assert_eq!(plain_length(Insn::Hypercall, &[0x0f, 0x01, 0xd9]), Some(3));
        assert_eq!(plain_length(Insn::Hlt, &[0xf4]), Some(1));
        assert_eq!(
            plain_length(Insn::Cpuid, &[0x66, 0x0f, 0xa2]),
            None,
            "a prefix"
        );
        assert_eq!(plain_length(Insn::Wrmsr, &[0x0f]), None, "truncated");
        assert_eq!(plain_length(Insn::Invd, &[0x0f, 0x08]), None);
    }

    #[test]
    fn lengths_count_prefixes() {
        assert_eq!(d(&[0x0f, 0xa2]), (Insn::Cpuid, 2));
        assert_eq!(d(&[0x66, 0x0f, 0xa2]), (Insn::Cpuid, 3));
        assert_eq!(d(&[0x48, 0x0f, 0x32]), (Insn::Rdmsr, 3), "REX in long mode");
        assert_eq!(
            decode(&[0x48, 0x0f, 0x32], false).insn,
            Insn::Other,
            "0x48 is DEC outside long mode"
        );
        assert_eq!(d(&[0x0f, 0x01, 0xc1]), (Insn::Hypercall, 3));
        assert_eq!(d(&[0x0f, 0x01, 0xd9]), (Insn::Hypercall, 3));
        assert_eq!(d(&[0xf4]), (Insn::Hlt, 1));
        assert_eq!(d(&[0x0f, 0x30]), (Insn::Wrmsr, 2));
    }

    #[test]
    fn tells_the_vmx_instructions_apart() {
        // vmxon [rip+disp32]: F3 0F C7 35 disp32
        assert_eq!(
            d(&[0xf3, 0x0f, 0xc7, 0x35, 1, 2, 3, 4]).0,
            Insn::Vmx("vmxon")
        );
        assert_eq!(d(&[0x66, 0x0f, 0xc7, 0x30]).0, Insn::Vmx("vmclear"));
        assert_eq!(d(&[0x0f, 0xc7, 0x30]).0, Insn::Vmx("vmptrld"));
        assert_eq!(d(&[0x0f, 0xc7, 0x38]).0, Insn::Vmx("vmptrst"));
        assert_eq!(
            d(&[0x0f, 0xc7, 0xf0]).0,
            Insn::Other,
            "register form: RDRAND"
        );
        assert_eq!(d(&[0x0f, 0x01, 0xc2]).0, Insn::Vmx("vmlaunch"));
        assert_eq!(d(&[0x66, 0x0f, 0x38, 0x80, 0x00]).0, Insn::Vmx("invept"));
        assert_eq!(d(&[0x0f, 0x38, 0x80, 0x00]).0, Insn::Other);
    }

    #[test]
    fn unknown_truncated_or_overlong_input_is_other() {
        assert_eq!(d(&[0x0f, 0x0b]), (Insn::Other, 0), "UD2");
        assert_eq!(d(&[]), (Insn::Other, 0));
        assert_eq!(d(&[0x0f]), (Insn::Other, 0));
        assert_eq!(d(&[0x66; 16]), (Insn::Other, 0));
    }

    #[test]
    fn walks_four_levels_and_large_pages() {
        let mut mem = HashMap::new();
        mem.insert(0x1000, 0x2000 | 3); // PML4[0] -> PDPT
        mem.insert(0x2000, 0x3000 | 3); // PDPT[0] -> PD
        mem.insert(0x2008, 0x4000_0000 | 0x83); // PDPT[1]: a 1 GiB page
        mem.insert(0x3000, 0x83); // PD[0]: 2 MiB at 0
        mem.insert(0x3008, 0x5000 | 3); // PD[1] -> PT
        mem.insert(0x5000 + 8 * 3, 0x9000 | 3); // PT[3]
        let read = |a: u64| mem.get(&a).copied();
        assert_eq!(translate(read, true, true, 0x1000, 0x8123), Some(0x8123));
        assert_eq!(translate(read, true, true, 0x1000, 0x20_3456), Some(0x9456));
        assert_eq!(
            translate(read, true, true, 0x1000, 0x4123_4567),
            Some(0x4123_4567)
        );
        assert_eq!(
            translate(read, true, true, 0x1000, 0x20_4000),
            None,
            "PT[4] not present"
        );
        assert_eq!(
            translate(read, true, true, 0x1000, 0x80_0000_0000),
            None,
            "PML4[1] absent"
        );
        assert_eq!(
            translate(read, false, false, 0, 0x1_0000_8000),
            Some(0x8000)
        );
        assert_eq!(translate(read, true, false, 0x1000, 0x8000), None);
    }

    #[test]
    fn decodes_cr_writes_xsetbv_invd_and_refuses_lock() {
        assert_eq!(
            decode(&[0x0f, 0x22, 0xe0], true),
            Decoded {
                insn: Insn::MovToCr { cr: 4, gpr: 0 },
                len: 3
            }
        );
        assert_eq!(
            decode(&[0x41, 0x0f, 0x22, 0xe7], true).insn,
            Insn::MovToCr { cr: 4, gpr: 15 },
            "REX.B: r15"
        );
        assert_eq!(
            decode(&[0x0f, 0x22, 0xc3], false).insn,
            Insn::MovToCr { cr: 0, gpr: 3 }
        );
        assert_eq!(decode(&[0x0f, 0x01, 0xd1], true).insn, Insn::Xsetbv);
        assert_eq!(decode(&[0x0f, 0x08], true).len, 2);
        assert_eq!(decode(&[0xf0, 0x0f, 0x01, 0xc1], true).insn, Insn::Other);
        assert_eq!(
            decode(&[0x66, 0x0f, 0x01, 0xc1], true).insn,
            Insn::Other,
            "66 VMCALL is #UD, as on Intel"
        );
        assert_eq!(decode(&[0xf3, 0x0f, 0x01, 0xd9], true).insn, Insn::Other);
        assert_eq!(
            decode(&[0x2e, 0x48, 0x0f, 0x01, 0xc1], true),
            Decoded {
                insn: Insn::Hypercall,
                len: 5
            },
            "a segment override and REX are ignored"
        );
    }

    #[test]
    fn stores_to_memory_are_decoded_with_their_length() {
        // mov %edx, 0xffffffffff5fd300 (Linux's APIC write: SIB, no base, disp32)
        let apic = [0x89, 0x14, 0x25, 0x00, 0xd3, 0x5f, 0xff, 0x90];
        assert_eq!(
            store(&apic, true),
            Some(Store {
                len: 7,
                size: 4,
                source: Source::Reg(2)
            })
        );
        // mov %r9d, 0x10(%rax)
        assert_eq!(
            store(&[0x44, 0x89, 0x48, 0x10], true),
            Some(Store {
                len: 4,
                size: 4,
                source: Source::Reg(9)
            })
        );
        // movl $0x0, 0xb0(%rdi)
        assert_eq!(
            store(&[0xc7, 0x87, 0xb0, 0, 0, 0, 0, 0, 0, 0], true),
            Some(Store {
                len: 10,
                size: 4,
                source: Source::Imm(0)
            })
        );
        // mov %eax, 0x0(%rip)
        assert_eq!(
            store(&[0x89, 0x05, 1, 2, 3, 4], true).map(|s| s.len),
            Some(6)
        );
        assert_eq!(store(&[0x8b, 0x05, 1, 2, 3, 4], true), None, "a load");
        assert_eq!(store(&[0x89, 0xc0], true), None, "a register move");
        assert_eq!(store(&[0x89, 0x14, 0x25, 0x00], true), None, "truncated");
    }

    /// The stores to a constant address gcc and clang emit as A2/A3 (the
    /// kvm-unit-tests' ICR write, `movabs %eax, 0xfee00310`), in 64-bit and
    /// 32-bit code.
    #[test]
    fn stores_to_an_offset_in_the_instruction_are_decoded() {
        let fee00310 = [0x10, 0x03, 0xe0, 0xfe, 0, 0, 0, 0];
        let eax = Source::Reg(0);
        let at = |prefix: &[u8], opcode: u8, offset: &[u8], long: bool| {
            let bytes: Vec<u8> = prefix
                .iter()
                .chain(&[opcode])
                .chain(offset)
                .copied()
                .collect();
            store(&bytes, long).map(|s| (s.len, s.size, s.source))
        };
        assert_eq!(
            at(&[], 0xa3, &fee00310, true),
            Some((9, 4, eax)),
            "movabs %eax"
        );
        assert_eq!(
            at(&[0x48], 0xa3, &fee00310, true),
            Some((10, 8, eax)),
            "movabs %rax"
        );
        assert_eq!(
            at(&[0x66], 0xa3, &fee00310, true),
            Some((10, 2, eax)),
            "movabs %ax"
        );
        assert_eq!(
            at(&[], 0xa2, &fee00310, true),
            Some((9, 1, eax)),
            "movabs %al"
        );
        assert_eq!(
            at(&[0x67], 0xa3, &fee00310[..4], true),
            Some((6, 4, eax)),
            "addr32"
        );
        assert_eq!(
            at(&[], 0xa3, &fee00310[..4], false),
            Some((5, 4, eax)),
            "32-bit code"
        );
        assert_eq!(
            at(&[], 0xa3, &fee00310[..4], true),
            None,
            "truncated offset"
        );
        assert_eq!(at(&[], 0xa1, &fee00310, true), None, "A1 is a load");
        assert_eq!(
            store(&[0x67, 0x89, 0x05, 1, 2, 3, 4], false),
            None,
            "16-bit addressing"
        );
    }
}
