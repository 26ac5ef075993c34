//! NUMA: the machine's topology, and the policies that place guest pages
//! on its nodes.

pub mod adaptive;
pub mod map;
pub mod policy;
pub mod topology;

use crate::acpi::hmat;
use topology::Topology;

/// The machine as discovered at boot: its topology and HMAT values.
pub struct Machine {
    pub topology: Topology,
    pub hmat: heapless::Vec<hmat::Value, { hmat::MAX_VALUES }>,
}

static MACHINE: spin::Once<Machine> = spin::Once::new();

/// Records the machine once discovered; later calls change nothing.
pub fn set_machine(machine: Machine) -> &'static Machine {
    MACHINE.call_once(|| machine)
}

/// The machine, once discovered (`kernel::main`).
pub fn machine() -> Option<&'static Machine> {
    MACHINE.get()
}
