//! Interrupt sources an OS guest programs, checked before they reach the
//! hardware: what it may send a CPU is an interrupt to one of its vectors,
//! fixed or lowest-priority. INIT would reset a host CPU under the
//! hypervisor, SMI enter the firmware's SMM, SIPI start a CPU: an IOAPIC
//! redirection entry or a local APIC LVT asking for one is refused (written
//! masked, fixed), and the HPET never writes a message (FSB delivery is a
//! memory write to any host address). Pure: `vm::trapped` applies them.

/// Delivery modes (bits 8-10 of an LVT, ICR or redirection entry).
pub const FIXED: u32 = 0;
pub const LOWEST_PRIORITY: u32 = 1;
pub const SMI: u32 = 2;
pub const NMI: u32 = 4;
pub const INIT: u32 = 5;
pub const EXTINT: u32 = 7;
const MODE: u32 = 7 << 8;
const MASKED: u32 = 1 << 16;

pub fn delivery_mode(low: u32) -> u32 {
    (low & MODE) >> 8
}

/// A value as written, or as the hypervisor changed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checked {
    Kept(u32),
    Refused(u32),
}

impl Checked {
    pub fn value(self) -> u32 {
        match self {
            Self::Kept(v) | Self::Refused(v) => v,
        }
    }
}

fn refuse(low: u32) -> Checked {
    Checked::Refused((low & !MODE) | MASKED)
}

/// The low dword of an IOAPIC redirection entry: a device's interrupt is
/// fixed or lowest-priority (a masked entry may say anything: it sends
/// nothing, and is checked again when unmasked).
pub fn redirection(low: u32) -> Checked {
    match delivery_mode(low) {
        _ if low & MASKED != 0 => Checked::Kept(low),
        FIXED | LOWEST_PRIORITY => Checked::Kept(low),
        _ => refuse(low),
    }
}

/// A local APIC LVT entry: fixed, or the legacy pins' NMI (taken as the
/// hypervisor's kick, never delivered) and ExtINT (the guest's own 8259);
/// never SMI or INIT.
pub fn lvt(low: u32) -> Checked {
    match delivery_mode(low) {
        SMI | INIT | 3 | 6 if low & MASKED == 0 => refuse(low),
        _ => Checked::Kept(low),
    }
}

/// The HPET's timer configuration offsets: 0x100 + 0x20 n; FSB_EN is bit 14.
pub const HPET_TIMERS: core::ops::Range<u64> = 0x100..0x400;
const HPET_FSB_ENABLE: u32 = 1 << 14;

/// A write of `value` at `offset` in the HPET's registers.
pub fn hpet(offset: u64, value: u32) -> Checked {
    let config = HPET_TIMERS.contains(&offset) && offset.is_multiple_of(0x20);
    if config && value & HPET_FSB_ENABLE != 0 {
        Checked::Refused(value & !HPET_FSB_ENABLE)
    } else {
        Checked::Kept(value)
    }
}

/// The IOAPIC's registers: the index, the window, and the index of the
/// first redirection entry (two dwords each, the low one first).
pub const IOREGSEL: u64 = 0x00;
pub const IOWIN: u64 = 0x10;
const REDIRECTION_BASE: u32 = 0x10;

/// A write of `value` to the window with `index` selected.
pub fn ioapic_window(index: u32, value: u32) -> Checked {
    let index = index & 0xff;
    if index >= REDIRECTION_BASE && (index - REDIRECTION_BASE).is_multiple_of(2) {
        redirection(value)
    } else {
        Checked::Kept(value)
    }
}

/// The IOAPIC's EOI register (version 0x20): a vector written there ends
/// the level-triggered interrupts of the entries that have it.
pub const IOAPIC_EOI: u64 = 0x40;

/// The redirection entry a window `index` writes, and which half (0: the
/// low dword); None for another register.
pub fn redirection_entry(index: u32) -> Option<(usize, usize)> {
    let index = index & 0xff;
    (index >= REDIRECTION_BASE).then(|| {
        let i = (index - REDIRECTION_BASE) as usize;
        (i / 2, i % 2)
    })
}

/// What a device interrupt through an IOAPIC entry asks for, as the guest
/// wrote the entry (`low`, `high`): the message the IOMMU makes of it when
/// it remaps the IOAPIC's messages (`iommu::remap_ioapic`). None when the
/// entry sends nothing (masked, or a mode `redirection` refuses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message {
    pub vector: u8,
    /// An APIC id, or a logical destination when `logical`.
    pub destination: u8,
    pub logical: bool,
    pub lowest_priority: bool,
}

const LOGICAL: u32 = 1 << 11;

pub fn message(low: u32, high: u32) -> Option<Message> {
    let mode = delivery_mode(low);
    (low & MASKED == 0 && (mode == FIXED || mode == LOWEST_PRIORITY)).then_some(Message {
        vector: low as u8,
        destination: (high >> 24) as u8,
        logical: low & LOGICAL != 0,
        lowest_priority: mode == LOWEST_PRIORITY,
    })
}

/// The entry the hardware gets for the guest's `low` at `pin` when the
/// IOMMU remaps the IOAPIC's messages: fixed, physical, to APIC 0 (the
/// high dword is 0), its vector the pin (the message's remapping index);
/// mask, trigger mode and polarity the guest's. The message the guest
/// asked for is in the IOMMU's table, and a DMA that fakes the IOAPIC's
/// message finds only these.
pub fn remappable(pin: usize, low: u32) -> u32 {
    const TRIGGER_LEVEL: u32 = 1 << 15;
    const POLARITY_LOW: u32 = 1 << 13;
    (low & (MASKED | TRIGGER_LEVEL | POLARITY_LOW)) | pin as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remapped_entry_keeps_its_message_in_the_table_and_its_pin_in_the_hardware() {
        assert_eq!(redirection_entry(0x10), Some((0, 0)));
        assert_eq!(redirection_entry(0x2f), Some((15, 1)));
        assert_eq!(
            redirection_entry(0x01),
            None,
            "the IOAPIC's version register"
        );
        // Vector 0x31, lowest priority, logical, level, active low, to 0x02.
        let low = 0x31 | (1 << 8) | LOGICAL | (1 << 15) | (1 << 13);
        assert_eq!(
            message(low, 0x0200_0000),
            Some(Message {
                vector: 0x31,
                destination: 2,
                logical: true,
                lowest_priority: true
            })
        );
        assert_eq!(message(low | MASKED, 0), None, "masked: nothing to send");
        assert_eq!(
            message(0x31 | (INIT << 8), 0),
            None,
            "INIT is never a message"
        );
        assert_eq!(
            remappable(9, low),
            9 | (1 << 15) | (1 << 13),
            "fixed, physical"
        );
        assert_eq!(remappable(9, low | MASKED) & MASKED, MASKED);
    }

    #[test]
    fn a_device_interrupt_is_fixed_or_lowest_priority() {
        assert_eq!(redirection(0x0000_0030), Checked::Kept(0x30));
        assert_eq!(redirection(0x0000_0131), Checked::Kept(0x131));
        for mode in [SMI, NMI, INIT, 6, EXTINT] {
            let low = (mode << 8) | 0x30;
            assert_eq!(
                redirection(low),
                Checked::Refused(0x0001_0030),
                "mode {mode}"
            );
            assert_eq!(
                redirection(low | MASKED),
                Checked::Kept(low | MASKED),
                "masked"
            );
        }
        assert_eq!(ioapic_window(0x12, 0x500), Checked::Refused(0x1_0000));
        assert_eq!(
            ioapic_window(0x13, 0x500),
            Checked::Kept(0x500),
            "a high dword"
        );
        assert_eq!(
            ioapic_window(0x01, 0x500),
            Checked::Kept(0x500),
            "the version"
        );
    }

    #[test]
    fn an_lvt_never_asks_for_smi_or_init() {
        assert_eq!(lvt(0x0000_0700), Checked::Kept(0x700), "LINT0 ExtINT");
        assert_eq!(lvt(0x0000_0400), Checked::Kept(0x400), "LINT1 NMI");
        assert_eq!(lvt(0x0000_00ef), Checked::Kept(0xef));
        assert_eq!(lvt(0x0000_0500), Checked::Refused(0x1_0000));
        assert_eq!(lvt(0x0000_0200), Checked::Refused(0x1_0000));
        assert_eq!(lvt(0x0001_0500), Checked::Kept(0x1_0500), "masked");
    }

    #[test]
    fn the_hpet_never_writes_a_message() {
        assert_eq!(hpet(0x100, 0x4004), Checked::Refused(0x0004));
        assert_eq!(hpet(0x140, 0x4004), Checked::Refused(0x0004));
        assert_eq!(hpet(0x100, 0x0004), Checked::Kept(0x0004));
        assert_eq!(
            hpet(0x010, 0x4001),
            Checked::Kept(0x4001),
            "the general configuration"
        );
        assert_eq!(hpet(0x108, 0x4000), Checked::Kept(0x4000), "a comparator");
    }
}
