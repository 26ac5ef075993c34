import { defineScenario } from "../harness/scenario.ts";

export default defineScenario({
  name: "boot-module",
  description: "a nasm-assembled payload reaches the kernel as a boot module, whole",
  groups: ["boot"],
  payload: { file: "halt.asm" },
  machine: { memoryMiB: 128 },
  targets: [
    { backend: "qemu", boot: "kernel", cpus: ["EPYC"] },
    { backend: "qemu", boot: "iso", cpus: ["EPYC"] },
    { backend: "bochs", cpus: ["tigerlake"] },
  ],
  timeoutS: 60,
  expect: [
    {
      ev: "modules",
      check: (e, run) => {
        const modules = e.modules as { size: number; cmdline: string }[];
        if (modules.length !== 1) return [`expected 1 module, got ${modules.length}`];
        const m = modules[0]!;
        const problems: string[] = [];
        if (m.size !== run.payloadSize) {
          problems.push(`module size ${m.size}, the payload has ${run.payloadSize} bytes`);
        }
        // GRUB passes module2's arguments; QEMU's PVH loader passes none.
        const name = run.boot === "iso" ? "payload" : "";
        if (m.cmdline !== name) problems.push(`module name "${m.cmdline}", expected "${name}"`);
        return problems;
      },
    },
    { ev: "exit", fields: { status: "pass" } },
  ],
  absent: ["error"],
});
