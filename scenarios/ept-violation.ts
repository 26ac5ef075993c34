import { defineGuestScenario, reportEquals } from "../harness/guests.ts";

export default defineGuestScenario({
  name: "ept-violation",
  description:
    "a read of unbacked guest-physical memory exits with its address and stops the guest",
  payload: "ept-violation.asm",
  exits: ["hypercall", "ept-violation"],
  ends: "ept-violation",
  expect: () => [
    reportEquals(1, 0x30000000n),
    {
      ev: "vmexit",
      fields: { reason: "ept-violation", gpa: "0x30000000", access: "read", mapped: false },
    },
  ],
});
