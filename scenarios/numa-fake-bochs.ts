import { defineScenario } from "../harness/scenario.ts";
import { probesOnTheirNodes } from "../harness/numa.ts";

const MiB = 1 << 20;

interface Node {
  cpus: number[];
  memory_bytes: number;
  usable_bytes: number;
}

export default defineScenario({
  name: "numa-fake-bochs",
  description: "numa=fake:2 makes two nodes on Bochs, which has no NUMA tables",
  groups: ["numa"],
  cmdline: "numa=fake:2 numa.probe",
  machine: { smp: 2, memoryMiB: 256 },
  targets: [{ backend: "bochs", cpus: ["tigerlake", "ryzen"] }],
  timeoutS: 60,
  expect: [
    {
      ev: "topology",
      fields: { source: "fake", distances: [[10, 20], [20, 10]] },
      check: (e, run) => {
        const nodes = e.nodes as Node[];
        const problems: string[] = [];
        if (nodes.length !== 2) return [`${nodes.length} nodes, asked for 2`];
        if (JSON.stringify(nodes.map((n) => n.cpus)) !== "[[0],[1]]") {
          problems.push(`CPUs ${JSON.stringify(nodes.map((n) => n.cpus))}, expected one per node`);
        }
        const [a, b] = nodes.map((n) => n.usable_bytes);
        if (Math.abs(a! - b!) > 2 * MiB) problems.push(`unequal halves: ${a} and ${b} bytes`);
        if (a! + b! < (run.memoryMiB - 16) * MiB) problems.push(`only ${a! + b!} bytes in all`);
        return problems;
      },
    },
    probesOnTheirNodes(),
    { ev: "exit", fields: { status: "pass" } },
  ],
  absent: ["error"],
});
