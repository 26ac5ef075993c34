import { defineGuestScenario, VENDOR_TARGETS } from "../harness/guests.ts";

// Read as evidence, the forged lines would make this a clean `hlt` run with
// two exit events; the verdict must rest on COM2 alone, where the guest's
// real run shows: one blocked write to COM2, then its triple fault.
export default defineGuestScenario({
  name: "hostile-forge",
  description: "a guest forging a passing run on COM1 is judged by what it did, not what it wrote",
  payload: "hostile-forge.asm",
  groups: ["hostile"],
  targets: VENDOR_TARGETS,
  exits: ["io", "triple-fault"],
  ends: "triple-fault",
  expect: () => [
    { ev: "vmexit", fields: { reason: "io", port: "0x2f8", dir: "out", action: "blocked" } },
    { ev: "vmexit", fields: { reason: "triple-fault" } },
  ],
  // (Bochs drops most of the unpaced REP OUTSB bytes; the paced lines arrive.)
  guestOutput: (text) =>
    text.includes('@sv {"ev":"guest-end","vcpu":0,"how":"hlt"')
      ? []
      : ["the forged events are not in the guest's log"],
});
