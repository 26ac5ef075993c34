//! NUMA: the machine's topology and memory per node.

pub mod memory;
pub mod topology;
