/**
 * `deno task bench numa`: every reference workload under every placement
 * policy, on two topologies (2 nodes; 4 nodes with asymmetric distances),
 * on QEMU EPYC with the locality meter, beside the oracle and the worst
 * placement each workload's declared access pattern allows. Prints a table
 * as it goes, then where `adaptive` falls short of its goals (95 % of the
 * oracle's local fraction and within 5 % of its cost; never more than 4 %
 * dearer than the best static policy) and how fast it followed the phase
 * change; writes `bench-numa.json` and `bench-numa.svg` to a directory
 * under `.runs/`. Figures, not assertions.
 */
import { join } from "node:path";
import { buildKernel } from "./build.ts";
import { everyVcpu, guest, guestEnd } from "./guests.ts";
import { globRegExp, inParallel } from "./matrix.ts";
import { accessWeights } from "./meter.ts";
import { ASYMMETRIC_4_NODES } from "./numa.ts";
import { numa, policy, type PolicyName } from "./numa_scenario.ts";
import { RUNS_DIR } from "./paths.ts";
import { ensureTools, toolsFor } from "./prereq.ts";
import { barsSvg, columns } from "./report.ts";
import { runPlan } from "./runner.ts";
import { defineScenario, expandTargets, type Numa } from "./scenario.ts";
import {
  bounds,
  model,
  recoveryPeriods,
  type Workload,
  workloadPayload,
  WORKLOADS,
  type WorkloadSize,
} from "./workloads.ts";

/** The static policies, the ones adaptive placement is held to. */
const STATIC: PolicyName[] = [
  "first-touch",
  "interleave",
  "weighted-interleave",
  "bind:0",
  "preferred:1",
];

/**
 * Adaptive placement, sampling 64 pages every 2 ms: as it chooses (by
 * accessed bits, which EPYC's nested paging keeps: `adaptive`), and by
 * hinting faults (`adaptive-faults`).
 */
const ADAPTIVE: Record<string, string> = {
  adaptive: "numa.sample=64 numa.period=2",
  "adaptive-faults": "numa.sample=64 numa.period=2 numa.track=faults",
};

/** The table's columns: each static policy, then adaptive placement's two ways. */
export const POLICIES: string[] = [...STATIC, ...Object.keys(ADAPTIVE)];

export const TOPOLOGIES: { name: string; numa: Numa }[] = [
  {
    name: "2 nodes",
    numa: { nodes: [0, 1].map((i) => ({ cpus: [i], memoryMiB: 128 })) },
  },
  { name: "4 nodes asym", numa: ASYMMETRIC_4_NODES },
];

export interface Row {
  topology: string;
  workload: Workload;
  /** Local fraction and cost per policy (undefined: the run failed), then the bounds. */
  policies: Record<string, { local: number; cost: number } | undefined>;
  oracle: { local: number; cost: number };
  worst: { local: number; cost: number };
  /** phase-change under adaptive placement: periods from the change until its pages had moved. */
  recovery?: Record<string, number | undefined>;
}

/**
 * Where adaptive placement (`column`: `adaptive` or `adaptive-faults`) falls
 * short on a row: under 95 % of the oracle's local fraction, over 5 % above
 * its cost, or over 4 % dearer than the best static policy. Rows whose
 * adaptive run failed say so.
 */
export function shortfalls(r: Row, column = "adaptive"): string[] {
  const a = r.policies[column];
  const where = `${r.topology} ${r.workload} ${column}`;
  if (!a) return [`${where}: no run`];
  const out: string[] = [];
  if (a.local < 0.95 * r.oracle.local) {
    out.push(
      `${where}: ${pct(a.local)} % local, under 95 % of the oracle's ${pct(r.oracle.local)}`,
    );
  }
  if (a.cost > 1.05 * r.oracle.cost) {
    out.push(`${where}: cost ${num(a.cost)}, over 5 % above the oracle's ${num(r.oracle.cost)}`);
  }
  const costs = STATIC.map((p) => r.policies[p]?.cost).filter((c) => c !== undefined);
  const best = Math.min(...costs);
  if (costs.length && a.cost > 1.04 * best) {
    out.push(`${where}: cost ${num(a.cost)}, over 4 % above the best static policy's ${num(best)}`);
  }
  return out;
}

const pct = (x: number | undefined) => (x === undefined ? "-" : `${(x * 100).toFixed(1)}`);
const num = (x: number | undefined) => (x === undefined ? "-" : x.toFixed(2));

/** The table: a line per topology and workload, local % and cost per policy. */
export function table(rows: Row[]): string {
  const head = ["topology", "workload", ...POLICIES, "oracle", "worst"];
  const cells = rows.map((r) => [
    r.topology,
    r.workload,
    ...POLICIES.map((p) => `${pct(r.policies[p]?.local)} / ${num(r.policies[p]?.cost)}`),
    `${pct(r.oracle.local)} / ${num(r.oracle.cost)}`,
    `${pct(r.worst.local)} / ${num(r.worst.cost)}`,
  ]);
  return [
    "local % / cost (mean access distance, local = 1) per placement policy",
    columns(head, cells),
  ].join("\n");
}

/** Bars of the local fraction per policy, oracle and worst, grouped by topology and workload. */
export function svg(rows: Row[]): string {
  return barsSvg(
    "Local fraction of the guest's accesses (locality meter)",
    [...POLICIES, "oracle", "worst"],
    rows.map((r) => ({
      label: `${r.topology.replace(" nodes", "n")} ${r.workload}`,
      values: {
        ...Object.fromEntries(POLICIES.map((p) => [p, r.policies[p]?.local])),
        oracle: r.oracle.local,
        worst: r.worst.local,
      },
    })),
  );
}

export async function runNumaBench(o: {
  say: (m: string) => void;
  jobs: number;
  size: WorkloadSize;
  /** A glob on run names (`bench-numa-2n-master-init-adaptive`). */
  filter?: string;
}): Promise<number> {
  const only = o.filter ? globRegExp(o.filter) : undefined;
  const plans = TOPOLOGIES.flatMap((t) =>
    WORKLOADS.flatMap((w) =>
      POLICIES.map((p) => {
        const smp = t.numa.nodes.length;
        const sampling = p in ADAPTIVE ? ` ${ADAPTIVE[p]}` : "";
        const s = defineScenario(
          {
            name: `bench-numa-${smp}n-${w}-${p.replace(":", "")}`,
            description: `${w} under ${p} on ${t.name}`,
          },
          numa(t.numa, smp),
          guest({
            payload: workloadPayload(w, o.size),
            cmdline: `guest=long guest.memory=${o.size.sizeMiB + 4} guest.watchdog=0${sampling}`,
            trace: "summary",
          }),
          policy({ policy: p in ADAPTIVE ? "adaptive" : p as PolicyName }),
          guestEnd({ counts: { hlt: 1 } }),
          {
            checks: [everyVcpu("guest-end", { how: "hlt", failed: false })],
            // Adaptive runs take single-threaded TCG and many exits: room.
            timeoutS: p in ADAPTIVE ? 600 : 120,
          },
        );
        return { topology: t, workload: w, policy: p, plan: expandTargets(s)[0]! };
      })
    )
  ).filter((x) => !only || only.test(x.plan.scenario.name));
  await ensureTools(plans.flatMap((p) => toolsFor(p.plan)), o.say);
  await buildKernel(o.say);
  const results = new Map<string, { local: number; cost: number } | undefined>();
  const recovery = new Map<string, number | undefined>();
  let done = 0, failed = 0;
  await inParallel(plans, o.jobs, async (x) => {
    const r = await runPlan(x.plan, { progress: () => {} });
    const ok = r.status === "pass" && r.meter;
    if (!ok) failed++;
    if (x.policy in ADAPTIVE && x.workload === "phase-change") {
      // Every data page moves to the previous vCPU's node.
      const pages = (o.size.sizeMiB << 20) / 4096;
      recovery.set(`${x.topology.name} ${x.policy}`, recoveryPeriods(r.events ?? [], pages));
    }
    results.set(
      `${x.topology.name}|${x.workload}|${x.policy}`,
      ok ? { local: r.meter!.localFraction, cost: r.meter!.cost } : undefined,
    );
    done++;
    o.say(
      `[${done}/${plans.length}] ${x.topology.name} ${x.workload} ${x.policy}: ${
        ok
          ? `${pct(r.meter!.localFraction)} % local, cost ${num(r.meter!.cost)}`
          : `${r.status}: ${r.reason}`
      }`,
    );
  });
  const rows: Row[] = TOPOLOGIES.flatMap((t) =>
    WORKLOADS.map((w) => {
      const n = t.numa.nodes.length;
      const nodeOf = t.numa.nodes.map((_, i) => i);
      return {
        topology: t.name,
        workload: w,
        policies: Object.fromEntries(POLICIES.map((p) => [p, results.get(`${t.name}|${w}|${p}`)])),
        ...bounds(model(w, o.size, n), nodeOf, accessWeights(t.numa, n)),
        ...(w === "phase-change"
          ? {
            recovery: Object.fromEntries(
              Object.keys(ADAPTIVE).map((a) => [a, recovery.get(`${t.name} ${a}`)]),
            ),
          }
          : {}),
      };
    })
  ).filter((r) => Object.values(r.policies).some((v) => v !== undefined));
  const dir = join(RUNS_DIR, `bench-numa-${new Date().toISOString().replace(/[:.]/g, "-")}`);
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(
    join(dir, "bench-numa.json"),
    JSON.stringify({ size: o.size, rows }, null, 2),
  );
  await Deno.writeTextFile(join(dir, "bench-numa.svg"), svg(rows));
  console.log(table(rows));
  const short = rows.flatMap((r) => Object.keys(ADAPTIVE).flatMap((a) => shortfalls(r, a)));
  console.log(
    short.length
      ? `adaptive placement falls short:\n${short.map((l) => `  ${l}`).join("\n")}`
      : "adaptive placement meets its goals on every row, by bits and by faults",
  );
  for (const r of rows) {
    for (const [column, periods] of Object.entries(r.recovery ?? {})) {
      console.log(
        `${r.topology} phase-change ${column}: the pages moved ${periods} periods after the change`,
      );
    }
  }
  console.log(`written: ${join(dir, "bench-numa.json")}, ${join(dir, "bench-numa.svg")}`);
  return failed ? 1 : 0;
}
