//! Placement policies: on which node each guest page is backed. The guest
//! sees one uniform machine; the hypervisor decides here, at the first touch
//! of each page (`vm::memory`). A policy answers with the nodes to take
//! the page from, in order; one file per policy, all behind `Policy`.
//! Nodes are topology indices here; the command line names them by their
//! proximity domain (what `topology` reports as `id`).
//!
//! Adding a policy: a file with a type implementing `Policy`, a variant in
//! `Spec` and `Chosen`, its name in `Spec::parse`, and a scenario
//! (docs/numa.md).

mod bind;
mod first_touch;
mod interleave;
mod mirror;
mod preferred;
mod weighted;

pub use bind::Bind;
pub use first_touch::FirstTouch;
pub use interleave::Interleave;
pub use mirror::{Mirror, Ranges};
pub use preferred::Preferred;
pub use weighted::WeightedInterleave;

use core::fmt;
use heapless::Vec;

use super::topology::{MAX_NODES, Topology};
use crate::acpi::hmat;

pub type Nodes = Vec<usize, MAX_NODES>;

/// A first touch of a guest page: who touched it and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub vcpu: usize,
    /// The node of the CPU the vCPU runs on.
    pub node: usize,
    pub gpa: u64,
    /// The size of the page being backed (4 KiB or 2 MiB), in bytes.
    pub page: u64,
}

pub trait Policy {
    /// The nodes to take the page from, best first.
    fn nodes(&self, fault: &Fault) -> Nodes;
    /// Whether other nodes, by distance, may serve when those are full
    /// (all policies but `bind`).
    fn may_fall_back(&self) -> bool {
        true
    }
}

/// A policy as the command line names it (`numa.policy=`), nodes by domain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Spec {
    #[default]
    FirstTouch,
    Interleave,
    WeightedInterleave,
    Bind(Vec<u32, MAX_NODES>),
    Preferred(u32),
    /// First-touch, then pages move where sampling sees them used
    /// (`numa::adaptive`, `vm::sampler`).
    Adaptive,
}

pub const SPECS: &str =
    "first-touch, interleave, weighted-interleave, bind:N[,M...], preferred:N or adaptive";

impl Spec {
    pub fn parse(text: &str) -> Option<Self> {
        let domains = |list: &str| -> Option<Vec<u32, MAX_NODES>> {
            let mut v = Vec::new();
            for d in list.split(',') {
                v.push(d.parse().ok()?).ok()?;
            }
            (!v.is_empty()).then_some(v)
        };
        Some(match text.split_once(':') {
            None => match text {
                "first-touch" => Self::FirstTouch,
                "interleave" => Self::Interleave,
                "weighted-interleave" => Self::WeightedInterleave,
                "adaptive" => Self::Adaptive,
                _ => return None,
            },
            Some(("bind", list)) => Self::Bind(domains(list)?),
            Some(("preferred", n)) => Self::Preferred(n.parse().ok()?),
            Some(_) => return None,
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::FirstTouch => "first-touch",
            Self::Interleave => "interleave",
            Self::WeightedInterleave => "weighted-interleave",
            Self::Bind(_) => "bind",
            Self::Preferred(_) => "preferred",
            Self::Adaptive => "adaptive",
        }
    }
}

/// Why a policy cannot run on this machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyError {
    NoSuchNode(u32),
    NoMemory(u32),
    /// No node has memory at all.
    NoMemoryAnywhere,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSuchNode(d) => {
                write!(f, "numa.policy names node {d}, which the topology lacks")
            }
            Self::NoMemory(d) => write!(f, "numa.policy names node {d}, which has no memory"),
            Self::NoMemoryAnywhere => write!(f, "no node has memory"),
        }
    }
}

/// The policy in force, built for this machine.
// One per guest, built once: the size of `Mirror`'s ranges costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Chosen {
    FirstTouch(FirstTouch),
    Interleave(Interleave),
    WeightedInterleave(WeightedInterleave),
    Bind(Bind),
    Preferred(Preferred),
    /// Not named by `numa.policy`: what `numa.guest=mirror` implies.
    Mirror(Mirror),
    /// Pages first placed as first-touch places them; the sampler moves them.
    Adaptive(FirstTouch),
}

impl Chosen {
    pub fn name(&self) -> &'static str {
        match self {
            Self::FirstTouch(_) => "first-touch",
            Self::Interleave(_) => "interleave",
            Self::WeightedInterleave(_) => "weighted-interleave",
            Self::Bind(_) => "bind",
            Self::Preferred(_) => "preferred",
            Self::Mirror(_) => "mirror",
            Self::Adaptive(_) => "adaptive",
        }
    }

    /// Whether pages move after their first touch (the sampler runs).
    pub fn adaptive(&self) -> bool {
        matches!(self, Self::Adaptive(_))
    }
}

/// Builds `spec` for `topology`, whose nodes with memory are `has_memory`;
/// `hmat` gives bandwidths to weighted interleave.
pub fn build(
    spec: &Spec,
    topology: &Topology,
    has_memory: &[bool],
    hmat: &[hmat::Value],
) -> Result<Chosen, PolicyError> {
    let index = |domain: u32| {
        let i = topology
            .index_of(domain)
            .ok_or(PolicyError::NoSuchNode(domain))?;
        if has_memory.get(i) == Some(&true) {
            Ok(i)
        } else {
            Err(PolicyError::NoMemory(domain))
        }
    };
    let with_memory: Nodes = (0..topology.nodes.len())
        .filter(|&i| has_memory.get(i) == Some(&true))
        .collect();
    if with_memory.is_empty() {
        return Err(PolicyError::NoMemoryAnywhere);
    }
    Ok(match spec {
        Spec::FirstTouch => Chosen::FirstTouch(FirstTouch),
        Spec::Interleave => Chosen::Interleave(Interleave::new(with_memory)),
        Spec::WeightedInterleave => {
            Chosen::WeightedInterleave(WeightedInterleave::new(topology, &with_memory, hmat))
        }
        Spec::Bind(domains) => Chosen::Bind(Bind::new(
            domains
                .iter()
                .map(|&d| index(d))
                .collect::<Result<_, _>>()?,
        )),
        Spec::Preferred(d) => Chosen::Preferred(Preferred::new(index(*d)?)),
        Spec::Adaptive => Chosen::Adaptive(FirstTouch),
    })
}

impl Policy for Chosen {
    fn nodes(&self, fault: &Fault) -> Nodes {
        match self {
            Self::FirstTouch(p) => p.nodes(fault),
            Self::Interleave(p) => p.nodes(fault),
            Self::WeightedInterleave(p) => p.nodes(fault),
            Self::Bind(p) => p.nodes(fault),
            Self::Preferred(p) => p.nodes(fault),
            Self::Mirror(p) => p.nodes(fault),
            Self::Adaptive(p) => p.nodes(fault),
        }
    }

    fn may_fall_back(&self) -> bool {
        match self {
            Self::Bind(p) => p.may_fall_back(),
            Self::Mirror(p) => p.may_fall_back(),
            _ => true,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::numa::topology::{Node, Source};

    /// Two nodes with memory (domains 0 and 1) and a memory-less one (domain 5).
    pub fn topology() -> Topology {
        let nodes = [0, 1, 5]
            .iter()
            .map(|&domain| Node {
                domain,
                ..Default::default()
            })
            .collect();
        let mut distance = [[20; MAX_NODES]; MAX_NODES];
        for (i, row) in distance.iter_mut().enumerate() {
            row[i] = 10;
        }
        Topology {
            source: Source::Srat,
            nodes,
            distance,
        }
    }

    pub const MEMORY: [bool; 3] = [true, true, false];

    pub fn fault(vcpu: usize, node: usize, page: u64) -> Fault {
        Fault {
            vcpu,
            node,
            gpa: page * 4096,
            page: 4096,
        }
    }

    #[test]
    fn specs_parse_and_name_themselves() {
        assert_eq!(Spec::parse("first-touch"), Some(Spec::FirstTouch));
        assert_eq!(
            Spec::parse("bind:1,0"),
            Some(Spec::Bind([1, 0].into_iter().collect()))
        );
        assert_eq!(Spec::parse("preferred:1"), Some(Spec::Preferred(1)));
        for bad in [
            "",
            "bind:",
            "bind:x",
            "preferred:",
            "interleave:1",
            "random",
        ] {
            assert_eq!(Spec::parse(bad), None, "{bad}");
        }
        assert_eq!(
            Spec::parse("weighted-interleave").unwrap().name(),
            "weighted-interleave"
        );
    }

    #[test]
    fn nodes_that_do_not_exist_or_have_no_memory_are_refused() {
        let t = topology();
        let build = |s: &str| build(&Spec::parse(s).unwrap(), &t, &MEMORY, &[]);
        assert_eq!(build("bind:7"), Err(PolicyError::NoSuchNode(7)));
        assert_eq!(build("preferred:5"), Err(PolicyError::NoMemory(5)));
        assert!(build("bind:1,0").is_ok());
        assert_eq!(
            super::build(&Spec::Interleave, &t, &[false; 3], &[]),
            Err(PolicyError::NoMemoryAnywhere)
        );
    }
}
