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

const COLORS = [
  "#4e79a7",
  "#f28e2b",
  "#e15759",
  "#76b7b2",
  "#59a14f",
  "#b07aa1",
  "#9c755f",
  "#222",
  "#bbb",
  "#edc948",
];

/**
 * An SVG of bars: per group (a topology and workload), a bar per series
 * (a policy, a configuration) of a fraction from 0 to 1 (none: no bar).
 */
export function barsSvg(
  title: string,
  series: string[],
  groups: { label: string; values: Record<string, number | undefined> }[],
): string {
  const bar = 10, gap = 14, top = 30, height = 200;
  const groupWidth = series.length * bar + gap;
  const width = 60 + groups.length * groupWidth + 160;
  const pct = (v: number | undefined) => (v === undefined ? "-" : (v * 100).toFixed(1));
  const parts = groups.flatMap((g, k) => {
    const x0 = 60 + k * groupWidth;
    return [
      ...series.map((s, i) => {
        const h = (g.values[s] ?? 0) * height;
        return `<rect x="${x0 + i * bar}" y="${top + height - h}" width="${
          bar - 1
        }" height="${h}" fill="${COLORS[i % COLORS.length]}"><title>${g.label} ${s}: ${
          pct(g.values[s])
        } %</title></rect>`;
      }),
      `<text x="${x0}" y="${top + height + 12}" font-size="8" transform="rotate(40 ${x0} ${
        top + height + 12
      })">${g.label}</text>`,
    ];
  });
  const legend = series.map((s, i) =>
    `<rect x="${width - 150}" y="${top + i * 14}" width="10" height="10" fill="${
      COLORS[i % COLORS.length]
    }"/><text x="${width - 135}" y="${top + 9 + i * 14}" font-size="10">${s}</text>`
  );
  const axis = [0, 0.25, 0.5, 0.75, 1].map((t) =>
    `<text x="10" y="${top + height - t * height + 3}" font-size="9">${t * 100}%</text>` +
    `<line x1="50" x2="${width - 160}" y1="${top + height - t * height}" y2="${
      top + height - t * height
    }" stroke="#eee"/>`
  );
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${top + height + 80}">`,
    `<text x="60" y="18" font-size="12">${title}</text>`,
    ...axis,
    ...parts,
    ...legend,
    "</svg>",
    "",
  ].join("\n");
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
