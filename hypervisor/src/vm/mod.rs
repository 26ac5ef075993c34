//! The guest machine every CPU enters: its memory, one vCPU per CPU (up to
//! `MAX_VCPUS`), the barrier its vCPUs meet at, and how its run ends: when
//! every vCPU has ended, or, when one fails, with the others stopped at once
//! (kicked out of guest mode).

pub mod bundle;
pub mod dma;
pub mod host;
pub mod image;
pub mod launch;
pub mod memory;
pub mod os;
pub mod platform;
pub mod runtime;
pub mod sampler;
pub mod trapped;

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::Serialize;

use crate::boot::MemoryRegion;
use crate::ept::Format;
use crate::event::{self, Event, Hex};
use crate::mm::FrameSize;
use crate::numa::map;
use crate::numa::topology::MAX_NODES;
use crate::vcpu::io::PortState;
use crate::vcpu::{BackError, Backing, GuestConfig, GuestEnd, MAX_VCPUS, Machine, Trap, Written};
use launch::Start;
use memory::GuestMemory;
use runtime::{RunTime, RunTimePolicy};

/// Where vCPUs meet: it opens when every vCPU that has not ended waits at
/// it. A vCPU that ends lets those waiting for it through.
pub struct Barrier {
    vcpus: usize,
    /// vCPUs waiting, and vCPUs ended: changed together, under the lock.
    state: spin::Mutex<(usize, usize)>,
    /// How many times it opened: waiters watch it change.
    opened: AtomicU64,
}

impl Barrier {
    pub fn new(vcpus: usize) -> Self {
        Self {
            vcpus,
            state: spin::Mutex::new((0, 0)),
            opened: AtomicU64::new(0),
        }
    }

    fn open_if_complete(&self, (waiting, ended): &mut (usize, usize)) {
        if *waiting > 0 && *waiting + *ended >= self.vcpus {
            *waiting = 0;
            self.opened.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Waits until it opens; false when `stop` says to give up first.
    pub fn wait(&self, mut stop: impl FnMut() -> bool) -> bool {
        let opened = {
            let mut state = self.state.lock();
            let opened = self.opened.load(Ordering::SeqCst);
            state.0 += 1;
            self.open_if_complete(&mut state);
            opened
        };
        while self.opened.load(Ordering::SeqCst) == opened {
            if stop() {
                return false;
            }
            core::hint::spin_loop();
        }
        true
    }

    /// A vCPU ended; returns how many have.
    pub fn end(&self) -> usize {
        let mut state = self.state.lock();
        state.1 += 1;
        self.open_if_complete(&mut state);
        state.1
    }

    pub fn ended(&self) -> usize {
        self.state.lock().1
    }
}

pub struct Vm<F: Format> {
    pub config: GuestConfig,
    pub memory: GuestMemory<F>,
    /// Where every vCPU starts (the image says).
    pub start: Start,
    /// Which CPU runs each vCPU (vCPU i on `cpus[i]`).
    pub cpus: heapless::Vec<usize, MAX_VCPUS>,
    barrier: Barrier,
    tlb: AtomicU64,
    /// Per vCPU: the TLB generation it last flushed for, and whether it ended.
    flushed: [AtomicU64; MAX_VCPUS],
    ended: [AtomicBool; MAX_VCPUS],
    failed: AtomicBool,
    stop: AtomicBool,
    attention: AtomicU64,
    /// Called with a CPU index to bring that CPU out of guest mode.
    kick: fn(usize),
    /// An OS guest's: the host's memory map, which says what passes
    /// through (`platform`).
    pub host_memory: Option<heapless::Vec<MemoryRegion, { crate::boot::MAX_REGIONS }>>,
    /// An OS guest's local APIC page (the same address on every CPU).
    pub apic: Option<u64>,
    /// The state of the ports an OS guest reaches through the platform the
    /// hypervisor keeps (`chipset`).
    pub ports: PortState,
    /// Held by the vCPU writing the IOAPICs' registers, with the guest's
    /// redirection entries where they are remapped (`trapped`).
    ioapic_turn: spin::Mutex<trapped::IoApicEntries>,
    /// Per vCPU of an OS guest: the startup vector it was sent, plus 1 (0: none yet).
    startup: [AtomicU64; MAX_VCPUS],
    /// Per vCPU: the ICR's high half as the guest last wrote it.
    icr_high: [AtomicU64; MAX_VCPUS],
    /// Adaptive placement's (`numa.policy=adaptive`).
    pub runtime: Option<RunTimePolicy>,
    /// Whether the guest's devices reach its memory through the IOMMU
    /// (`dma`): its pages are pinned, and every flush empties the IOMMUs'
    /// caches too.
    pub devices_master: bool,
}

impl<F: Format> Vm<F> {
    pub fn new(
        config: GuestConfig,
        (memory, start): (GuestMemory<F>, Start),
        cpus: heapless::Vec<usize, MAX_VCPUS>,
        kick: fn(usize),
    ) -> Self {
        Self {
            config,
            memory,
            start,
            barrier: Barrier::new(cpus.len()),
            cpus,
            tlb: AtomicU64::new(0),
            flushed: [const { AtomicU64::new(0) }; MAX_VCPUS],
            ended: [const { AtomicBool::new(false) }; MAX_VCPUS],
            failed: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            attention: AtomicU64::new(0),
            kick,
            host_memory: None,
            apic: None,
            ports: PortState::default(),
            ioapic_turn: spin::Mutex::new(trapped::IoApicEntries::default()),
            startup: [const { AtomicU64::new(0) }; MAX_VCPUS],
            icr_high: [const { AtomicU64::new(0) }; MAX_VCPUS],
            runtime: None,
            devices_master: false,
        }
    }

    pub fn vcpus(&self) -> usize {
        self.cpus.len()
    }

    /// An OS guest's vCPU waits here for its startup IPI: the real-mode
    /// page to start at, or None when the guest ends first.
    pub fn wait_for_startup(&self, index: usize) -> Option<u8> {
        loop {
            // A vCPU that never entered the guest holds none of its
            // translations: it answers every flush asked meanwhile (a
            // migration's shootdown waits for all), flushing anyway at its
            // first entry.
            self.flushed[index].fetch_max(self.tlb.load(Ordering::SeqCst), Ordering::SeqCst);
            let v = self.startup[index].load(Ordering::SeqCst);
            if v != 0 {
                return Some((v - 1) as u8);
            }
            if self.stopping() {
                return None;
            }
            core::hint::spin_loop();
        }
    }

    /// vCPU `index` ended `end`: a failure stops the others; so does any
    /// end of an OS guest (its power-off ends the machine).
    pub fn finish(&self, index: usize, end: &GuestEnd) {
        if end.failed {
            self.failed.store(true, Ordering::SeqCst);
        }
        // The first end that stops the others kicks them, once.
        let stops = end.failed || self.config.os();
        if stops && !self.stop.swap(true, Ordering::SeqCst) {
            self.attention.fetch_add(1, Ordering::SeqCst);
            for (i, &cpu) in self.cpus.iter().enumerate() {
                if i != index {
                    (self.kick)(cpu);
                }
            }
        }
        // Those waiting for this vCPU (barrier, flushes) wait no more.
        self.ended[index].store(true, Ordering::SeqCst);
        self.barrier.end();
    }

    /// Whether every vCPU has ended.
    pub fn done(&self) -> bool {
        self.barrier.ended() >= self.vcpus()
    }

    /// Any vCPU failed.
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }
}

#[derive(Serialize)]
struct NodePages {
    id: u32,
    /// 4 KiB pages and 2 MiB pages backed on this node, and their bytes.
    pages: u64,
    large_pages: u64,
    bytes: u64,
}

#[derive(Serialize)]
struct VcpuFaults {
    vcpu: usize,
    faults: u64,
}

#[derive(Serialize)]
struct PlacementEvent<'a> {
    policy: &'a str,
    page: &'a str,
    nodes: heapless::Vec<NodePages, MAX_NODES>,
    vcpus: heapless::Vec<VcpuFaults, MAX_VCPUS>,
    fallbacks: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    adaptive: Option<sampler::Stats>,
}
impl Event for PlacementEvent<'_> {
    const NAME: &'static str = "placement";
}

#[derive(Serialize)]
struct MapRange {
    /// The first page's guest-physical address, the number of 4 KiB pages,
    /// and the nodes (domains; null: not backed) page i cycles through.
    base: Hex,
    pages: u64,
    nodes: heapless::Vec<Option<u32>, { map::MAX_PATTERN }>,
}

/// Ranges per `placement-map` event: one line stays well under the event buffer.
const RANGES_PER_EVENT: usize = 32;

#[derive(Serialize)]
struct PlacementMap {
    part: u32,
    last: bool,
    ranges: heapless::Vec<MapRange, RANGES_PER_EVENT>,
}
impl Event for PlacementMap {
    const NAME: &'static str = "placement-map";
}

impl<F: Format> Vm<F> {
    /// Reports where the guest's pages went (`placement`), and with
    /// `numa.dump` the guest-physical → node map (`placement-map`).
    pub fn report_placement(&self) {
        let Some(machine) = crate::numa::machine() else {
            return;
        };
        let domain = |i: usize| machine.topology.nodes.get(i).map(|n| n.domain);
        let p = &self.memory.placer;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let nodes = (0..machine.topology.nodes.len())
            .map(|i| {
                let (pages, large_pages) = (load(&p.small[i]), load(&p.large[i]));
                NodePages {
                    id: domain(i).unwrap_or(0),
                    pages,
                    large_pages,
                    bytes: pages * FrameSize::Small.bytes()
                        + large_pages * FrameSize::Large.bytes(),
                }
            })
            .collect();
        let vcpus = (0..self.vcpus())
            .map(|vcpu| VcpuFaults {
                vcpu,
                faults: load(&p.faults[vcpu]),
            })
            .collect();
        event::emit(&PlacementEvent {
            policy: self.memory.placer.policy.name(),
            page: match p.page {
                FrameSize::Small => "4k",
                FrameSize::Large => "2m",
            },
            nodes,
            vcpus,
            fallbacks: load(&p.fallbacks),
            adaptive: self.runtime.as_ref().map(|s| sampler::Stats {
                table_copies: self.memory.copies() as u64,
                ..s.stats()
            }),
        });
        if self.config.placement.dump {
            self.dump(&domain);
        }
    }

    fn dump(&self, domain: &dyn Fn(usize) -> Option<u32>) {
        let page = FrameSize::Small.bytes();
        let mut part = 0;
        let mut ranges = heapless::Vec::new();
        let mut flush = |ranges: &mut heapless::Vec<MapRange, RANGES_PER_EVENT>, last: bool| {
            event::emit(&PlacementMap {
                part,
                last,
                ranges: core::mem::take(ranges),
            });
            part += 1;
        };
        let mut compactor = map::Compactor::new(|r: map::Range| {
            if ranges.is_full() {
                flush(&mut ranges, false);
            }
            let _ = ranges.push(MapRange {
                base: Hex(r.first * page),
                pages: r.pages,
                nodes: r.pattern,
            });
        });
        for gpa in (0..self.memory.size).step_by(page as usize) {
            let node = self
                .memory
                .host_address(gpa)
                .and_then(crate::mm::node_of)
                .and_then(domain);
            compactor.push(node);
        }
        compactor.finish();
        drop(compactor);
        flush(&mut ranges, true);
    }
}

impl<F: Format> Backing for Vm<F> {
    /// Guest RAM is backed; for an OS guest, an address that is neither
    /// guest nor host RAM is a device's, mapped 1:1 (`trapped`).
    fn back(&self, gpa: u64, vcpu: usize) -> Result<(), BackError> {
        match self.memory.back(gpa, vcpu) {
            Err(BackError::Outside) => self.back_device(gpa),
            result => result,
        }
    }

    fn backed_pages(&self) -> u64 {
        self.memory.backed_pages()
    }
}

impl<F: Format> Vm<F> {
    /// The right to change where pages are (`memory::Owner`), waited for
    /// while answering other vCPUs' flush requests (its holder may be
    /// waiting for this vCPU's).
    fn exclusive(&self, service: &mut dyn FnMut()) -> memory::Owner<'_> {
        loop {
            if let Some(owner) = self.memory.own() {
                return owner;
            }
            service();
            core::hint::spin_loop();
        }
    }

    /// Asks every vCPU to flush before it enters the guest again, kicking
    /// the others out of it: the generation they must reach.
    fn request_flush(&self, me: usize) -> u64 {
        let generation = self.tlb.fetch_add(1, Ordering::SeqCst) + 1;
        self.attention.fetch_add(1, Ordering::SeqCst);
        for (i, &cpu) in self.cpus.iter().enumerate() {
            if i != me {
                (self.kick)(cpu); // out of the guest, to flush
            }
        }
        generation
    }

    /// Asks every vCPU to flush and waits until each one running has;
    /// `service` does this vCPU's part (and answers others' requests).
    fn shootdown(&self, me: usize, service: &mut dyn FnMut()) {
        let generation = self.request_flush(me);
        loop {
            service();
            let done = (0..self.vcpus()).all(|i| {
                self.ended[i].load(Ordering::SeqCst)
                    || self.flushed[i].load(Ordering::SeqCst) >= generation
            });
            if done || self.stopping() {
                break;
            }
            core::hint::spin_loop();
        }
        // Devices cache translations too: they forget them before anything
        // the change dropped is used again.
        if self.devices_master {
            crate::iommu::invalidate();
        }
    }
}

impl<F: Format> Machine for Vm<F> {
    fn barrier(&self, service: &mut dyn FnMut()) -> bool {
        self.barrier.wait(|| {
            service();
            self.stopping()
        })
    }

    fn release(&self, vcpu: usize, gpa: u64, service: &mut dyn FnMut()) -> Result<bool, BackError> {
        if self.devices_master {
            return Err(BackError::Pinned);
        }
        let owner = self.exclusive(service);
        let mut flush = |f: crate::ept::Flush| {
            if f != crate::ept::Flush::None {
                self.shootdown(vcpu, service);
            }
        };
        // A replicated page is one again first (its copies freed).
        if let Some(base) = self.memory.collapse(&owner, gpa, &mut flush)
            && let Some(policy) = &self.runtime
        {
            policy.collapsed(base);
        }
        self.memory.release(&owner, gpa, &mut flush)
    }

    fn tlb_generation(&self) -> u64 {
        self.tlb.load(Ordering::Relaxed)
    }

    fn flushed(&self, vcpu: usize, generation: u64) {
        self.flushed[vcpu].fetch_max(generation, Ordering::SeqCst);
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn attention(&self) -> &AtomicU64 {
        &self.attention
    }

    fn migrate(
        &self,
        vcpu: usize,
        gpa: u64,
        domain: u32,
        service: &mut dyn FnMut(),
    ) -> Result<bool, BackError> {
        if self.devices_master {
            return Err(BackError::Pinned);
        }
        let node = crate::numa::machine()
            .and_then(|m| m.topology.index_of(domain))
            .ok_or(BackError::Outside)?;
        let owner = self.exclusive(service);
        let mut flush = |f: crate::ept::Flush| {
            if f != crate::ept::Flush::None {
                self.shootdown(vcpu, service);
            }
        };
        Ok(self
            .memory
            .migrate(&owner, gpa, node, &mut flush)?
            .is_some())
    }

    fn collapse(&self, vcpu: usize, gpa: u64, service: &mut dyn FnMut()) -> bool {
        let Some(policy) = &self.runtime else {
            return false;
        };
        if !self.memory.replicated(gpa) {
            return false;
        }
        let owner = self.exclusive(service);
        let mut flush = |_| self.shootdown(vcpu, service);
        // Another vCPU's write may have collapsed it meanwhile: then true too.
        if let Some(base) = self.memory.collapse(&owner, gpa, &mut flush) {
            policy.collapsed(base);
        }
        true
    }

    fn retry_write(&self, gpa: u64) -> bool {
        self.memory.is_ram(gpa)
    }

    fn hint(&self, _vcpu: usize, gpa: u64, write: bool) -> bool {
        let Some(policy) = &self.runtime else {
            return false;
        };
        let node = crate::arch::percpu::this().node();
        let Some(hint) = self.memory.hint(node, gpa, write) else {
            return false;
        };
        let base = gpa & !(hint.size.bytes() - 1);
        policy.hint(base, node, hint.write);
        true
    }

    fn tick(&self, vcpu: usize, service: &mut dyn FnMut()) {
        let (Some(policy), Some(machine)) = (&self.runtime, crate::numa::machine()) else {
            return;
        };
        if !policy.due(crate::arch::tsc::now()) {
            return;
        }
        // A migration the guest asked for is under way: the next period.
        let Some(owner) = self.memory.own() else {
            return;
        };
        let nodes = machine.topology.nodes.len();
        let distance = &machine.topology.distance[..nodes];
        policy.tick(
            &self.memory,
            &owner,
            distance,
            &mut || self.shootdown(vcpu, service),
            &mut || {
                let _ = self.request_flush(vcpu);
            },
        );
    }

    fn write_trap(&self, gpa: u64) -> Option<Trap> {
        self.trap_of(gpa)
    }

    fn trapped_write(&self, vcpu: usize, trap: Trap, gpa: u64, size: u8, value: u64) -> Written {
        self.write_trapped(vcpu, trap, gpa, size, value)
    }

    fn port_state(&self) -> Option<&PortState> {
        Some(&self.ports)
    }

    fn pci_data_read(&self, offset: u16, size: u8) -> u32 {
        self.config_data_read(offset, size)
    }

    fn pci_data_write(&self, offset: u16, size: u8, value: u32) -> Written {
        self.config_data_write(offset, size, value)
    }
}

#[cfg(test)]
pub mod fake;
#[cfg(test)]
mod protocol_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn the_barrier_opens_when_every_running_vcpu_waits() {
        let b = Arc::new(Barrier::new(3));
        let passed = Arc::new(AtomicUsize::new(0));
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let (b, passed) = (b.clone(), passed.clone());
                std::thread::spawn(move || {
                    assert!(b.wait(|| false));
                    passed.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(passed.load(Ordering::SeqCst), 0, "two of three wait");
        assert_eq!(b.end(), 1, "the third ends instead of arriving");
        for w in waiters {
            w.join().unwrap();
        }
        assert_eq!(passed.load(Ordering::SeqCst), 2);
        // Two left: both must arrive now.
        let b2 = b.clone();
        let t = std::thread::spawn(move || b2.wait(|| false));
        assert!(b.wait(|| false));
        assert!(t.join().unwrap());
    }

    #[test]
    fn a_stopping_guest_gives_up_waiting() {
        let b = Barrier::new(2);
        assert!(!b.wait(|| true));
    }
}
