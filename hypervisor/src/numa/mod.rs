//! NUMA: the machine's topology.

pub mod topology;
