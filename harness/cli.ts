/**
 * The harness's command line (through `deno task`):
 *   scenario <name> [--backend qemu|bochs|kvm] [--cpu MODEL] [--firmware bios|uefi]
 *            [--boot kernel|iso] [--timeout S] [--json] [--verbose]
 *   list [--group G] [--json]
 *   matrix [--vendor intel|amd|all] [--filter GLOB] [--group G] [--backend B] [--cpu GLOB] [--jobs N]
 *          [--tap FILE] [--junit FILE] [--save-failures DIR]
 *   test [--jobs N] [--no-matrix]
 *   bench [--filter GLOB] [--runs N] [--until EVENT] | bench exits | bench linux [--filter GLOB]
 *   | bench numa [--size MIB] | bench linux-numa [--filter GLOB] [--size MIB] [--passes N]
 *   [--warmup-ms MS]
 *   fuzz [--vendor intel|amd|all] [--count N] [--seed S] [--jobs N]
 *   stress [--filter GLOB] [--runs N] [--jobs N]
 *   setup
 * Exit codes: 0 pass, 1 fail, 77 skipped, 2 usage or setup error.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { runBench, runExitBench } from "./bench.ts";
import { runNumaBench } from "./bench_numa.ts";
import { runLinuxBench } from "./bench_linux.ts";
import { runLinuxNumaBench } from "./bench_linux_numa.ts";
import { fuzzCounts, fuzzReport, runFuzz } from "./fuzz.ts";
import { BuildError } from "./build.ts";
import { loadAll, loadScenario, UnknownScenario } from "./load.ts";
import { FUZZ_DIR } from "./paths.ts";
import { printSummary, runMatrix } from "./matrix.ts";
import { ALL_TOOLS, ensureTools, SetupError, toolsFor } from "./prereq.ts";
import { counts, outcome } from "./report.ts";
import { pruneRuns, runPlan } from "./runner.ts";
import {
  BACKENDS,
  BOOT_PATHS,
  expandTargets,
  FIRMWARES,
  GROUPS,
  planId,
  ScenarioError,
  selectPlan,
} from "./scenario.ts";
import { runStress, stressReport } from "./stress.ts";
import { runTests } from "./test.ts";
import { exitCodeFor } from "./verdict.ts";

const USAGE = `usage: deno task <command> [options]
  scenario <name> [--backend qemu|bochs|kvm] [--cpu MODEL] [--firmware bios|uefi]
                  [--boot kernel|iso] [--timeout S] [--json] [--verbose]
  list [--group G] [--json]
  matrix [--vendor intel|amd|all] [--filter GLOB] [--group G] [--backend qemu|bochs|kvm]
         [--cpu GLOB] [--jobs N] [--tap FILE] [--junit FILE] [--save-failures DIR]
            groups: ${GROUPS.join(", ")}
  test [--jobs N] [--no-matrix]
  bench [--filter GLOB] [--runs N] [--until EVENT]
            median warm boot times (default: boot-hello, 5 runs), and to an event
  bench linux [--runs N] [--filter GLOB]
            Linux from launch to its /init, bare vs under Scalevisor, counted and timed
            (default: linux-uma, 5 runs)
  bench exits
            emulated instructions per CPUID and hypercall round trip (bench-exits scenarios)
  bench numa [--size MIB] [--passes N] [--jobs N] [--filter GLOB]
            every workload x placement policy x topology on QEMU with the locality meter
  bench linux-numa [--size MIB] [--passes N] [--warmup-ms MS] [--jobs N] [--filter GLOB]
            every workload as a program inside Linux x topology x way of managing NUMA
            (one node under Scalevisor's policies, Linux seeing the nodes, bare QEMU)
            (default: 8 MiB a thread, 8 measured passes after 20000 ms of warm-up)
  fuzz [--vendor intel|amd|all] [--count N] [--seed S] [--jobs N]
            random guests (default: 50 per vendor from seed 1); failing seeds go to .fuzz/
  stress [--filter GLOB] [--runs N] [--jobs N]
            the concurrency scenarios again and again under multi-threaded TCG, perturbed
            (default: every stress, SMP, migration, replication and adaptive scenario, 10 runs);
            failed runs go to .stress/
  setup     install every emulator and tool the scenarios use (as root or with CI=true)`;

class UsageError extends Error {}

const say = (msg: string) => console.error(msg);

function oneOf<T extends string>(value: string | undefined, allowed: readonly T[], flag: string) {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`--${flag} must be one of ${allowed.join(", ")}, not "${value}"`);
  }
  return value as T;
}

function positiveNumber(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--${flag} must be a positive number`);
  return n;
}

function parse<T extends NonNullable<ParseArgsConfig["options"]>>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true as const });
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
}

async function scenarioCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    backend: { type: "string" },
    cpu: { type: "string" },
    firmware: { type: "string" },
    boot: { type: "string" },
    timeout: { type: "string" },
    json: { type: "boolean" },
    verbose: { type: "boolean" },
  });
  if (positionals.length !== 1) throw new UsageError("scenario takes exactly one scenario name");
  const scenario = await loadScenario(positionals[0]!);
  const choice = selectPlan(scenario, {
    backend: oneOf(values.backend, BACKENDS, "backend"),
    cpu: values.cpu,
    firmware: oneOf(values.firmware, FIRMWARES, "firmware"),
    boot: oneOf(values.boot, BOOT_PATHS, "boot"),
    timeoutS: positiveNumber(values.timeout, "timeout"),
  });
  if (typeof choice === "string") throw new UsageError(choice);
  const { plan, declared } = choice;
  if (!declared) say(`note: ${planId(plan)} is not among the targets the scenario declares`);
  await ensureTools(toolsFor(plan), say);
  await pruneRuns();
  const result = await runPlan(plan, { progress: say, verbose: Boolean(values.verbose) });
  const human = [
    `${planId(plan)}: ${result.status.toUpperCase()} (${(result.durationMs / 1000).toFixed(1)}s)`,
    `  ${result.reason}`,
    ...result.problems.map((p) => `  - ${p}`),
    `  run dir: ${result.runDir}`,
  ].join("\n");
  if (values.json) {
    console.error(human);
    console.log(JSON.stringify(result));
  } else {
    console.log(human);
  }
  return exitCodeFor(result.status);
}

async function listCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    json: { type: "boolean" },
    group: { type: "string" },
  });
  if (positionals.length) throw new UsageError("list takes no arguments");
  const group = oneOf(values.group, GROUPS, "group");
  const scenarios = (await loadAll()).filter((s) => !group || s.groups.includes(group));
  if (values.json) {
    console.log(JSON.stringify(scenarios.map((s) => ({
      name: s.name,
      description: s.description,
      groups: s.groups,
      runs: expandTargets(s).map((p) => ({
        backend: p.backend,
        cpu: p.cpu,
        boot: p.boot,
        firmware: p.firmware,
      })),
    }))));
    return 0;
  }
  const width = Math.max(0, ...scenarios.map((s) => s.name.length));
  const groupWidth = Math.max(0, ...scenarios.map((s) => s.groups.join(",").length));
  for (const s of scenarios) {
    const runs = expandTargets(s).length;
    console.log(
      `${s.name.padEnd(width)}  ${s.groups.join(",").padEnd(groupWidth)}  ${s.description} ` +
        `(${runs} run${runs === 1 ? "" : "s"})`,
    );
  }
  return 0;
}

async function matrixCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    vendor: { type: "string", default: "all" },
    filter: { type: "string" },
    group: { type: "string" },
    backend: { type: "string" },
    cpu: { type: "string" },
    jobs: { type: "string" },
    tap: { type: "string" },
    junit: { type: "string" },
    "save-failures": { type: "string" },
  });
  if (positionals.length) throw new UsageError("matrix takes no positional arguments");
  const results = await runMatrix({
    vendor: oneOf(values.vendor, ["intel", "amd", "all"] as const, "vendor")!,
    filter: values.filter,
    group: oneOf(values.group, GROUPS, "group"),
    backend: oneOf(values.backend, BACKENDS, "backend"),
    cpu: values.cpu,
    saveFailures: values["save-failures"],
    jobs: positiveNumber(values.jobs, "jobs") ?? defaultJobs(),
    tap: values.tap,
    junit: values.junit,
    say,
  });
  printSummary(results);
  const c = counts(results);
  if (c.failed > 0) return 1;
  return results.length > 0 && results.every((r) => outcome(r) === "skipped") ? 77 : 0;
}

function defaultJobs(): number {
  return Math.max(1, navigator.hardwareConcurrency || 1);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "scenario":
      return await scenarioCommand(rest);
    case "list":
      return await listCommand(rest);
    case "matrix":
      return await matrixCommand(rest);
    case "test": {
      const { values, positionals } = parse(rest, {
        jobs: { type: "string" },
        "no-matrix": { type: "boolean" },
      });
      if (positionals.length) throw new UsageError("test takes no positional arguments");
      return await runTests({
        jobs: positiveNumber(values.jobs, "jobs") ?? defaultJobs(),
        matrix: !values["no-matrix"],
      });
    }
    case "bench": {
      const { values, positionals } = parse(rest, {
        filter: { type: "string" },
        runs: { type: "string" },
        until: { type: "string" },
        jobs: { type: "string" },
        size: { type: "string" },
        passes: { type: "string" },
        "warmup-ms": { type: "string" },
      });
      if (positionals.length === 1 && positionals[0] === "exits") return await runExitBench(say);
      if (positionals.length === 1 && positionals[0] === "linux") {
        const runs = Math.round(positiveNumber(values.runs, "runs") ?? 5);
        return await runLinuxBench({ runs, filter: values.filter ?? "linux-uma", say });
      }
      if (positionals.length === 1 && positionals[0] === "linux-numa") {
        const warmup = values["warmup-ms"];
        return await runLinuxNumaBench({
          say,
          jobs: positiveNumber(values.jobs, "jobs") ?? defaultJobs(),
          filter: values.filter,
          mib: Math.round(positiveNumber(values.size, "size") ?? 8),
          passes: Math.round(positiveNumber(values.passes, "passes") ?? 8),
          warmupMs: warmup === "0" ? 0 : Math.round(positiveNumber(warmup, "warmup-ms") ?? 20000),
        });
      }
      if (positionals.length === 1 && positionals[0] === "numa") {
        return await runNumaBench({
          say,
          jobs: positiveNumber(values.jobs, "jobs") ?? defaultJobs(),
          size: {
            sizeMiB: Math.round(positiveNumber(values.size, "size") ?? 2),
            passes: Math.round(positiveNumber(values.passes, "passes") ?? 20000),
          },
          filter: values.filter,
        });
      }
      if (positionals.length) {
        throw new UsageError(
          "bench takes no positional argument but exits, numa, linux or linux-numa",
        );
      }
      const runs = positiveNumber(values.runs, "runs") ?? 5;
      const filter = values.filter ?? "boot-hello";
      await runBench({ filter, runs: Math.round(runs), until: values.until, say });
      return 0;
    }
    case "fuzz": {
      const { values, positionals } = parse(rest, {
        vendor: { type: "string", default: "all" },
        count: { type: "string" },
        seed: { type: "string" },
        jobs: { type: "string" },
      });
      if (positionals.length) throw new UsageError("fuzz takes no positional arguments");
      const vendor = oneOf(values.vendor, ["intel", "amd", "all"] as const, "vendor")!;
      const seed = values.seed === undefined ? 1 : Number(values.seed);
      if (!Number.isInteger(seed) || seed < 0) throw new UsageError("--seed must be an integer");
      const summary = await runFuzz({
        vendors: vendor === "all" ? ["intel", "amd"] : [vendor],
        count: Math.round(positiveNumber(values.count, "count") ?? 50),
        seed,
        jobs: positiveNumber(values.jobs, "jobs") ?? defaultJobs(),
        saveDir: FUZZ_DIR,
        say,
      });
      console.log(fuzzReport(summary));
      return fuzzCounts(summary).failed > 0 ? 1 : 0;
    }
    case "stress": {
      const { values, positionals } = parse(rest, {
        filter: { type: "string" },
        runs: { type: "string" },
        jobs: { type: "string" },
      });
      if (positionals.length) throw new UsageError("stress takes no positional arguments");
      const summary = await runStress({
        filter: values.filter,
        runs: Math.round(positiveNumber(values.runs, "runs") ?? 10),
        jobs: positiveNumber(values.jobs, "jobs") ?? defaultJobs(),
        say,
      });
      console.log(stressReport(summary));
      return summary.failed > 0 ? 1 : 0;
    }
    case "setup":
      await ensureTools(ALL_TOOLS, say);
      say("every tool the scenarios use is installed");
      return 0;
    case undefined:
    case "help":
    case "--help":
      console.log(USAGE);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

if (import.meta.main) {
  let code: number;
  try {
    code = await main(Deno.args);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`error: ${e.message}\n\n${USAGE}`);
      code = 2;
    } else if (
      e instanceof UnknownScenario || e instanceof ScenarioError || e instanceof SetupError ||
      e instanceof BuildError
    ) {
      console.error(`error: ${e.message}`);
      code = 2;
    } else {
      throw e;
    }
  }
  Deno.exit(code);
}
