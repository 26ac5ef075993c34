//! The guest-memory protocol (docs/numa.md, "The protocol") on the fake
//! host: host tests of each transition, and, built with `--cfg loom`, the
//! model checker driving them against each other. The fake catches a frame
//! freed twice, freed while a table maps it, or handed out while in use;
//! the models' vCPUs cache translations until they are flushed, as CPUs do.

use std::vec::Vec;

use super::fake::Fake;
use super::host::Host;
use super::memory::{GuestMemory, Placer};
use crate::ept::format::{Ept, Npt};
use crate::ept::{Flush, Format, PageSize};
use crate::numa::policy::{Chosen, FirstTouch};
use crate::vcpu::Backing;

const PAGE: u64 = 4096;
const LARGE: u64 = 2 << 20;

fn memory<F: Format>(host: &Fake, size: u64, page: PageSize) -> GuestMemory<F, Fake> {
    let placer = Placer::new(Chosen::FirstTouch(FirstTouch), page);
    GuestMemory::on(host.clone(), size, placer).expect("a table")
}

/// A flush that needs no CPU (nobody runs the guest in these host tests).
fn nobody(_: Flush) {}

fn release_inside_a_large_page_keeps_the_rest<F: Format>() {
    let host = Fake::new(2);
    let mem = memory::<F>(&host, 8 << 20, PageSize::Large);
    // The loader fills a 2 MiB page, each 4 KiB page with its own number.
    for i in 0..512u64 {
        assert!(mem.write(LARGE + i * PAGE, &(i + 1).to_le_bytes()));
    }
    assert_eq!(mem.backing(LARGE).map(|b| b.1), Some(PageSize::Large));
    let owner = mem.own().expect("nobody else");
    assert_eq!(
        mem.release(&owner, LARGE + 7 * PAGE + 12, &mut nobody),
        Ok(true)
    );
    for i in 0..512u64 {
        let mut b = [0u8; 8];
        assert!(mem.read(LARGE + i * PAGE, &mut b));
        let want = if i == 7 { 0 } else { i + 1 };
        assert_eq!(u64::from_le_bytes(b), want, "page {i}");
    }
    assert_eq!(mem.host_address(LARGE + 7 * PAGE), None, "released");
    assert_eq!(mem.placer.pages(), 511, "the other pages stay backed");
    assert_eq!(host.used(), 511, "one frame given back, once");
    // Released again: nothing there.
    assert_eq!(
        mem.release(&owner, LARGE + 7 * PAGE, &mut nobody),
        Ok(false)
    );
}

#[test]
fn release_inside_a_2m_page_keeps_the_other_511_pages_on_both_formats() {
    release_inside_a_large_page_keeps_the_rest::<Ept>();
    release_inside_a_large_page_keeps_the_rest::<Npt>();
}

#[test]
fn a_migration_moves_the_contents_and_frees_the_old_frame_once() {
    let host = Fake::new(2);
    let mem = memory::<Npt>(&host, 1 << 20, PageSize::Small);
    assert!(mem.write(0x5000, b"moved"));
    let (old, _) = mem.backing(0x5000).unwrap();
    let owner = mem.own().unwrap();
    let mut flushes = Vec::new();
    let from = mem.migrate(&owner, 0x5000, 1, &mut |f| flushes.push(f));
    assert_eq!(from, Ok(Some(0)));
    assert_eq!(flushes.len(), 2, "after the protect and after the remap");
    let (new, _) = mem.backing(0x5000).unwrap();
    assert_eq!((host.node_of(old), host.node_of(new)), (Some(0), Some(1)));
    let mut b = [0u8; 5];
    assert!(mem.read(0x5000, &mut b));
    assert_eq!(&b, b"moved");
    assert_eq!(host.used(), 1);
    assert_eq!(mem.migrate(&owner, 0x5000, 1, &mut nobody), Ok(None));
}

#[test]
fn only_one_owner_changes_frames_at_a_time() {
    let host = Fake::new(1);
    let mem = memory::<Ept>(&host, 1 << 20, PageSize::Small);
    let owner = mem.own();
    assert!(owner.is_some());
    assert!(mem.own().is_none(), "held");
    drop(owner);
    assert!(mem.own().is_some(), "given back");
}

#[test]
fn a_move_to_a_full_node_fails_and_leaves_the_page_writable_where_it_was() {
    let host = Fake::new(2);
    let mem = memory::<Ept>(&host, 1 << 20, PageSize::Small);
    assert!(mem.write(0x3000, b"x"));
    host.set_full(1, true);
    let owner = mem.own().unwrap();
    assert!(mem.migrate(&owner, 0x3000, 1, &mut nobody).is_err());
    let (_, access) = mem.table.translate(&mut host.tables(None), 0x3000).unwrap();
    assert!(access.write, "never protected");
    assert_eq!(host.used(), 1);
}

#[test]
fn released_then_touched_pages_get_the_freed_frame_and_read_zeros() {
    let host = Fake::new(1);
    let mem = memory::<Ept>(&host, 1 << 20, PageSize::Small);
    assert!(mem.write(0x1000, b"secret"));
    let (frame, _) = mem.backing(0x1000).unwrap();
    let owner = mem.own().unwrap();
    let mut flushed = false;
    assert_eq!(
        mem.release(&owner, 0x1000, &mut |_| flushed = true),
        Ok(true)
    );
    assert!(flushed, "every CPU forgets the page before its frame goes");
    mem.back(0x2000, 0).unwrap();
    assert_eq!(mem.backing(0x2000).map(|b| b.0), Some(frame), "reused");
    let mut b = [0u8; 6];
    assert!(mem.read(0x2000, &mut b));
    assert_eq!(b, [0; 6]);
}

/// The models: each runs every interleaving of its threads the checker
/// reaches within its bound (`LOOM_MAX_PREEMPTIONS`, 2 by default here).
#[cfg(loom)]
mod models {
    use std::collections::HashMap;
    use std::sync::Arc;

    use loom::sync::atomic::{AtomicU64, Ordering::SeqCst};
    use loom::thread;

    use super::*;
    use crate::ept::{Access, MapError, PageTable};
    use crate::vm::memory::Owner;

    /// A fake host and a table of `F` with `gpa` mapped to `frame` (of
    /// `size`), for the engine's models.
    fn table_with<F: Format>(gpa: u64, frame: u64, size: PageSize) -> (Fake, Arc<PageTable<F>>) {
        let host = Fake::new(1);
        let pt = Arc::new(PageTable::<F>::new(&mut host.tables(None)).unwrap());
        let _ = pt.map(&mut host.tables(None), gpa, frame, size, Access::ALL);
        (host, pt)
    }

    fn check(f: impl Fn() + Sync + Send + 'static) {
        let mut b = loom::model::Builder::new();
        if b.preemption_bound.is_none() {
            b.preemption_bound = Some(2);
        }
        b.max_branches = 100_000;
        b.check(f);
    }

    /// Two CPUs that fault in one empty region at once both build the
    /// missing tables: one each level wins, the other's goes back, both
    /// pages are mapped.
    #[test]
    fn faults_in_one_empty_region_lose_no_table() {
        check(|| {
            let host = Fake::new(1);
            let pt = Arc::new(PageTable::<Ept>::new(&mut host.tables(None)).unwrap());
            let (h, p) = (host.clone(), pt.clone());
            let other = thread::spawn(move || {
                p.map(
                    &mut h.tables(None),
                    0x1000,
                    0xb000,
                    PageSize::Small,
                    Access::ALL,
                )
            });
            let mine = pt.map(
                &mut host.tables(None),
                0x2000,
                0xc000,
                PageSize::Small,
                Access::ALL,
            );
            assert_eq!(mine, Ok(Flush::None));
            assert_eq!(other.join().unwrap(), Ok(Flush::None));
            let t = |gpa| pt.translate(&mut host.tables(None), gpa).map(|t| t.0);
            assert_eq!((t(0x1000), t(0x2000)), (Some(0xb000), Some(0xc000)));
            assert_eq!(host.tables_used(), 4, "the root and one table a level");
        });
    }

    /// A remap that expects the frame it replaces never takes a frame
    /// another change put there: a page released and backed again keeps
    /// its new frame.
    #[test]
    fn a_remap_never_replaces_a_frame_it_did_not_expect() {
        check(|| {
            let (host, pt) = table_with::<Npt>(0x5000, 0xa000, PageSize::Small);
            let mut t = host.tables(None);
            let (h, p) = (host.clone(), pt.clone());
            let mover = thread::spawn(move || p.remap(&mut h.tables(None), 0x5000, 0xa000, 0xc000));
            // Released, then backed again with another frame.
            let gone = pt.unmap(&mut t, 0x5000).map(|u| u.0);
            let _ = pt.map(&mut t, 0x5000, 0xd000, PageSize::Small, Access::ALL);
            let moved = mover.join().unwrap();
            assert_eq!(pt.translate(&mut t, 0x5000).map(|t| t.0), Some(0xd000));
            // The frame the release took out is the mover's if it came first.
            let want = if moved.is_ok() { 0xc000 } else { 0xa000 };
            assert_eq!(gone, Some(want));
        });
    }

    /// Sets the dirty bit of the leaf that maps `gpa`, as the CPU's walk
    /// does when it writes the page (a locked update of the entry it read).
    fn cpu_writes(t: &mut impl crate::ept::TableMemory, root: u64, gpa: u64) {
        'walk: loop {
            let mut table = root;
            for level in (0..4).rev() {
                let i = ((gpa >> (12 + 9 * level)) & 0x1ff) as usize;
                let entry = t.read(table, i);
                if level == 0 || (level == 1 && Ept::is_large(entry)) {
                    let dirty = entry | Ept::ACCESSED | Ept::DIRTY;
                    if t.cas(table, i, entry, dirty).is_err() {
                        continue 'walk; // changed under the walk: walk again
                    }
                    return;
                }
                table = Ept::frame(entry);
            }
        }
    }

    /// A split made while a CPU writes the 2 MiB page keeps the write's
    /// dirty bit (sampling by bits sees every write): the split copies the
    /// bits of the leaf it replaces, and replaces only the leaf it read.
    #[test]
    fn a_split_keeps_a_concurrent_write_seen() {
        check(|| {
            let (host, pt) = table_with::<Ept>(LARGE, 4 * LARGE, PageSize::Large);
            let mut t = host.tables(None);
            let (h, root) = (host.clone(), pt.root());
            let cpu =
                thread::spawn(move || cpu_writes(&mut h.tables(None), root, LARGE + 5 * PAGE));
            assert!(pt.split(&mut t, LARGE).is_ok());
            cpu.join().unwrap();
            let seen = pt.accessed_dirty(&mut t, LARGE + 5 * PAGE);
            assert_eq!(seen, Some((true, true)), "the write is seen");
            let (frame, size, _) = pt.mapping(&mut t, LARGE + 5 * PAGE).unwrap();
            assert_eq!((frame, size), (4 * LARGE + 5 * PAGE, PageSize::Small));
        });
    }

    /// Sampling never gives write access back to a page a migration made
    /// read-only, whichever comes first.
    #[test]
    fn sampling_never_makes_a_protected_page_writable() {
        check(|| {
            let (host, pt) = table_with::<Npt>(0x5000, 0xa000, PageSize::Small);
            let mut t = host.tables(None);
            let (h, p) = (host.clone(), pt.clone());
            let sampler = thread::spawn(move || {
                let mut t = h.tables(None);
                let _ = p.revoke(&mut t, 0x5000);
                p.hint(&mut t, 0x5000, true)
            });
            assert!(pt.protect(&mut t, 0x5000, false).is_ok());
            let _ = sampler.join().unwrap();
            let (frame, _, access) = pt.mapping(&mut t, 0x5000).unwrap();
            assert_eq!(frame, 0xa000);
            let (entry, _) = pt.entry(&mut t, 0x5000).unwrap();
            assert!(!access.write && Npt::access(entry).write == access.write);
        });
    }

    /// The vCPUs of a model: each caches the translations it used until a
    /// shootdown makes it flush, which it does between accesses.
    struct Cpus {
        generation: AtomicU64,
        /// Per vCPU: the generation it flushed for (MAX: it ended).
        acked: [AtomicU64; 2],
    }

    struct Vcpu<'a> {
        i: usize,
        cpus: &'a Cpus,
        tlb: HashMap<u64, (u64, bool)>,
        seen: u64,
    }

    impl<'a> Vcpu<'a> {
        fn new(i: usize, cpus: &'a Cpus) -> Self {
            Fake::run_on(i);
            Self {
                i,
                cpus,
                tlb: HashMap::new(),
                seen: 0,
            }
        }

        fn service(&mut self) {
            let g = self.cpus.generation.load(SeqCst);
            if g != self.seen {
                self.tlb.clear();
                self.seen = g;
                self.cpus.acked[self.i].store(g, SeqCst);
            }
        }

        /// Every vCPU flushes; waits for them, serving itself meanwhile.
        fn shootdown(&mut self) {
            let g = self.cpus.generation.fetch_add(1, SeqCst) + 1;
            loop {
                self.service();
                if self.cpus.acked.iter().all(|a| a.load(SeqCst) >= g) {
                    return;
                }
                thread::yield_now();
            }
        }

        /// Reads the page at `gpa`'s tag, or writes `write` there, as a
        /// CPU does: through its cached translation, else a walk (backing
        /// a missing page); a write to a read-only page faults and is tried
        /// again (the migration under way ends).
        fn access(&mut self, mem: &GuestMemory<Npt, Fake>, gpa: u64, write: Option<u64>) -> u64 {
            let host = mem.host();
            let page = gpa & !(PAGE - 1);
            loop {
                self.service();
                if let Some(&(frame, writable)) = self.tlb.get(&page) {
                    match write {
                        None => return host.tag(frame),
                        Some(tag) if writable => {
                            host.set_tag(frame, tag);
                            return tag;
                        }
                        Some(_) => {
                            // Faults: CPUs keep no translation that faults.
                            self.tlb.remove(&page);
                            thread::yield_now();
                            continue;
                        }
                    }
                }
                match mem.table.translate(&mut host.tables(None), page) {
                    Some((frame, a)) if a.read => {
                        self.tlb.insert(page, (frame, a.write));
                    }
                    Some(_) => thread::yield_now(),
                    None => {
                        let _ = mem.back(page, self.i);
                    }
                }
            }
        }

        /// The right to change where pages are, waited for while serving
        /// flush requests (as `Vm::exclusive` does).
        fn own<'m>(&mut self, mem: &'m GuestMemory<Npt, Fake>) -> Owner<'m> {
            loop {
                if let Some(owner) = mem.own() {
                    return owner;
                }
                self.service();
                thread::yield_now();
            }
        }

        /// A change's flush: a shootdown, when it needs one.
        fn flush(&mut self, f: Flush) {
            if f != Flush::None {
                self.shootdown();
            }
        }

        fn end(&self) {
            self.cpus.acked[self.i].store(u64::MAX, SeqCst);
        }
    }

    fn machine(nodes: usize) -> (Fake, Arc<GuestMemory<Npt, Fake>>, Arc<Cpus>) {
        let host = Fake::new(nodes);
        let mem = Arc::new(memory::<Npt>(&host, 1 << 20, PageSize::Small));
        let cpus = Arc::new(Cpus {
            generation: AtomicU64::new(0),
            acked: [AtomicU64::new(0), AtomicU64::new(0)],
        });
        (host, mem, cpus)
    }

    /// A vCPU writes a page twice while another moves it to its node: no
    /// write is lost (the page is read-only while it is copied, and every
    /// CPU has flushed before the copy and before the old frame goes).
    #[test]
    fn a_migration_loses_no_concurrent_write() {
        check(|| {
            let (host, mem, cpus) = machine(2);
            assert!(mem.write(0x3000, &[0]));
            let (m, c) = (mem.clone(), cpus.clone());
            let writer = thread::spawn(move || {
                let mut v = Vcpu::new(0, &c);
                v.access(&m, 0x3000, Some(1));
                v.access(&m, 0x3000, Some(2));
                v.end();
            });
            let mut v = Vcpu::new(1, &cpus);
            let owner = mem.own().unwrap();
            let moved = mem.migrate(&owner, 0x3000, 1, &mut |f| v.flush(f));
            assert_eq!(moved, Ok(Some(0)));
            v.end();
            writer.join().unwrap();
            let (frame, _) = mem.backing(0x3000).unwrap();
            assert_eq!(host.node_of(frame), Some(1));
            assert_eq!(host.tag(frame), 2, "the last write is in the moved page");
            assert_eq!(host.used(), 1);
        });
    }

    /// One vCPU releases a page and touches another while a second moves
    /// the first (the `release` hypercall against adaptive placement): each
    /// frame is freed once, after it left every table, and no two pages
    /// share one.
    #[test]
    fn release_and_migration_of_one_page_share_and_free_no_frame_twice() {
        check(|| {
            let (host, mem, cpus) = machine(2);
            assert!(mem.write(0x3000, &[0]));
            let (m, c) = (mem.clone(), cpus.clone());
            let releaser = thread::spawn(move || {
                let mut v = Vcpu::new(0, &c);
                let owner = v.own(&m);
                let released = m.release(&owner, 0x3000, &mut |f| v.flush(f));
                drop(owner);
                assert_eq!(released, Ok(true));
                v.access(&m, 0x4000, Some(7));
                v.end();
            });
            let mut v = Vcpu::new(1, &cpus);
            let owner = v.own(&mem);
            let moved = mem.migrate(&owner, 0x3000, 1, &mut |f| v.flush(f));
            drop(owner);
            v.end();
            releaser.join().unwrap();
            assert!(matches!(
                moved,
                Ok(Some(0)) | Err(crate::vcpu::BackError::Map(MapError::NotMapped))
            ));
            assert_eq!(mem.backing(0x3000), None, "released");
            let (frame, _) = mem.backing(0x4000).unwrap();
            assert_eq!(host.tag(frame), 7);
            assert_eq!(host.used(), 1, "one page backed, one frame in use");
        });
    }
}
