import { defineLinuxScenario } from "../harness/linux_scenario.ts";

// linux-uma on Bochs, both vendors, 2 CPUs and two nodes made up from the
// memory map (`numa=fake:2`: Bochs has no NUMA tables). Minutes per run:
// its own group.
export default defineLinuxScenario({
  name: "linux-uma-bochs",
  description: "an unmodified Linux boots on both CPUs of Bochs (2 fake nodes) and sees one node",
  machine: {
    smp: 2,
    memoryMiB: 512,
    numa: {
      nodes: [{ cpus: [0], memoryMiB: 256 }, { cpus: [1], memoryMiB: 256 }],
    },
  },
  targets: [{ backend: "bochs", cpus: ["corei7_skylake_x", "ryzen"] }],
  guestMiB: 256,
  cmdline: "numa.policy=interleave",
  groups: ["linux", "slow"],
  timeoutS: 900,
});
