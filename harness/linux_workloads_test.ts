import assert from "node:assert/strict";
import { linuxNumaShortfalls, linuxNumaTable } from "./bench_linux_numa.ts";
import { MARKER } from "./linux.ts";
import {
  PIGZ,
  SORT,
  type SvPattern,
  svThreadsLine,
  svThreadsPerPass,
  svThreadsProblems,
  svThreadsReport,
  svThreadsWorkload,
} from "./linux_workloads.ts";

const report = (lines: string[]) => lines.map((l) => `${MARKER} ${l}`).join("\n");

Deno.test("sv-threads' report: every thread on its CPU, enough passes, the sum they give", () => {
  // 1 MiB a thread: 131072 words a pass.
  const t = { pattern: "private" as const, mib: 1, passes: 8 };
  const good = report([
    "threads=2",
    `thread0=cpu 0 passes 9 sum ${9 * 131072} ms 40`,
    `thread1=cpu 1 passes 8 sum ${8 * 131072} ms 41`,
  ]);
  assert.deepEqual(svThreadsProblems(good, 2, t), []);
  assert.deepEqual(svThreadsReport(good, 2)[1], { cpu: 1, passes: 8, sum: 8 * 131072, ms: 41 });
  const bad = report([
    "threads=2",
    `thread0=cpu -1 passes 9 sum ${9 * 131072} ms 40`,
    `thread1=cpu 1 passes 7 sum ${7 * 131072} ms 41`,
  ]);
  assert.equal(svThreadsProblems(bad, 2, t).length, 2, "moved off its CPU; too few passes");
  const wrongSum = report([
    "threads=2",
    `thread0=cpu 0 passes 9 sum ${9 * 131072 - 1} ms 40`,
    `thread1=cpu 1 passes 8 sum ${8 * 131072} ms 41`,
  ]);
  assert.match(svThreadsProblems(wrongSum, 2, t).join(), /thread 0/);
  assert.match(svThreadsProblems(report(["threads=1"]), 2, t).join(), /ran 1 threads, not 2/);
  assert.equal(svThreadsLine({ ...t, warmupMs: 500 }), "sv-threads private 1 8 500");
});

Deno.test("what a pass of sv-threads gives each thread, pattern by pattern", () => {
  const per = (pattern: SvPattern, cpus: number, i: number) =>
    svThreadsPerPass({ pattern, mib: 2, passes: 1 }, cpus, i);
  // Figures from the program itself (cc on the host, 2 CPUs, 2 MiB).
  assert.equal(per("private", 2, 0), 262144);
  assert.equal(per("shared-read", 2, 1), 524288);
  assert.equal(per("shared-write-hot", 2, 0), 262144);
  assert.equal(per("stream", 2, 0), 131072);
  assert.equal(per("random", 2, 1), 262144);
  // 3 threads share the hot region's 8192 words 2731, 2731, 2730.
  assert.equal(per("shared-write-hot", 3, 0), 96 * 2731);
  assert.equal(per("shared-write-hot", 3, 2), 96 * 2730);
});

Deno.test("a workload's time: the slowest thread's, or the window's marks", () => {
  const w = svThreadsWorkload({ pattern: "private", mib: 1, passes: 1 });
  const lines = report([
    "threads=2",
    `thread0=cpu 0 passes 1 sum 131072 ms 40`,
    `thread1=cpu 1 passes 1 sum 131072 ms 55`,
  ]);
  assert.equal(w.ms(lines, 2), 55);
  assert.equal(w.ms(report(["threads=2"]), 2), undefined);
  assert.equal(PIGZ.ms(report(["window-open=1000", "window-close=1250"]), 2), 250);
});

Deno.test("pigz must give its input back, sort every line in order", () => {
  const marks = ["window-open=1", "window-close=2"];
  assert.deepEqual(PIGZ.problems(report([...marks, "input-md5=ab", "pigz-back-md5=ab"]), 2), []);
  assert.match(
    PIGZ.problems(report([...marks, "input-md5=ab", "pigz-back-md5=cd"]), 2).join(),
    /input-md5 is "ab" but pigz-back-md5 "cd"/,
  );
  assert.match(PIGZ.problems(report(["input-md5=ab", "pigz-back-md5=ab"]), 2).join(), /marks/);
  const sorted = [...marks, "sorted=yes", "input-lines=400000", "sorted-lines=400000"];
  assert.deepEqual(SORT.problems(report(sorted), 2), []);
  assert.match(SORT.problems(report(sorted.slice(0, 2)), 2).join(), /not in order/);
  assert.match(
    SORT.problems(report([...sorted.slice(0, 4), "sorted-lines=399999"]), 2).join(),
    /input-lines/,
  );
});

Deno.test("bench linux-numa: the table, and where adaptive placement is short of Linux's own", () => {
  const r = (config: string, local?: number) => ({
    topology: "2 nodes",
    workload: "master-init",
    config,
    ...(local === undefined ? { failure: "timeout" } : { local, cost: 2 - local, ms: 10 }),
  });
  const results = [
    r("first-touch", 0.5),
    r("adaptive-bits", 0.6),
    r("adaptive-faults", 0.8),
    r("mirror-balancing", 0.9),
    r("bare-balancing"),
  ];
  assert.deepEqual(linuxNumaShortfalls(results), [
    "2 nodes master-init: adaptive 80.0 % local, Linux's own 90.0 % (10.0 points short)",
  ]);
  assert.deepEqual(linuxNumaShortfalls([r("adaptive-faults", 0.95), r("bare-balancing", 0.9)]), []);
  assert.deepEqual(linuxNumaShortfalls([r("adaptive-faults", 0.95)]), [], "nothing to hold it to");
  const table = linuxNumaTable(results);
  assert.match(table, /2 nodes\s+master-init\s+50\.0 \/ 1\.50\s+60\.0 \/ 1\.40/);
  assert.match(table, /bare-balancing\s+-\s+-\s+-.*timeout/);
});
