//! A fake host memory for host tests and the model checker (`loom`): frames
//! on nodes, handed out and taken back with every misuse caught at once (a
//! frame freed twice, freed while a table still maps it, or never handed
//! out), their contents (bytes, and a tag per 4 KiB that the model's vCPUs
//! write), and tables whose entries are the checker's atomics. A freed
//! frame is the next one handed out, so that a frame used after its free
//! shows up as two pages sharing it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::vec::Vec;

use super::host::Host;
use crate::ept::{PageSize, TableMemory};
use crate::sync::{AtomicU64, Ordering};

const PAGE: u64 = 4096;
const LARGE: u64 = 2 << 20;
/// Node n's frames are at (n + 1) << 40; tables at `TABLES`.
const NODE_SHIFT: u32 = 40;
const TABLES: u64 = 0xf << 44;
/// The frame bits of an entry, in both formats.
const FRAME: u64 = 0x000f_ffff_ffff_f000;
/// The page-size bit of a 2 MiB leaf (the engine sets it in no other entry).
const LARGE_LEAF: u64 = 1 << 7;

/// What an entry holds, for `Frames::refs`.
fn held(entry: u64) -> (u64, bool) {
    (entry & FRAME, entry & LARGE_LEAF != 0)
}

#[derive(Default)]
struct Frames {
    /// Per node: 4 KiB frames given back (the last first), and the next
    /// fresh address.
    free: HashMap<usize, Vec<u64>>,
    next: HashMap<usize, u64>,
    /// Every 4 KiB frame in use.
    used: HashSet<u64>,
    /// Entries (of any table) that hold each frame, by the frame bits of
    /// every entry written and whether it is a 2 MiB leaf: a leaf, or a
    /// table's link.
    refs: HashMap<(u64, bool), usize>,
    next_table: u64,
    tables: HashSet<u64>,
}

struct Page {
    /// What the model's vCPUs write and read.
    tag: AtomicU64,
    bytes: Mutex<Vec<u8>>,
}

struct Inner {
    nodes: usize,
    /// The nodes whose memory is full.
    full: Mutex<HashSet<usize>>,
    frames: Mutex<Frames>,
    /// Table entries, made at their first use.
    entries: Mutex<HashMap<(u64, usize), Arc<AtomicU64>>>,
    pages: Mutex<HashMap<u64, Arc<Page>>>,
}

/// A host of `nodes` nodes; clones share it.
#[derive(Clone)]
pub struct Fake(Arc<Inner>);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(not(loom))]
std::thread_local!(static HERE: core::cell::Cell<usize> = const { core::cell::Cell::new(0) });
#[cfg(loom)]
loom::thread_local!(static HERE: core::cell::Cell<usize> = core::cell::Cell::new(0));

impl Fake {
    pub fn new(nodes: usize) -> Self {
        Self(Arc::new(Inner {
            nodes,
            full: Mutex::new(HashSet::new()),
            frames: Mutex::new(Frames {
                next_table: TABLES,
                ..Frames::default()
            }),
            entries: Mutex::new(HashMap::new()),
            pages: Mutex::new(HashMap::new()),
        }))
    }

    /// The thread calling runs on a CPU of `node` from now on.
    pub fn run_on(node: usize) {
        HERE.with(|h| h.set(node));
    }

    /// `node` has no memory left (or has again).
    pub fn set_full(&self, node: usize, full: bool) {
        let mut f = lock(&self.0.full);
        if full {
            f.insert(node);
        } else {
            f.remove(&node);
        }
    }

    fn page(&self, frame: u64) -> Arc<Page> {
        lock(&self.0.pages)
            .entry(frame & !(PAGE - 1))
            .or_insert_with(|| {
                Arc::new(Page {
                    tag: AtomicU64::new(0),
                    bytes: Mutex::new(vec![0; PAGE as usize]),
                })
            })
            .clone()
    }

    /// The tag of the 4 KiB frame at `frame`.
    pub fn tag(&self, frame: u64) -> u64 {
        self.page(frame).tag.load(Ordering::SeqCst)
    }

    pub fn set_tag(&self, frame: u64, tag: u64) {
        self.page(frame).tag.store(tag, Ordering::SeqCst);
    }

    /// 4 KiB frames in use (tables apart).
    pub fn used(&self) -> usize {
        lock(&self.0.frames).used.len()
    }

    /// Tables in use.
    pub fn tables_used(&self) -> usize {
        lock(&self.0.frames).tables.len()
    }

    fn entry(&self, table: u64, index: usize) -> Arc<AtomicU64> {
        assert!(index < 512, "entry {index} of a table");
        lock(&self.0.entries)
            .entry((table, index))
            .or_insert_with(|| Arc::new(AtomicU64::new(0)))
            .clone()
    }

    fn zero(&self, frame: u64, size: PageSize) {
        for at in (frame..frame + size.bytes()).step_by(PAGE as usize) {
            let p = self.page(at);
            p.tag.store(0, Ordering::SeqCst);
            lock(&p.bytes).fill(0);
        }
    }
}

/// A table's memory in the fake host.
pub struct FakeTables(Fake);

impl TableMemory for FakeTables {
    fn alloc_table(&mut self) -> Option<u64> {
        let table = {
            let mut f = lock(&self.0.0.frames);
            let table = f.next_table;
            f.next_table += PAGE;
            f.tables.insert(table);
            table
        };
        // Zeroed by its maker, before anyone else can see it.
        self.init(table, &|_| 0);
        Some(table)
    }

    fn init(&mut self, table: u64, entry: &dyn Fn(usize) -> u64) {
        let mut entries = lock(&self.0.0.entries);
        let mut f = lock(&self.0.0.frames);
        for j in 0..512 {
            let value = entry(j);
            if value != 0 {
                *f.refs.entry(held(value)).or_default() += 1;
            }
            entries.insert((table, j), Arc::new(AtomicU64::new(value)));
        }
    }

    fn free_table(&mut self, table: u64) {
        let mut f = lock(&self.0.0.frames);
        assert!(f.tables.remove(&table), "table {table:#x} freed twice");
        assert!(
            !f.refs.contains_key(&(table, false)),
            "table {table:#x} freed while linked"
        );
    }

    fn read(&self, table: u64, index: usize) -> u64 {
        self.0.entry(table, index).load(Ordering::Acquire)
    }

    fn cas(&mut self, table: u64, index: usize, old: u64, new: u64) -> Result<(), u64> {
        let entry = self.0.entry(table, index);
        entry.compare_exchange(old, new, Ordering::AcqRel, Ordering::Acquire)?;
        // No other thread runs between the swap and this (the model checker
        // switches threads at its own operations only).
        let mut f = lock(&self.0.0.frames);
        if old != 0 {
            let n = f.refs.get_mut(&held(old)).expect("an entry's frame");
            *n -= 1;
            if *n == 0 {
                f.refs.remove(&held(old));
            }
        }
        if new != 0 {
            *f.refs.entry(held(new)).or_default() += 1;
        }
        Ok(())
    }
}

impl Host for Fake {
    type Tables = FakeTables;

    fn tables(&self, _node: Option<usize>) -> FakeTables {
        FakeTables(self.clone())
    }

    fn alloc_exact(&self, node: usize, size: PageSize) -> Option<u64> {
        if node >= self.0.nodes || lock(&self.0.full).contains(&node) {
            return None;
        }
        let frame = {
            let mut f = lock(&self.0.frames);
            let reused = match size {
                PageSize::Small => f.free.entry(node).or_default().pop(),
                PageSize::Large => None,
            };
            let frame = reused.unwrap_or_else(|| {
                let next = f
                    .next
                    .entry(node)
                    .or_insert(((node as u64) + 1) << NODE_SHIFT);
                let frame = next.next_multiple_of(size.bytes());
                *next = frame + size.bytes();
                frame
            });
            for at in (frame..frame + size.bytes()).step_by(PAGE as usize) {
                assert!(f.used.insert(at), "frame {at:#x} handed out while in use");
            }
            frame
        };
        self.zero(frame, size);
        Some(frame)
    }

    fn alloc_near(&self, node: usize, size: PageSize) -> Option<(u64, usize)> {
        (0..self.0.nodes)
            .map(|i| (node + i) % self.0.nodes)
            .find_map(|n| self.alloc_exact(n, size).map(|f| (f, n)))
    }

    fn free(&self, frame: u64, size: PageSize) -> Option<usize> {
        let mut f = lock(&self.0.frames);
        let node = self.node_of(frame)?;
        for at in (frame..frame + size.bytes()).step_by(PAGE as usize) {
            assert!(f.used.remove(&at), "frame {at:#x} freed twice");
            let large = (at & !(LARGE - 1), true);
            assert!(
                !f.refs.contains_key(&(at, false)) && !f.refs.contains_key(&large),
                "frame {at:#x} freed while a table maps it"
            );
            f.free.entry(node).or_default().push(at);
        }
        Some(node)
    }

    fn node_of(&self, frame: u64) -> Option<usize> {
        let n = (frame >> NODE_SHIFT) as usize;
        (1..=self.0.nodes).contains(&n).then(|| n - 1)
    }

    fn copy(&self, from: u64, to: u64, len: usize) {
        for off in (0..len as u64).step_by(PAGE as usize) {
            let (a, b) = (self.page(from + off), self.page(to + off));
            b.tag.store(a.tag.load(Ordering::SeqCst), Ordering::SeqCst);
            let bytes = lock(&a.bytes).clone();
            *lock(&b.bytes) = bytes;
        }
    }

    fn read(&self, hpa: u64, out: &mut [u8]) -> bool {
        let at = (hpa % PAGE) as usize;
        out.copy_from_slice(&lock(&self.page(hpa).bytes)[at..at + out.len()]);
        true
    }

    fn write(&self, hpa: u64, bytes: &[u8]) {
        let at = (hpa % PAGE) as usize;
        lock(&self.page(hpa).bytes)[at..at + bytes.len()].copy_from_slice(bytes);
    }

    fn here(&self) -> usize {
        HERE.with(|h| h.get())
    }
}
