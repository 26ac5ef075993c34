import { defineGuestScenario, report, reportEquals } from "../harness/guests.ts";

const msr = (fields: Record<string, unknown>) => ({
  ev: "vmexit",
  fields: { reason: "msr", ...fields },
});
/** The guest's #GP handler reports the error code, then the vector. */
const gp = [reportEquals(101, 0n), reportEquals(100, 13n)];

export default defineGuestScenario({
  name: "msr-exit",
  description: "MSR accesses exit: VMX MSRs and unknown writes give #GP, EFER is emulated",
  payload: "msr-exit.asm",
  exits: [
    ...["msr", "hypercall"],
    ...["msr", "hypercall", "hypercall"],
    ...["msr", "hypercall", "hypercall"],
    ...["msr", "hypercall", "msr", "hlt"],
  ],
  expect: () => [
    msr({ msr: "0x3a", dir: "read", value: "0x1", action: "emulated" }),
    reportEquals(1, 1n), // locked, VMX off
    msr({ msr: "0x480", dir: "read", action: "gp" }),
    ...gp,
    msr({ msr: "0x1b", dir: "write", action: "gp" }),
    ...gp,
    msr({ msr: "0xc0000080", dir: "read", action: "emulated" }),
    report(
      3,
      (efer) =>
        (efer & 0x500n) !== 0x500n
          ? "EFER without LME and LMA"
          : (efer & 0x1000n) !== 0n
          ? "EFER.SVME visible to the guest"
          : undefined,
    ),
    msr({ msr: "0xc0000080", dir: "write", action: "emulated" }),
  ],
});
