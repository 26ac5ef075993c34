import { defineScenario } from "../harness/scenario.ts";
import {
  guestEnds,
  INTEL_GUEST_TARGETS,
  lifecycle,
  report,
  reportEquals,
} from "../harness/guests.ts";

const gp = [reportEquals(101, 0n), reportEquals(100, 13n)]; // error code, then vector

export default defineScenario({
  name: "msr-exit",
  description:
    "MSR reads and writes exit: VMX MSRs and unknown writes give #GP, EFER writes are emulated",
  payload: { file: "msr-exit.asm" },
  cmdline: "guest=long",
  machine: { memoryMiB: 128 },
  targets: INTEL_GUEST_TARGETS,
  timeoutS: 60,
  exits: [
    "msr",
    "hypercall",
    "msr",
    "hypercall",
    "hypercall",
    "msr",
    "hypercall",
    "hypercall",
    "hypercall",
    "msr",
    "hlt",
  ],
  expect: (run) => [
    ...lifecycle(run).start,
    {
      ev: "vmexit",
      fields: { reason: "msr", msr: "0x3a", dir: "read", value: "0x1", action: "emulated" },
    },
    reportEquals(1, 1n), // locked, VMX off
    { ev: "vmexit", fields: { reason: "msr", msr: "0x480", dir: "read", action: "gp" } },
    ...gp,
    { ev: "vmexit", fields: { reason: "msr", msr: "0x1b", dir: "write", action: "gp" } },
    ...gp,
    report(3, (efer) => ((efer & 0x500n) === 0x500n ? undefined : "EFER without LME and LMA")),
    {
      ev: "vmexit",
      fields: { reason: "msr", msr: "0xc0000080", dir: "write", action: "emulated" },
    },
    ...guestEnds(run, "hlt", 11),
  ],
  absent: ["error", "entry-failure"],
});
