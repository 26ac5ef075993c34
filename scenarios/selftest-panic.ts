import { defineScenario } from "../harness/scenario.ts";

export default defineScenario({
  name: "selftest-panic",
  description: "harness selftest: a Rust panic is reported with its message and location as crash",
  groups: ["selftest"],
  cmdline: "selftest=panic",
  machine: { memoryMiB: 64 },
  targets: [{ backend: "qemu", boot: "kernel", cpus: ["qemu64"] }],
  timeoutS: 30,
  expectStatus: "crash",
  expect: [
    {
      ev: "panic",
      fields: { message: "selftest panic" },
      check: (e) => String(e.file).endsWith("kernel.rs") ? [] : [`file ${e.file}`],
    },
  ],
  absent: ["exit"],
});
