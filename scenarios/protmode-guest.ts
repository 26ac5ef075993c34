import { defineGuestScenario, report, reportEquals } from "../harness/guests.ts";

export default defineGuestScenario({
  name: "protmode-guest",
  description: "a guest that starts in 32-bit protected mode with paging off",
  payload: "protmode-guest.asm",
  cmdline: "guest=protected",
  exits: ["hypercall", "hypercall", "cpuid", "hlt"],
  expect: () => [
    report(1, (cr0) => ((cr0 & 0x80000001n) === 1n ? undefined : "expected PE set, PG clear")),
    reportEquals(2, 0x18n), // CS: the 32-bit code selector
  ],
});
