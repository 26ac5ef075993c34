//! Loading an OS guest (`guest=linux`): its kernel, entered by PVH or by
//! the x86 boot protocol, its initrd and command line, and the description
//! of its machine (memory map, ACPI root; with `numa.guest=mirror` its own
//! SRAT and SLIT) written into guest memory from `platform`'s builders.

use super::launch::{GuestFiles, Start};
use super::{image, memory, platform};
use crate::vcpu::Refusal;

/// Loads the kernel (PVH ELF or bzImage), its initrd at the top of guest
/// RAM, and the machine's description (`platform`): where it starts, with
/// EBX at its `hvm_start_info` (PVH) or ESI at its `boot_params`.
pub fn load<F: crate::ept::Format>(
    mem: &memory::GuestMemory<F>,
    files: &GuestFiles,
    mirror: Option<&crate::numa::policy::Ranges>,
) -> Result<Start, Refusal> {
    let ram = mem.size;
    // A bzImage (the x86 boot protocol's 32-bit entry), or a PVH ELF.
    let refused = |e: image::ImageError| Refusal::failed(format_args!("linux image: {e}"));
    let bz = if image::is_bzimage(files.image) {
        Some(image::bzimage(files.image, ram).map_err(refused)?)
    } else {
        None
    };
    let kernel = match bz {
        Some(b) => image::Kernel {
            entry: b.load as u32,
            // Its room to decompress in counts as the kernel's: the initrd goes above.
            segments: core::iter::once(image::Segment {
                addr: b.load,
                bytes: b.kernel,
                mem: b.size,
            })
            .collect(),
        },
        None => image::pvh(files.image, ram).map_err(refused)?,
    };
    let mut ok = true;
    for s in &kernel.segments {
        // Pages of zeros are left to be backed when touched, zeroed: a
        // kernel's image carries megabytes of them (BSS, reserves).
        let mut at = 0;
        while at < s.bytes.len() {
            let page = 0x1000 - ((s.addr + at as u64) & 0xfff) as usize;
            let chunk = &s.bytes[at..s.bytes.len().min(at + page)];
            if chunk.iter().any(|&b| b != 0) {
                ok &= mem.write(s.addr + at as u64, chunk);
            }
            at += chunk.len();
        }
    }
    let kernel_end = kernel
        .segments
        .iter()
        .map(|s| s.addr + s.mem)
        .max()
        .unwrap_or(0);
    let initrd = match files.initrd {
        Some(bytes) => {
            let at = ram.saturating_sub(bytes.len() as u64) & !0xfff;
            if at < kernel_end {
                return Err(Refusal::failed(format_args!(
                    "an initrd of {} bytes does not fit guest RAM of {ram} bytes above the kernel",
                    bytes.len()
                )));
            }
            ok &= mem.write(at, bytes);
            Some((at, bytes.len() as u64))
        }
        None => None,
    };
    let cmdline = files.cmdline.as_bytes();
    if cmdline.len() >= platform::CMDLINE_MAX {
        return Err(Refusal::failed(format_args!(
            "the guest's command line is longer than {} bytes",
            platform::CMDLINE_MAX - 1
        )));
    }
    ok &= mem.write(platform::CMDLINE, cmdline)
        && mem.write(platform::CMDLINE + cmdline.len() as u64, &[0]);
    let map = platform::memory_map(files.host_memory, ram)
        .map_err(|e| Refusal::failed(format_args!("{e}")))?;
    if let Some(b) = bz {
        let params = platform::boot_params(b.header, b.load, &map, initrd);
        ok &= mem.write(platform::BOOT_PARAMS, &params);
    } else {
        let (info, entries) = platform::start_info(&map, initrd);
        ok &= mem.write(platform::START_INFO, &info) && mem.write(platform::MEMMAP, &entries);
    }
    // The host's tables but its NUMA and IOMMU ones; with
    // `numa.guest=mirror`, the guest's own SRAT and SLIT instead.
    let mut tables: heapless::Vec<u64, { platform::MAX_TABLES }> = files
        .acpi_tables
        .iter()
        .filter(|(_, sig)| !platform::HIDDEN_TABLES.contains(sig))
        .map(|&(addr, _)| addr)
        .collect();
    if let Some(ranges) = mirror {
        let (srat, slit) = mirror_tables(ranges, &files.acpi_oem)?;
        ok &= mem.write(platform::SRAT, &srat) && mem.write(platform::SLIT, &slit);
        let _ = tables.extend_from_slice(&[platform::SRAT, platform::SLIT]);
    }
    for (at, bytes) in platform::acpi_root(&tables, &files.acpi_oem) {
        ok &= mem.write(at, &bytes);
    }
    if !ok {
        return Err(Refusal::failed(format_args!(
            "the linux kernel does not fit {ram} bytes of guest RAM"
        )));
    }
    // PVH: EBX at the start info; the boot protocol: ESI at boot_params.
    Ok(match bz {
        Some(_) => Start {
            rip: kernel.entry.into(),
            rax_rbx: None,
            rsi: Some(platform::BOOT_PARAMS),
        },
        None => Start {
            rip: kernel.entry.into(),
            rax_rbx: Some((0, platform::START_INFO)),
            rsi: None,
        },
    })
}

/// `numa.guest=mirror`: guest RAM of `ram` bytes split over the nodes with
/// memory, in proportion to their size.
pub fn mirror_ranges(ram: u64) -> Result<crate::numa::policy::Ranges, Refusal> {
    let machine = crate::numa::machine()
        .ok_or_else(|| Refusal::failed(format_args!("no topology to mirror")))?;
    let has_memory = crate::mm::nodes_with_memory();
    let weights: heapless::Vec<(usize, u64), { crate::numa::topology::MAX_NODES }> = machine
        .topology
        .nodes
        .iter()
        .enumerate()
        .filter(|&(i, _)| has_memory.get(i) == Some(&true))
        .map(|(i, n)| (i, n.ranges.iter().map(|(s, e)| e - s).sum()))
        .collect();
    Ok(platform::mirror_ranges(ram, &weights))
}

/// The guest's SRAT and SLIT for `ranges`: the host's CPUs in their
/// domains, each guest range in its node's, the host's distances.
fn mirror_tables(
    ranges: &crate::numa::policy::Ranges,
    oem: &[u8; 14],
) -> Result<
    (
        heapless::Vec<u8, { platform::TABLE_MAX }>,
        heapless::Vec<u8, { platform::TABLE_MAX }>,
    ),
    Refusal,
> {
    let machine = crate::numa::machine()
        .ok_or_else(|| Refusal::failed(format_args!("no topology to mirror")))?;
    let t = &machine.topology;
    let cpus: heapless::Vec<(u32, u32), { crate::arch::gdt::MAX_CPUS }> = t
        .nodes
        .iter()
        .flat_map(|n| n.cpus.iter().map(move |&apic| (apic, n.domain)))
        .collect();
    let memory: heapless::Vec<(u64, u64, u32), { crate::numa::topology::MAX_NODES }> = ranges
        .iter()
        .map(|&(start, end, node)| (start, end, t.nodes[node].domain))
        .collect();
    let localities = t
        .nodes
        .iter()
        .map(|n| n.domain as usize + 1)
        .max()
        .unwrap_or(1);
    let index = |locality: usize| t.index_of(u32::try_from(locality).ok()?);
    let distance = |i: usize, j: usize| match (index(i), index(j)) {
        (Some(a), Some(b)) => t.distance[a][b],
        _ if i == j => 10,
        _ => 0xff, // a locality no node has: unreachable
    };
    Ok((
        platform::mirror_srat(&cpus, &memory, oem),
        platform::mirror_slit(localities, distance, oem),
    ))
}
