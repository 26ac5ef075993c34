import { defineScenario } from "../harness/scenario.ts";

/** An SRAT whose memory-affinity entry claims 40 bytes and holds 20. */
const truncatedSrat = [
  ...[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], // reserved
  ...[1, 40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], // type 1, length 40: cut short
];

export default defineScenario({
  name: "numa-broken-srat",
  description: "a truncated SRAT is reported as an error, and the machine is taken as one node",
  groups: ["numa"],
  machine: { smp: 2, memoryMiB: 256, acpiTables: [{ signature: "SRAT", body: truncatedSrat }] },
  targets: [{ backend: "qemu", boot: "kernel", cpus: ["EPYC"] }],
  timeoutS: 60,
  expect: [
    {
      ev: "error",
      fields: { stage: "acpi", fatal: false },
      check: (e) =>
        /^SRAT: entry at offset 48 runs past the end$/.test(String(e.message))
          ? []
          : [`message ${e.message}`],
    },
    {
      ev: "topology",
      fields: { source: "single" },
      check: (e) => {
        const nodes = e.nodes as { cpus: number[] }[];
        return nodes.length === 1 && nodes[0]!.cpus.length === 2
          ? []
          : [`nodes ${JSON.stringify(nodes)}`];
      },
    },
    { ev: "smp", fields: { started: 2 } },
    { ev: "exit", fields: { status: "pass" } },
  ],
});
