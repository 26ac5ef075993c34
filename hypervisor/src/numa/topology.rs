//! The machine's NUMA topology: nodes with their CPUs (APIC ids) and memory
//! ranges, and the distances between them. Read from the SRAT and SLIT;
//! one node when the machine has none (or its tables are broken); or faked
//! from the command line for machines without tables (Bochs).

use heapless::Vec;
use serde::Serialize;

use crate::acpi::madt::{MAX_CPUS, Madt};
use crate::acpi::slit::Slit;
use crate::acpi::srat::Srat;
use crate::boot::{MemoryKind, MemoryRegion};

pub const MAX_NODES: usize = 16;
pub const MAX_NODE_RANGES: usize = 8;
pub const LOCAL: u8 = 10;
pub const REMOTE: u8 = 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Srat,
    Fake,
    Single,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Node {
    /// The ACPI proximity domain (the node's number for QEMU).
    pub domain: u32,
    pub cpus: Vec<u32, MAX_CPUS>,
    /// Memory ranges [start, end), as the SRAT gives them (holes included).
    pub ranges: Vec<(u64, u64), MAX_NODE_RANGES>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    pub source: Source,
    pub nodes: Vec<Node, MAX_NODES>,
    pub distance: [[u8; MAX_NODES]; MAX_NODES],
}

fn default_distances() -> [[u8; MAX_NODES]; MAX_NODES] {
    core::array::from_fn(|i| core::array::from_fn(|j| if i == j { LOCAL } else { REMOTE }))
}

fn usable(memory: &[MemoryRegion]) -> impl Iterator<Item = (u64, u64)> + '_ {
    memory
        .iter()
        .filter(|r| r.kind == MemoryKind::Usable)
        .map(|r| (r.base, r.base + r.len))
}

impl Topology {
    /// Nodes from the SRAT's proximity domains, in ascending order; every
    /// enabled CPU of the MADT, in the node the SRAT gives it (the first
    /// node when the SRAT omits it); distances from the SLIT when it covers
    /// every domain.
    pub fn from_srat(madt: &Madt, srat: &Srat, slit: Option<&Slit>) -> Result<Self, &'static str> {
        let mut domains: Vec<u32, MAX_NODES> = Vec::new();
        for d in srat
            .cpus
            .iter()
            .map(|c| c.domain)
            .chain(srat.memory.iter().map(|m| m.domain))
        {
            if !domains.contains(&d) {
                domains
                    .push(d)
                    .map_err(|_| "more proximity domains than Scalevisor supports (16)")?;
            }
        }
        if domains.is_empty() {
            return Err("the SRAT lists no enabled CPU or memory");
        }
        domains.sort_unstable();
        let mut nodes: Vec<Node, MAX_NODES> = domains
            .iter()
            .map(|&domain| Node {
                domain,
                ..Default::default()
            })
            .collect();
        let index = |domain| domains.iter().position(|&d| d == domain);
        for cpu in madt.enabled_cpus() {
            let node = srat
                .cpus
                .iter()
                .find(|a| a.apic_id == cpu.apic_id)
                .and_then(|a| index(a.domain))
                .unwrap_or(0);
            let _ = nodes[node].cpus.push(cpu.apic_id); // MADT holds at most MAX_CPUS
        }
        for m in &srat.memory {
            let node = index(m.domain).expect("every domain was collected");
            nodes[node]
                .ranges
                .push((m.base, m.base + m.len))
                .map_err(|_| "a node has more than 8 memory ranges")?;
        }
        let mut distance = default_distances();
        if let Some(slit) = slit.filter(|s| domains.iter().all(|&d| (d as usize) < s.localities)) {
            for (i, &a) in domains.iter().enumerate() {
                for (j, &b) in domains.iter().enumerate() {
                    distance[i][j] = slit.distance[a as usize][b as usize];
                }
            }
        }
        Ok(Self {
            source: Source::Srat,
            nodes,
            distance,
        })
    }

    /// One node with every CPU and all usable memory.
    pub fn single(cpus: impl Iterator<Item = u32>, memory: &[MemoryRegion]) -> Self {
        let mut node = Node {
            domain: 0,
            cpus: cpus.take(MAX_CPUS).collect(),
            ranges: Vec::new(),
        };
        for range in usable(memory).take(MAX_NODE_RANGES) {
            let _ = node.ranges.push(range);
        }
        Self {
            source: Source::Single,
            nodes: core::iter::once(node).collect(),
            distance: default_distances(),
        }
    }

    /// `n` nodes: usable memory cut by address into `n` equal parts, CPUs
    /// dealt round-robin, distances 10 and 20.
    pub fn fake(n: usize, cpus: impl Iterator<Item = u32>, memory: &[MemoryRegion]) -> Self {
        let n = n.clamp(1, MAX_NODES);
        let mut nodes: Vec<Node, MAX_NODES> = (0..n as u32)
            .map(|domain| Node {
                domain,
                ..Default::default()
            })
            .collect();
        for (i, apic_id) in cpus.take(MAX_CPUS).enumerate() {
            let _ = nodes[i % n].cpus.push(apic_id);
        }
        let total: u64 = usable(memory).map(|(s, e)| e - s).sum();
        let share = (total / n as u64) & !0xfff;
        let (mut node, mut filled) = (0, 0);
        for (mut start, end) in usable(memory) {
            while start < end {
                let take = if node == n - 1 {
                    end - start
                } else {
                    (share - filled).min(end - start)
                };
                if take > 0 {
                    let _ = nodes[node].ranges.push((start, start + take));
                }
                start += take;
                filled += take;
                if filled >= share && node < n - 1 {
                    (node, filled) = (node + 1, 0);
                }
            }
        }
        Self {
            source: Source::Fake,
            nodes,
            distance: default_distances(),
        }
    }

    /// The node holding the CPU with this APIC id.
    pub fn node_of_cpu(&self, apic_id: u32) -> Option<usize> {
        self.nodes.iter().position(|n| n.cpus.contains(&apic_id))
    }

    /// The index of the node of proximity domain `domain`.
    pub fn index_of(&self, domain: u32) -> Option<usize> {
        self.nodes.iter().position(|n| n.domain == domain)
    }

    /// Usable memory of `node`: its ranges intersected with the memory map.
    pub fn usable_regions<'a>(
        &'a self,
        node: usize,
        memory: &'a [MemoryRegion],
    ) -> impl Iterator<Item = MemoryRegion> + 'a {
        self.nodes[node].ranges.iter().flat_map(move |&(s, e)| {
            usable(memory).filter_map(move |(us, ue)| {
                let (b, t) = (s.max(us), e.min(ue));
                (b < t).then(|| MemoryRegion {
                    base: b,
                    len: t - b,
                    kind: MemoryKind::Usable,
                })
            })
        })
    }

    /// Nodes by increasing distance from `node` (itself first; ties by order).
    pub fn by_distance(&self, node: usize) -> Vec<usize, MAX_NODES> {
        let mut order: Vec<usize, MAX_NODES> = (0..self.nodes.len()).collect();
        order.sort_unstable_by_key(|&other| {
            (
                if other == node {
                    0
                } else {
                    self.distance[node][other]
                },
                other,
            )
        });
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acpi::sdt::Table;
    use crate::acpi::{madt, slit, srat};

    fn madt_of(ids: &[u8]) -> Madt {
        let t = madt::build::table(
            &ids.iter()
                .map(|&i| madt::build::lapic(i, i, true))
                .collect::<std::vec::Vec<_>>(),
        );
        madt::parse(&Table {
            signature: *b"APIC",
            revision: 4,
            bytes: &t,
        })
        .unwrap()
    }

    fn srat_of(entries: &[std::vec::Vec<u8>]) -> Srat {
        let t = srat::build::table(entries);
        srat::parse(&Table {
            signature: *b"SRAT",
            revision: 3,
            bytes: &t,
        })
        .unwrap()
    }

    fn usable(base: u64, len: u64) -> MemoryRegion {
        MemoryRegion {
            base,
            len,
            kind: MemoryKind::Usable,
        }
    }

    const MIB: u64 = 1 << 20;

    #[test]
    fn nodes_from_the_srat_with_a_cpu_less_and_a_memory_less_node() {
        let s = srat_of(&[
            srat::build::cpu(0, 0, true),
            srat::build::cpu(1, 0, true),
            srat::build::cpu(2, 2, true), // node 2 has CPUs, no memory
            srat::build::memory(0, 0, 0xa_0000, 1),
            srat::build::memory(0, MIB, 127 * MIB, 1),
            srat::build::memory(1, 128 * MIB, 128 * MIB, 1), // node 1 has memory, no CPU
        ]);
        let slit_bytes = slit::build(&[&[10, 16, 22], &[16, 10, 28], &[22, 28, 10]]);
        let sl = slit::parse(&Table {
            signature: *b"SLIT",
            revision: 1,
            bytes: &slit_bytes,
        })
        .unwrap();
        let t = Topology::from_srat(&madt_of(&[0, 1, 2]), &s, Some(&sl)).unwrap();
        assert_eq!(t.source, Source::Srat);
        assert_eq!(
            t.nodes
                .iter()
                .map(|n| n.domain)
                .collect::<std::vec::Vec<_>>(),
            [0, 1, 2]
        );
        assert_eq!(t.nodes[0].cpus.as_slice(), &[0, 1]);
        assert!(t.nodes[1].cpus.is_empty());
        assert!(t.nodes[2].ranges.is_empty());
        assert_eq!(t.distance[1][2], 28);
        assert_eq!(t.node_of_cpu(2), Some(2));
        assert_eq!(t.by_distance(2).as_slice(), &[2, 0, 1], "22 before 28");
        let map = [usable(0, 0x9_fc00), usable(MIB, 255 * MIB)];
        let bytes: u64 = t.usable_regions(0, &map).map(|r| r.len).sum();
        assert_eq!(bytes, 0x9_fc00 + 127 * MIB);
    }

    #[test]
    fn a_slit_that_misses_a_domain_is_ignored() {
        let s = srat_of(&[srat::build::cpu(0, 0, true), srat::build::cpu(1, 5, true)]);
        let slit_bytes = slit::build(&[&[10, 30], &[30, 10]]);
        let sl = slit::parse(&Table {
            signature: *b"SLIT",
            revision: 1,
            bytes: &slit_bytes,
        })
        .unwrap();
        let t = Topology::from_srat(&madt_of(&[0, 1]), &s, Some(&sl)).unwrap();
        assert_eq!(t.distance[0][1], REMOTE);
    }

    #[test]
    fn an_empty_srat_is_refused() {
        assert!(Topology::from_srat(&madt_of(&[0]), &srat_of(&[]), None).is_err());
    }

    #[test]
    fn fake_nodes_share_memory_and_cpus() {
        let map = [usable(0, 0x9_f000), usable(MIB, 63 * MIB)];
        let t = Topology::fake(2, [0, 1, 2].into_iter(), &map);
        assert_eq!(t.source, Source::Fake);
        assert_eq!(t.nodes[0].cpus.as_slice(), &[0, 2]);
        assert_eq!(t.nodes[1].cpus.as_slice(), &[1]);
        let sizes: std::vec::Vec<u64> = t
            .nodes
            .iter()
            .map(|n| n.ranges.iter().map(|(s, e)| e - s).sum())
            .collect();
        assert_eq!(sizes[0] + sizes[1], 0x9_f000 + 63 * MIB);
        assert!(sizes[0].abs_diff(sizes[1]) <= 0x2000, "{sizes:?}");
        assert_eq!(t.distance[0][1], REMOTE);
    }

    #[test]
    fn one_node_when_nothing_says_otherwise() {
        let t = Topology::single(
            [0, 1].into_iter(),
            &[usable(0, 640 << 10), usable(MIB, MIB)],
        );
        assert_eq!(
            (
                t.nodes.len(),
                t.nodes[0].cpus.len(),
                t.nodes[0].ranges.len()
            ),
            (1, 2, 2)
        );
    }
}
