import { defineScenario } from "../harness/scenario.ts";
import { guestEnds, INTEL_GUEST_TARGETS, lifecycle, reportEquals } from "../harness/guests.ts";

export default defineScenario({
  name: "triple-fault",
  description: "a guest triple fault is contained: reported, the guest stopped, VMX left cleanly",
  payload: { file: "triple-fault.asm" },
  cmdline: "guest=long",
  machine: { memoryMiB: 128 },
  targets: INTEL_GUEST_TARGETS,
  timeoutS: 60,
  exits: ["hypercall", "triple-fault"],
  expect: (run) => [
    ...lifecycle(run).start,
    reportEquals(1, 0x3fn),
    { ev: "vmexit", fields: { reason: "triple-fault" } },
    ...guestEnds(run, "triple-fault", 2),
  ],
  absent: ["error", "entry-failure", "exception"],
});
