import type { RunCheck } from "../harness/scenario.ts";
import { defineLinuxScenario } from "../harness/linux_scenario.ts";

// Debian's Linux on every CPU of a 2-node machine (2 CPUs per node): it must
// see one node, every CPU online and the RAM it was given, while the
// hypervisor spreads its 2 MiB pages over both nodes (interleave). Its PCI
// configuration goes through ECAM, whose reads do not exit (docs/guests.md):
// the boot's port exits stay few (463 measured; through mechanism #1, 17,617).
const PORT_EXITS = 1000;

const fewPortExits: RunCheck = (events) => {
  const io = events.filter((e) => e.ev === "guest-end")
    .reduce((n, e) => n + ((e.counts as Record<string, number>).io ?? 0), 0);
  return io <= PORT_EXITS ? [] : [`${io} port exits in the boot (at most ${PORT_EXITS})`];
};

const scenario = defineLinuxScenario({
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

export default { ...scenario, checks: [...scenario.checks ?? [], fewPortExits] };
