import { defineScenario } from "../harness/scenario.ts";
import { guestEnds, INTEL_GUEST_TARGETS, lifecycle, reportEquals } from "../harness/guests.ts";

export default defineScenario({
  name: "io-exit",
  description:
    "intercepted port I/O is reported with its values; the emulator's exit port stays blocked",
  payload: { file: "io-exit.asm" },
  cmdline: "guest=long guest.io=0x80,0x71",
  machine: { memoryMiB: 128 },
  targets: INTEL_GUEST_TARGETS,
  timeoutS: 60,
  exits: ["io", "io", "hypercall", "io", "hypercall", "hlt"],
  expect: (run) => [
    ...lifecycle(run).start,
    {
      ev: "vmexit",
      fields: {
        reason: "io",
        port: "0x80",
        dir: "out",
        size: 1,
        value: "0x42",
        action: "reported",
      },
    },
    {
      ev: "vmexit",
      fields: { reason: "io", port: "0x71", dir: "in", size: 1, action: "reported" },
    },
    reportEquals(1, 0xffn), // no device answers: all ones
    {
      ev: "vmexit",
      fields: { reason: "io", port: "0xf4", dir: "out", size: 4, value: "0x11", action: "blocked" },
    },
    reportEquals(2, 0x600dn), // the guest ran on
    ...guestEnds(run, "hlt", 6),
  ],
  absent: ["error", "entry-failure"],
});
