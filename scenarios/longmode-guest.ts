import { defineGuestScenario, report, reportEquals } from "../harness/guests.ts";

export default defineGuestScenario({
  name: "longmode-guest",
  description: "a guest that starts in long mode; its SSE registers survive exits",
  payload: "longmode-guest.asm",
  exits: [
    "hypercall",
    "hypercall",
    "msr",
    "hypercall",
    "cr-write",
    "cpuid",
    ...Array(3).fill("hypercall"),
    "hlt",
  ],
  expect: () => [
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
    { ev: "vmexit", fields: { reason: "cr-write", cr: 4, action: "emulated" } },
    // xmm0 and xmm7, set before two exits that ran the hypervisor's Rust code.
    reportEquals(5, 0x1122334455667788n),
    reportEquals(6, 0x99aabbccddeeff00n),
  ],
});
