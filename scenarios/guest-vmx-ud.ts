import { defineGuestScenario, reportEquals } from "../harness/guests.ts";

export default defineGuestScenario({
  name: "guest-vmx-ud",
  description: "VMXON in the guest exits, and the guest receives #UD in its own handler",
  payload: "guest-vmx-ud.asm",
  exits: ["exception", "hypercall", "hlt"],
  expect: () => [
    {
      ev: "vmexit",
      fields: { reason: "exception", vector: 6, instruction: "vmxon", action: "injected" },
    },
    reportEquals(100, 6n),
  ],
});
