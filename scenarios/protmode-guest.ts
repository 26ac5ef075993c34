import { defineScenario } from "../harness/scenario.ts";
import {
  guestEnds,
  INTEL_GUEST_TARGETS,
  lifecycle,
  report,
  reportEquals,
} from "../harness/guests.ts";

export default defineScenario({
  name: "protmode-guest",
  description: "a guest that starts in 32-bit protected mode with paging off",
  payload: { file: "protmode-guest.asm" },
  cmdline: "guest=protected",
  machine: { memoryMiB: 128 },
  targets: INTEL_GUEST_TARGETS,
  timeoutS: 60,
  exits: ["hypercall", "hypercall", "cpuid", "hlt"],
  expect: (run) => [
    ...lifecycle(run).start,
    report(1, (cr0) => ((cr0 & 0x80000001n) === 1n ? undefined : "expected PE set, PG clear")),
    reportEquals(2, 0x18n),
    { ev: "vmexit", fields: { reason: "cpuid" } },
    ...guestEnds(run, "hlt", 4),
  ],
  absent: ["error", "entry-failure"],
});
