import { defineScenario } from "../harness/scenario.ts";

export default defineScenario({
  name: "selftest-hang",
  description: "harness selftest: a kernel that spins forever is stopped and reported as timeout",
  groups: ["selftest"],
  cmdline: "selftest=hang",
  machine: { memoryMiB: 64 },
  targets: [
    { backend: "qemu", boot: "kernel", cpus: ["qemu64"] },
    { backend: "bochs", cpus: ["tigerlake"], timeoutS: 10 },
  ],
  timeoutS: 3,
  expectStatus: "timeout",
  expect: [{ ev: "selftest", fields: { test: "hang" } }],
  absent: ["exit"],
});
