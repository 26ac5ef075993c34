/**
 * `deno task bench`: warm boot times; `deno task bench exits`: the cost of an
 * exit in emulated instructions (`runExitBench`).
 *
 * Warm boot times: Each selected run is done once to warm
 * the caches, then `runs` times; the medians are printed. Figures, not
 * assertions: speed is watched here, not in timed tests.
 */
import { buildKernel } from "./build.ts";
import { selectPlans } from "./matrix.ts";
import { ensureTools, toolsFor } from "./prereq.ts";
import type { SvEvent } from "./events.ts";
import { columns } from "./report.ts";
import { runPlan } from "./runner.ts";
import { planId } from "./scenario.ts";

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export async function runBench(
  opts: { filter: string; runs: number; until?: string; say: (m: string) => void },
) {
  const plans = await selectPlans({ vendor: "all", filter: opts.filter });
  await ensureTools(plans.flatMap(toolsFor), opts.say);
  await buildKernel(opts.say);
  const rows: string[][] = [];
  for (const plan of plans) {
    const walls: number[] = [], boots: number[] = [], untils: number[] = [];
    let status = "";
    for (let i = 0; i <= opts.runs; i++) {
      const t0 = performance.now();
      const r = await runPlan(plan, { progress: () => {} });
      if (i === 0) continue; // warm-up
      walls.push(performance.now() - t0);
      boots.push(r.durationMs);
      const at = r.events.findIndex((e) => e.ev === opts.until);
      if (at >= 0) untils.push(r.eventTimesMs[at]!);
      status = r.status;
    }
    const row = [
      planId(plan),
      status,
      `${(median(boots) / 1000).toFixed(2)}s`,
      `${(median(walls) / 1000).toFixed(2)}s`,
      `${(Math.min(...walls) / 1000).toFixed(2)}-${(Math.max(...walls) / 1000).toFixed(2)}s`,
      ...(opts.until ? [untils.length ? `${(median(untils) / 1000).toFixed(2)}s` : "never"] : []),
    ];
    opts.say(row.join("  "));
    rows.push(row);
  }
  const head = ["run", "status", "emulator (median)", "total (median)", "total (min-max)"];
  if (opts.until) head.push(`to ${opts.until} (median)`);
  console.log(`median of ${opts.runs} warm runs each`);
  console.log(columns(head, rows));
}

/** The round-trip costs one `bench-exits` run measured (`payloads/bench-exits.asm`). */
export interface ExitCost {
  cpuid: number;
  hypercall: number;
}

/**
 * The cost of one exit round trip from the guest's reports: tags 1-4 are the
 * TSC deltas of N1 and N2 CPUID and hypercall exits, 5 and 6 are N1 and N2;
 * the slope (t2 - t1) / (N2 - N1) leaves the fixed costs out.
 */
export function exitCosts(events: SvEvent[]): ExitCost | string {
  const reports = new Map<number, number>();
  for (const e of events) {
    if (e.ev === "vmexit" && e.call === "report") {
      reports.set(Number(BigInt(String(e.tag))), Number(BigInt(String(e.value))));
    }
  }
  const [t1, t2, h1, h2, n1, n2] = [1, 2, 3, 4, 5, 6].map((t) => reports.get(t));
  if (t1 === undefined || t2 === undefined || h1 === undefined || h2 === undefined) {
    return "the guest did not report its four loops";
  }
  if (n1 === undefined || n2 === undefined || n2 <= n1) return "the guest did not report N1 < N2";
  return { cpuid: (t2 - t1) / (n2 - n1), hypercall: (h2 - h1) / (n2 - n1) };
}

/**
 * `deno task bench exits`: the emulated instructions of one CPUID and one
 * hypercall round trip, on each target of `bench-exits` (QEMU with -icount,
 * whose TSC then counts instructions; Bochs, whose TSC does), at the default
 * trace level and with every exit traced. Counts, not times: they repeat.
 */
/**
 * The most emulated instructions a CPUID round trip may cost on `plan`'s
 * target: 300 on Bochs, 400 on QEMU (whose EPYC has no nRIP: each exit
 * decodes its instruction's length).
 */
export function exitGoal(plan: { backend: string }): number {
  return plan.backend === "qemu" ? 400 : 300;
}

export async function runExitBench(say: (m: string) => void): Promise<number> {
  const plans = await selectPlans({ vendor: "all", filter: "bench-exits/*" });
  await ensureTools(plans.flatMap(toolsFor), say);
  await buildKernel(say);
  const rows: string[][] = [];
  let failed = 0;
  for (const plan of plans) {
    const r = await runPlan(plan, { progress: () => {} });
    const cost = r.status === "pass" ? exitCosts(r.events) : `${r.status}: ${r.reason}`;
    if (typeof cost === "string") failed++;
    // The goal is the default trace level's: a traced exit also writes its event.
    const goal = plan.scenario.name.endsWith("/traced") ? undefined : exitGoal(plan);
    const row = [
      planId(plan),
      ...(typeof cost === "string" ? [cost, "", ""] : [
        cost.cpuid.toFixed(1),
        cost.hypercall.toFixed(1),
        goal === undefined ? "" : `${goal} (${cost.cpuid <= goal ? "met" : "missed"})`,
      ]),
    ];
    say(row.join("  "));
    rows.push(row);
  }
  console.log(
    "emulated instructions per round trip (slope over N; the guest's loop adds 3)",
  );
  console.log(
    columns(["run", "cpuid (instr/exit)", "hypercall (instr/exit)", "goal, cpuid"], rows),
  );
  return failed ? 1 : 0;
}
