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
import { exitCosts, exitGoal } from "./exit_cost.ts";
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

/**
 * `deno task bench exits`: the emulated instructions of one CPUID and one
 * hypercall round trip, on each target of `bench-exits` (QEMU with -icount,
 * whose TSC then counts instructions; Bochs, whose TSC does), at the default
 * trace level and with every exit traced. Counts, not times: they repeat.
 */
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
