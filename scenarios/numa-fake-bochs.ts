import { numa, passes } from "../harness/numa_scenario.ts";
import { defineScenario } from "../harness/scenario.ts";

// Bochs has no NUMA tables: a declared two-node machine runs there with
// numa=fake:2, and its topology is checked for what a fake keeps.
export default defineScenario(
  {
    name: "numa-fake-bochs",
    description: "numa=fake:2 makes two nodes on Bochs, which has no NUMA tables",
  },
  numa({ nodes: [{ cpus: [0], memoryMiB: 128 }, { cpus: [1], memoryMiB: 128 }] }, 2),
  { targets: [{ backend: "bochs", cpus: ["tigerlake", "ryzen"] }] },
  passes,
);
