import { defineNumaScenario } from "../harness/numa_scenario.ts";

export default defineNumaScenario({
  name: "numa-memoryless-node",
  description: "a node with CPUs and no memory: its allocations come from the nearest node",
  smp: 3,
  numa: {
    nodes: [
      { cpus: [0], memoryMiB: 128 },
      { cpus: [1], memoryMiB: 128 },
      { cpus: [2], memoryMiB: 0 },
    ],
    distances: [[10, 20, 30], [20, 10, 15], [30, 15, 10]],
  },
});
