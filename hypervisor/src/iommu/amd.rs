//! AMD-Vi (AMD I/O Virtualization Technology specification 48882): the
//! device table (one 256-bit entry per PCI requester id), the command
//! buffer and the event log, in memory the IOMMU reads; its registers in
//! MMIO. The encodings are pure and tested on the host; `Unit` programs the
//! hardware: taken at boot with every device blocked, then given the
//! guest's nested table (`attach`) and the IOAPICs their interrupt
//! remapping tables (`remap_ioapic`), its caches emptied after every change
//! (`invalidate`), its event log read for DMA faults (`faults`).

/// MMIO registers (spec 3.4).
const DEVICE_TABLE_BASE: u64 = 0x0000;
const COMMAND_BUFFER_BASE: u64 = 0x0008;
const EVENT_LOG_BASE: u64 = 0x0010;
const CONTROL: u64 = 0x0018;
const COMMAND_TAIL: u64 = 0x2008;
const EVENT_HEAD: u64 = 0x2010;
const EVENT_TAIL: u64 = 0x2018;
const STATUS: u64 = 0x2020;

/// Control: the IOMMU, its event log and its command buffer on.
const IOMMU_EN: u64 = 1 << 0;
const EVENT_LOG_EN: u64 = 1 << 2;
const CMD_BUF_EN: u64 = 1 << 12;
/// Status: the command buffer runs.
const CMD_BUF_RUN: u64 = 1 << 4;

/// Every requester id (bus, device, function) has an entry: 64 Ki of 32 bytes.
pub const DEVICES: usize = 1 << 16;
const ENTRY: usize = 32;
pub const DEVICE_TABLE_BYTES: usize = DEVICES * ENTRY;
const _: () = assert!(DEVICE_TABLE_BYTES == 2 << 20, "one large frame");
/// The command buffer and event log: one page each, 256 entries of 16 bytes.
const RING_ENTRIES_LOG2: u64 = 8;
const RING_BYTES: u64 = 16 << RING_ENTRIES_LOG2;

const V: u64 = 1 << 0;
const TV: u64 = 1 << 1;
/// In the third quadword: interrupts remapped by this entry.
const IV: u64 = 1 << 0;
/// The domain every device of the guest is in (QEMU 7.2 takes DomainID's
/// bit 8 for reserved: keep it clear).
pub const DOMAIN: u16 = 1;

/// A device table entry that lets its device reach nothing: valid (V),
/// translation valid (TV), no translation levels (mode 0: addresses pass
/// untranslated) and neither read (IR) nor write (IW) permission, so every
/// DMA faults. Interrupts (IV clear) are not remapped: the device's MSIs are
/// the hypervisor's to stop (bus mastering off, `chipset::pci`).
pub fn blocked_entry(domain: u16) -> [u64; 4] {
    [V | TV, u64::from(domain), 0, 0]
}

/// A device table entry that gives its device the four-level table at
/// `root` (the guest's nested table, whose entries are AMD-Vi's too:
/// `ept::format::Npt`), read and write as each leaf says; and its
/// interrupts remapped (IV) with nothing let through: fixed and arbitrated
/// messages target-aborted (IntCtl 0), INIT, ExtINT, NMI and LINT0/1 not
/// passed (their pass bits clear), SMI never remapped. A device's MSIs,
/// and its DMA writes to the interrupt range, reach no CPU.
pub fn translating_entry(root: u64, domain: u16) -> [u64; 4] {
    const MODE_4_LEVELS: u64 = 4 << 9;
    const IR: u64 = 1 << 61;
    const IW: u64 = 1 << 62;
    let root = root & 0x000f_ffff_ffff_f000;
    [
        V | TV | MODE_4_LEVELS | root | IR | IW,
        u64::from(domain),
        IV,
        0,
    ]
}

/// Entries of an IOAPIC's interrupt remapping table: 2048, as many as a
/// message's data can index (QEMU 7.2 reads the entry the data names,
/// whatever the table's length says: a shorter table would let a forged
/// message read the memory after it).
pub const IOAPIC_TABLE_ENTRIES: usize = 2048;
pub const IOAPIC_TABLE_BYTES: usize = IOAPIC_TABLE_ENTRIES * 4;

/// The device table entry of an IOAPIC: no DMA (it makes none), its
/// messages remapped through the table at `table` (IntCtl 10b), INIT,
/// ExtINT and NMI messages not passed. A device's DMA into the interrupt
/// range that QEMU takes for the IOAPIC's message finds only this.
pub fn ioapic_entry(table: u64, domain: u16) -> [u64; 4] {
    const INT_TAB_LEN_2048: u64 = 11 << 1;
    const INT_CTL_REMAPPED: u64 = 2 << 60;
    let table = table & 0x000f_ffff_ffff_ffc0;
    [
        V | TV,
        u64::from(domain),
        IV | INT_TAB_LEN_2048 | table | INT_CTL_REMAPPED,
        0,
    ]
}

/// A legacy (32-bit) interrupt remapping table entry (spec 2.2.5.1) for
/// `message`: RemapEn, IntType (fixed 0, arbitrated 1), DM, Destination,
/// Vector; 0 (not remapped: the message is refused) for none.
pub fn irte(message: Option<crate::chipset::interrupts::Message>) -> u32 {
    message.map_or(0, |m| {
        1 | u32::from(m.lowest_priority) << 2
            | u32::from(m.logical) << 6
            | u32::from(m.destination) << 8
            | u32::from(m.vector) << 16
    })
}

/// A table's base register: its address and, in bits 56-59, the log2 of its
/// entries (command buffer, event log), or in bits 0-8 its size in pages
/// less one (device table).
pub fn ring_base(address: u64) -> u64 {
    address | (RING_ENTRIES_LOG2 << 56)
}

pub fn device_table_base(address: u64) -> u64 {
    address | ((DEVICE_TABLE_BYTES / 4096 - 1) as u64)
}

/// INVALIDATE_IOMMU_ALL (opcode 8): every cached translation and entry.
pub fn invalidate_all() -> [u64; 2] {
    [8 << 60, 0]
}

/// COMPLETION_WAIT (opcode 1) with a store (S): `data` written at
/// `address` once every command before it has completed.
pub fn completion_wait(address: u64, data: u64) -> [u64; 2] {
    const STORE: u64 = 1 << 0;
    [(1 << 60) | (address & 0x000f_ffff_ffff_fff8) | STORE, data]
}

/// A DMA the IOMMU refused, from its event log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The requester id: bus, device, function.
    pub device: u16,
    pub address: u64,
    pub write: bool,
}

/// An event log entry (spec 2.5): an IO_PAGE_FAULT (code 2) is a `Fault`;
/// other events are not DMA faults.
pub fn fault(event: [u64; 2]) -> Option<Fault> {
    const IO_PAGE_FAULT: u64 = 2;
    const RW: u64 = 1 << (32 + 21);
    (event[0] >> 60 == IO_PAGE_FAULT).then(|| Fault {
        device: event[0] as u16,
        address: event[1],
        write: event[0] & RW != 0,
    })
}

pub use hardware::Unit;

/// The hardware: its registers and the memory it reads.
mod hardware {
    use super::*;
    use crate::acpi::iommu::{IoApicSource, MAX_IOAPICS};
    use crate::iommu::IommuError;

    /// An AMD IOMMU the hypervisor took: its registers and the memory it
    /// reads (device table, command buffer, event log), and how far the
    /// hypervisor has written and read its rings.
    pub struct Unit {
        base: u64,
        table: u64,
        commands: u64,
        events: u64,
        /// Where COMPLETION_WAIT stores; the value it stores next.
        done: u64,
        sequence: u64,
        command_tail: u64,
        /// The IOAPICs the IVHD names, whose entries `attach` gives their
        /// interrupt remapping tables (the i-th one's at `ioapic_tables` +
        /// i tables), not the guest's table.
        ioapics: [Option<IoApicSource>; MAX_IOAPICS],
        ioapic_tables: u64,
    }

    fn write(base: u64, offset: u64, value: u64) {
        // SAFETY: the IOMMU's own registers (IVRS), below 4 GiB where the
        // direct map maps them; the guest never reaches them.
        unsafe { core::ptr::write_volatile((base + offset) as *mut u64, value) }
    }

    fn read(base: u64, offset: u64) -> u64 {
        // SAFETY: as in `write`.
        unsafe { core::ptr::read_volatile((base + offset) as *const u64) }
    }

    /// Puts `words` in physical memory at `addr`.
    fn put(addr: u64, words: &[u64]) {
        let bytes: heapless::Vec<u8, 32> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        // SAFETY: a frame the hypervisor allocated for the IOMMU.
        unsafe { crate::phys::write(addr, &bytes) };
    }

    /// A quadword of a frame of ours that the IOMMU writes.
    fn get(addr: u64) -> u64 {
        // SAFETY: a frame the hypervisor allocated for the IOMMU.
        unsafe { core::ptr::read_volatile(addr as *const u64) }
    }

    impl Unit {
        /// Takes the AMD IOMMU whose registers are at `base`: a device
        /// table in which every device is blocked, then on, then its
        /// caches emptied and a completion waited for (the proof it runs).
        /// `ioapics`: the IOAPICs whose messages it remaps (`attach`).
        pub fn take(
            base: u64,
            ioapics: [Option<IoApicSource>; MAX_IOAPICS],
        ) -> Result<Self, IommuError> {
            if base + 0x4000 > crate::phys::IDENTITY_LIMIT {
                return Err(IommuError::Unreachable);
            }
            // 2 MiB: one large frame.
            let large = crate::mm::FrameSize::Large;
            let (table, _) = crate::mm::alloc_zeroed_on(crate::mm::home(), large)
                .ok_or(IommuError::OutOfMemory)?;
            let frame = || crate::mm::alloc_zeroed().ok_or(IommuError::OutOfMemory);
            const _: () = assert!(MAX_IOAPICS * IOAPIC_TABLE_BYTES <= 2 << 20);
            let (ioapic_tables, _) = crate::mm::alloc_zeroed_on(crate::mm::home(), large)
                .ok_or(IommuError::OutOfMemory)?;
            let mut unit = Self {
                base,
                table,
                commands: frame()?,
                events: frame()?,
                done: frame()?,
                sequence: 0,
                command_tail: 0,
                ioapics,
                ioapic_tables,
            };
            for device in 0..DEVICES {
                put(table + (device * ENTRY) as u64, &blocked_entry(DOMAIN));
            }
            write(base, CONTROL, 0);
            write(base, DEVICE_TABLE_BASE, device_table_base(table));
            write(base, COMMAND_BUFFER_BASE, ring_base(unit.commands));
            write(base, EVENT_LOG_BASE, ring_base(unit.events));
            write(base, CONTROL, IOMMU_EN | EVENT_LOG_EN | CMD_BUF_EN);
            unit.invalidate()?;
            if read(base, STATUS) & CMD_BUF_RUN == 0 {
                return Err(IommuError::NotRunning);
            }
            Ok(unit)
        }

        /// Gives every device the table at `root` (`translating_entry`),
        /// and the IOAPICs their interrupt remapping tables, all entries
        /// refusing until `remap_ioapic` fills them; then empties the
        /// caches: the devices given the guest's table.
        pub fn attach(&mut self, root: u64) -> Result<u32, IommuError> {
            let mut given = 0;
            for device in 0..DEVICES {
                let ioapic =
                    |s: &Option<IoApicSource>| s.is_some_and(|s| s.device == device as u16);
                let entry = match self.ioapics.iter().position(ioapic) {
                    Some(i) => ioapic_entry(self.ioapic_table(i), DOMAIN),
                    None => {
                        given += 1;
                        translating_entry(root, DOMAIN)
                    }
                };
                put(self.table + (device * ENTRY) as u64, &entry);
            }
            self.invalidate()?;
            Ok(given)
        }

        fn ioapic_table(&self, ioapic: usize) -> u64 {
            self.ioapic_tables + (ioapic * IOAPIC_TABLE_BYTES) as u64
        }

        /// The place of the IOAPIC with id `id` here, if this IOMMU
        /// remaps its messages.
        pub fn remaps(&self, id: u8) -> Option<usize> {
            self.ioapics
                .iter()
                .position(|s| s.is_some_and(|s| s.id == id))
        }

        /// Sets the remapping of the message with index `index` of the
        /// IOAPIC with id `id` to `entry` (`irte`), then empties the caches.
        pub fn remap_ioapic(&mut self, id: u8, index: usize, entry: u32) {
            let Some(ioapic) = self.remaps(id).filter(|_| index < IOAPIC_TABLE_ENTRIES) else {
                return;
            };
            let at = self.ioapic_table(ioapic) + (index * 4) as u64;
            // SAFETY: an entry of a table the hypervisor allocated for the
            // IOMMU, written whole: it reads the entry, never half of one.
            unsafe { core::ptr::write_volatile(at as *mut u32, entry) };
            let _ = self.invalidate();
        }

        /// Empties every cached translation and device entry and waits
        /// until it is done: after it, no device uses what a table held
        /// before.
        pub fn invalidate(&mut self) -> Result<(), IommuError> {
            self.sequence += 1;
            let sequence = self.sequence;
            self.command(&invalidate_all());
            self.command(&completion_wait(self.done, sequence));
            write(self.base, COMMAND_TAIL, self.command_tail);
            let stored = (0..10_000_000).any(|_| {
                core::hint::spin_loop();
                get(self.done) == sequence
            });
            if stored {
                Ok(())
            } else {
                Err(IommuError::NotRunning)
            }
        }

        /// Puts a command at the tail (published by `invalidate`'s write
        /// of COMMAND_TAIL); the ring never fills: each `invalidate` waits
        /// for its two commands.
        fn command(&mut self, words: &[u64; 2]) {
            put(self.commands + self.command_tail, words);
            self.command_tail = (self.command_tail + 16) % RING_BYTES;
        }

        /// The DMA faults logged since the last call, each given to `seen`.
        pub fn faults(&mut self, seen: &mut dyn FnMut(Fault)) {
            let tail = read(self.base, EVENT_TAIL) % RING_BYTES;
            let mut head = read(self.base, EVENT_HEAD) % RING_BYTES;
            while head != tail {
                let at = self.events + head;
                if let Some(f) = fault([get(at), get(at + 8)]) {
                    seen(f);
                }
                head = (head + 16) % RING_BYTES;
            }
            write(self.base, EVENT_HEAD, head);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blocked_device_has_a_valid_entry_without_permissions() {
        let [q0, q1, q2, q3] = blocked_entry(DOMAIN);
        assert_eq!(q0 & 3, 3, "V and TV");
        assert_eq!((q0 >> 9) & 7, 0, "mode 0: no tables");
        assert_eq!(q0 & (3 << 61), 0, "neither IR nor IW");
        assert_eq!(q1 & 0xffff, 1, "domain 1");
        assert_eq!(q1 & 0x100, 0, "QEMU 7.2 takes bit 8 for reserved");
        assert_eq!(
            (q2, q3),
            (0, 0),
            "interrupts not remapped; the last quadword reserved"
        );
    }

    #[test]
    fn bases_and_commands_are_encoded_as_the_specification_says() {
        assert_eq!(
            device_table_base(0x40_0000),
            0x40_0000 | 0x1ff,
            "2 MiB: 512 pages"
        );
        assert_eq!(ring_base(0x1000), 0x0800_0000_0000_1000, "256 entries");
        assert_eq!(invalidate_all(), [0x8000_0000_0000_0000, 0]);
        assert_eq!(completion_wait(0x12_3458, 7), [0x1000_0000_0012_3459, 7]);
    }

    #[test]
    fn a_translating_entry_walks_four_levels_and_remaps_every_interrupt_to_nothing() {
        let [q0, q1, q2, q3] = translating_entry(0x1234_5000, DOMAIN);
        assert_eq!(q0 & 3, 3, "V and TV");
        assert_eq!((q0 >> 9) & 7, 4, "four levels, as the nested table");
        assert_eq!(q0 & 0x000f_ffff_ffff_f000, 0x1234_5000, "its root");
        assert_eq!(q0 >> 61 & 3, 3, "IR and IW: each leaf says");
        assert_eq!(q1, 1, "domain 1");
        assert_eq!(q2 & 1, 1, "IV: interrupts remapped");
        assert_eq!((q2 >> 60) & 3, 0, "IntCtl 0: fixed and arbitrated aborted");
        assert_eq!(
            q2 & (0xcf << 56),
            0,
            "INIT, ExtINT, NMI, LINT0 and LINT1 not passed"
        );
        assert_eq!((q2 >> 1) & 0xf, 0, "no interrupt table");
        assert_eq!(q3, 0);
    }

    #[test]
    fn an_ioapic_entry_remaps_its_messages_through_a_whole_table() {
        let [q0, q1, q2, q3] = ioapic_entry(0x40_2000, DOMAIN);
        assert_eq!((q0, q1, q3), (3, 1, 0), "valid, no DMA, domain 1");
        assert_eq!(q2 & 1, 1, "IV");
        assert_eq!((q2 >> 1) & 0xf, 11, "2048 entries");
        assert_eq!(q2 & 0x000f_ffff_ffff_ffc0, 0x40_2000, "the table");
        assert_eq!((q2 >> 60) & 3, 2, "IntCtl 10b: remapped");
        assert_eq!(q2 & (0xcf << 56), 0, "INIT, ExtINT, NMI, LINT not passed");
        use crate::chipset::interrupts::Message;
        let m = Message {
            vector: 0x31,
            destination: 1,
            logical: false,
            lowest_priority: true,
        };
        assert_eq!(irte(Some(m)), 1 | (1 << 2) | (1 << 8) | (0x31 << 16));
        assert_eq!(irte(None), 0, "RemapEn clear: refused");
    }

    #[test]
    fn page_faults_are_read_from_the_event_log() {
        // IO_PAGE_FAULT by 00:03.0 for a write at 0x2000_0000 (RW, PR clear).
        let write = [(2 << 60) | (1 << 53) | 0x18, 0x2000_0000];
        assert_eq!(
            fault(write),
            Some(Fault {
                device: 0x18,
                address: 0x2000_0000,
                write: true
            })
        );
        assert_eq!(
            fault([2 << 60 | 0x18, 0x1000]).map(|f| f.write),
            Some(false)
        );
        assert_eq!(
            fault([1 << 60, 0]),
            None,
            "ILLEGAL_DEV_TABLE_ENTRY: no DMA fault"
        );
    }
}
