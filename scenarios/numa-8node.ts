import { defineNumaScenario } from "../harness/numa_scenario.ts";

export default defineNumaScenario({
  name: "numa-8node",
  description: "eight nodes of one CPU and 64 MiB, distance growing with the index gap",
  smp: 8,
  numa: {
    nodes: Array.from({ length: 8 }, (_, i) => ({ cpus: [i], memoryMiB: 64 })),
    distances: Array.from(
      { length: 8 },
      (_, i) => Array.from({ length: 8 }, (_, j) => (i === j ? 10 : 10 + 4 * Math.abs(i - j))),
    ),
  },
});
