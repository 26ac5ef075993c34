import { defineNumaScenario } from "../harness/numa_scenario.ts";

export default defineNumaScenario({
  name: "numa-2node",
  description: "two nodes of two CPUs and 128 MiB each, distance 20",
  smp: 4,
  numa: {
    nodes: [{ cpus: [0, 1], memoryMiB: 128 }, { cpus: [2, 3], memoryMiB: 128 }],
    distances: [[10, 20], [20, 10]],
  },
});
