import { defineScenario } from "../harness/scenario.ts";

export default defineScenario({
  name: "selftest-triple-fault",
  description:
    "harness selftest: a triple fault, which the kernel cannot report, is found in the emulator's log",
  groups: ["selftest"],
  cmdline: "selftest=triple-fault",
  machine: { memoryMiB: 64 },
  targets: [
    { backend: "qemu", boot: "kernel", cpus: ["qemu64"] },
    { backend: "bochs", cpus: ["tigerlake"] },
  ],
  timeoutS: 30,
  expectStatus: "crash",
  expect: [{ ev: "selftest", fields: { test: "triple-fault" } }],
  absent: ["exit", "exception"],
});
