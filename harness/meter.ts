/**
 * The locality meter (`harness/meter/meter.c`, a QEMU TCG plugin): built
 * once per source (`plugins.ts`), given to QEMU runs whose
 * machine asks for it (`machine.meter`), and read back: per CPU, the
 * guest's memory accesses by the node that owns their physical address,
 * from QEMU's softmmu and the topology the harness declared: nothing the
 * hypervisor says. docs/numa.md describes it and its limits.
 */
import { declaredDistances } from "./numa.ts";
import type { Numa, RunPlan } from "./scenario.ts";

/** The address range of an ELF64's loadable segments (the kernel image). */
export function imageRange(elf: Uint8Array): [number, number] | undefined {
  const v = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  if (elf.length < 64 || v.getUint32(0) !== 0x7f454c46 || elf[4] !== 2) return undefined;
  const phoff = Number(v.getBigUint64(0x20, true));
  const size = v.getUint16(0x36, true), count = v.getUint16(0x38, true);
  let lo = Infinity, hi = 0;
  for (let i = 0; i < count; i++) {
    const at = phoff + i * size;
    if (at + 56 > elf.length || v.getUint32(at, true) !== 1) continue; // PT_LOAD
    const vaddr = Number(v.getBigUint64(at + 16, true));
    const memsz = Number(v.getBigUint64(at + 40, true));
    lo = Math.min(lo, vaddr);
    hi = Math.max(hi, vaddr + memsz);
  }
  return hi > lo ? [lo, hi] : undefined;
}

/**
 * Each node's memory as the plugin sees addresses: QEMU 7.2's
 * `qemu_plugin_hwaddr_phys_addr` adds the RAM block's own offset to the
 * physical address. Node i's backend is block i, at the sum of the sizes
 * before it, and mapped there too: its addresses read as twice that, plus
 * the offset within. (A later QEMU would need plain physical ranges.)
 */
export function meterRanges(numa: Numa | undefined, memoryMiB: number): string[] {
  const MiB = 1 << 20;
  const sizes = numa ? numa.nodes.map((n) => n.memoryMiB) : [memoryMiB];
  let before = 0;
  return sizes.flatMap((size, node) => {
    const base = 2 * before * MiB;
    before += size;
    return size > 0
      ? [`mem=${node}:0x${base.toString(16)}-0x${(base + size * MiB).toString(16)}`]
      : [];
  });
}

/**
 * The `-plugin` argument of a metered QEMU run; `image`, the hypervisor's
 * code, whose accesses are not counted (none: a guest on the bare machine,
 * counted from its first instruction).
 */
export function meterArgument(plan: RunPlan, meter: string, image?: [number, number]): string {
  const m = plan.scenario.machine;
  const smp = m.smp ?? 1;
  const cpuNode = (cpu: number) => m.numa?.nodes.findIndex((n) => n.cpus.includes(cpu)) ?? 0;
  return [
    meter,
    "out=meter.txt",
    ...meterRanges(m.numa, m.memoryMiB ?? 128),
    ...Array.from({ length: smp }, (_, cpu) => `cpu=${cpu}:${Math.max(0, cpuNode(cpu))}`),
    ...image ? [`skip=0x${image[0].toString(16)}-0x${image[1].toString(16)}`] : [],
  ].join(",");
}

/** What the meter measured over a run, or over a phase of it. */
export interface Counts {
  /** Per CPU: its node and its accesses to each node's memory. */
  cpus: { cpu: number; node: number; accesses: number[] }[];
  /** Accesses to memory on the accessing CPU's own node, of all accesses to memory. */
  localFraction: number;
  /** Mean distance of an access (SLIT, or HMAT latency), local being 1. */
  cost: number;
  /** Accesses to no node's memory (devices). */
  other: number;
}

/** What the meter measured: the whole run, and the guest program's windows when it opened any. */
export interface Meter extends Counts {
  window?: Counts;
}

/** Reads `meter.txt`; undefined when the plugin wrote nothing. */
export function parseMeter(text: string, numa: Numa | undefined): Meter | undefined {
  const run = countsOf(text, "", numa);
  if (!run) return undefined;
  const window = countsOf(text, "window ", numa);
  return window ? { ...run, window } : run;
}

/** The lines of `meter.txt` that start with `prefix`, summed up. */
function countsOf(text: string, prefix: string, numa: Numa | undefined): Counts | undefined {
  const cpus: Counts["cpus"] = [];
  let other = 0;
  const pattern = new RegExp(`^${prefix}cpu (\\d+) node (\\d+):((?: \\d+)*) other: (\\d+)$`);
  for (const line of text.split("\n")) {
    const m = line.match(pattern);
    if (!m) continue;
    const accesses = m[3]!.trim().split(/\s+/).filter((x) => x).map(Number);
    cpus.push({ cpu: Number(m[1]), node: Number(m[2]), accesses });
    other += Number(m[4]);
  }
  if (cpus.length === 0) return undefined;
  const n = Math.max(...cpus.map((c) => c.accesses.length));
  const weight = accessWeights(numa, n);
  let total = 0, local = 0, weighted = 0;
  for (const c of cpus) {
    c.accesses.forEach((count, node) => {
      total += count;
      if (node === c.node) local += count;
      weighted += count * (weight[c.node]?.[node] ?? 1);
    });
  }
  return {
    cpus,
    localFraction: total ? local / total : 0,
    cost: total ? weighted / total : 0,
    other,
  };
}

/**
 * The cost of an access from node i to node j, local being 1: the HMAT's
 * access latencies where declared, else the SLIT distances over 10.
 */
export function accessWeights(numa: Numa | undefined, n: number): number[][] {
  const latency = (i: number, j: number) =>
    numa?.hmat?.find((h) => h.kind === "access-latency" && h.initiator === i && h.target === j)
      ?.value;
  const d = declaredDistances(numa, n);
  return Array.from({ length: n }, (_, i) =>
    Array.from({ length: n }, (_, j) => {
      const l = latency(i, j), own = latency(i, i);
      return l !== undefined && own ? l / own : (d[i]?.[j] ?? 10) / 10;
    }));
}
