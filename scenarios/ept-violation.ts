import { defineScenario } from "../harness/scenario.ts";
import { guestEnds, INTEL_GUEST_TARGETS, lifecycle, reportEquals } from "../harness/guests.ts";

export default defineScenario({
  name: "ept-violation",
  description:
    "a guest read of unbacked guest-physical memory exits with its address and stops the guest",
  payload: { file: "ept-violation.asm" },
  cmdline: "guest=long",
  machine: { memoryMiB: 128 },
  targets: INTEL_GUEST_TARGETS,
  timeoutS: 60,
  exits: ["hypercall", "ept-violation"],
  expect: (run) => [
    ...lifecycle(run).start,
    reportEquals(1, 0x30000000n),
    {
      ev: "vmexit",
      fields: { reason: "ept-violation", gpa: "0x30000000", access: "read", mapped: false },
    },
    ...guestEnds(run, "ept-violation", 2),
  ],
  absent: ["error", "entry-failure"],
});
