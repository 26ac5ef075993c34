import { defineLinuxScenario } from "../harness/linux_scenario.ts";
import { ASYMMETRIC_4_NODES } from "../harness/numa.ts";

// linux-uma on the 4-node asymmetric machine of numa-4node-asym: one CPU and
// 128 MiB per node, distances that differ by direction. The guest still
// sees one node; first-touch at 4 KiB puts pages on all four, each vCPU's
// first touches on its own node (with 2 MiB pages a vCPU may touch none first).
export default defineLinuxScenario({
  name: "linux-uma-asym",
  description: "an unmodified Linux on 4 asymmetric nodes sees one node; its pages are on all four",
  machine: {
    smp: 4,
    memoryMiB: 512,
    numa: ASYMMETRIC_4_NODES,
  },
  targets: [{ backend: "qemu", cpus: ["EPYC"] }],
  guestMiB: 256,
  cmdline: "numa.page=4k",
});
