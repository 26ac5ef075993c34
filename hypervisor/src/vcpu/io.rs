//! The guest's port I/O policy, for both vendors: which ports reach the
//! hardware (the bitmaps) and what an intercepted access means (the run
//! loop). Deny by default: a payload guest owns COM1 and nothing else; the
//! hypervisor's own console (COM2), PCI configuration, the power and reset
//! ports and the emulators' exit devices are never reached (a write to
//! QEMU's debug-exit port ends the guest, as power-off does).

/// COM1: the guest's console, passed through. The hypervisor reports on COM2.
pub const GUEST_CONSOLE: core::ops::RangeInclusive<u16> = 0x3f8..=0x3ff;

/// The ACPI PM1a control registers of the machines the harness runs: q35
/// (PM base 0x600) and the i440fx/PIIX4 of Bochs (PM base 0xb000).
const PM1A_CONTROL: [u16; 2] = [0x604, 0xb004];
/// PM1 control: SLP_EN starts the sleep state that SLP_TYP names.
const SLP_EN: u64 = 1 << 13;
/// The reset control register; RST_CPU (bit 2) resets the machine.
const RESET_CONTROL: u16 = 0xcf9;
const RST_CPU: u64 = 1 << 2;
/// The keyboard controller's command port: commands 0xf0-0xff pulse its
/// output lines, and a clear bit 0 pulses the reset line.
const KBC_COMMAND: u16 = 0x64;
/// System control port A; bit 0 is the fast reset.
const PORT_A: u16 = 0x92;
/// QEMU's isa-debug-exit, where the harness's machines have it and test
/// kernels write their status: for a guest, its exit with that status.
const DEBUG_EXIT: u16 = 0xf4;

/// The two pages of the I/O bitmap (VMX's bitmaps A and B, the first two
/// pages of AMD's IOPM): a set bit makes the port exit.
pub const BITMAP_PAGE: usize = 4096;

/// Whether the guest reaches `port` on the hardware.
pub fn passes_through(port: u16) -> bool {
    GUEST_CONSOLE.contains(&port)
}

/// Every port exits but those the guest owns.
pub fn bitmaps() -> [[u8; BITMAP_PAGE]; 2] {
    let mut maps = [[0xffu8; BITMAP_PAGE]; 2];
    for port in 0..=u16::MAX {
        if passes_through(port) {
            let p = usize::from(port);
            maps[p / 0x8000][(p % 0x8000) / 8] &= !(1 << (p % 8));
        }
    }
    maps
}

/// What an intercepted access does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortAction {
    /// A port the scenario asked to see (`guest.io`): reported, no device.
    Reported,
    /// Any other port: no device, the access is dropped.
    Blocked,
    /// The guest asked to power off (ACPI sleep): it ends.
    PowerOff,
    /// The guest asked to reset the machine: it ends.
    Reset,
    /// The guest wrote its exit status to the debug-exit port: it ends,
    /// failed unless the status is 0.
    DebugExit,
}

/// Classifies an intercepted access; `value` is what an OUT writes.
pub fn classify(port: u16, input: bool, value: u64, reported: &[u16]) -> PortAction {
    if !input {
        match port {
            p if PM1A_CONTROL.contains(&p) && value & SLP_EN != 0 => return PortAction::PowerOff,
            RESET_CONTROL if value & RST_CPU != 0 => return PortAction::Reset,
            KBC_COMMAND if value & 0xf1 == 0xf0 => return PortAction::Reset,
            PORT_A if value & 1 != 0 => return PortAction::Reset,
            DEBUG_EXIT => return PortAction::DebugExit,
            _ => {}
        }
    }
    if reported.contains(&port) {
        PortAction::Reported
    } else {
        PortAction::Blocked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_com1_passes_through() {
        let [a, b] = bitmaps();
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
    fn power_and_reset_requests_are_recognised() {
        use PortAction::*;
        assert_eq!(classify(0x604, false, 0x2000, &[]), PowerOff);
        assert_eq!(classify(0xb004, false, 0x3c00, &[]), PowerOff);
        assert_eq!(classify(0x604, false, 0x1c00, &[]), Blocked, "SLP_EN clear");
        assert_eq!(classify(0x604, true, 0xffff, &[]), Blocked, "a read");
        assert_eq!(classify(0xcf9, false, 0x06, &[]), Reset);
        assert_eq!(classify(0xcf9, false, 0x02, &[]), Blocked, "no RST_CPU");
        assert_eq!(classify(0x64, false, 0xfe, &[]), Reset);
        assert_eq!(classify(0x64, false, 0xff, &[]), Blocked, "pulses no line");
        assert_eq!(classify(0x64, false, 0xd1, &[]), Blocked);
        assert_eq!(classify(0x92, false, 0x01, &[]), Reset);
        assert_eq!(classify(0x80, false, 0x01, &[0x80]), Reported);
        assert_eq!(classify(0x80, false, 0x01, &[]), Blocked);
        assert_eq!(classify(0xf4, false, 0x00, &[]), DebugExit);
        assert_eq!(classify(0xf4, true, 0x00, &[]), Blocked, "a read");
    }
}
