import { defineGuestScenario } from "../harness/guests.ts";

export default defineGuestScenario({
  name: "vmlaunch-basic",
  description: "enters VMX, launches a long-mode guest (CPUID, a hypercall, HLT) and leaves VMX",
  payload: "vmlaunch-basic.asm",
  exits: ["cpuid", "hypercall", "hlt"],
  expect: () => [
    { ev: "vmexit", fields: { reason: "cpuid", leaf: "0x0", subleaf: "0x0", rip: "0x8002" } },
    {
      ev: "vmexit",
      fields: { reason: "hypercall", call: "report", value: "0x5ca1ab1e", tag: "0x1" },
    },
    { ev: "vmexit", fields: { reason: "hlt" } },
  ],
});
