/**
 * `deno task stress`: the concurrency scenarios run again and again on QEMU
 * with its default multi-threaded TCG, where the vCPUs are host threads that
 * truly run at once, each run perturbed a little differently (how many
 * vCPUs, on how many host CPUs, the locality meter on or off), so that
 * interleavings the suite's single runs never meet are met. A failed run's
 * directory is kept under `.stress/`; the summary gives runs and failures
 * per scenario and perturbation.
 */
import { join } from "node:path";
import { buildKernel } from "./build.ts";
import { copyRunFiles, globRegExp, inParallel, selectPlans } from "./matrix.ts";
import { STRESS_DIR } from "./paths.ts";
import { ensureTools, toolsFor } from "./prereq.ts";
import { columns, outcome, statusText, title } from "./report.ts";
import { pruneRuns, runPlan, type RunResult } from "./runner.ts";
import type { Machine, RunPlan, Scenario } from "./scenario.ts";

/**
 * The scenarios stressed by default: those written for it (group `stress`),
 * the SMP ones, every one that moves pages (migration, replication,
 * adaptive placement), and Linux on all its CPUs (the suite runs it
 * single-threaded: docs/numa.md's open problem).
 */
export const STRESSED = [
  "stress-*",
  "smp-*",
  "numa-migrate",
  "numa-replicate/*",
  "numa-adaptive/*",
  "linux-uma",
];

/** One way to run a plan differently. */
export interface Perturbation {
  name: string;
  /** The machine changed, or undefined when it does not apply to this scenario. */
  apply(m: Machine, s: Scenario): Machine | undefined;
}

/**
 * The machine with one CPU fewer: the last CPU of the last node that has
 * two or more, where there is a topology.
 */
export function oneCpuFewer(m: Machine): Machine | undefined {
  const smp = m.smp ?? 1;
  if (smp <= 2) return undefined;
  if (!m.numa) return { ...m, smp: smp - 1 };
  const nodes = m.numa.nodes.map((n) => ({ ...n, cpus: [...n.cpus] }));
  const last = nodes.findLast((n) => n.cpus.length > 1);
  if (!last) return undefined;
  const gone = last.cpus.pop()!;
  // CPUs are numbered from 0 without gaps: those above the one removed move down.
  for (const n of nodes) n.cpus = n.cpus.map((c) => c > gone ? c - 1 : c);
  return { ...m, smp: smp - 1, numa: { ...m.numa, nodes } };
}

/**
 * What changes from one run to the next: always multi-threaded TCG; all
 * host CPUs or one (every vCPU thread on one host CPU, preempted by the
 * host's scheduler instead of running beside the others); and, for the
 * scenarios written for it (group `stress`), whose checks hold for any pace
 * and vCPU count, the meter (which slows every memory access) off, or one
 * vCPU fewer. (Without the meter, adaptive placement's workloads end before
 * their pages have moved: 166 of 256 in one `numa-adaptive/split` run.)
 */
export const PERTURBATIONS: Perturbation[] = [
  { name: "mttcg", apply: (m) => ({ ...m, singleThreaded: false }) },
  { name: "mttcg, one host CPU", apply: (m) => ({ ...m, singleThreaded: false, hostCpus: [0] }) },
  {
    name: "mttcg, no meter",
    apply: (m, s) =>
      s.groups.includes("stress") && m.meter
        ? { ...m, singleThreaded: false, meter: false }
        : undefined,
  },
  {
    name: "mttcg, one vCPU fewer",
    apply: (m, s) => {
      const fewer = s.groups.includes("stress") ? oneCpuFewer(m) : undefined;
      return fewer && { ...fewer, singleThreaded: false };
    },
  },
];

/** The runs of a stress session: for run i, each plan under perturbation i (mod their count), the next one that applies. */
export function stressPlans(plans: RunPlan[], runs: number): { plan: RunPlan; how: string }[] {
  const out: { plan: RunPlan; how: string }[] = [];
  for (let i = 0; i < runs; i++) {
    for (const plan of plans) {
      for (let k = 0; k < PERTURBATIONS.length; k++) {
        const p = PERTURBATIONS[(i + k) % PERTURBATIONS.length]!;
        const machine = p.apply(plan.scenario.machine ?? {}, plan.scenario);
        if (!machine) continue;
        out.push({ plan: { ...plan, scenario: { ...plan.scenario, machine } }, how: p.name });
        break;
      }
    }
  }
  return out;
}

export interface StressOptions {
  /** A glob on scenario names; default: `STRESSED`. */
  filter?: string;
  runs: number;
  jobs: number;
  say: (msg: string) => void;
}

export interface StressSummary {
  /** Per scenario: runs, failures, and per perturbation the same. */
  scenarios: Record<string, { runs: number; failed: number; by: Record<string, [number, number]> }>;
  failed: number;
  runs: number;
  /** Where the failed runs' directories went. */
  saved?: string;
}

export async function runStress(opts: StressOptions): Promise<StressSummary> {
  const globs = (opts.filter ? [opts.filter] : STRESSED).map(globRegExp);
  const plans = (await selectPlans({ vendor: "all", backend: "qemu" }))
    .filter((p) => globs.some((g) => g.test(p.scenario.name)));
  const runs = stressPlans(plans, opts.runs);
  const summary: StressSummary = { scenarios: {}, failed: 0, runs: runs.length };
  if (runs.length === 0) {
    opts.say("no QEMU run matches the selection");
    return summary;
  }
  await ensureTools(plans.flatMap(toolsFor), opts.say);
  await buildKernel(opts.say);
  await pruneRuns();
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const saveDir = join(STRESS_DIR, stamp);
  opts.say(
    `stressing ${plans.length} scenario runs ${opts.runs} times each: ${runs.length} runs, ` +
      `${opts.jobs} at a time`,
  );
  let done = 0;
  await inParallel(runs, opts.jobs, async ({ plan, how }, i) => {
    const r: RunResult = await runPlan(plan, { progress: () => {} });
    done++;
    const name = plan.scenario.name;
    const s = summary.scenarios[name] ??= { runs: 0, failed: 0, by: {} };
    const by = s.by[how] ??= [0, 0];
    s.runs++;
    by[0]++;
    const failed = outcome(r) === "failed";
    if (failed) {
      s.failed++;
      by[1]++;
      summary.failed++;
      summary.saved = saveDir;
      if (r.runDir) await copyRunFiles(r.runDir, join(saveDir, `${i}-${name.replace(/\//g, "+")}`));
    }
    opts.say(
      `[${done}/${runs.length}] ${statusText(r).padEnd(16)} ${title(r)} (${how})  ${
        (r.durationMs / 1000).toFixed(1)
      }s${failed ? `  ${r.reason}` : ""}`,
    );
    if (failed) { for (const p of r.problems.slice(0, 4)) opts.say(`      ${p}`); }
  });
  if (summary.saved) {
    await Deno.writeTextFile(join(saveDir, "stress.json"), JSON.stringify(summary, null, 2));
  }
  return summary;
}

/** The summary as a table: runs and failures per scenario and perturbation. */
export function stressReport(s: StressSummary): string {
  const hows = PERTURBATIONS.map((p) => p.name);
  const rows = Object.entries(s.scenarios).sort(([a], [b]) => a.localeCompare(b)).map((
    [name, x],
  ) => [
    name,
    `${x.failed}/${x.runs}`,
    ...hows.map((h) => x.by[h] ? `${x.by[h]![1]}/${x.by[h]![0]}` : "-"),
  ]);
  return [
    columns(["scenario", "failed/runs", ...hows], rows, true),
    `${s.runs - s.failed} passed, ${s.failed} failed` +
    (s.saved ? `\nfailed runs saved in ${s.saved}` : ""),
  ].join("\n");
}
