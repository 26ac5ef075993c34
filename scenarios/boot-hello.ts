import { SCHEMA } from "../harness/events.ts";
import { defineScenario } from "../harness/scenario.ts";

const MiB = 1024 * 1024;
/** The kernel's load address (hypervisor/link.ld): it must lie in usable RAM. */
const KERNEL_BASE = 0x200000;

interface Region {
  base: string;
  len: string;
  kind: string;
}

export default defineScenario({
  name: "boot-hello",
  description: "boots, reports banner, protocol, CPU, memory map and ACPI, powers off",
  groups: ["boot"],
  machine: { smp: 1, memoryMiB: 256 },
  targets: [
    {
      backend: "qemu",
      boot: "kernel",
      cpus: ["EPYC", "EPYC-Rome", "EPYC-Milan", "qemu64", "qemu64,+svm,+npt", "qemu64,-svm"],
    },
    { backend: "qemu", boot: "iso", firmware: "bios", cpus: ["EPYC"] },
    { backend: "qemu", boot: "iso", firmware: "uefi", cpus: ["EPYC"], timeoutS: 120 },
    {
      backend: "bochs",
      cpus: [
        "tigerlake",
        "corei7_icelake_u",
        "corei7_skylake_x",
        "corei7_haswell_4770",
        "broadwell_ult",
        "core2_penryn_t9600",
        "ryzen",
      ],
    },
    { backend: "kvm", cpus: ["host"] },
  ],
  timeoutS: 60,
  expect: [
    {
      ev: "boot",
      fields: (run) => ({
        schema: SCHEMA,
        proto: run.boot === "kernel" ? "pvh" : "multiboot2",
        cmdline: run.cmdline,
      }),
      check: (e, run) => {
        const loader = String(e.loader);
        const ok = run.boot === "kernel" ? loader === "PVH" : loader.startsWith("GRUB");
        return ok ? [] : [`loader "${loader}" does not fit boot path ${run.boot}`];
      },
    },
    {
      ev: "cpu",
      fields: (run) => ({
        vendor: run.vendor,
        vmx: run.features.has("vmx"),
        ept: run.features.has("ept"),
        unrestricted_guest: run.features.has("unrestricted_guest"),
        svm: run.features.has("svm"),
        npt: run.features.has("npt"),
      }),
    },
    {
      ev: "memmap",
      fields: { dropped: 0 },
      check: (e, run) => {
        const problems: string[] = [];
        const usable = Number(e.usable_bytes);
        // Firmware keeps some RAM for itself; no more than 16 MiB of it.
        if (usable > run.memoryMiB * MiB || usable < (run.memoryMiB - 16) * MiB) {
          problems.push(`usable ${usable / MiB} MiB is not within 16 MiB of ${run.memoryMiB} MiB`);
        }
        const regions = e.regions as Region[];
        const home = regions.find((r) =>
          r.kind === "usable" && Number(r.base) <= KERNEL_BASE &&
          KERNEL_BASE < Number(r.base) + Number(r.len)
        );
        if (!home) {
          problems.push(`no usable region holds the kernel at ${KERNEL_BASE.toString(16)}`);
        }
        return problems;
      },
    },
    { ev: "modules", fields: { modules: [] } },
    {
      ev: "acpi",
      check: (e, run) => {
        // OVMF gives ACPI 2.0 tables (with an XSDT); SeaBIOS and Bochs' BIOS give 1.0.
        const v2 = run.firmware === "uefi";
        const ok = v2 ? Number(e.revision) >= 2 && e.xsdt !== null : e.revision === 0;
        return ok ? [] : [`revision ${e.revision} (xsdt ${e.xsdt}) does not fit ${run.firmware}`];
      },
    },
    { ev: "exit", fields: { status: "pass" } },
  ],
  absent: ["error"],
});
