import { defineScenario } from "../harness/scenario.ts";

export default defineScenario({
  name: "bad-cmdline",
  description: "an unknown kernel option is refused with a clear error and a failed exit",
  groups: ["boot"],
  cmdline: "selftest=hang no-such-option=1",
  machine: { memoryMiB: 64 },
  targets: [
    { backend: "qemu", boot: "kernel", cpus: ["qemu64"] },
    { backend: "qemu", boot: "iso", cpus: ["qemu64"] },
  ],
  timeoutS: 30,
  expectStatus: "fail",
  expect: [
    {
      ev: "error",
      fields: { stage: "cmdline", message: "unknown option 'no-such-option=1'", fatal: true },
    },
    { ev: "exit", fields: { status: "fail" } },
  ],
  absent: ["selftest", "cpu"],
});
