import { defineGuestScenario, reportEquals } from "../harness/guests.ts";

export default defineGuestScenario({
  name: "triple-fault",
  description: "a guest triple fault is contained: reported, the guest stopped, VMX left cleanly",
  payload: "triple-fault.asm",
  exits: ["hypercall", "triple-fault"],
  ends: "triple-fault",
  expect: () => [reportEquals(1, 0x3fn), { ev: "vmexit", fields: { reason: "triple-fault" } }],
});
