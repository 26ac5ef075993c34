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
    // A read of a not-present page where the selftest reads: the first
    // byte past the direct map, which the memory map event names.
    {
      ev: "exception",
      fields: { cpu: 0, vector: 14, name: "page-fault", error_code: "0x0" },
      check: (e, _run, events) => {
        const end = events.find((m) => m.ev === "memmap")?.direct_map;
        return e.cr2 === end ? [] : [`cr2 ${e.cr2}, not the end of the direct map ${end}`];
      },
    },
  ],
  absent: ["exit"],
});
