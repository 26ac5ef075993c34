import { defineLinuxScenario } from "../harness/linux_scenario.ts";

// linux-uma's guest entered by the x86 boot protocol instead of PVH: the
// bzImage's 32-bit entry with boot_params (e820, command line, initrd,
// RSDP), the kernel decompressing itself in guest RAM.
export default defineLinuxScenario({
  name: "linux-bzimage",
  description: "Linux from its bzImage (x86 boot protocol) boots on 2 CPUs of 2 nodes and sees one",
  machine: {
    smp: 2,
    memoryMiB: 512,
    numa: {
      nodes: [{ cpus: [0], memoryMiB: 256 }, { cpus: [1], memoryMiB: 256 }],
    },
  },
  targets: [{ backend: "qemu", cpus: ["EPYC"] }],
  guestMiB: 256,
  image: "bzImage",
  cmdline: "numa.policy=interleave",
});
