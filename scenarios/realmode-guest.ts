import { defineGuestScenario, report, reportEquals } from "../harness/guests.ts";

export default defineGuestScenario({
  name: "realmode-guest",
  description: "a guest that starts in 16-bit real mode, under unrestricted guest",
  payload: "realmode-guest.asm",
  cmdline: "guest=real",
  exits: ["hypercall", "hypercall", "cpuid", "hlt"],
  expect: () => [
    report(1, (cr0) => ((cr0 & 0x80000001n) === 0n ? undefined : "CR0.PE or PG set")),
    reportEquals(2, 0n), // CS
  ],
});
