import { defineScenario, type EventExpectation, type RunInfo } from "../harness/scenario.ts";

/** Every CPU checks in once, with its own APIC id, then the summary counts them all. */
function everyCpu(run: RunInfo): EventExpectation[] {
  const ids = Array.from({ length: run.smp }, (_, i) => i);
  return [
    ...ids.map((cpu) => ({
      ev: "cpu-up",
      fields: { cpu, apic_id: cpu, bsp: cpu === 0 },
    })),
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

export default defineScenario({
  name: "smp-all-cpus",
  description: "every CPU of the MADT is started by INIT-SIPI-SIPI and checks in",
  machine: { smp: 4, memoryMiB: 256 },
  targets: [
    { backend: "qemu", boot: "kernel", cpus: ["EPYC", "qemu64"] },
    { backend: "bochs", cpus: ["tigerlake", "ryzen"] },
  ],
  timeoutS: 60,
  expect: everyCpu,
  absent: ["cpu-timeout", "error"],
});
