//! Starting every CPU the MADT lists: INIT, then two STARTUP IPIs to the
//! trampoline (`trampoline.s`), one CPU at a time. Each CPU gets its stacks
//! from its own node's memory, loads its GDT, TSS and IDT, reports
//! `cpu-up` and parks (halted, woken by the kick IPI) until `dispatch` gives
//! it work. A CPU that does not come up in time is reported.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use serde::Serialize;

use super::apic::{self, Apic};
use super::gdt::{IST_COUNT, IST_STACK, MAX_CPUS};
use super::pit;
use crate::boot::{BootInfo, MemoryKind};
use crate::event::{self, Event};
use crate::mm::{self, FRAME};
use crate::numa::topology::Topology;

core::arch::global_asm!(include_str!("trampoline.s"), options(att_syntax));

unsafe extern "C" {
    static ap_trampoline_start: u8;
    static ap_trampoline_end: u8;
}

const TRAMPOLINE: u64 = 0x7000;
const MAILBOX: u64 = TRAMPOLINE + 0xf00;
/// 64 KiB: a vCPU's setup builds its 8 KiB I/O and MSR bitmaps on the stack.
const STACK_FRAMES: u64 = 16;
/// A CPU's kernel stack, then its IST stacks, in one run of frames.
const FRAMES_PER_CPU: u64 = STACK_FRAMES + (IST_COUNT * IST_STACK) as u64 / FRAME;
/// How long a CPU has to check in.
const START_TIMEOUT_US: u64 = 200_000;

static ONLINE: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
/// Per CPU: the start of its stack frames, and its node's domain.
static STACKS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static DOMAINS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static APIC_IDS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Per CPU: its node's index in the topology.
static NODES: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

#[derive(Serialize)]
struct CpuUp {
    cpu: usize,
    apic_id: u32,
    node: u32,
    bsp: bool,
}
impl Event for CpuUp {
    const NAME: &'static str = "cpu-up";
}

#[derive(Serialize)]
struct CpuTimeout {
    cpu: usize,
    apic_id: u32,
    waited_us: u64,
}
impl Event for CpuTimeout {
    const NAME: &'static str = "cpu-timeout";
}

#[derive(Serialize)]
struct Smp<'a> {
    expected: usize,
    started: usize,
    apic: &'a str,
}
impl Event for Smp<'_> {
    const NAME: &'static str = "smp";
}

/// This CPU's APIC id: the x2APIC id from CPUID 0xB when there is one.
pub fn apic_id() -> u32 {
    let cpuid = raw_cpuid::CpuId::new();
    cpuid
        .get_extended_topology_info()
        .and_then(|mut levels| levels.next().map(|l| l.x2apic_id()))
        .or_else(|| {
            cpuid
                .get_feature_info()
                .map(|f| f.initial_local_apic_id().into())
        })
        .unwrap_or(0)
}

fn x2apic_supported() -> bool {
    raw_cpuid::CpuId::new()
        .get_feature_info()
        .is_some_and(|f| f.has_x2apic())
}

/// Starts every CPU of `topology` but this one; returns how many run, this
/// one included. Refuses, saying why, when `force_x2apic` asks for an
/// x2APIC the CPU does not have.
pub fn start_all(
    topology: &Topology,
    boot: &BootInfo,
    force_x2apic: bool,
) -> Result<usize, &'static str> {
    let bsp = apic_id();
    let mut cpus: heapless::Vec<(u32, u32, usize), MAX_CPUS> = heapless::Vec::new();
    for (node, n) in topology.nodes.iter().enumerate() {
        for &id in &n.cpus {
            let _ = cpus.push((id, n.domain, node));
        }
    }
    cpus.sort_unstable_by_key(|&(id, _, _)| (id != bsp, id)); // the boot CPU is CPU 0
    let bsp_domain = cpus.first().filter(|c| c.0 == bsp).map_or(0, |c| c.1);
    let bsp_node = cpus.first().filter(|c| c.0 == bsp).map_or(0, |c| c.2);
    super::percpu::this().set_node(bsp_node);
    event::emit(&CpuUp {
        cpu: 0,
        apic_id: bsp,
        node: bsp_domain,
        bsp: true,
    });
    ONLINE[0].store(true, Ordering::SeqCst);
    APIC_IDS[0].store(bsp.into(), Ordering::SeqCst);

    let need_x2 = force_x2apic || cpus.iter().any(|c| c.0 > 254);
    if need_x2 && !x2apic_supported() {
        if force_x2apic {
            return Err("the CPU has no x2APIC");
        }
        event::error(
            "smp",
            "APIC ids above 254 need an x2APIC, which the CPU lacks: only the boot CPU runs",
            false,
        );
        return Ok(1);
    }
    let trampoline_usable = boot.memory.iter().any(|r| {
        r.kind == MemoryKind::Usable && r.base <= TRAMPOLINE && TRAMPOLINE + FRAME <= r.base + r.len
    });
    if cpus.len() > 1 && !trampoline_usable {
        event::error(
            "smp",
            "the trampoline page 0x7000 is not usable RAM: only the boot CPU runs",
            false,
        );
        return Ok(1);
    }
    let apic = Apic::enable(need_x2);
    if cpus.len() > 1 {
        let start = &raw const ap_trampoline_start as usize;
        let end = &raw const ap_trampoline_end as usize;
        // SAFETY: the trampoline's bytes, in the kernel's read-only data.
        let code = unsafe { core::slice::from_raw_parts(start as *const u8, end - start) };
        // SAFETY: 0x7000 is usable RAM below 1 MiB, which the frame
        // allocator never hands out: it is the kernel's to use.
        unsafe { crate::phys::write(TRAMPOLINE, code) };
    }
    let mut started = 1;
    for (cpu, &(id, domain, node)) in cpus.iter().enumerate().skip(1) {
        let Some(base) = mm::memory()
            .and_then(|m| m.alloc_run(node, FRAMES_PER_CPU as usize))
            .map(|(f, _)| f)
        else {
            event::error("smp", "out of memory for a CPU's stacks", false);
            break;
        };
        STACKS[cpu].store(base, Ordering::SeqCst);
        APIC_IDS[cpu].store(id.into(), Ordering::SeqCst);
        DOMAINS[cpu].store(domain.into(), Ordering::SeqCst);
        NODES[cpu].store(node as u64, Ordering::SeqCst);
        let mailbox = [
            x86_64::registers::control::Cr3::read_raw()
                .0
                .start_address()
                .as_u64(),
            base + STACK_FRAMES * FRAME,
            ap_entry as *const () as u64,
            cpu as u64,
        ];
        // SAFETY: the mailbox is in the trampoline page, ours as above.
        unsafe { crate::phys::write(MAILBOX, &crate::phys::le_bytes::<32>(&mailbox)) };
        core::sync::atomic::fence(Ordering::SeqCst);
        // INIT, wait 10 ms, STARTUP, wait 200 us, STARTUP again if needed.
        apic.send(id, apic::INIT);
        pit::delay_us(10_000);
        apic.send(id, apic::startup((TRAMPOLINE >> 12) as u8));
        pit::delay_us(200);
        if !ONLINE[cpu].load(Ordering::SeqCst) {
            apic.send(id, apic::startup((TRAMPOLINE >> 12) as u8));
        }
        let mut waited = 0;
        while !ONLINE[cpu].load(Ordering::SeqCst) && waited < START_TIMEOUT_US {
            pit::delay_us(100);
            waited += 100;
        }
        if ONLINE[cpu].load(Ordering::SeqCst) {
            started += 1;
        } else {
            event::emit(&CpuTimeout {
                cpu,
                apic_id: id,
                waited_us: waited,
            });
        }
    }
    event::emit(&Smp {
        expected: cpus.len(),
        started,
        apic: if need_x2 { "x2apic" } else { "xapic" },
    });
    Ok(started)
}

/// Where `trampoline.s` calls an application processor, on its own stack.
extern "C" fn ap_entry(cpu: u64) -> ! {
    let cpu = cpu as usize;
    let base = STACKS[cpu].load(Ordering::SeqCst) + STACK_FRAMES * FRAME;
    let ist = core::array::from_fn(|slot| base + ((slot + 1) * IST_STACK) as u64);
    super::init_ap(cpu, ist);
    super::percpu::this().set_node(NODES[cpu].load(Ordering::SeqCst) as usize);
    // Software-enabled, or the kick IPI that wakes this CPU is not accepted.
    Apic::enable(false);
    event::emit(&CpuUp {
        cpu,
        apic_id: apic_id(),
        node: DOMAINS[cpu].load(Ordering::SeqCst) as u32,
        bsp: false,
    });
    ONLINE[cpu].store(true, Ordering::SeqCst);
    park(cpu)
}

/// Work for the other CPUs: a function and its argument, and a generation
/// that each parked CPU compares with the last it ran.
type Work = (fn(usize, usize), usize);
static WORK: spin::Mutex<Option<Work>> = spin::Mutex::new(None);
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Halts until `dispatch` has new work, runs it, and halts again.
fn park(cpu: usize) -> ! {
    let mut seen = 0;
    loop {
        x86_64::instructions::interrupts::disable();
        let now = GENERATION.load(Ordering::SeqCst);
        if now != seen {
            seen = now;
            let work = *WORK.lock();
            if let Some((f, arg)) = work {
                f(cpu, arg);
            }
            continue;
        }
        // STI's shadow covers HLT: a kick sent after the check still wakes it.
        x86_64::instructions::interrupts::enable_and_hlt();
    }
}

/// Whether CPU `cpu` (an index, 0 the boot CPU) runs.
/// The APIC id of CPU `cpu` (0 for a CPU that never came up).
pub fn apic_id_of(cpu: usize) -> u32 {
    APIC_IDS[cpu].load(Ordering::SeqCst) as u32
}

pub fn online(cpu: usize) -> bool {
    ONLINE.get(cpu).is_some_and(|c| c.load(Ordering::SeqCst))
}

/// Has every other online CPU run `f(cpu, arg)`, once, from its park.
/// Returns at once: the caller waits for what `f` reports.
pub fn dispatch(f: fn(usize, usize), arg: usize) {
    *WORK.lock() = Some((f, arg));
    GENERATION.fetch_add(1, Ordering::SeqCst);
    (1..MAX_CPUS).for_each(kick);
}

/// Wakes CPU `cpu` out of guest mode or its halt (it checks what changed).
pub fn kick(cpu: usize) {
    if online(cpu) {
        Apic::current().send(APIC_IDS[cpu].load(Ordering::SeqCst) as u32, apic::KICK);
    }
}

/// Brings `cpu` out of an OS guest, which owns every interrupt vector: by NMI.
pub fn kick_nmi(cpu: usize) {
    if online(cpu) {
        Apic::current().send(APIC_IDS[cpu].load(Ordering::SeqCst) as u32, apic::NMI_KICK);
    }
}
