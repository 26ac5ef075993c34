import { defineScenario } from "../harness/scenario.ts";
import { guestEnds, INTEL_GUEST_TARGETS, lifecycle, reportEquals } from "../harness/guests.ts";

export default defineScenario({
  name: "guest-vmx-ud",
  description: "VMXON in the guest exits, and the guest receives #UD in its own handler",
  payload: { file: "guest-vmx-ud.asm" },
  cmdline: "guest=long",
  machine: { memoryMiB: 128 },
  targets: INTEL_GUEST_TARGETS,
  timeoutS: 60,
  exits: ["exception", "hypercall", "hlt"],
  expect: (run) => [
    ...lifecycle(run).start,
    {
      ev: "vmexit",
      fields: { reason: "exception", vector: 6, instruction: "vmxon", action: "injected" },
    },
    reportEquals(100, 6n),
    ...guestEnds(run, "hlt", 3),
  ],
  absent: ["error", "entry-failure"],
});
