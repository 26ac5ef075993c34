import { defineNumaScenario } from "../harness/numa_scenario.ts";

export default defineNumaScenario({
  name: "numa-cpuless-node",
  description: "a node with memory and no CPU",
  smp: 2,
  numa: {
    nodes: [{ cpus: [0, 1], memoryMiB: 128 }, { cpus: [], memoryMiB: 128 }],
    distances: [[10, 25], [25, 10]],
  },
});
