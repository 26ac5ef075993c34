import { defineGuestScenario, report, reportEquals } from "../harness/guests.ts";

const word = (s: string) =>
  BigInt(new DataView(new TextEncoder().encode(s).buffer).getUint32(0, true));

export default defineGuestScenario({
  name: "cpuid-filter",
  description: "the guest sees VMX hidden, a hypervisor present and Scalevisor's CPUID leaves",
  payload: "cpuid-filter.asm",
  exits: [
    "cpuid",
    "hypercall",
    "cpuid",
    ...Array(4).fill("hypercall"),
    "cpuid",
    "hypercall",
    "hlt",
  ],
  expect: () => [
    { ev: "vmexit", fields: { reason: "cpuid", leaf: "0x1" } },
    report(
      1,
      (ecx) =>
        (ecx & (1n << 5n)) !== 0n
          ? "VMX visible"
          : (ecx & (1n << 31n)) === 0n
          ? "hypervisor bit clear"
          : undefined,
    ),
    reportEquals(2, 0x40000001n),
    reportEquals(3, word("Scal")),
    reportEquals(4, word("evis")),
    reportEquals(5, word("orSV")),
    reportEquals(6, 1n),
  ],
});
