/** Checks of SMP bring-up: every CPU checks in once, then the summary counts them all. */
import type { EventExpectation, RunInfo } from "./scenario.ts";

export function everyCpuChecksIn(run: RunInfo): EventExpectation[] {
  const ids = Array.from({ length: run.smp }, (_, i) => i);
  return [
    // QEMU and Bochs number CPUs by APIC id; CPU 0 is the boot CPU.
    ...ids.map((cpu) => ({ ev: "cpu-up", fields: { cpu, apic_id: cpu, bsp: cpu === 0 } })),
    {
      ev: "smp",
      fields: {
        expected: run.smp,
        started: run.smp,
        apic: run.cmdline.includes("smp.x2apic") ? "x2apic" : "xapic",
      },
    },
    { ev: "exit", fields: { status: "pass" } },
  ];
}
