/** QEMU, with TCG or with KVM where the host offers nested VMX/SVM. */
import { imageRange, meterArgument } from "../meter.ts";
import { existsSync } from "node:fs";
import type { Numa, RunPlan } from "../scenario.ts";
import { DEFAULT_MEMORY_MIB, DEFAULT_SMP } from "../scenario.ts";
import { type Artifacts, type Backend, type Launch, RUN_FILES } from "./backend.ts";

/** Kernel exit codes (hypervisor/src/arch/power.rs) as QEMU reports them. */
export const QEMU_SUCCESS = (0x10 << 1) | 1;

export interface Ovmf {
  code: string;
  vars: string;
}

/** OVMF from OVMF_CODE/OVMF_VARS (the Nix shell sets them), else Debian's. */
export function findOvmf(env: (k: string) => string | undefined = Deno.env.get): Ovmf | undefined {
  const code = env("OVMF_CODE"), vars = env("OVMF_VARS");
  if (code && vars) return { code, vars };
  for (const suffix of ["_4M", ""]) {
    const pair = {
      code: `/usr/share/OVMF/OVMF_CODE${suffix}.fd`,
      vars: `/usr/share/OVMF/OVMF_VARS${suffix}.fd`,
    };
    if (existsSync(pair.code) && existsSync(pair.vars)) return pair;
  }
  return undefined;
}

/** `-drive` values separate options with commas; a comma in a path is doubled. */
const driveValue = (path: string) => path.replaceAll(",", ",,");

function ranges(cpus: number[]): string[] {
  const sorted = [...cpus].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    out.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return out;
}

/** `-object`/`-numa` options for a topology. */
export function numaArgs(numa: Numa): string[] {
  const args: string[] = [];
  // With an HMAT, QEMU wants each node's initiator: itself, or the first node with CPUs.
  const firstWithCpus = numa.nodes.findIndex((n) => n.cpus.length > 0);
  numa.nodes.forEach((node, i) => {
    let spec = `node,nodeid=${i}`;
    if (node.memoryMiB > 0) {
      args.push("-object", `memory-backend-ram,id=mem${i},size=${node.memoryMiB}M`);
      spec += `,memdev=mem${i}`;
    }
    for (const r of ranges(node.cpus)) spec += `,cpus=${r}`;
    if (numa.hmat) spec += `,initiator=${node.cpus.length > 0 ? i : firstWithCpus}`;
    args.push("-numa", spec);
  });
  numa.distances?.forEach((row, src) =>
    row.forEach((val, dst) => {
      if (src !== dst) args.push("-numa", `dist,src=${src},dst=${dst},val=${val}`);
    })
  );
  for (const h of numa.hmat ?? []) {
    const value = h.kind === "access-latency" ? `latency=${h.value}` : `bandwidth=${h.value}M`;
    args.push(
      "-numa",
      `hmat-lb,initiator=${h.initiator},target=${h.target},hierarchy=memory,data-type=${h.kind},${value}`,
    );
  }
  return args;
}

export function qemuArgs(
  plan: RunPlan,
  artifacts: Artifacts,
  cmdline: string,
  ovmf?: Ovmf,
): string[] {
  const m = plan.scenario.machine;
  const kvm = plan.backend === "kvm";
  const args = [
    "-machine",
    m.numa?.hmat ? "q35,hmat=on" : "q35",
    "-accel",
    kvm ? "kvm" : m.singleThreaded ? "tcg,thread=single" : "tcg",
    "-cpu",
    kvm ? "host" : plan.cpu,
    "-smp",
    String(m.smp ?? DEFAULT_SMP),
    "-m",
    `${m.memoryMiB ?? DEFAULT_MEMORY_MIB}M`,
    ...(m.numa ? numaArgs(m.numa) : []),
    ...(m.acpiTables ?? []).flatMap((
      t,
      i,
    ) => ["-acpitable", `sig=${t.signature},data=acpi-${i}.bin`]),
    "-nodefaults",
    "-display",
    "none",
    "-no-reboot",
    // COM1 is the guest's, COM2 the hypervisor's (docs/hypercalls.md).
    "-serial",
    `file:${RUN_FILES.guest}`,
    "-serial",
    `file:${RUN_FILES.serial}`,
    "-device",
    "isa-debug-exit,iobase=0xf4,iosize=0x04",
    "-d",
    "cpu_reset,guest_errors",
    "-D",
    "qemu.log",
  ];
  if (plan.boot === "kernel") {
    args.push("-kernel", RUN_FILES.kernel, "-append", cmdline);
    if (artifacts.payload) args.push("-initrd", RUN_FILES.payload);
  } else {
    args.push(
      "-drive",
      `file=${RUN_FILES.iso},media=cdrom,if=ide,readonly=on`,
      "-boot",
      "d",
    );
  }
  if (plan.firmware === "uefi") {
    if (!ovmf) throw new Error("OVMF is needed for --firmware uefi");
    args.push(
      "-drive",
      `if=pflash,format=raw,unit=0,readonly=on,file=${driveValue(ovmf.code)}`,
      "-drive",
      "if=pflash,format=raw,unit=1,file=OVMF_VARS.fd",
    );
  }
  if (artifacts.meter && !kvm) {
    const image = imageRange(Deno.readFileSync(artifacts.kernel));
    if (image) args.push("-plugin", meterArgument(plan, artifacts.meter, image));
  }
  args.push(...m.emulatorArgs?.qemu ?? []);
  return args;
}

/** Why KVM cannot run the hypervisor here, or undefined when it can. */
export function kvmProblem(
  read: (path: string) => string | undefined = readText,
  exists: (path: string) => boolean = existsSync,
): string | undefined {
  if (exists("/sys/module/kvm_pvm")) {
    return "host KVM is kvm_pvm (paravirtual): it offers no nested VMX/SVM";
  }
  if (!exists("/dev/kvm")) return "no /dev/kvm on this host";
  try {
    Deno.openSync("/dev/kvm", { read: true, write: true }).close();
  } catch {
    return "/dev/kvm is not readable and writable by this user";
  }
  const nested = ["kvm_intel", "kvm_amd"]
    .map((mod) => read(`/sys/module/${mod}/parameters/nested`)?.trim())
    .find((v) => v !== undefined);
  if (nested === undefined) return "no kvm_intel or kvm_amd module loaded";
  if (nested !== "Y" && nested !== "1") {
    return "nested virtualization is off (kvm_intel/kvm_amd parameter nested)";
  }
  return undefined;
}

function readText(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

export const qemu: Backend = {
  unsupported(plan) {
    if (plan.backend === "kvm") {
      const why = kvmProblem();
      if (why) return why;
    }
    if (plan.firmware === "uefi" && !findOvmf()) return "OVMF not found (package ovmf)";
    return undefined;
  },
  launch(plan, artifacts, cmdline): Launch {
    const ovmf = plan.firmware === "uefi" ? findOvmf() : undefined;
    const tables = plan.scenario.machine.acpiTables ?? [];
    return {
      bin: "qemu-system-x86_64",
      args: qemuArgs(plan, artifacts, cmdline, ovmf),
      files: Object.fromEntries(tables.map((t, i) => [`acpi-${i}.bin`, new Uint8Array(t.body)])),
      copies: ovmf ? { "OVMF_VARS.fd": ovmf.vars } : {},
      log: "qemu.log",
      successExitCode: QEMU_SUCCESS,
      stopSignal: "SIGTERM",
      monitor: {
        args: (path) => ["-qmp", `unix:${path},server=on,wait=off`],
        registers: "info registers -a",
      },
    };
  },
  crashIn(log) {
    return /Triple fault/.test(log) ? "triple fault: QEMU reset the CPU" : undefined;
  },
};
