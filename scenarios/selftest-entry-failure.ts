import { defineScenario } from "../harness/scenario.ts";
import { INTEL_GUEST_TARGETS, lifecycle } from "../harness/guests.ts";

export default defineScenario({
  name: "selftest-entry-failure",
  description: "a VM entry the CPU refuses is reported with its reason and the guest-state area",
  payload: { file: "vmlaunch-basic.asm" },
  cmdline: "guest=long guest.selftest=entry-failure",
  machine: { memoryMiB: 128 },
  targets: INTEL_GUEST_TARGETS,
  timeoutS: 60,
  expectStatus: "fail",
  exits: [],
  expect: (run) => [
    ...lifecycle(run).start,
    {
      ev: "entry-failure",
      fields: { instruction: "vmlaunch", reason: "entry-failure-guest-state", code: 33 },
      check: (e) => {
        const guest = e.guest as Record<string, string>;
        return guest.rflags === "0x0" && guest.rip === "0x8000"
          ? []
          : [`guest ${JSON.stringify(guest)}`];
      },
    },
    { ev: "guest-end", fields: { how: "entry-failure", failed: true, exits: 0 } },
    ...lifecycle(run).end,
    { ev: "exit", fields: { status: "fail" } },
  ],
});
