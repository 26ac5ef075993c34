/**
 * CPU models the backends offer, their vendor, and which virtualization
 * features the emulator really gives them (checked against what the kernel
 * reports in boot-hello).
 */
import type { Backend, Vendor } from "./scenario.ts";

export type Feature = "vmx" | "ept" | "unrestricted_guest" | "svm" | "npt";
export const FEATURES: readonly Feature[] = ["vmx", "ept", "unrestricted_guest", "svm", "npt"];

export interface CpuModel {
  vendor: Vendor;
  features: ReadonlySet<Feature>;
}

const VMX_FULL: Feature[] = ["vmx", "ept", "unrestricted_guest"];

/** QEMU TCG never offers VMX; its EPYC models offer SVM with NPT, qemu64 SVM alone. */
const QEMU: Record<string, { vendor: Vendor; features: Feature[] }> = {
  qemu64: { vendor: "amd", features: ["svm"] },
  EPYC: { vendor: "amd", features: ["svm", "npt"] },
  "EPYC-Rome": { vendor: "amd", features: ["svm", "npt"] },
  "EPYC-Milan": { vendor: "amd", features: ["svm", "npt"] },
};

/** Bochs 2.7 (Debian) models. */
const BOCHS: Record<string, { vendor: Vendor; features: Feature[] }> = {
  tigerlake: { vendor: "intel", features: VMX_FULL },
  corei7_icelake_u: { vendor: "intel", features: VMX_FULL },
  corei7_skylake_x: { vendor: "intel", features: VMX_FULL },
  corei7_haswell_4770: { vendor: "intel", features: VMX_FULL },
  broadwell_ult: { vendor: "intel", features: VMX_FULL },
  core2_penryn_t9600: { vendor: "intel", features: ["vmx"] },
  ryzen: { vendor: "amd", features: ["svm", "npt"] },
};

/** The model QEMU flags `+svm`/`-npt` describe; other flags pass through. */
function withFlags(base: CpuModel, flags: string[]): CpuModel | string {
  const features = new Set(base.features);
  for (const flag of flags) {
    const m = /^([+-])([a-z0-9_-]+)$/.exec(flag);
    if (!m) return `bad CPU flag "${flag}": expected +name or -name`;
    const name = m[2] as Feature;
    if (name === "vmx") return "QEMU TCG cannot emulate VMX: use Bochs or --backend kvm";
    if (!FEATURES.includes(name)) continue;
    if (m[1] === "+") features.add(name);
    else features.delete(name);
  }
  if (features.has("npt") && !features.has("svm")) features.delete("npt");
  return { vendor: base.vendor, features };
}

/** The model behind a CPU name on a backend, or why it is not known. */
export function resolveCpu(backend: Backend, name: string, host?: CpuModel): CpuModel | string {
  if (backend === "kvm") {
    if (name !== "host") return `KVM runs CPU model "host" only, not "${name}"`;
    return host ?? { vendor: "intel", features: new Set() };
  }
  const [base = "", ...flags] = name.split(",");
  const table = backend === "qemu" ? QEMU : BOCHS;
  const known = table[base];
  if (!known) {
    return `unknown ${backend} CPU model "${base}" (known: ${Object.keys(table).join(", ")})`;
  }
  const model = { vendor: known.vendor, features: new Set(known.features) };
  if (flags.length > 0 && backend === "bochs") return "Bochs CPU models take no flags";
  return withFlags(model, flags);
}

/** The host CPU as KVM would pass it through, from /proc/cpuinfo. */
export function hostCpu(cpuinfo: string): CpuModel {
  const vendor = /vendor_id\s*:\s*AuthenticAMD/.test(cpuinfo) ? "amd" : "intel";
  const flags = new Set((/^flags\s*:(.*)$/m.exec(cpuinfo)?.[1] ?? "").trim().split(/\s+/));
  const features = new Set<Feature>();
  for (const f of ["vmx", "ept", "svm", "npt"] as const) if (flags.has(f)) features.add(f);
  if (flags.has("ept") && flags.has("vmx")) features.add("unrestricted_guest");
  return { vendor, features };
}

/** The models of a backend and vendor that have every feature in `features`. */
export function modelsWith(
  backend: "qemu" | "bochs",
  vendor: Vendor,
  features: Feature[],
): string[] {
  const table = backend === "qemu" ? QEMU : BOCHS;
  return Object.entries(table)
    .filter(([, m]) => m.vendor === vendor && features.every((f) => m.features.includes(f)))
    .map(([name]) => name);
}
