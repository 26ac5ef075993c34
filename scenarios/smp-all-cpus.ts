import { defineScenario } from "../harness/scenario.ts";
import { everyCpuChecksIn } from "../harness/smp.ts";

export default defineScenario({
  name: "smp-all-cpus",
  description: "every CPU of the MADT is started by INIT-SIPI-SIPI and checks in",
  groups: ["smp"],
  machine: { smp: 4, memoryMiB: 256 },
  targets: [
    { backend: "qemu", boot: "kernel", cpus: ["EPYC", "qemu64"] },
    { backend: "bochs", cpus: ["tigerlake", "ryzen"] },
  ],
  timeoutS: 60,
  expect: everyCpuChecksIn,
  absent: ["cpu-timeout", "error"],
});
