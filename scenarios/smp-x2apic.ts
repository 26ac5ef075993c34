import { defineScenario } from "../harness/scenario.ts";
import { everyCpuChecksIn } from "../harness/smp.ts";

export default defineScenario({
  name: "smp-x2apic",
  description: "the other CPUs started through the x2APIC (MSRs); skipped on CPUs without x2APIC",
  groups: ["smp"],
  cmdline: "smp.x2apic",
  machine: { smp: 4, memoryMiB: 256 },
  targets: [
    { backend: "qemu", boot: "kernel", cpus: ["EPYC"] },
    { backend: "bochs", cpus: ["tigerlake", "ryzen"] },
  ],
  timeoutS: 60,
  expect: everyCpuChecksIn,
  absent: ["cpu-timeout", "error"],
});
