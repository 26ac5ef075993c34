//! AMD-Vi (AMD I/O Virtualization Technology specification 48882): the
//! device table (one 256-bit entry per PCI requester id), the command
//! buffer and the event log, in memory the IOMMU reads; its registers in
//! MMIO. The encodings are pure and tested on the host; `take` programs the
//! hardware.

/// MMIO registers (spec 3.4).
const DEVICE_TABLE_BASE: u64 = 0x0000;
const COMMAND_BUFFER_BASE: u64 = 0x0008;
const EVENT_LOG_BASE: u64 = 0x0010;
const CONTROL: u64 = 0x0018;
const COMMAND_TAIL: u64 = 0x2008;
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

/// A device table entry that lets its device reach nothing: valid (V),
/// translation valid (TV), no translation levels (mode 0: addresses pass
/// untranslated) and neither read (IR) nor write (IW) permission, so every
/// DMA faults. Interrupts (IV clear) are not remapped: the device's MSIs are
/// the hypervisor's to stop (bus mastering off, `chipset::pci`).
pub fn blocked_entry(domain: u16) -> [u64; 4] {
    const V: u64 = 1 << 0;
    const TV: u64 = 1 << 1;
    [V | TV, u64::from(domain), 0, 0]
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

pub use hardware::take;

/// The hardware: its registers and the memory it reads.
mod hardware {
    use super::*;
    use crate::iommu::{IommuError, Taken};

    /// A register of the IOMMU at `base`.
    fn register(base: u64, offset: u64) -> *mut u64 {
        (base + offset) as *mut u64
    }

    fn write(base: u64, offset: u64, value: u64) {
        // SAFETY: the IOMMU's own registers (IVRS), below 4 GiB where the
        // direct map maps them; the guest never reaches them.
        unsafe { core::ptr::write_volatile(register(base, offset), value) }
    }

    fn read(base: u64, offset: u64) -> u64 {
        // SAFETY: as in `write`.
        unsafe { core::ptr::read_volatile(register(base, offset)) }
    }

    /// Puts `words` in physical memory at `addr`.
    fn put(addr: u64, words: &[u64]) {
        let bytes: heapless::Vec<u8, 32> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        // SAFETY: a frame the hypervisor allocated for the IOMMU.
        unsafe { crate::phys::write(addr, &bytes) };
    }

    /// Takes the AMD IOMMU whose registers are at `base`: a device table in
    /// which every device is blocked, then on, then its caches emptied, and
    /// a completion waited for (the proof it runs).
    pub fn take(base: u64) -> Result<Taken, IommuError> {
        if base + 0x4000 > crate::phys::IDENTITY_LIMIT {
            return Err(IommuError::Unreachable);
        }
        // 2 MiB: one large frame.
        let large = crate::mm::FrameSize::Large;
        let (table, _) =
            crate::mm::alloc_zeroed_on(crate::mm::home(), large).ok_or(IommuError::OutOfMemory)?;
        let commands = crate::mm::alloc_zeroed().ok_or(IommuError::OutOfMemory)?;
        let events = crate::mm::alloc_zeroed().ok_or(IommuError::OutOfMemory)?;
        let done = crate::mm::alloc_zeroed().ok_or(IommuError::OutOfMemory)?;
        for device in 0..DEVICES {
            put(table + (device * ENTRY) as u64, &blocked_entry(1));
        }
        write(base, CONTROL, 0);
        write(base, DEVICE_TABLE_BASE, device_table_base(table));
        write(base, COMMAND_BUFFER_BASE, ring_base(commands));
        write(base, EVENT_LOG_BASE, ring_base(events));
        write(base, CONTROL, IOMMU_EN | EVENT_LOG_EN | CMD_BUF_EN);
        const DONE: u64 = 0x5c41_e5ad_0001;
        put(commands, &invalidate_all());
        put(commands + 16, &completion_wait(done, DONE));
        write(base, COMMAND_TAIL, 32);
        let stored = (0..1_000_000).any(|_| {
            // SAFETY: `done` is a frame of ours, which the IOMMU writes.
            let v = unsafe { core::ptr::read_volatile(done as *const u64) };
            core::hint::spin_loop();
            v == DONE
        });
        if !stored || read(base, STATUS) & CMD_BUF_RUN == 0 {
            return Err(IommuError::NotRunning);
        }
        Ok(Taken::Blocking {
            devices: DEVICES as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blocked_device_has_a_valid_entry_without_permissions() {
        let [q0, q1, q2, q3] = blocked_entry(1);
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
}
