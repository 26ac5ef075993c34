import { defineScenario } from "../harness/scenario.ts";
import { INTEL_EPT_MODELS, lifecycle } from "../harness/guests.ts";

export default defineScenario({
  name: "vmlaunch-basic",
  description: "enters VMX, launches a long-mode guest (CPUID, a hypercall, HLT) and leaves VMX",
  payload: { file: "vmlaunch-basic.asm" },
  cmdline: "guest=long",
  machine: { memoryMiB: 128 },
  targets: [{ backend: "bochs", cpus: [...INTEL_EPT_MODELS, "core2_penryn_t9600"] }],
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
    { ev: "guest-end", fields: { how: "hlt", failed: false, exits: 3 } },
    ...lifecycle(run).end,
    { ev: "exit", fields: { status: "pass" } },
  ],
  absent: ["error", "entry-failure"],
});
