import { defineLinuxScenario } from "../harness/linux_scenario.ts";

// linux-uma's machine with `numa.guest=mirror`: the guest is given the real
// topology instead (an SRAT and SLIT rebuilt for its guest-physical layout,
// each node's guest memory backed on that node), so both views can be
// compared on one machine. The guest must report the declared nodes and
// distances.
const distances = [[10, 25], [25, 10]];

export default defineLinuxScenario({
  name: "linux-vnuma",
  description:
    "Linux given the real topology (numa.guest=mirror) reports both nodes and their distances",
  machine: {
    smp: 4,
    memoryMiB: 512,
    numa: {
      nodes: [{ cpus: [0, 1], memoryMiB: 256 }, { cpus: [2, 3], memoryMiB: 256 }],
      distances,
    },
  },
  targets: [{ backend: "qemu", boot: "iso", cpus: ["EPYC"] }],
  guestMiB: 256,
  cmdline: "numa.guest=mirror",
  guestNodes: () => 2,
  guestDistances: () => distances,
});
