import { defineScenario } from "../harness/scenario.ts";
import {
  guestEnds,
  INTEL_GUEST_TARGETS,
  lifecycle,
  report,
  reportEquals,
} from "../harness/guests.ts";

export default defineScenario({
  name: "realmode-guest",
  description: "a guest that starts in 16-bit real mode, under unrestricted guest",
  payload: { file: "realmode-guest.asm" },
  cmdline: "guest=real",
  machine: { memoryMiB: 128 },
  targets: INTEL_GUEST_TARGETS,
  timeoutS: 60,
  exits: ["hypercall", "hypercall", "cpuid", "hlt"],
  expect: (run) => [
    ...lifecycle(run).start,
    report(1, (cr0) => ((cr0 & 0x80000001n) === 0n ? undefined : "CR0.PE or PG set")),
    reportEquals(2, 0n),
    { ev: "vmexit", fields: { reason: "cpuid" } },
    ...guestEnds(run, "hlt", 4),
  ],
  absent: ["error", "entry-failure"],
});
