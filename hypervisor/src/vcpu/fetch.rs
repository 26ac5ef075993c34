//! Where the guest's code is, for exits that do not say how long their
//! instruction is (AMD without nRIP, as under QEMU's TCG): a walk of the
//! guest's page tables to the host frame of a code page, remembered with the
//! table entries it read (their host addresses and values). While the key
//! (CR3, page, paging mode) and every one of those entries are unchanged, a
//! new walk would read the same entries and end at the same frame, so a loop
//! of exits from one code page costs a few compares instead of a walk. The
//! second-level mapping of guest RAM only ever gains pages today; whoever
//! remaps it (migration) must `forget` the walk.

use super::decode;

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
    /// Host address and value of each table entry the last walk read.
    entries: heapless::Vec<(u64, u64), 4>,
}

impl CodeWalk {
    /// The host frame backing the page `key` names: remembered when still
    /// valid, walked otherwise. `to_host` translates guest-physical to
    /// host-physical addresses, `read` reads a host quadword.
    pub fn frame(
        &mut self,
        key: Key,
        to_host: impl Fn(u64) -> Option<u64>,
        read: impl Fn(u64) -> Option<u64>,
    ) -> Option<u64> {
        if let Some((k, frame)) = self.last
            && k == key
            && self
                .entries
                .iter()
                .all(|&(at, value)| read(at) == Some(value))
        {
            return Some(frame);
        }
        self.forget();
        let entries = core::cell::RefCell::new(heapless::Vec::new());
        let gpa = decode::translate(
            |gpa| {
                let at = to_host(gpa)?;
                let value = read(at)?;
                let _ = entries.borrow_mut().push((at, value)); // four levels: room for each
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
    /// linear 0x8000 through four levels at 0x1000..0x4000.
    struct Machine {
        memory: RefCell<HashMap<u64, u64>>,
        reads: Cell<usize>,
    }

    const OFFSET: u64 = 0x100_0000;

    impl Machine {
        fn new() -> Self {
            let m = HashMap::from([
                (0x1000 + OFFSET, 0x2003),
                (0x2000 + OFFSET, 0x3003),
                (0x3000 + OFFSET, 0x4003),
                (0x4000 + 8 * 8 + OFFSET, 0x8003),
            ]);
            Self {
                memory: RefCell::new(m),
                reads: Cell::new(0),
            }
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
                    self.reads.set(self.reads.get() + 1);
                    self.memory.borrow().get(&hpa).copied().or(Some(0))
                },
            )
        }
    }

    #[test]
    fn a_walk_is_reused_while_its_entries_hold() {
        let m = Machine::new();
        let mut w = CodeWalk::default();
        assert_eq!(m.frame(&mut w, 0x1000), Some(0x8000 + OFFSET));
        assert_eq!(m.reads.get(), 4, "a walk reads four entries");
        assert_eq!(m.frame(&mut w, 0x1000), Some(0x8000 + OFFSET));
        assert_eq!(m.reads.get(), 8, "a reuse re-reads them, nothing else");
        // The guest remaps its code page: the next fetch walks again.
        m.memory
            .borrow_mut()
            .insert(0x4000 + 8 * 8 + OFFSET, 0x9003);
        assert_eq!(m.frame(&mut w, 0x1000), Some(0x9000 + OFFSET));
        // Another CR3 is another walk, which finds nothing there.
        assert_eq!(m.frame(&mut w, 0x5000), None);
        assert_eq!(m.frame(&mut w, 0x1000), Some(0x9000 + OFFSET));
    }
}
