/**
 * Checks of the kernel's NUMA events against the topology a scenario
 * declares: the `topology` event must equal it (CPUs per node, memory per
 * node within one 2 MiB frame, distances), and frames asked of each node
 * (`numa.probe`) must come from it, or from the nearest node with memory.
 */
import type { SvEvent } from "./events.ts";
import type { EventExpectation, Numa, RunInfo } from "./scenario.ts";

const MiB = 1 << 20;
const TOLERANCE = 2 * MiB;

interface NodeEvent {
  id: number;
  cpus: number[];
  memory_bytes: number;
  ranges: { base: string; len: string }[];
}

interface Declared {
  cpus: number[];
  memoryMiB: number;
}

/** The declared nodes; without NUMA, one node with every CPU and all memory. */
function declaredNodes(run: RunInfo): Declared[] {
  return run.numa?.nodes ??
    [{ cpus: Array.from({ length: run.smp }, (_, i) => i), memoryMiB: run.memoryMiB }];
}

/** Declared distances, or the 10/20 QEMU and the kernel assume without them. */
/**
 * Four nodes, one CPU and 128 MiB each, with unequal distances that differ
 * by direction (16, 22, 28 out; 18, 22, 28 back): the asymmetric machine of
 * `numa-4node-asym`, `linux-uma-asym` and `bench numa`.
 */
export const ASYMMETRIC_4_NODES: Numa = {
  nodes: [0, 1, 2, 3].map((i) => ({ cpus: [i], memoryMiB: 128 })),
  distances: [
    [10, 16, 22, 28],
    [18, 10, 16, 22],
    [22, 18, 10, 16],
    [28, 22, 18, 10],
  ],
};

export function declaredDistances(numa: Numa | undefined, n: number): number[][] {
  return numa?.distances ??
    Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 10 : 20)));
}

const show = (v: unknown) => JSON.stringify(v);

/** The differences between a `topology` event and the declared topology. */
export function topologyDifferences(e: SvEvent, run: RunInfo): string[] {
  const nodes = e.nodes as NodeEvent[];
  const declared = declaredNodes(run);
  const problems: string[] = [];
  if (nodes.length !== declared.length) {
    problems.push(`${nodes.length} nodes, declared ${declared.length}`);
    return problems;
  }
  declared.forEach((want, i) => {
    const got = nodes[i]!;
    // QEMU numbers CPUs by APIC id for -smp N: CPU i has APIC id i.
    const cpus = [...got.cpus].sort((a, b) => a - b);
    if (show(cpus) !== show([...want.cpus].sort((a, b) => a - b))) {
      problems.push(`node ${i}: CPUs ${show(cpus)}, declared ${show(want.cpus)}`);
    }
    const bytes = want.memoryMiB * MiB;
    if (Math.abs(got.memory_bytes - bytes) > TOLERANCE) {
      problems.push(
        `node ${i}: ${(got.memory_bytes / MiB).toFixed(1)} MiB, declared ${want.memoryMiB} MiB`,
      );
    }
  });
  const distances = e.distances as number[][];
  const want = declaredDistances(run.numa, declared.length);
  if (show(distances) !== show(want)) {
    problems.push(`distances ${show(distances)}, declared ${show(want)}`);
  }
  // The HMAT gives latencies in picoseconds, bandwidths in MB/s.
  const hmat = (e.hmat ?? []) as {
    kind: string;
    initiator: number;
    target: number;
    value: number;
  }[];
  for (const h of run.numa?.hmat ?? []) {
    const expected = h.kind === "access-latency" ? h.value * 1000 : h.value;
    const got = hmat.find((x) =>
      x.kind === h.kind && x.initiator === h.initiator && x.target === h.target
    );
    if (got?.value !== expected) {
      problems.push(
        `HMAT ${h.kind} ${h.initiator}->${h.target}: ${
          got?.value ?? "absent"
        }, declared ${expected}`,
      );
    }
  }
  return problems;
}

/**
 * What `numa=fake:N` keeps of a declared topology (Bochs has no NUMA
 * tables): N nodes, the CPUs dealt round-robin, the usable memory in equal
 * parts, distances 10 and 20. Asymmetric distances, memory-less nodes and
 * the HMAT are the SRAT's alone.
 */
export function fakeDifferences(e: SvEvent, run: RunInfo, n: number): string[] {
  const nodes = e.nodes as (NodeEvent & { usable_bytes: number })[];
  if (nodes.length !== n) return [`${nodes.length} nodes, declared ${n}`];
  const problems: string[] = [];
  nodes.forEach((node, i) => {
    const want = Array.from({ length: run.smp }, (_, cpu) => cpu).filter((cpu) => cpu % n === i);
    if (show(node.cpus) !== show(want)) {
      problems.push(`node ${i}: CPUs ${show(node.cpus)}, round-robin gives ${show(want)}`);
    }
  });
  const usable = nodes.map((node) => node.usable_bytes);
  if (Math.max(...usable) - Math.min(...usable) > TOLERANCE) {
    problems.push(`unequal parts: ${usable.map((b) => (b / MiB).toFixed(1)).join(", ")} MiB`);
  }
  const distances = e.distances as number[][];
  if (show(distances) !== show(declaredDistances(undefined, n))) {
    problems.push(`distances ${show(distances)}, fake nodes are 10 and 20 apart`);
  }
  return problems;
}

/**
 * The `topology` event must equal the declared topology, read from the SRAT;
 * on a run that fakes it (Bochs), what the fake keeps of it.
 */
export function topologyMatches(source = "srat"): EventExpectation {
  return {
    ev: "topology",
    fields: (run) => ({ source: run.fakeNodes ? "fake" : source }),
    check: (e, run) =>
      run.fakeNodes ? fakeDifferences(e, run, run.fakeNodes) : topologyDifferences(e, run),
  };
}

function within(frame: bigint, node: NodeEvent): boolean {
  return node.ranges.some((r) => frame >= BigInt(r.base) && frame < BigInt(r.base) + BigInt(r.len));
}

/**
 * Every node's probe frames (`numa.probe`) lie in that node's memory, or,
 * for a node without memory, in the nearest node that has some.
 */
export function probesOnTheirNodes(): EventExpectation {
  return {
    ev: "node-memory",
    check: (e, _run, events) => {
      const topology = events.find((x) => x.ev === "topology");
      if (!topology) return ["no topology event to check against"];
      const nodes = topology.nodes as NodeEvent[];
      const distances = topology.distances as number[][];
      const problems: string[] = [];
      (e.nodes as { id: number; small?: { frame: string; node: number }; large?: unknown }[])
        .forEach((n, i) => {
          const withMemory = nodes.map((node, j) => ({ node, j })).filter((x) =>
            x.node.memory_bytes > 0
          );
          const nearest = withMemory.sort((a, b) =>
            (a.j === i ? 0 : distances[i]![a.j]!) - (b.j === i ? 0 : distances[i]![b.j]!) ||
            a.j - b.j
          )[0];
          for (const [size, probe] of [["4 KiB", n.small], ["2 MiB", n.large]] as const) {
            const p = probe as { frame: string; node: number } | undefined;
            if (!p) {
              problems.push(`node ${n.id}: no ${size} probe`);
            } else if (
              !nearest || p.node !== nearest.node.id || !within(BigInt(p.frame), nearest.node)
            ) {
              problems.push(
                `node ${n.id}: ${size} frame ${p.frame} from node ${p.node}, expected node ${nearest?.node.id}'s memory`,
              );
            }
          }
        });
      return problems;
    },
  };
}

/** One range of the kernel's `placement-map`: pages from `base`, cycling through `nodes`. */
interface MapRange {
  base: string;
  pages: number;
  nodes: (number | null)[];
}

/**
 * The guest-physical → node map from the `placement-map` events: the node
 * (domain) of each 4 KiB page number, null where not backed; undefined
 * when the events are missing or do not end with `last`.
 */
export function placementMap(events: SvEvent[]): (number | null)[] | undefined {
  const parts = events.filter((e) => e.ev === "placement-map");
  if (!parts.some((p) => p.last === true)) return undefined;
  const pages: (number | null)[] = [];
  for (const part of parts) {
    for (const r of part.ranges as MapRange[]) {
      const first = Number(BigInt(r.base) / 4096n);
      for (let i = 0; i < r.pages; i++) pages[first + i] = r.nodes[i % r.nodes.length] ?? null;
    }
  }
  return pages;
}

/** The node (domain) of each CPU index, from the `cpu-up` events. */
export function cpuNodes(events: SvEvent[]): Map<number, number> {
  return new Map(
    events.filter((e) => e.ev === "cpu-up").map((e) => [Number(e.cpu), Number(e.node)]),
  );
}

/** What a page must be on: one node, any of several, or anything (undefined). */
export type Want = number | number[] | undefined;

/**
 * Every backed page of the guest's map (`numa.dump`) lies where `want`
 * says, for its page number; `run` and the events help decide (e.g. which
 * node a vCPU's CPU is on). Names the first pages that do not, and the
 * count; a missing map is a problem too.
 */
export function placedAsPolicySays(
  want: (page: number, events: SvEvent[], run: RunInfo) => Want,
): (events: SvEvent[], run: RunInfo) => string[] {
  return (events, run) => {
    const map = placementMap(events);
    if (!map) return ["no complete placement-map (numa.dump)"];
    const wrong: string[] = [];
    let backed = 0;
    map.forEach((node, page) => {
      if (node === null || node === undefined) return;
      backed++;
      const w = want(page, events, run);
      const ok = w === undefined || (Array.isArray(w) ? w.includes(node) : w === node);
      if (!ok) {
        wrong.push(`page ${page} (0x${(page * 4096).toString(16)}) on node ${node}, not ${w}`);
      }
    });
    if (backed === 0) return ["the placement map has no backed page"];
    return wrong.length
      ? [`${wrong.length} of ${backed} pages misplaced: ${wrong.slice(0, 3).join("; ")}`]
      : [];
  };
}
