//! Running a guest: its memory prepared (the image loaded), one vCPU on every
//! CPU that runs, from turning the extension on to turning it off.

use super::{Vm, image, memory, os, platform, runtime};
use crate::vcpu::guest::{self, GuestMode};
use crate::vcpu::{
    Deadline, GuestConfig, GuestEnd, Image, MAX_VCPUS, Message, Refusal, Seat, VirtCpu,
    Virtualization, run,
};

/// Runs `payload` as the guest `config` describes, one vCPU on every CPU
/// that runs (up to `MAX_VCPUS`), from turning the extension on to
/// turning it off; returns when every vCPU has ended, with the boot CPU's
/// vCPU's end (failed when any vCPU failed).
pub fn launch<V: Virtualization>(
    config: &GuestConfig,
    files: &GuestFiles,
) -> Result<GuestEnd, Refusal> {
    use crate::arch::{gdt::MAX_CPUS, smp};
    let virt = V::enable()?;
    let result = (|| {
        let prepared = prepare_memory::<V::Format>(config, files)?;
        let vcpus = match config.image {
            // An OS kernel starts its other CPUs itself (INIT, SIPI).
            Image::Payload | Image::Linux => MAX_VCPUS,
            // A test kernel runs on the boot CPU alone.
            Image::Multiboot | Image::Multiboot2 => 1,
        };
        let cpus = (0..MAX_CPUS)
            .filter(|&c| smp::online(c))
            .take(vcpus)
            .collect();
        let os = config.os();
        let kick = if os { smp::kick_nmi } else { smp::kick };
        let mut vm = Vm::new(config.clone(), prepared, cpus, kick);
        if vm.memory.placer.policy.adaptive() {
            // Each node's vCPUs walk their own copy of the table, where
            // the guest spans several nodes.
            let topology = crate::numa::machine().map(|m| &m.topology);
            let nodes = vm
                .cpus
                .iter()
                .filter_map(|&c| topology?.node_of_cpu(smp::apic_id_of(c)))
                .fold(0u32, |set, n| set | (1 << n));
            if nodes.count_ones() > 1 {
                let each = (0..32).filter(|n| nodes & (1 << n) != 0);
                vm.memory.copy_table(each).map_err(|_| {
                    Refusal::Unsupported(
                        "no memory for the nodes' copies of the second-level table",
                    )
                })?;
            }
            let guest = runtime::Guest {
                size: vm.memory.size,
                accessed_dirty: virt.accessed_dirty(),
                copies: vm.memory.copies() > 0,
                per_ms: crate::arch::tsc::per_ms(),
            };
            vm.runtime = Some(runtime::adaptive(config.placement.sampling, &guest)?);
        }
        if os {
            vm.host_memory = Some(files.host_memory.iter().copied().collect());
            // Its ICR writes are MMIO the hypervisor sees: xAPIC mode.
            let apic = crate::arch::apic::Apic::current()
                .base()
                .ok_or(Refusal::Unsupported(
                    "an OS guest needs the APICs in xAPIC mode (without smp.x2apic)",
                ))?;
            vm.apic = Some(apic);
            super::dma::give_devices(&mut vm);
        }
        let mut cpu = start_vcpu(&virt, &vm, 0, None)?;
        if vm.vcpus() > 1 {
            smp::dispatch(ap_vcpu::<V>, &raw const vm as usize);
        }
        let end = run(&mut cpu, config, &vm, 0);
        vm.finish(0, &end);
        // `vm` must outlive every vCPU that borrows it.
        while !vm.done() {
            core::hint::spin_loop();
        }
        if vm.devices_master {
            super::dma::report_faults();
        }
        vm.report_placement();
        Ok(GuestEnd {
            failed: vm.failed(),
            ..end
        })
    })();
    virt.disable(result.as_ref().map_or(0, |end| end.exits));
    result
}

/// vCPU `index` of `vm`, ready to enter the image where it starts: its own
/// stack, its index and the vCPU count in RDI and RSI (and what the image
/// expects in RAX and RBX), the watchdog's deadline.
fn start_vcpu<'m, V: Virtualization>(
    virt: &V,
    vm: &'m Vm<V::Format>,
    index: usize,
    startup: Option<u8>,
) -> Result<V::Cpu<'m>, Refusal> {
    let start = vm.start;
    let mut state = guest::initial_state(vm.config.mode);
    state.rsp = guest::stack_top(index);
    state.rip = start.rip;
    // An OS guest's application processor, as a startup IPI leaves it: real
    // mode at CS = vector << 8, IP 0.
    if let Some(vector) = startup {
        state = guest::initial_state(GuestMode::Real);
        state.cs.selector = u16::from(vector) << 8;
        state.cs.base = u64::from(vector) << 12;
        (state.rip, state.rsp) = (0, 0);
    }
    let seat = Seat {
        vcpu: index as u32,
        cpu: vm.cpus[index],
    };
    let mut cpu = virt.vcpu(&vm.config, &state, &vm.memory, seat)?;
    (cpu.regs().rdi, cpu.regs().rsi) = (index as u64, vm.vcpus() as u64);
    if let Some((rax, rbx)) = start.rax_rbx.filter(|_| startup.is_none()) {
        (cpu.regs().rax, cpu.regs().rbx) = (rax, rbx);
    }
    if let Some(rsi) = start.rsi.filter(|_| startup.is_none()) {
        cpu.regs().rsi = rsi;
    }
    let ms = vm.config.watchdog_ms;
    let per_ms = crate::arch::tsc::per_ms();
    let mut deadline = if ms > 0 {
        Deadline::at(crate::arch::tsc::now().saturating_add(ms.saturating_mul(per_ms)))
    } else {
        Deadline::default()
    };
    if vm.runtime.is_some() {
        let period = vm.config.placement.sampling.period_ms;
        deadline = deadline.every(period.saturating_mul(per_ms));
    }
    cpu.set_deadline(deadline);
    Ok(cpu)
}

/// An application processor's part of `launch`: its vCPU, from turning the
/// extension on to off, then its end told to the machine.
fn ap_vcpu<V: Virtualization>(cpu: usize, vm: usize) {
    // SAFETY: `launch` passed its `Vm`, of this vendor's format, and keeps it
    // alive until every vCPU has called `finish`.
    let vm = unsafe { &*(vm as *const Vm<V::Format>) };
    let Some(index) = vm.cpus.iter().position(|&c| c == cpu) else {
        return;
    };
    let refused = |r: Refusal| {
        let why = match r {
            Refusal::Unsupported(why) => Message::try_from(why).unwrap_or_default(),
            Refusal::Failed(m) => m,
        };
        crate::event::error("guest", &why, false);
        GuestEnd {
            how: "refused",
            failed: true,
            exits: 0,
        }
    };
    // An OS guest's other vCPUs start when its kernel sends them a startup IPI.
    let startup = if vm.config.os() {
        let Some(vector) = vm.wait_for_startup(index) else {
            let end = GuestEnd {
                how: "never-started",
                failed: false,
                exits: 0,
            };
            return vm.finish(index, &end);
        };
        Some(vector)
    } else {
        None
    };
    let end = match V::enable() {
        Ok(virt) => {
            let end = match start_vcpu(&virt, vm, index, startup) {
                Ok(mut c) => run(&mut c, &vm.config, vm, index as u32),
                Err(r) => refused(r),
            };
            virt.disable(end.exits);
            end
        }
        Err(r) => refused(r),
    };
    vm.finish(index, &end);
}

/// What the guest is made of: the boot modules, and for an OS guest the
/// host machine it is given (`platform`).
pub struct GuestFiles<'a> {
    /// The first module: a payload, or a kernel image.
    pub image: &'a [u8],
    /// The first module's string: an OS kernel's command line.
    pub cmdline: &'a str,
    /// The second module: an OS kernel's initrd.
    pub initrd: Option<&'a [u8]>,
    /// The host's memory map.
    pub host_memory: &'a [crate::boot::MemoryRegion],
    /// The host's ACPI tables: address and signature.
    pub acpi_tables: &'a [(u64, [u8; 4])],
    /// OEM id and table id for the guest's new ACPI root.
    pub acpi_oem: [u8; 14],
}

/// Where the guest starts: RIP, and the registers its image expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Start {
    pub rip: u64,
    /// RAX and RBX (multiboot's magic and information), when the image has them.
    pub rax_rbx: Option<(u64, u64)>,
    /// RSI (the boot protocol's `boot_params`), when the image wants it.
    pub rsi: Option<u64>,
}

/// The placement the configuration asks for, built for this machine (the
/// kernel has refused at boot a policy the machine cannot follow).
fn placer(
    config: &GuestConfig,
    mirror: Option<&crate::numa::policy::Ranges>,
) -> Result<memory::Placer, Refusal> {
    let p = &config.placement;
    if let Some(ranges) = mirror {
        let policy =
            crate::numa::policy::Chosen::Mirror(crate::numa::policy::Mirror::new(ranges.clone()));
        return Ok(memory::Placer::new(policy, p.page));
    }
    let machine = crate::numa::machine()
        .ok_or_else(|| Refusal::failed(format_args!("no topology to place pages on")))?;
    let has_memory = crate::mm::nodes_with_memory();
    crate::numa::policy::build(&p.policy, &machine.topology, &has_memory, &machine.hmat)
        .map(|policy| memory::Placer::new(policy, p.page))
        .map_err(|e| Refusal::failed(format_args!("{e}")))
}

/// Guest RAM with the image in place (a payload at `LOAD_ADDRESS`, or a
/// multiboot kernel's segments and information), the GDT and, for long
/// mode, the page tables; and where the guest starts.
pub fn prepare_memory<F: crate::ept::Format>(
    config: &GuestConfig,
    files: &GuestFiles,
) -> Result<(memory::GuestMemory<F>, Start), Refusal> {
    let payload = files.image;
    let os = config.os();
    let size = if os {
        platform::ram_size(files.host_memory, config.memory)
            .map_err(|e| Refusal::failed(format_args!("{e}")))?
    } else {
        config.memory
    };
    let mirror = if os && config.placement.mirror {
        Some(os::mirror_ranges(size)?)
    } else {
        None
    };
    let mut mem = memory::GuestMemory::<F>::new(size, placer(config, mirror.as_ref())?)
        .map_err(|e| Refusal::failed(format_args!("guest memory of {size} bytes: {e:?}")))?;
    if os {
        mem.hole = platform::LEGACY_HOLE;
    }
    let start = match config.image {
        Image::Payload => {
            if !mem.write(guest::LOAD_ADDRESS, payload) {
                return Err(Refusal::failed(format_args!(
                    "a payload of {} bytes does not fit {} bytes of guest memory at {:#x}",
                    payload.len(),
                    config.memory,
                    guest::LOAD_ADDRESS
                )));
            }
            Start {
                rip: guest::LOAD_ADDRESS,
                rax_rbx: None,
                rsi: None,
            }
        }
        Image::Multiboot | Image::Multiboot2 => {
            let v2 = config.image == Image::Multiboot2;
            let kernel = if v2 {
                image::multiboot2(payload, config.memory)
            } else {
                image::multiboot(payload, config.memory)
            }
            .map_err(|e| Refusal::failed(format_args!("multiboot image: {e}")))?;
            let mut ok = true;
            for s in &kernel.segments {
                // The rest of the segment (its BSS) is zero: pages are backed zeroed.
                ok &= mem.write(s.addr, s.bytes);
            }
            let (info, magic) = if v2 {
                (
                    image::info2(config.memory, b"multiboot2"),
                    image::BOOT2_MAGIC,
                )
            } else {
                (image::info(config.memory, b"multiboot"), image::BOOT_MAGIC)
            };
            ok &= mem.write(image::INFO, &info);
            if !ok {
                return Err(Refusal::failed(format_args!(
                    "the multiboot kernel does not fit guest memory"
                )));
            }
            Start {
                rip: kernel.entry.into(),
                rax_rbx: Some((magic.into(), image::INFO)),
                rsi: None,
            }
        }
        Image::Linux => os::load(&mem, files, mirror.as_ref())?,
    };
    let mut ok = mem.write(guest::GDT, &crate::phys::le_bytes::<40>(&guest::gdt()));
    if config.mode == GuestMode::Long {
        for (at, table) in guest::page_tables() {
            ok &= mem.write(at, &crate::phys::le_bytes::<4096>(&table));
        }
    }
    if !ok {
        return Err(Refusal::failed(format_args!(
            "guest memory too small for the guest's tables"
        )));
    }
    Ok((mem, start))
}
