import { defineGuestScenario, reportEquals } from "../harness/guests.ts";

const io = (fields: Record<string, unknown>) => ({
  ev: "vmexit",
  fields: { reason: "io", ...fields },
});

export default defineGuestScenario({
  name: "io-exit",
  description:
    "intercepted port I/O is reported with its values; the emulator's exit port ends the guest only",
  payload: "io-exit.asm",
  cmdline: "guest=long guest.io=0x80,0x71",
  exits: ["io", "io", "hypercall", "io"],
  ends: "debug-exit",
  expect: () => [
    io({ port: "0x80", dir: "out", size: 1, value: "0x42", action: "reported" }),
    io({ port: "0x71", dir: "in", size: 1, action: "reported" }),
    reportEquals(1, 0xffn), // no device answers: all ones
    io({ port: "0xf4", dir: "out", size: 4, value: "0x0", action: "debug-exit" }),
  ],
});
