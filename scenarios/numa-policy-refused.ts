import { defineScenario, variants } from "../harness/scenario.ts";

// A policy the machine cannot follow is refused at boot, before any CPU
// starts or any guest runs: a node that does not exist, or has no memory.
const base = defineScenario({
  name: "numa-policy-refused",
  description: "numa.policy naming a missing or memory-less node is refused at boot",
  groups: ["numa"],
  cmdline: "guest=long",
  payload: { asm: "bits 64\norg 0x8000\n    hlt\n" },
  machine: {
    smp: 2,
    memoryMiB: 128,
    numa: { nodes: [{ cpus: [0], memoryMiB: 128 }, { cpus: [1], memoryMiB: 0 }] },
  },
  targets: [{ backend: "qemu", boot: "kernel", cpus: ["EPYC"] }],
  timeoutS: 30,
  expectStatus: "fail",
  expect: [],
  absent: ["smp", "vmrun", "guest-end"],
});
const refused = (policy: string, message: string) => ({
  cmdline: `${base.cmdline} numa.policy=${policy}`,
  expect: [
    { ev: "error", fields: { stage: "numa", message, fatal: true } },
    { ev: "exit", fields: { status: "fail" } },
  ],
});
export default variants(base, {
  "no-such-node": refused("bind:0,7", "numa.policy names node 7, which the topology lacks"),
  "no-memory": refused("preferred:1", "numa.policy names node 1, which has no memory"),
});
