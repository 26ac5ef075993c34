import { defineScenario } from "../harness/scenario.ts";

// The kernel reports `exit` twice and powers off cleanly (QEMU exits with
// success, Bochs logs the shutdown-port power-off): every other check is
// satisfied, so only the verdict's contradiction check can fail this run.
export default defineScenario({
  name: "selftest-contradiction",
  description: "harness selftest: two exit events from a clean power-off are a failure, not a pass",
  groups: ["selftest"],
  cmdline: "selftest=contradiction",
  machine: { memoryMiB: 64 },
  targets: [
    { backend: "qemu", boot: "kernel", cpus: ["qemu64"] },
    { backend: "bochs", cpus: ["tigerlake"] },
  ],
  timeoutS: 30,
  expectStatus: "fail",
  expect: [
    { ev: "selftest", fields: { test: "contradiction" } },
    { ev: "exit", fields: { status: "pass" } },
    { ev: "exit", fields: { status: "pass" } },
  ],
});
