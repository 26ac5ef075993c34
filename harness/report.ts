/** Matrix results as a table, TAP 13 and JUnit XML. */
import type { RunResult } from "./runner.ts";

export type Outcome = "passed" | "failed" | "skipped";

/**
 * A run passes when it gave the verdict its scenario is meant to give and
 * met its expectations (a selftest's crash must be the crash it provokes).
 */
export function outcome(r: RunResult): Outcome {
  if (r.status === "skip") return "skipped";
  return r.status === r.expected && r.problems.length === 0 ? "passed" : "failed";
}

export function title(r: RunResult): string {
  return `${r.scenario} ${r.backend} ${r.cpu} ${r.boot}/${r.firmware}`;
}

export function counts(results: RunResult[]): Record<Outcome, number> {
  const c = { passed: 0, failed: 0, skipped: 0 };
  for (const r of results) c[outcome(r)]++;
  return c;
}

export function summaryLine(c: Record<Outcome, number>): string {
  return `${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped`;
}

export function statusText(r: RunResult): string {
  return r.expected !== "pass" && r.status === r.expected ? `${r.status} (expected)` : r.status;
}

export function table(results: RunResult[]): string {
  const rows = results.map((r) => [
    r.scenario,
    r.backend,
    r.cpu,
    `${r.boot}/${r.firmware}`,
    statusText(r),
    `${(r.durationMs / 1000).toFixed(1)}s`,
  ]);
  return columns(["scenario", "backend", "cpu", "boot", "status", "time"], rows, true);
}

/**
 * One line per run that failed, with why and where its logs are: the summary
 * repeats them so that the end of a long CI log names what failed.
 */
export function failures(results: RunResult[]): string[] {
  return results.filter((r) => outcome(r) === "failed").map((r) =>
    [
      `FAILED ${title(r)}: ${statusText(r)} (expected ${r.expected}): ${r.reason}`,
      ...r.problems.map((p) => `  ${p}`),
      ...(r.runDir ? [`  logs: ${r.runDir}`] : []),
    ].join("\n")
  );
}

/** `rows` under `head` in aligned columns, with a rule under the head when `rule`. */
export function columns(head: string[], rows: string[][], rule = false): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(head), ...(rule ? [line(widths.map((w) => "-".repeat(w)))] : []), ...rows.map(line)]
    .join("\n");
}

function yamlString(s: string): string {
  return JSON.stringify(s);
}

export function tap(results: RunResult[]): string {
  const out = ["TAP version 13", `1..${results.length}`];
  results.forEach((r, i) => {
    const o = outcome(r);
    const name = `${i + 1} - ${title(r)}`;
    if (o === "skipped") out.push(`ok ${name} # SKIP ${r.reason}`);
    else out.push(`${o === "passed" ? "ok" : "not ok"} ${name}`);
    if (o === "failed") {
      out.push("  ---");
      out.push(`  status: ${r.status}`);
      out.push(`  expected: ${r.expected}`);
      out.push(`  reason: ${yamlString(r.reason)}`);
      if (r.problems.length) {
        out.push("  problems:");
        for (const p of r.problems) out.push(`    - ${yamlString(p)}`);
      }
      out.push(`  run_dir: ${yamlString(r.runDir)}`);
      out.push("  ...");
    }
  });
  return out.join("\n") + "\n";
}

function xml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function junit(results: RunResult[]): string {
  const c = counts(results);
  const time = results.reduce((t, r) => t + r.durationMs, 0) / 1000;
  const cases = results.map((r) => {
    const o = outcome(r);
    const head = `    <testcase classname="${xml(r.scenario)}" name="${
      xml(`${r.backend} ${r.cpu} ${r.boot}/${r.firmware}`)
    }" time="${(r.durationMs / 1000).toFixed(3)}"`;
    if (o === "passed") return `${head}/>`;
    const body = o === "skipped"
      ? `<skipped message="${xml(r.reason)}"/>`
      : `<failure message="${xml(`${r.status}: ${r.reason}`)}">${
        xml([...r.problems, `run dir: ${r.runDir}`].join("\n"))
      }</failure>`;
    return `${head}>\n      ${body}\n    </testcase>`;
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites tests="${results.length}" failures="${c.failed}" skipped="${c.skipped}">`,
    `  <testsuite name="scalevisor" tests="${results.length}" failures="${c.failed}" skipped="${c.skipped}" time="${
      time.toFixed(3)
    }">`,
    ...cases,
    "  </testsuite>",
    "</testsuites>",
    "",
  ].join("\n");
}
