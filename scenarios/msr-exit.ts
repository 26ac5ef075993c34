import { defineGuestScenario, report, reportEquals } from "../harness/guests.ts";

const msr = (fields: Record<string, unknown>) => ({
  ev: "vmexit",
  fields: { reason: "msr", ...fields },
});
/** The guest's #GP handler reports the error code, then the vector. */
const gp = [reportEquals(101, 0n), reportEquals(100, 13n)];

export default defineGuestScenario({
  name: "msr-exit",
  description: "MSR accesses exit: VMX MSRs and unknown writes give #GP, EFER writes are emulated",
  payload: "msr-exit.asm",
  exits: [
    ...["msr", "hypercall"],
    ...["msr", "hypercall", "hypercall"],
    ...["msr", "hypercall", "hypercall"],
    ...["hypercall", "msr", "hlt"],
  ],
  expect: () => [
    msr({ msr: "0x3a", dir: "read", value: "0x1", action: "emulated" }),
    reportEquals(1, 1n), // locked, VMX off
    msr({ msr: "0x480", dir: "read", action: "gp" }),
    ...gp,
    msr({ msr: "0x1b", dir: "write", action: "gp" }),
    ...gp,
    report(3, (efer) => ((efer & 0x500n) === 0x500n ? undefined : "EFER without LME and LMA")),
    msr({ msr: "0xc0000080", dir: "write", action: "emulated" }),
  ],
});
