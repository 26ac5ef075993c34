//! The guest's port I/O policy, for both vendors: which ports reach the
//! hardware (the bitmaps) and what an intercepted access means (the run
//! loop). Deny by default: a payload guest owns COM1 and nothing else (a
//! write to the power, reset or debug-exit ports ends it). An OS guest owns
//! every port but the platform's (`chipset::Role`): the hypervisor's console
//! and fw_cfg's DMA are refused, the power and reset controls end it, PCI
//! configuration and the KBC are emulated, and what else those ports carry
//! is done on the hardware for it.

use core::sync::atomic::{AtomicBool, AtomicU32};

use crate::chipset::{Chipset, Request, Role};

/// COM1: the guest's console, passed through. The hypervisor reports on COM2.
pub const GUEST_CONSOLE: core::ops::RangeInclusive<u16> = 0x3f8..=0x3ff;

/// The two pages of the I/O bitmap (VMX's bitmaps A and B, the first two
/// pages of AMD's IOPM): a set bit makes the port exit.
pub const BITMAP_PAGE: usize = 4096;

/// Whether the guest reaches `port` on the hardware; `os`: an OS guest.
pub fn passes_through(chipset: &Chipset, port: u16, os: bool) -> bool {
    if os {
        chipset.role(port) == Role::Guest
    } else {
        GUEST_CONSOLE.contains(&port)
    }
}

/// Every port exits but those the guest owns. The CPU checks the bit of
/// every byte an access covers: a wide access exits if any of its ports does.
pub fn bitmaps(os: bool) -> [[u8; BITMAP_PAGE]; 2] {
    let chipset = crate::chipset::get();
    let mut maps = [[0xffu8; BITMAP_PAGE]; 2];
    for port in 0..=u16::MAX {
        if passes_through(chipset, port, os) {
            let p = usize::from(port);
            maps[p / 0x8000][(p % 0x8000) / 8] &= !(1 << (p % 8));
        }
    }
    maps
}

/// The platform state an OS guest's port accesses go through, one for the
/// whole guest (as the hardware's is one for the machine).
#[derive(Debug, Default)]
pub struct PortState {
    /// The PCI configuration address the guest last wrote to 0xcf8.
    pub pci_address: AtomicU32,
    /// The guest sent the KBC "write output port": its next data byte is
    /// the output port's.
    pub kbc_output: AtomicBool,
}

/// What an intercepted access does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortAction {
    /// A port the scenario asked to see (`guest.io`): reported, no device.
    Reported,
    /// No device for the guest, or one it may not reach: a write is
    /// dropped, a read gets all ones.
    Blocked,
    /// An OS guest's access to a port that exits for another reason (the
    /// power ports' other bits): done on the hardware.
    Forward,
    /// Done on the hardware with this value (port A with A20 kept on).
    ForwardAs(u32),
    /// The guest asked to power off (ACPI sleep): it ends.
    PowerOff,
    /// The guest asked to reset the machine: it ends.
    Reset,
    /// The guest wrote its exit status to the debug-exit port: it ends,
    /// failed unless the status is 0.
    DebugExit,
    /// The KBC's "write output port" command: kept, the next data byte is
    /// judged as the output port (`PortState::kbc_output`).
    KbcWriteOutput,
    /// A byte to the KBC's data port.
    KbcData,
    /// PCI configuration mechanism #1, emulated: the address register, the
    /// data window.
    PciAddress,
    PciData,
}

/// Classifies an intercepted access of `size` bytes at `port`; `value` is
/// what an OUT writes. Every byte it covers counts: a request is seen in
/// whichever byte holds its bit, and a wide access that covers a port the
/// guest may not reach is refused whole.
pub fn classify(
    chipset: &Chipset,
    port: u16,
    size: u8,
    input: bool,
    value: u64,
    reported: &[u16],
    os: bool,
) -> PortAction {
    let size = size.clamp(1, 4);
    let role = |i: u8| chipset.role(port.wrapping_add(i.into()));
    // A dword at 0xcf8 is the PCI address register, whatever its second
    // byte says: the chipsets decode 0xcf9 (reset control) for bytes only.
    let pci_address = port == crate::chipset::PCI_ADDRESS && size == 4;
    if !input && !pci_address {
        for i in 0..size {
            match crate::chipset::request(role(i), (value >> (8 * i)) as u8) {
                Request::PowerOff => return PortAction::PowerOff,
                Request::Reset => return PortAction::Reset,
                Request::None => {}
            }
        }
        if (0..size).any(|i| role(i) == Role::DebugExit) {
            return PortAction::DebugExit;
        }
    }
    if reported.contains(&port) {
        return PortAction::Reported;
    }
    if !os {
        return PortAction::Blocked;
    }
    if pci_address {
        return PortAction::PciAddress;
    }
    let first = role(0);
    let same = |a: Role, b: Role| core::mem::discriminant(&a) == core::mem::discriminant(&b);
    if (1..size).any(|i| !same(role(i), first)) {
        return PortAction::Blocked; // a wide access across two owners
    }
    let byte = value as u8;
    match first {
        Role::Guest | Role::Pm1Control { .. } | Role::Reset { .. } => PortAction::Forward,
        Role::Denied | Role::DebugExit | Role::PciAddress { .. } => PortAction::Blocked,
        Role::PciData { .. } => PortAction::PciData,
        _ if input => PortAction::Forward,
        Role::KbcCommand if byte == crate::chipset::KBC_WRITE_OUTPUT => PortAction::KbcWriteOutput,
        Role::KbcCommand if crate::chipset::kbc_command_kept(byte) => PortAction::Blocked,
        Role::KbcCommand => PortAction::Forward,
        Role::KbcData => PortAction::KbcData,
        Role::PortA => PortAction::ForwardAs(u32::from(byte | crate::chipset::A20_BIT)),
        Role::SmiCommand { enable, disable }
            if byte != 0 && (byte == enable || byte == disable) =>
        {
            PortAction::Forward
        }
        Role::SmiCommand { .. } => PortAction::Blocked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PortAction::*;

    fn os(port: u16, size: u8, input: bool, value: u64) -> PortAction {
        classify(&Chipset::default(), port, size, input, value, &[], true)
    }
    fn payload(port: u16, size: u8, input: bool, value: u64, reported: &[u16]) -> PortAction {
        classify(
            &Chipset::default(),
            port,
            size,
            input,
            value,
            reported,
            false,
        )
    }

    #[test]
    fn only_com1_passes_through() {
        let [a, b] = bitmaps(false);
        let exits = |p: usize| a.iter().chain(b.iter()).nth(p / 8).unwrap() & (1 << (p % 8)) != 0;
        for p in GUEST_CONSOLE {
            assert!(!exits(p.into()), "{p:#x}");
        }
        for p in [
            0x2f8, 0x2ff, 0x3f7, 0x400, 0xcf8, 0xcfc, 0x604, 0xb004, 0xf4, 0x8900, 0xffff,
        ] {
            assert!(exits(p), "{p:#x}");
        }
        let open: u32 = a.iter().chain(b.iter()).map(|x| x.count_zeros()).sum();
        assert_eq!(open, 8);
    }

    #[test]
    fn an_os_guest_reaches_every_port_but_the_platforms() {
        let c = Chipset::default();
        for p in [0x3f8, 0x20, 0x40, 0x70, 0x608, 0xb008, 0x510, 0x511, 0x2f7] {
            assert!(passes_through(&c, p, true), "{p:#x}");
        }
        for p in [
            0x2f8, 0x2ff, 0x604, 0x605, 0xb004, 0xcf8, 0xcfc, 0xcff, 0xcf9, 0x60, 0x64, 0x92, 0xb2,
            0xf4, 0x514, 0x51b,
        ] {
            assert!(!passes_through(&c, p, true), "{p:#x}");
        }
        assert_eq!(os(0x604, 2, false, 0x2000), PowerOff);
        assert_eq!(os(0x604, 2, false, 0x0001), Forward, "SCI_EN");
        assert_eq!(os(0x64, 1, true, 0), Forward, "the KBC's status");
        assert_eq!(os(0x2f8, 1, false, 0x41), Blocked);
        assert_eq!(os(0xf4, 1, true, 0), Blocked);
        assert_eq!(os(0x518, 4, false, 0x1000), Blocked, "fw_cfg DMA");
        assert_eq!(os(0x514, 4, true, 0), Blocked);
    }

    #[test]
    fn a_wide_access_is_judged_on_every_byte() {
        assert_eq!(os(0x2f7, 2, false, 0x4141), Blocked, "outw covers COM2");
        assert_eq!(os(0x2f6, 4, true, 0), Blocked, "ind covers COM2");
        assert_eq!(os(0x513, 2, false, 0), Blocked, "fw_cfg DMA's first byte");
        assert_eq!(
            os(0x605, 2, false, 0x0020),
            PowerOff,
            "SLP_EN in 0x605's byte"
        );
        assert_eq!(os(0x603, 4, false, 0x20_0000), PowerOff);
        assert_eq!(
            os(0x603, 2, false, 0x0100),
            Blocked,
            "PM1 event and control at once"
        );
        assert_eq!(os(0xcf8, 2, false, 0x0400), Reset, "0xcf9's RST_CPU");
        assert_eq!(os(0x91, 2, false, 0x0100), Reset, "port A's reset bit");
        assert_eq!(
            payload(0x605, 1, false, 0x20, &[]),
            PowerOff,
            "a byte write of SLP_EN"
        );
        assert_eq!(payload(0xf3, 2, false, 0x0100, &[]), DebugExit);
        assert_eq!(
            os(0xf5, 1, false, 0x01),
            DebugExit,
            "isa-debug-exit's second port"
        );
    }

    #[test]
    fn the_platforms_ports_are_emulated_or_kept() {
        assert_eq!(os(0xcf8, 4, false, 0x8000_f840), PciAddress);
        assert_eq!(os(0xcf8, 4, false, 0x8000_fc00), PciAddress, "not RST_CPU");
        assert_eq!(os(0xcf8, 4, true, 0), PciAddress);
        assert_eq!(os(0xcf8, 1, false, 0), Blocked, "not the address register");
        assert_eq!(os(0xcf9, 1, false, 0x02), Forward, "no RST_CPU");
        assert_eq!(os(0xcfc, 4, false, 0x901), PciData);
        assert_eq!(os(0xcfe, 2, true, 0), PciData, "a read of the window too");
        assert_eq!(os(0x64, 1, false, 0xd1), KbcWriteOutput);
        assert_eq!(os(0x64, 1, false, 0xdd), Blocked, "A20 off");
        assert_eq!(os(0x64, 1, false, 0xae), Forward);
        assert_eq!(os(0x64, 1, false, 0xfe), Reset);
        assert_eq!(os(0x60, 1, false, 0xf4), KbcData);
        assert_eq!(os(0x92, 1, false, 0x00), ForwardAs(0x02), "A20 stays on");
        assert_eq!(os(0x92, 1, false, 0x01), Reset);
        assert_eq!(
            os(0xb2, 1, false, 0x00),
            Blocked,
            "an SMI the FADT does not name"
        );
    }

    #[test]
    fn power_and_reset_requests_are_recognised() {
        assert_eq!(payload(0x604, 2, false, 0x2000, &[]), PowerOff);
        assert_eq!(payload(0xb004, 2, false, 0x3c00, &[]), PowerOff);
        assert_eq!(
            payload(0x604, 2, false, 0x1c00, &[]),
            Blocked,
            "SLP_EN clear"
        );
        assert_eq!(payload(0x604, 2, true, 0xffff, &[]), Blocked, "a read");
        assert_eq!(payload(0xcf9, 1, false, 0x06, &[]), Reset);
        assert_eq!(payload(0xcf9, 1, false, 0x02, &[]), Blocked, "no RST_CPU");
        assert_eq!(payload(0x64, 1, false, 0xfe, &[]), Reset);
        assert_eq!(
            payload(0x64, 1, false, 0xff, &[]),
            Blocked,
            "pulses no line"
        );
        assert_eq!(payload(0x64, 1, false, 0xd1, &[]), Blocked);
        assert_eq!(payload(0x92, 1, false, 0x01, &[]), Reset);
        assert_eq!(payload(0x80, 1, false, 0x01, &[0x80]), Reported);
        assert_eq!(payload(0x80, 1, false, 0x01, &[]), Blocked);
        assert_eq!(payload(0xf4, 1, false, 0x00, &[]), DebugExit);
        assert_eq!(payload(0xf4, 1, true, 0x00, &[]), Blocked, "a read");
    }
}
