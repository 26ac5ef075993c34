//! The guest's port I/O policy, for both vendors: which ports reach the
//! hardware (the bitmaps) and what an intercepted access means (the run
//! loop). Deny by default: a payload guest owns COM1 and nothing else; the
//! hypervisor's own console (COM2), PCI configuration, the power and reset
//! ports and the emulators' exit devices are never reached (a write to
//! QEMU's debug-exit port ends the guest, as power-off does). An OS guest
//! owns every device: only COM2 stays the hypervisor's, and the power,
//! reset and debug-exit ports exit so that the guest's end is seen; what
//! else they carry is done on the hardware for it.

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

/// COM2: the hypervisor's event channel, which no guest reaches.
pub const HYPERVISOR_CONSOLE: core::ops::RangeInclusive<u16> = 0x2f8..=0x2ff;

/// Whether the guest reaches `port` on the hardware; `os`: an OS guest.
pub fn passes_through(port: u16, os: bool) -> bool {
    if !os {
        return GUEST_CONSOLE.contains(&port);
    }
    let power = PM1A_CONTROL.iter().any(|&p| p == port || p + 1 == port);
    !(HYPERVISOR_CONSOLE.contains(&port)
        || power
        || [RESET_CONTROL, KBC_COMMAND, PORT_A, DEBUG_EXIT].contains(&port))
}

/// Every port exits but those the guest owns.
pub fn bitmaps(os: bool) -> [[u8; BITMAP_PAGE]; 2] {
    let mut maps = [[0xffu8; BITMAP_PAGE]; 2];
    for port in 0..=u16::MAX {
        if passes_through(port, os) {
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
    /// An OS guest's access to a port that exits for another reason (the
    /// power ports' other bits): done on the hardware.
    Forward,
    /// The guest asked to power off (ACPI sleep): it ends.
    PowerOff,
    /// The guest asked to reset the machine: it ends.
    Reset,
    /// The guest wrote its exit status to the debug-exit port: it ends,
    /// failed unless the status is 0.
    DebugExit,
}

/// Classifies an intercepted access; `value` is what an OUT writes.
pub fn classify(port: u16, input: bool, value: u64, reported: &[u16], os: bool) -> PortAction {
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
    } else if os && !HYPERVISOR_CONSOLE.contains(&port) && port != DEBUG_EXIT {
        PortAction::Forward
    } else {
        PortAction::Blocked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn an_os_guest_reaches_every_port_but_the_hypervisors_and_the_power_ports() {
        for p in [0x3f8, 0x20, 0x40, 0x70, 0xcf8, 0xcfc, 0x608, 0xb008] {
            assert!(passes_through(p, true), "{p:#x}");
        }
        for p in [0x2f8, 0x2ff, 0x604, 0x605, 0xb004, 0xcf9, 0x64, 0x92, 0xf4] {
            assert!(!passes_through(p, true), "{p:#x}");
        }
        use PortAction::*;
        assert_eq!(classify(0x604, false, 0x2000, &[], true), PowerOff);
        assert_eq!(classify(0x604, false, 0x0001, &[], true), Forward, "SCI_EN");
        assert_eq!(
            classify(0x64, true, 0, &[], true),
            Forward,
            "the KBC's status"
        );
        assert_eq!(classify(0x2f8, false, 0x41, &[], true), Blocked);
        assert_eq!(classify(0xf4, true, 0, &[], true), Blocked);
    }

    #[test]
    fn power_and_reset_requests_are_recognised() {
        use PortAction::*;
        assert_eq!(classify(0x604, false, 0x2000, &[], false), PowerOff);
        assert_eq!(classify(0xb004, false, 0x3c00, &[], false), PowerOff);
        assert_eq!(
            classify(0x604, false, 0x1c00, &[], false),
            Blocked,
            "SLP_EN clear"
        );
        assert_eq!(classify(0x604, true, 0xffff, &[], false), Blocked, "a read");
        assert_eq!(classify(0xcf9, false, 0x06, &[], false), Reset);
        assert_eq!(
            classify(0xcf9, false, 0x02, &[], false),
            Blocked,
            "no RST_CPU"
        );
        assert_eq!(classify(0x64, false, 0xfe, &[], false), Reset);
        assert_eq!(
            classify(0x64, false, 0xff, &[], false),
            Blocked,
            "pulses no line"
        );
        assert_eq!(classify(0x64, false, 0xd1, &[], false), Blocked);
        assert_eq!(classify(0x92, false, 0x01, &[], false), Reset);
        assert_eq!(classify(0x80, false, 0x01, &[0x80], false), Reported);
        assert_eq!(classify(0x80, false, 0x01, &[], false), Blocked);
        assert_eq!(classify(0xf4, false, 0x00, &[], false), DebugExit);
        assert_eq!(classify(0xf4, true, 0x00, &[], false), Blocked, "a read");
    }
}
