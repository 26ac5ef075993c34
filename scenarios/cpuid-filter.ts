import { defineScenario } from "../harness/scenario.ts";
import {
  guestEnds,
  INTEL_GUEST_TARGETS,
  lifecycle,
  report,
  reportEquals,
} from "../harness/guests.ts";

const word = (s: string) =>
  BigInt(new DataView(new TextEncoder().encode(s).buffer).getUint32(0, true));

export default defineScenario({
  name: "cpuid-filter",
  description: "the guest sees VMX hidden, a hypervisor present and Scalevisor's CPUID leaves",
  payload: { file: "cpuid-filter.asm" },
  cmdline: "guest=long",
  machine: { memoryMiB: 128 },
  targets: INTEL_GUEST_TARGETS,
  timeoutS: 60,
  exits: [
    "cpuid",
    "hypercall",
    "cpuid",
    "hypercall",
    "hypercall",
    "hypercall",
    "hypercall",
    "cpuid",
    "hypercall",
    "hlt",
  ],
  expect: (run) => [
    // The host CPU has VMX: hiding it is the point.
    { ev: "cpu", fields: { vmx: true } },
    ...lifecycle(run).start,
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
    ...guestEnds(run, "hlt", 10),
  ],
  absent: ["error", "entry-failure"],
});
