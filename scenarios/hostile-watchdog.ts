import { defineGuestScenario } from "../harness/guests.ts";

// A guest that spins with interrupts off and never exits: only the
// hypervisor's own timer (VMX preemption timer, AMD APIC timer) ends it,
// long before the harness's timeout. Not on Bochs' ryzen: Bochs 2.7 masks
// host interrupts in an SVM guest entered with RFLAGS.IF clear (it applies
// the guest's IF before it marks guest mode), so the APIC timer never exits
// there (docs/harness.md).
export default defineGuestScenario({
  name: "hostile-watchdog",
  description: "a guest spinning without exits is stopped by the watchdog, not by the harness",
  payload: { asm: "bits 64\norg 0x8000\n    cli\n    jmp $\n" },
  cmdline: "guest=long guest.watchdog=200",
  groups: ["hostile"],
  targets: [
    { backend: "bochs", cpus: ["tigerlake", "corei7_skylake_x"] },
    { backend: "qemu", boot: "kernel", cpus: ["EPYC", "EPYC-Milan"] },
  ],
  exits: ["watchdog"],
  ends: "watchdog",
  failed: true,
  expect: () => [{ ev: "vmexit", fields: { reason: "watchdog", value: "0xc8" } }],
});
