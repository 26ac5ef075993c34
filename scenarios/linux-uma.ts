import { defineLinuxScenario } from "../harness/linux_scenario.ts";

// Debian's Linux on every CPU of a 2-node machine (2 CPUs per node): it must
// see one node, every CPU online and the RAM it was given, while the
// hypervisor spreads its 2 MiB pages over both nodes (interleave).
export default defineLinuxScenario({
  name: "linux-uma",
  description: "an unmodified Linux boots on all 4 CPUs of 2 nodes and sees one node (UMA)",
  machine: {
    smp: 4,
    memoryMiB: 512,
    numa: {
      nodes: [{ cpus: [0, 1], memoryMiB: 256 }, { cpus: [2, 3], memoryMiB: 256 }],
    },
  },
  targets: [{ backend: "qemu", cpus: ["EPYC"] }],
  guestMiB: 256,
  cmdline: "numa.policy=interleave",
});
