//! The boot sequence: console, CPU tables, boot information, reports, then
//! whatever the command line asks for, then power-off with a status.

use core::fmt::Write;
use heapless::String;
use serde::Serialize;

use crate::acpi::rsdp;
use crate::acpi::sdt::{self, Table};
use crate::acpi::{fadt, hmat, iommu, madt, mcfg, slit, srat};
use crate::arch::{self, power, power::ExitCode};
use crate::boot::{self, BootInfo, MemoryKind, Protocol};
use crate::chipset::{self, Chipset};
use crate::cmdline::Numa;
use crate::cmdline::{self, SelfTest};
use crate::cpu::{self, Vendor};
use crate::event::{self, Event, Hex, SCHEMA};
use crate::mm::{self, FrameSize};
use crate::numa::topology::{Source as TopologySource, Topology};
use crate::phys::{IdentityMapped, PhysMem};
use crate::serial;
use crate::svm::Svm;
use crate::vcpu::{GuestConfig, Refusal};
use crate::vm;
use crate::vmx::Vmx;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Serialize)]
struct Boot<'a> {
    schema: u32,
    version: &'a str,
    proto: Protocol,
    loader: &'a str,
    cmdline: &'a str,
}
impl Event for Boot<'_> {
    const NAME: &'static str = "boot";
}

#[derive(Serialize)]
struct Region {
    base: Hex,
    len: Hex,
    kind: MemoryKind,
}

#[derive(Serialize)]
struct MemoryMap {
    regions: heapless::Vec<Region, { boot::MAX_REGIONS }>,
    usable_bytes: u64,
    dropped: u32,
    /// Where the direct map ends: the hypervisor reaches all RAM below.
    direct_map: Hex,
}
impl Event for MemoryMap {
    const NAME: &'static str = "memmap";
}

#[derive(Serialize)]
struct Module<'a> {
    start: Hex,
    end: Hex,
    size: u64,
    cmdline: &'a str,
}

#[derive(Serialize)]
struct Modules<'a> {
    modules: heapless::Vec<Module<'a>, { boot::MAX_MODULES }>,
}
impl Event for Modules<'_> {
    const NAME: &'static str = "modules";
}

/// An IOMMU the hypervisor took (`iommu`).
#[derive(Serialize)]
struct IommuReport {
    base: Hex,
    vendor: &'static str,
    /// `blocking` (every device's DMA faults) or `not-driven`.
    mode: &'static str,
    devices: u32,
}
impl Event for IommuReport {
    const NAME: &'static str = "iommu";
}

/// What the hypervisor keeps of the platform (`chipset`).
#[derive(Serialize)]
struct ChipsetReport {
    pm1_control: heapless::Vec<Hex, 2>,
    reset: Option<Hex>,
    smi_command: Option<Hex>,
    ecam: Option<Hex>,
    ioapics: heapless::Vec<Hex, 4>,
    hpet: Option<Hex>,
    iommus: heapless::Vec<Hex, { iommu::MAX_IOMMUS }>,
    pci_functions: u32,
    masters_stopped: u32,
    dma: bool,
}
impl Event for ChipsetReport {
    const NAME: &'static str = "chipset";
}

#[derive(Serialize)]
struct Acpi<'a> {
    rsdp: Hex,
    source: rsdp::Source,
    revision: u8,
    oem: &'a str,
    rsdt: Hex,
    xsdt: Option<Hex>,
}
impl Event for Acpi<'_> {
    const NAME: &'static str = "acpi";
}

#[derive(Serialize)]
struct Selftest {
    test: &'static str,
}
impl Event for Selftest {
    const NAME: &'static str = "selftest";
}

#[derive(Serialize)]
struct Panic<'a> {
    /// The CPU that panicked (None before its per-CPU block is set up).
    cpu: Option<usize>,
    message: &'a str,
    file: &'a str,
    line: u32,
}
impl Event for Panic<'_> {
    const NAME: &'static str = "panic";
}

#[derive(Serialize)]
struct Skip<'a> {
    reason: &'a str,
}
impl Event for Skip<'_> {
    const NAME: &'static str = "skip";
}

#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Pass,
    Fail,
    /// The CPU lacks what the command line asked for (see the `skip` event).
    Skip,
}

#[derive(Serialize)]
struct Exit {
    status: Status,
    /// Whether the hypervisor's code and constants are as at boot
    /// (`image_intact`): a guest that wrote them, by DMA or otherwise, shows.
    image: &'static str,
}

impl Exit {
    fn new(status: Status) -> Self {
        let image = if image_intact() { "intact" } else { "changed" };
        Self { status, image }
    }
}
impl Event for Exit {
    const NAME: &'static str = "exit";
}

type Message = String<256>;

fn message(args: core::fmt::Arguments) -> Message {
    let mut m = Message::new();
    let _ = m.write_fmt(args); // truncation is acceptable
    m
}

/// The CPU lacks what the command line asks for: the run is skipped.
fn skip(reason: &str) -> ! {
    event::emit(&Skip { reason });
    event::emit(&Exit::new(Status::Skip));
    power::exit(ExitCode::Success)
}

fn fail(stage: &str, message: &str) -> ! {
    event::error(stage, message, true);
    event::emit(&Exit::new(Status::Fail));
    power::exit(ExitCode::Failure)
}

pub fn main(magic: u32, info: u32) -> ! {
    IMAGE_AT_BOOT.call_once(image_checksum);
    serial::init();
    arch::init();
    let mem = IdentityMapped;
    let boot = match boot::parse(&mem, magic, info.into()) {
        Ok(boot) => boot,
        Err(e) => fail("boot-info", &message(format_args!("{e}"))),
    };
    event::emit(&Boot {
        schema: SCHEMA,
        version: VERSION,
        proto: boot.protocol,
        loader: &boot.loader,
        cmdline: &boot.cmdline,
    });
    let options = match cmdline::parse(&boot.cmdline) {
        Ok(options) => options,
        Err(e) => fail("cmdline", &message(format_args!("{e}"))),
    };
    let cpu = cpu::identify();
    event::emit(&cpu);
    // Page tables are the kernel's: host tests have none to extend.
    #[cfg(not(test))]
    crate::phys::extend_direct_map(boot.usable_end());
    report_memory(&boot);
    let rsdp = report_acpi(&mem, &boot);
    let (topology, hmat) = discover_topology(&mem, rsdp.as_ref(), &boot, options.numa);
    let machine = crate::numa::set_machine(crate::numa::Machine { topology, hmat });
    let topology = &machine.topology;
    let home = topology.node_of_cpu(arch::smp::apic_id()).unwrap_or(0);
    report_topology(topology, &boot, &machine.hmat);
    mm::init(topology, &boot.memory, &reserved(&boot), home);
    report_node_memory(topology, options.numa_probe);
    own_chipset(&mem, rsdp.as_ref());
    // A policy this machine cannot follow is refused before anything runs.
    if let Some(guest) = &options.guest {
        let has_memory = mm::nodes_with_memory();
        let policy = &guest.placement.policy;
        if let Err(e) = crate::numa::policy::build(policy, topology, &has_memory, &machine.hmat) {
            fail("numa", &message(format_args!("{e}")));
        }
    }
    if let Err(reason) = arch::smp::start_all(topology, &boot, options.x2apic) {
        skip(reason);
    }
    if let Some(test) = options.selftest {
        run_selftest(test);
    }
    if let Some(guest) = &options.guest {
        run_guest(guest, &boot, rsdp.as_ref(), cpu.vendor);
    }
    event::emit(&Exit::new(Status::Pass));
    power::exit(ExitCode::Success)
}

unsafe extern "C" {
    static __kernel_start: u8;
    static __kernel_end: u8;
    static __image_end: u8;
}

/// The checksum of the hypervisor's code and constants at boot.
static IMAGE_AT_BOOT: spin::Once<u64> = spin::Once::new();

/// FNV-1a over the image [__kernel_start, __image_end): code and constants,
/// which nothing writes after boot.
fn image_checksum() -> u64 {
    let start = &raw const __kernel_start as u64;
    let end = &raw const __image_end as u64;
    // SAFETY: the kernel's own image, identity-mapped and never unmapped.
    let image = unsafe { core::slice::from_raw_parts(start as *const u8, (end - start) as usize) };
    image.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Whether the image is as it was at boot (true before the boot checksum).
fn image_intact() -> bool {
    IMAGE_AT_BOOT
        .get()
        .is_none_or(|&boot| boot == image_checksum())
}

/// Memory the frame allocator must not hand out: the kernel and the modules.
fn reserved(boot: &BootInfo) -> heapless::Vec<(u64, u64), { boot::MAX_MODULES + 1 }> {
    let kernel = (
        &raw const __kernel_start as u64,
        &raw const __kernel_end as u64,
    );
    core::iter::once(kernel)
        .chain(boot.modules.iter().map(|m| (m.start, m.end)))
        .collect()
}

/// The bytes of boot module `m`, or the run ends saying why not.
fn module_bytes<'a>(m: &crate::boot::Module, what: &str) -> &'a [u8] {
    if m.end <= m.start {
        fail(
            "guest",
            &message(format_args!(
                "the {what} module is empty: a guest needs an instruction"
            )),
        )
    }
    IdentityMapped
        .bytes(m.start, (m.end - m.start) as usize)
        .unwrap_or_else(|| {
            fail(
                "guest",
                &message(format_args!(
                    "the {what} module lies outside the identity map"
                )),
            )
        })
}

/// Runs the first boot module as the guest (an OS kernel gets the second
/// as its initrd, and the machine), then ends the run with its outcome.
fn run_guest(
    config: &GuestConfig,
    boot: &BootInfo,
    rsdp: Option<&rsdp::Rsdp>,
    vendor: Vendor,
) -> ! {
    let Some(module) = boot.modules.first() else {
        fail(
            "guest",
            "guest= needs a payload, and no boot module was given",
        )
    };
    let payload = module_bytes(module, "payload");
    let mut tables = heapless::Vec::<(u64, [u8; 4]), { vm::platform::MAX_TABLES }>::new();
    if let Some(rsdp) = rsdp.filter(|_| config.os()) {
        for addr in sdt::table_addresses(&IdentityMapped, rsdp)
            .into_iter()
            .flatten()
        {
            if let Some(sig) = IdentityMapped.bytes(addr, 4) {
                let _ = tables.push((addr, sig.try_into().expect("4 bytes")));
            }
        }
    }
    let mut acpi_oem = *b"SCALEVSCALEVSR";
    if let Some(r) = rsdp {
        acpi_oem[..6].copy_from_slice(&r.oem);
    }
    // An OS guest's files may come as one bundle (QEMU -kernel passes one module).
    let linux = config.os();
    let bundle = if linux && vm::bundle::is_bundle(payload) {
        match vm::bundle::parse(payload) {
            Ok(b) => Some(b),
            Err(e) => fail("guest", &message(format_args!("linux bundle: {e}"))),
        }
    } else {
        None
    };
    let files = vm::launch::GuestFiles {
        image: bundle.map_or(payload, |b| b.kernel),
        cmdline: bundle.and_then(|b| b.cmdline).unwrap_or(&module.cmdline),
        initrd: match bundle {
            Some(b) => b.initrd,
            None => boot.modules.get(1).map(|m| module_bytes(m, "initrd")),
        },
        host_memory: &boot.memory,
        acpi_tables: &tables,
        acpi_oem,
    };
    let result = match vendor {
        Vendor::Intel => vm::launch::launch::<Vmx>(config, &files),
        Vendor::Amd => vm::launch::launch::<Svm>(config, &files),
        Vendor::Other => Err(Refusal::Unsupported("the CPU is neither Intel nor AMD")),
    };
    match result {
        Ok(end) => {
            let status = if end.failed {
                Status::Fail
            } else {
                Status::Pass
            };
            event::emit(&Exit::new(status));
            power::exit(if end.failed {
                ExitCode::Failure
            } else {
                ExitCode::Success
            })
        }
        Err(Refusal::Unsupported(reason)) => skip(reason),
        Err(Refusal::Failed(message)) => fail("guest", &message),
    }
}

fn report_memory(boot: &BootInfo) {
    let regions = boot
        .memory
        .iter()
        .map(|r| Region {
            base: Hex(r.base),
            len: Hex(r.len),
            kind: r.kind,
        })
        .collect();
    event::emit(&MemoryMap {
        regions,
        usable_bytes: boot.usable_bytes(),
        dropped: boot.dropped,
        direct_map: Hex(crate::phys::direct_map_limit()),
    });
    let modules = boot
        .modules
        .iter()
        .map(|m| Module {
            start: Hex(m.start),
            end: Hex(m.end),
            size: m.end - m.start,
            cmdline: &m.cmdline,
        })
        .collect();
    event::emit(&Modules { modules });
}

fn report_acpi(mem: &IdentityMapped, boot: &BootInfo) -> Option<rsdp::Rsdp> {
    match rsdp::find(mem, boot.rsdp.map(|h| h.addr)) {
        Ok(r) => {
            event::emit(&Acpi {
                rsdp: Hex(r.addr),
                source: r.source,
                revision: r.revision,
                oem: core::str::from_utf8(&r.oem).unwrap_or("?"),
                rsdt: Hex(r.rsdt.into()),
                xsdt: r.xsdt.map(Hex),
            });
            Some(r)
        }
        // Without ACPI the machine is taken as one node: not fatal.
        Err(e) => {
            event::error("acpi", &message(format_args!("{e}")), false);
            None
        }
    }
}

/// Finds the platform's controls (FADT, MCFG, MADT, HPET) and takes PCI
/// bus mastering from every device before any guest runs (`chipset`).
fn own_chipset(mem: &IdentityMapped, rsdp: Option<&rsdp::Rsdp>) {
    let table = |sig: &[u8; 4]| acpi_table(mem, rsdp, sig);
    let mut chipset = Chipset {
        fadt: table(b"FACP").and_then(|t| reported(fadt::parse(&t))),
        ecam: table(b"MCFG").and_then(|t| reported(mcfg::parse(&t)).flatten()),
        hpet: table(b"HPET").and_then(|t| chipset::hpet_page(&t)),
        ..Chipset::default()
    };
    if let Some(m) = table(b"APIC").and_then(|t| madt::parse(&t).ok()) {
        for (i, io) in m.io_apics.iter().take(chipset.ioapics.len()).enumerate() {
            chipset.ioapics[i] = Some(u64::from(io.address) & !0xfff);
            chipset.ioapic_ids[i] = Some(io.id);
        }
    }
    let ivrs = table(b"IVRS").map(|t| iommu::parse_ivrs(&t));
    let dmar = table(b"DMAR").map(|t| iommu::parse_dmar(&t));
    let iommus = [ivrs, dmar].into_iter().flatten().filter_map(reported);
    for (slot, found) in chipset.iommus.iter_mut().zip(iommus.flatten()) {
        *slot = Some(found);
    }
    for found in chipset.iommus.iter().flatten() {
        take_iommu(found);
    }
    let owned = chipset::pci::own();
    let c = chipset::set(chipset);
    let fadt = c.fadt.unwrap_or_default();
    event::emit(&ChipsetReport {
        pm1_control: fadt
            .pm1_control
            .iter()
            .flatten()
            .map(|&p| Hex(p.into()))
            .collect(),
        reset: fadt.reset.map(|(r, _)| Hex(chipset::register_address(r))),
        smi_command: fadt.smi_command.map(|p| Hex(p.into())),
        ecam: c.ecam.map(|e| Hex(e.base)),
        ioapics: c.ioapics.iter().flatten().map(|&a| Hex(a)).collect(),
        hpet: c.hpet.map(Hex),
        iommus: c.iommus.iter().flatten().map(|i| Hex(i.base)).collect(),
        pci_functions: owned.functions,
        masters_stopped: owned.masters_stopped,
        dma: chipset::dma(),
    });
}

/// Takes an IOMMU before any guest runs; one it cannot take is reported,
/// its registers kept from the guest all the same.
fn take_iommu(found: &iommu::Iommu) {
    let vendor = match found.kind {
        iommu::Kind::Amd { .. } => "amd",
        iommu::Kind::Intel => "intel",
    };
    match crate::iommu::take(found) {
        Ok(t) => {
            let (mode, devices) = match t {
                crate::iommu::Taken::Blocking { devices } => ("blocking", devices),
                crate::iommu::Taken::NotDriven => ("not-driven", 0),
            };
            event::emit(&IommuReport {
                base: Hex(found.base),
                vendor,
                mode,
                devices,
            });
        }
        Err(e) => event::error(
            "iommu",
            &message(format_args!("the IOMMU at {:#x}: {e}", found.base)),
            false,
        ),
    }
}

/// The MADT's enabled CPUs, or the boot CPU alone without a MADT.
fn cpu_ids(madt: Option<&madt::Madt>) -> heapless::Vec<u32, { madt::MAX_CPUS }> {
    match madt {
        Some(m) if m.enabled_cpus().next().is_some() => {
            m.enabled_cpus().map(|c| c.apic_id).collect()
        }
        _ => core::iter::once(arch::smp::apic_id()).collect(),
    }
}

/// A result whose error is reported (a non-fatal `acpi` error) and dropped.
fn reported<T, E: core::fmt::Display>(result: Result<T, E>) -> Option<T> {
    result
        .map_err(|e| event::error("acpi", &message(format_args!("{e}")), false))
        .ok()
}

/// The ACPI table `sig`, if the firmware has one; a broken one is reported.
fn acpi_table<'m>(
    mem: &'m IdentityMapped,
    rsdp: Option<&rsdp::Rsdp>,
    sig: &[u8; 4],
) -> Option<Table<'m>> {
    reported(sdt::find(mem, rsdp?, *sig)).flatten()
}

/// The topology the command line asks for, else the SRAT's, else one node.
/// Broken tables are reported and the machine is taken as one node.
fn discover_topology(
    mem: &IdentityMapped,
    rsdp: Option<&rsdp::Rsdp>,
    boot: &BootInfo,
    numa: Numa,
) -> (Topology, heapless::Vec<hmat::Value, { hmat::MAX_VALUES }>) {
    let table = |sig: &[u8; 4]| acpi_table(mem, rsdp, sig);
    let madt = table(b"APIC").and_then(|t| reported(madt::parse(&t)));
    let cpus = cpu_ids(madt.as_ref());
    let single = || Topology::single(cpus.iter().copied(), &boot.memory);
    let mut hmat_values = heapless::Vec::new();
    let topology = match numa {
        Numa::Fake(n) => Topology::fake(n, cpus.iter().copied(), &boot.memory),
        Numa::Off => single(),
        Numa::Tables => match (table(b"SRAT"), madt.as_ref()) {
            (Some(t), Some(madt)) => {
                let parsed = reported(srat::parse(&t));
                let slit = table(b"SLIT").and_then(|t| reported(slit::parse(&t)));
                if let Some(h) = table(b"HMAT").and_then(|t| reported(hmat::parse(&t))) {
                    hmat_values = h.values;
                }
                parsed
                    .and_then(|s| reported(Topology::from_srat(madt, &s, slit.as_ref())))
                    .unwrap_or_else(single)
            }
            _ => single(),
        },
    };
    (topology, hmat_values)
}

#[derive(Serialize)]
struct Range {
    base: Hex,
    len: Hex,
}

#[derive(Serialize)]
struct NodeView {
    id: u32,
    cpus: heapless::Vec<u32, { madt::MAX_CPUS }>,
    memory_bytes: u64,
    usable_bytes: u64,
    ranges: heapless::Vec<Range, { crate::numa::topology::MAX_NODE_RANGES }>,
}

#[derive(Serialize)]
struct TopologyEvent<'a> {
    source: TopologySource,
    cpus: usize,
    nodes: heapless::Vec<NodeView, { crate::numa::topology::MAX_NODES }>,
    distances: heapless::Vec<
        heapless::Vec<u8, { crate::numa::topology::MAX_NODES }>,
        { crate::numa::topology::MAX_NODES },
    >,
    hmat: &'a [hmat::Value],
}
impl Event for TopologyEvent<'_> {
    const NAME: &'static str = "topology";
}

fn report_topology(t: &Topology, boot: &BootInfo, hmat: &[hmat::Value]) {
    let n = t.nodes.len();
    let nodes = t
        .nodes
        .iter()
        .enumerate()
        .map(|(i, node)| NodeView {
            id: node.domain,
            cpus: node.cpus.clone(),
            memory_bytes: node.ranges.iter().map(|(s, e)| e - s).sum(),
            usable_bytes: t.usable_regions(i, &boot.memory).map(|r| r.len).sum(),
            ranges: node
                .ranges
                .iter()
                .map(|&(s, e)| Range {
                    base: Hex(s),
                    len: Hex(e - s),
                })
                .collect(),
        })
        .collect();
    let distances = (0..n)
        .map(|i| t.distance[i][..n].iter().copied().collect())
        .collect();
    let cpus = t.nodes.iter().map(|node| node.cpus.len()).sum();
    event::emit(&TopologyEvent {
        source: t.source,
        cpus,
        nodes,
        distances,
        hmat,
    });
}

#[derive(Serialize)]
struct Probe {
    frame: Hex,
    node: u32,
}

#[derive(Serialize)]
struct NodeMemoryView {
    id: u32,
    free_bytes: u64,
    used_bytes: u64,
    /// With `numa.probe`: a 4 KiB and a 2 MiB frame asked of this node.
    small: Option<Probe>,
    large: Option<Probe>,
}

#[derive(Serialize)]
struct NodeMemoryEvent {
    home: u32,
    nodes: heapless::Vec<NodeMemoryView, { crate::numa::topology::MAX_NODES }>,
}
impl Event for NodeMemoryEvent {
    const NAME: &'static str = "node-memory";
}

fn report_node_memory(t: &Topology, probe: bool) {
    let Some(memory) = mm::memory() else { return };
    let domain = |i: usize| t.nodes[i].domain;
    let ask = |i: usize, size| {
        probe
            .then(|| memory.alloc(i, size))
            .flatten()
            .map(|(frame, node)| Probe {
                frame: Hex(frame),
                node: domain(node),
            })
    };
    // Probes first: the accounting below includes them.
    let probes: heapless::Vec<_, { crate::numa::topology::MAX_NODES }> = (0..memory.nodes())
        .map(|i| (ask(i, FrameSize::Small), ask(i, FrameSize::Large)))
        .collect();
    let nodes = probes
        .into_iter()
        .enumerate()
        .map(|(i, (small, large))| NodeMemoryView {
            id: domain(i),
            free_bytes: memory.free_bytes(i),
            used_bytes: memory.used_bytes(i),
            small,
            large,
        })
        .collect();
    event::emit(&NodeMemoryEvent {
        home: domain(mm::home()),
        nodes,
    });
}

fn run_selftest(test: SelfTest) {
    let name = match test {
        SelfTest::Hang => "hang",
        SelfTest::InvalidOpcode => "invalid-opcode",
        SelfTest::PageFault => "page-fault",
        SelfTest::TripleFault => "triple-fault",
        SelfTest::Panic => "panic",
        SelfTest::Contradiction => "contradiction",
    };
    event::emit(&Selftest { test: name });
    // Bochs drops bytes still in the UART when the CPU dies.
    serial::drain();
    match test {
        SelfTest::Hang => loop {
            core::hint::spin_loop();
        },
        SelfTest::InvalidOpcode => {
            // SAFETY: raises #UD on purpose; the handler ends the run.
            unsafe { core::arch::asm!("ud2") }
        }
        SelfTest::PageFault => {
            // Past the direct map: not present.
            let addr = crate::phys::direct_map_limit() as *const u64;
            // SAFETY: faults on purpose; the handler ends the run.
            unsafe { core::ptr::read_volatile(addr) };
        }
        SelfTest::TripleFault => {
            let empty = x86_64::structures::DescriptorTablePointer {
                limit: 0,
                base: x86_64::VirtAddr::zero(),
            };
            // SAFETY: with an empty IDT the breakpoint cannot be delivered,
            // nor the #GP and #DF that follow: the CPU shuts down on purpose.
            unsafe {
                x86_64::instructions::tables::lidt(&empty);
                core::arch::asm!("int3");
            }
        }
        SelfTest::Panic => panic!("selftest panic"),
        SelfTest::Contradiction => {
            // Two `exit` events, then a clean power-off: only the harness's
            // check for contradictory evidence can tell this run is wrong.
            event::emit(&Exit::new(Status::Pass));
            event::emit(&Exit::new(Status::Pass));
            power::exit(ExitCode::Success)
        }
    }
}

/// The panic handler's body: report and end the run.
pub fn panic(info: &core::panic::PanicInfo) -> ! {
    let text = message(format_args!("{}", info.message()));
    let (file, line) = info.location().map_or(("?", 0), |l| (l.file(), l.line()));
    event::emit_fatal(&Panic {
        cpu: arch::percpu::current_index(),
        message: &text,
        file,
        line,
    });
    power::exit(ExitCode::Failure)
}
