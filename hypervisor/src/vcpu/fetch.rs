//! Where the guest's code is, for exits that do not say how long their
//! instruction is (AMD without nRIP, as under QEMU's TCG): a walk of the
//! guest's page tables to the host frame of a code page, remembered with the
//! table entries it read (the entries themselves and their values). While the
//! key (CR3, page, paging mode) and every one of those entries are unchanged,
//! a new walk would read the same entries and end at the same frame, so a
//! loop of exits from one code page costs a few loads instead of a walk. The
//! second-level mapping of guest RAM only ever gains pages today; whoever
//! remaps it (migration) must `forget` the walk.

use super::decode;
use core::sync::atomic::{AtomicU64, Ordering};

/// What a walk depends on besides the entries it reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    pub cr3: u64,
    /// The linear address of the page.
    pub page: u64,
    pub paging: bool,
    pub long_mode: bool,
}

#[derive(Debug, Default)]
pub struct CodeWalk {
    last: Option<(Key, u64)>,
    /// Each table entry the last walk read (the guest may write it any
    /// time), and its value then.
    entries: heapless::Vec<(&'static AtomicU64, u64), 4>,
}

impl CodeWalk {
    /// The host frame backing the page `key` names: remembered when still
    /// valid, walked otherwise. `to_host` translates guest-physical to
    /// host-physical addresses, `entry` gives the quadword at a host address.
    /// Inlined: every exit without nRIP checks it.
    #[inline]
    pub fn frame(
        &mut self,
        key: Key,
        to_host: impl Fn(u64) -> Option<u64>,
        entry: impl Fn(u64) -> Option<&'static AtomicU64>,
    ) -> Option<u64> {
        match self.last {
            Some((k, frame))
                if k == key
                    && self
                        .entries
                        .iter()
                        .all(|&(e, value)| e.load(Ordering::Relaxed) == value) =>
            {
                Some(frame)
            }
            _ => self.walk(key, to_host, entry),
        }
    }

    #[inline(never)]
    fn walk(
        &mut self,
        key: Key,
        to_host: impl Fn(u64) -> Option<u64>,
        entry: impl Fn(u64) -> Option<&'static AtomicU64>,
    ) -> Option<u64> {
        self.forget();
        let entries = core::cell::RefCell::new(heapless::Vec::new());
        let gpa = decode::translate(
            |gpa| {
                let e = entry(to_host(gpa)?)?;
                let value = e.load(Ordering::Relaxed);
                let _ = entries.borrow_mut().push((e, value)); // four levels: room for each
                Some(value)
            },
            key.paging,
            key.long_mode,
            key.cr3,
            key.page,
        )?;
        let frame = to_host(gpa & !0xfff)?;
        self.entries = entries.into_inner();
        self.last = Some((key, frame));
        Some(frame)
    }

    /// The next walk starts afresh.
    pub fn forget(&mut self) {
        self.last = None;
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};
    use std::collections::HashMap;

    /// Guest-physical = host-physical + 0x100_0000; tables identity-map
    /// linear 0x8000 through four levels at 0x1000..0x4000. Each quadword
    /// the walk asks for is made once and kept (`entries` hands them out).
    struct Machine {
        memory: RefCell<HashMap<u64, &'static AtomicU64>>,
        lookups: Cell<usize>,
    }

    const OFFSET: u64 = 0x100_0000;

    impl Machine {
        fn new() -> Self {
            let m = Self {
                memory: RefCell::default(),
                lookups: Cell::new(0),
            };
            m.write(0x1000 + OFFSET, 0x2003);
            m.write(0x2000 + OFFSET, 0x3003);
            m.write(0x3000 + OFFSET, 0x4003);
            m.write(0x4000 + 8 * 8 + OFFSET, 0x8003);
            m
        }
        fn entry(&self, hpa: u64) -> &'static AtomicU64 {
            let mut memory = self.memory.borrow_mut();
            memory
                .entry(hpa)
                .or_insert_with(|| Box::leak(Box::new(AtomicU64::new(0))))
        }
        fn write(&self, hpa: u64, value: u64) {
            self.entry(hpa).store(value, Ordering::Relaxed);
        }
        fn frame(&self, w: &mut CodeWalk, cr3: u64) -> Option<u64> {
            let key = Key {
                cr3,
                page: 0x8000,
                paging: true,
                long_mode: true,
            };
            w.frame(
                key,
                |gpa| Some(gpa + OFFSET),
                |hpa| {
                    self.lookups.set(self.lookups.get() + 1);
                    Some(self.entry(hpa))
                },
            )
        }
    }

    #[test]
    fn a_walk_is_reused_while_its_entries_hold() {
        let m = Machine::new();
        let mut w = CodeWalk::default();
        assert_eq!(m.frame(&mut w, 0x1000), Some(0x8000 + OFFSET));
        assert_eq!(m.lookups.get(), 4, "a walk looks up four entries");
        assert_eq!(m.frame(&mut w, 0x1000), Some(0x8000 + OFFSET));
        assert_eq!(m.lookups.get(), 4, "a reuse loads the entries it holds");
        // The guest remaps its code page: the next fetch walks again.
        m.write(0x4000 + 8 * 8 + OFFSET, 0x9003);
        assert_eq!(m.frame(&mut w, 0x1000), Some(0x9000 + OFFSET));
        assert_eq!(m.lookups.get(), 8);
        // Another CR3 is another walk, which finds nothing there.
        assert_eq!(m.frame(&mut w, 0x5000), None);
        assert_eq!(m.frame(&mut w, 0x1000), Some(0x9000 + OFFSET));
    }
}
