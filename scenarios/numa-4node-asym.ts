import { defineNumaScenario } from "../harness/numa_scenario.ts";

export default defineNumaScenario({
  name: "numa-4node-asym",
  description: "four nodes with unequal and asymmetric distances (16, 22, 28 out, 18, 22, 28 back)",
  smp: 4,
  numa: {
    nodes: [0, 1, 2, 3].map((i) => ({ cpus: [i], memoryMiB: 128 })),
    distances: [
      [10, 16, 22, 28],
      [18, 10, 16, 22],
      [22, 18, 10, 16],
      [28, 22, 18, 10],
    ],
  },
});
