/**
 * `deno task test`: static checks, unit tests of both languages, then the
 * matrix of every scenario and a fuzz smoke. Every step runs even when one fails; the last
 * line counts checks, unit tests and runs together.
 */
import { fuzzCounts, fuzzReport, runFuzz } from "./fuzz.ts";
import { runMatrix } from "./matrix.ts";
import { FUZZ_DIR, ROOT } from "./paths.ts";
import { ALL_TOOLS, ensureTools } from "./prereq.ts";
import { counts, failures, type Outcome, summaryLine, table } from "./report.ts";

/** Random guests per vendor in every test run (`deno task fuzz` runs more). */
const FUZZ_SMOKE = 16;

interface Step {
  name: string;
  cmd: string;
  args: string[];
  /** Counts from the tool's closing lines; a step without counts is one check. */
  count?: (output: string) => Record<Outcome, number> | undefined;
  /** Set for the step, beside the environment's own variables. */
  env?: Record<string, string>;
}

const deno = Deno.execPath();

/** `ok | 12 passed | 0 failed | 1 ignored` */
export function denoTestCounts(out: string): Record<Outcome, number> | undefined {
  const m = /(\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed(?: \| (\d+) ignored)?/.exec(out);
  return m ? { passed: +m[1]!, failed: +m[2]!, skipped: +(m[3] ?? 0) } : undefined;
}

/** Sum of every `test result: ok. 30 passed; 0 failed; 1 ignored` line. */
export function cargoTestCounts(out: string): Record<Outcome, number> | undefined {
  const all = [...out.matchAll(/test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored/g)];
  if (all.length === 0) return undefined;
  return all.reduce((c, m) => ({
    passed: c.passed + +m[1]!,
    failed: c.failed + +m[2]!,
    skipped: c.skipped + +m[3]!,
  }), { passed: 0, failed: 0, skipped: 0 });
}

const STEPS: Step[] = [
  { name: "deno fmt", cmd: deno, args: ["fmt", "--check"] },
  { name: "deno lint", cmd: deno, args: ["lint"] },
  { name: "deno check", cmd: deno, args: ["check", "harness/", "scenarios/"] },
  {
    name: "deno test",
    cmd: deno,
    args: ["test", "--allow-all", "harness/"],
    count: denoTestCounts,
  },
  { name: "cargo fmt", cmd: "cargo", args: ["fmt", "--all", "--check"] },
  {
    name: "cargo clippy",
    cmd: "cargo",
    args: ["clippy", "--all-targets", "--quiet", "--", "-D", "warnings"],
  },
  { name: "cargo test", cmd: "cargo", args: ["test", "--quiet"], count: cargoTestCounts },
  // The guest-memory protocol's models under the loom model checker
  // (docs/numa.md), in their own target directory: `--cfg loom` rebuilds
  // every crate.
  {
    name: "loom models",
    cmd: "cargo",
    args: ["test", "--release", "--quiet", "--lib", "-p", "hypervisor", "models"],
    count: cargoTestCounts,
    env: { RUSTFLAGS: "--cfg loom", CARGO_TARGET_DIR: "target/loom" },
  },
];

async function runStep(step: Step): Promise<{ ok: boolean; counts: Record<Outcome, number> }> {
  console.log(`\n=== ${step.name}: ${[step.name.split(" ")[0], ...step.args].join(" ")}`);
  // Deno.Command, not dax: the output is shown as it comes and kept for counting.
  const child = new Deno.Command(step.cmd, {
    args: step.args,
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...step.env },
  }).spawn();
  let output = "";
  const decoder = new TextDecoder();
  const tee = async (stream: ReadableStream<Uint8Array>, to: typeof Deno.stdout) => {
    for await (const chunk of stream) {
      output += decoder.decode(chunk, { stream: true });
      await to.write(chunk);
    }
  };
  await Promise.all([tee(child.stdout, Deno.stdout), tee(child.stderr, Deno.stderr)]);
  const ok = (await child.status).success;
  const counted = step.count?.(output);
  const c = counted ?? { passed: ok ? 1 : 0, failed: ok ? 0 : 1, skipped: 0 };
  // A runner that failed without a failed test (a build error) still fails.
  if (!ok && c.failed === 0) c.failed = 1;
  return { ok, counts: c };
}

export async function runTests(opts: { jobs: number; matrix: boolean }): Promise<number> {
  const rows: [string, string][] = [];
  const failed: string[] = [];
  const total = { passed: 0, failed: 0, skipped: 0 };
  const add = (name: string, c: Record<Outcome, number>) => {
    total.passed += c.passed;
    total.failed += c.failed;
    total.skipped += c.skipped;
    rows.push([name, summaryLine(c)]);
  };
  // Missing emulators are found before anything runs, not after the unit tests.
  if (opts.matrix) await ensureTools(ALL_TOOLS, (m) => console.log(m));
  for (const step of STEPS) add(step.name, (await runStep(step)).counts);
  if (opts.matrix) {
    console.log("\n=== matrix");
    const results = await runMatrix({
      vendor: "all",
      jobs: opts.jobs,
      say: (m) => console.error(m),
    });
    console.log(table(results));
    add("matrix", counts(results));
    failed.push(...failures(results));
    console.log("\n=== fuzz smoke");
    const fuzz = await runFuzz({
      vendors: ["intel", "amd"],
      count: FUZZ_SMOKE,
      seed: 1,
      jobs: opts.jobs,
      saveDir: FUZZ_DIR,
      say: (m) => console.error(m),
    });
    console.log(fuzzReport(fuzz));
    add("fuzz smoke", fuzzCounts(fuzz));
  }
  console.log("\n=== summary");
  for (const f of failed) console.log(f);
  for (const [name, line] of rows) console.log(`${name.padEnd(14)} ${line}`);
  console.log(summaryLine(total));
  return total.failed > 0 ? 1 : 0;
}
