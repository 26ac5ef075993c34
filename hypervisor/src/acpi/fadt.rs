//! The FADT (ACPI 6.5, 5.2.9): where the platform's power and reset
//! controls are, which the hypervisor keeps from an OS guest wherever the
//! firmware put them (`chipset`).

use super::sdt::{Reader, Table, TableError};

/// A Generic Address Structure's address spaces (ACPI 6.5, 5.2.3.2).
const SPACE_MEMORY: u8 = 0;
const SPACE_IO: u8 = 1;
const SPACE_PCI: u8 = 2;

/// FADT flags: RESET_REG_SUP, the reset register is valid.
const RESET_REG_SUP: u32 = 1 << 10;

/// A register the FADT names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Register {
    Io(u16),
    Memory(u64),
    /// PCI configuration of segment 0, bus 0: device, function, offset.
    Pci {
        device: u8,
        function: u8,
        offset: u16,
    },
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fadt {
    /// PM1a and PM1b control blocks (SLP_EN, SLP_TYP): I/O ports.
    pub pm1_control: [Option<u16>; 2],
    /// The reset register and the value that resets.
    pub reset: Option<(Register, u8)>,
    /// The SMI command port, and the values that ask the firmware to turn
    /// ACPI mode on and off.
    pub smi_command: Option<u16>,
    pub acpi_enable: u8,
    pub acpi_disable: u8,
    /// The hardware-reduced sleep control register (SLP_EN in bit 5).
    pub sleep_control: Option<Register>,
    /// The FACS, which the OS writes (its global lock, the waking vector).
    pub facs: Option<u64>,
}

/// A Generic Address Structure at `at`; None for an empty one or an address
/// space the hypervisor does not know.
fn gas(r: &Reader, at: usize) -> Result<Option<Register>, TableError> {
    let space = r.u8(at)?;
    let address = r.u64(at + 4)?;
    if address == 0 {
        return Ok(None);
    }
    Ok(match space {
        SPACE_IO => u16::try_from(address).ok().map(Register::Io),
        SPACE_MEMORY => Some(Register::Memory(address)),
        // ACPI's PCI address: device in bits 32-47, function 16-31, offset 0-15.
        SPACE_PCI => Some(Register::Pci {
            device: (address >> 32) as u8,
            function: (address >> 16) as u8,
            offset: address as u16,
        }),
        _ => None,
    })
}

/// An I/O port block: the 64-bit GAS where the table has one, else the
/// 32-bit field.
fn io_block(r: &Reader, legacy: usize, extended: usize) -> Result<Option<u16>, TableError> {
    if r.bytes.len() >= extended + 12
        && let Some(Register::Io(port)) = gas(r, extended)?
    {
        return Ok(Some(port));
    }
    Ok(u16::try_from(r.u32(legacy)?).ok().filter(|&p| p != 0))
}

pub fn parse(table: &Table) -> Result<Fadt, TableError> {
    let r = Reader {
        signature: table.signature,
        bytes: table.bytes,
    };
    // ACPI 1.0's FADT ends at the flags (116 bytes); later ones add the
    // reset register and the 64-bit blocks.
    let flags = r.u32(112)?;
    let smi = r.u32(48)?;
    let len = r.bytes.len();
    let reset = if len >= 129 && flags & RESET_REG_SUP != 0 {
        gas(&r, 116)?.map(|reg| (reg, r.bytes[128]))
    } else {
        None
    };
    Ok(Fadt {
        pm1_control: [io_block(&r, 64, 172)?, io_block(&r, 68, 184)?],
        reset,
        smi_command: u16::try_from(smi).ok().filter(|&p| p != 0),
        acpi_enable: r.u8(52)?,
        acpi_disable: r.u8(53)?,
        sleep_control: if len >= 256 { gas(&r, 244)? } else { None },
        facs: Some(if len >= 140 { r.u64(132)? } else { 0 })
            .filter(|&a| a != 0)
            .or(Some(r.u32(36)?.into()))
            .filter(|&a| a != 0),
    })
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::acpi::sdt;

    /// A FADT body (after the header) of `len` bytes with QEMU q35's values.
    pub fn q35(len: usize) -> Vec<u8> {
        let mut t = vec![0u8; len - sdt::HEADER_LEN];
        let mut put = |at: usize, bytes: &[u8]| {
            let at = at - sdt::HEADER_LEN;
            if at + bytes.len() <= t.len() {
                t[at..at + bytes.len()].copy_from_slice(bytes);
            }
        };
        put(36, &0x1ffe_0000u32.to_le_bytes());
        put(48, &0xb2u32.to_le_bytes());
        put(52, &[0xf1, 0xf0]);
        put(64, &0x604u32.to_le_bytes());
        put(112, &RESET_REG_SUP.to_le_bytes());
        put(116, &[SPACE_IO, 8, 0, 1, 0, 0, 0, 0]);
        put(120, &0xcf9u64.to_le_bytes());
        put(128, &[0x0f]);
        put(172, &[SPACE_IO, 16, 0, 2, 0, 0, 0, 0]);
        put(176, &0x604u64.to_le_bytes());
        t
    }

    fn parsed(body: &[u8]) -> Result<Fadt, TableError> {
        let bytes = sdt::build(b"FACP", 3, body);
        let table = Table {
            signature: *b"FACP",
            revision: 3,
            bytes: &bytes,
        };
        parse(&table)
    }

    #[test]
    fn q35s_power_and_reset_registers() {
        let f = parsed(&q35(244)).unwrap();
        assert_eq!(f.pm1_control, [Some(0x604), None]);
        assert_eq!(f.reset, Some((Register::Io(0xcf9), 0x0f)));
        assert_eq!(f.smi_command, Some(0xb2));
        assert_eq!((f.acpi_enable, f.acpi_disable), (0xf1, 0xf0));
        assert_eq!(f.sleep_control, None);
        assert_eq!(f.facs, Some(0x1ffe_0000));
    }

    #[test]
    fn an_acpi_1_table_has_no_reset_register() {
        let f = parsed(&q35(116)).unwrap();
        assert_eq!(f.pm1_control, [Some(0x604), None]);
        assert_eq!(f.reset, None);
    }

    #[test]
    fn the_64_bit_block_wins_and_pci_and_memory_registers_are_read() {
        let mut body = q35(276);
        let at = |o: usize| o - sdt::HEADER_LEN;
        body[at(176)..at(176) + 8].copy_from_slice(&0x1804u64.to_le_bytes());
        body[at(116)] = SPACE_PCI;
        body[at(120)..at(120) + 8]
            .copy_from_slice(&((0x1fu64 << 32) | (3 << 16) | 0xcf9).to_le_bytes());
        body[at(244)] = SPACE_MEMORY;
        body[at(248)..at(248) + 8].copy_from_slice(&0xfed8_0000u64.to_le_bytes());
        let f = parsed(&body).unwrap();
        assert_eq!(f.pm1_control[0], Some(0x1804));
        assert_eq!(
            f.reset.unwrap().0,
            Register::Pci {
                device: 0x1f,
                function: 3,
                offset: 0xcf9
            }
        );
        assert_eq!(f.sleep_control, Some(Register::Memory(0xfed8_0000)));
    }

    #[test]
    fn a_truncated_table_is_refused() {
        assert!(matches!(
            parsed(&q35(100)),
            Err(TableError::Truncated { .. })
        ));
    }
}
