import { defineScenario } from "../harness/scenario.ts";

export default defineScenario({
  name: "selftest-page-fault",
  description: "harness selftest: an exception in the kernel is reported with its state as crash",
  groups: ["selftest"],
  cmdline: "selftest=page-fault",
  machine: { memoryMiB: 64 },
  targets: [
    { backend: "qemu", boot: "kernel", cpus: ["qemu64"] },
    { backend: "bochs", cpus: ["ryzen"] },
  ],
  timeoutS: 30,
  expectStatus: "crash",
  expect: [
    { ev: "selftest", fields: { test: "page-fault" } },
    // A read of a not-present page at the address the selftest reads.
    {
      ev: "exception",
      fields: { vector: 14, name: "page-fault", error_code: "0x0", cr2: "0x4000000000" },
    },
  ],
  absent: ["exit"],
});
