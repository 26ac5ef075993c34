/** Every scenario on every backend and CPU model it declares, in parallel. */
import { basename, join } from "node:path";
import { BuildError, buildKernel } from "./build.ts";
import { hostCpu, resolveCpu } from "./cpus.ts";
import { loadAll } from "./load.ts";
import { ensureTools, toolsFor } from "./prereq.ts";
import { counts, junit, outcome, statusText, summaryLine, table, tap, title } from "./report.ts";
import { notRun, pruneRuns, runPlan, type RunResult } from "./runner.ts";
import { type Backend, expandTargets, type Group, type RunPlan, type Vendor } from "./scenario.ts";

export interface MatrixOptions {
  vendor: Vendor | "all";
  filter?: string;
  /** Keeps the scenarios of this group. */
  group?: Group;
  backend?: Backend;
  /** A glob on CPU model names. */
  cpu?: string;
  /** Copies the run directories of failed runs here. */
  saveFailures?: string;
  jobs: number;
  tap?: string;
  junit?: string;
  say: (msg: string) => void;
}

/** A shell-style glob (`*`, `?`) as a whole-string regular expression. */
export function globRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${body}$`);
}

export function planVendor(plan: RunPlan, cpuinfo: () => string): Vendor | undefined {
  const model = resolveCpu(plan.backend, plan.cpu, hostCpu(cpuinfo()));
  return typeof model === "string" ? undefined : model.vendor;
}

export async function selectPlans(
  opts: Pick<MatrixOptions, "vendor" | "filter" | "group" | "backend" | "cpu">,
) {
  const cpuinfo = () => {
    try {
      return Deno.readTextFileSync("/proc/cpuinfo");
    } catch {
      return "";
    }
  };
  const glob = opts.filter ? globRegExp(opts.filter) : undefined;
  const cpu = opts.cpu ? globRegExp(opts.cpu) : undefined;
  return (await loadAll())
    .filter((s) => !glob || glob.test(s.name))
    .filter((s) => !opts.group || s.groups.includes(opts.group))
    .flatMap(expandTargets)
    .filter((p) => !opts.backend || p.backend === opts.backend)
    .filter((p) => !cpu || cpu.test(p.cpu))
    .filter((p) => opts.vendor === "all" || planVendor(p, cpuinfo) === opts.vendor);
}

export async function runMatrix(opts: MatrixOptions): Promise<RunResult[]> {
  const plans = await selectPlans(opts);
  if (plans.length === 0) {
    opts.say("no run matches the selection");
    return [];
  }
  await ensureTools(plans.flatMap(toolsFor), opts.say);
  await buildKernel(opts.say);
  await pruneRuns();
  opts.say(`running ${plans.length} runs, ${opts.jobs} at a time`);
  const results: RunResult[] = new Array(plans.length);
  let done = 0;
  await inParallel(plans, opts.jobs, async (plan, i) => {
    let r: RunResult;
    try {
      r = await runPlan(plan, { progress: () => {} });
    } catch (e) {
      if (!(e instanceof BuildError)) throw e;
      r = notRun(plan, "fail", e.message);
    }
    results[i] = r;
    done++;
    const o = outcome(r);
    const note = o === "passed" ? "" : `  ${r.reason}`;
    opts.say(
      `[${done}/${plans.length}] ${statusText(r).padEnd(16)} ${title(r)}  ${
        (r.durationMs / 1000).toFixed(1)
      }s${note}`,
    );
    if (o === "failed") {
      for (const p of r.problems) opts.say(`      ${p}`);
      if (r.runDir) opts.say(`      run dir: ${r.runDir}`);
    }
  });
  if (opts.tap) await Deno.writeTextFile(opts.tap, tap(results));
  if (opts.junit) await Deno.writeTextFile(opts.junit, junit(results));
  if (opts.saveFailures) await saveFailures(results, opts.saveFailures);
  return results;
}

/** Runs `each` over `items`, `jobs` at a time. */
export async function inParallel<T>(
  items: T[],
  jobs: number,
  each: (item: T, index: number) => Promise<void>,
) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await each(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, jobs) }, worker));
}

/** Copies a run directory's files (not the linked kernel, ISO, payload) into `to`. */
export async function copyRunFiles(runDir: string, to: string) {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(runDir)) {
    if (e.isFile) await Deno.copyFile(join(runDir, e.name), join(to, e.name));
  }
}

/** Copies the files of each failed run into `dir`. */
export async function saveFailures(results: RunResult[], dir: string) {
  for (const r of results.filter((r) => outcome(r) === "failed" && r.runDir)) {
    await copyRunFiles(r.runDir, join(dir, basename(r.runDir)));
  }
}

export function printSummary(results: RunResult[]) {
  console.log(table(results));
  console.log(summaryLine(counts(results)));
}
