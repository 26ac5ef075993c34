import { defineScenario } from "../harness/scenario.ts";
import {
  guestEnds,
  INTEL_GUEST_TARGETS,
  lifecycle,
  report,
  reportEquals,
} from "../harness/guests.ts";

export default defineScenario({
  name: "longmode-guest",
  description: "a guest that starts in long mode; its SSE registers survive exits",
  payload: { file: "longmode-guest.asm" },
  cmdline: "guest=long",
  machine: { memoryMiB: 128 },
  targets: INTEL_GUEST_TARGETS,
  timeoutS: 60,
  exits: [
    "hypercall",
    "hypercall",
    "hypercall",
    "cpuid",
    "hypercall",
    "hypercall",
    "hypercall",
    "hlt",
  ],
  expect: (run) => [
    ...lifecycle(run).start,
    report(1, (cr0) => ((cr0 & 0x80000001n) === 0x80000001n ? undefined : "expected PE and PG")),
    report(
      2,
      (cr4) =>
        (cr4 & (1n << 5n)) === 0n
          ? "PAE clear"
          : (cr4 & (1n << 13n)) !== 0n
          ? "VMXE visible to the guest"
          : undefined,
    ),
    report(3, (efer) => ((efer & 0x500n) === 0x500n ? undefined : "expected LME and LMA")),
    reportEquals(5, 0x1122334455667788n),
    reportEquals(6, 0x99aabbccddeeff00n),
    ...guestEnds(run, "hlt", 8),
  ],
  absent: ["error", "entry-failure"],
});
