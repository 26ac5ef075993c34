import { defineScenario } from "../harness/scenario.ts";
import { guestEnds, INTEL_GUEST_TARGETS, lifecycle } from "../harness/guests.ts";

export default defineScenario({
  name: "vmlaunch-basic",
  description: "enters VMX, launches a long-mode guest (CPUID, a hypercall, HLT) and leaves VMX",
  payload: { file: "vmlaunch-basic.asm" },
  cmdline: "guest=long",
  machine: { memoryMiB: 128 },
  targets: INTEL_GUEST_TARGETS,
  timeoutS: 60,
  exits: ["cpuid", "hypercall", "hlt"],
  expect: (run) => [
    ...lifecycle(run).start,
    { ev: "vmexit", fields: { reason: "cpuid", leaf: "0x0", subleaf: "0x0", rip: "0x8002" } },
    {
      ev: "vmexit",
      fields: { reason: "hypercall", call: "report", value: "0x5ca1ab1e", tag: 1 },
    },
    { ev: "vmexit", fields: { reason: "hlt" } },
    ...guestEnds(run, "hlt", 3),
  ],
  absent: ["error", "entry-failure"],
});
