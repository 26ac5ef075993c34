import { defineNumaScenario } from "../harness/numa_scenario.ts";

export default defineNumaScenario({
  name: "numa-1node",
  description: "one NUMA node with two CPUs, read from the SRAT",
  smp: 2,
  numa: { nodes: [{ cpus: [0, 1], memoryMiB: 256 }] },
});
