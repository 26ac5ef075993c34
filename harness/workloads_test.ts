import assert from "node:assert/strict";
import { type Row, shortfalls } from "./bench_numa.ts";
import type { SvEvent } from "./events.ts";
import { bounds, model, recoveryPeriods } from "./workloads.ts";

const size = { sizeMiB: 2, passes: 10 };
const twoNodes = [[1, 2], [2, 1]];

Deno.test("phase-change's pages are used by their owner, then by the vCPU before it", () => {
  const m = model("phase-change", size, 4);
  const slice = 512 / 4;
  // A page of vCPU 2's slice: vCPU 2 first, then vCPU 1 (which moves on to slice 2).
  assert.deepEqual(m[2 * slice], [0, 320, 320, 0]);
  // vCPU 0's slice is vCPU 3's in the second phase.
  assert.deepEqual(m[0], [320, 0, 0, 320]);
  // No static placement is local to both phases: the oracle is half local on two nodes.
  const { oracle } = bounds(model("phase-change", size, 2), [0, 1], twoNodes);
  assert.equal(oracle.local, 0.5);
});

const look = (period: number, tsc: number, migrated: number): SvEvent => ({
  ev: "adaptive-look",
  look: period / 4,
  period,
  tsc,
  migrated,
  bounced: 0,
});
const change = (tsc: number): SvEvent => ({
  ev: "vmexit",
  vcpu: 0,
  reason: "hypercall",
  call: "report",
  value: `0x${tsc.toString(16)}`,
  tag: "0x2",
});

Deno.test("recovery is counted in periods from the change to the look that completed the moves", () => {
  // 1000 ticks a period; the change at period 15 (tsc 15000, between looks at 10 and 20).
  const events = [
    look(10, 10_000, 1),
    change(15_000),
    look(20, 20_000, 2),
    look(40, 40_000, 3),
    look(60, 60_000, 5),
  ];
  assert.equal(recoveryPeriods(events, 5), 25, "2 + 3 pages at period 40");
  assert.equal(recoveryPeriods(events, 10), 45);
  assert.equal(recoveryPeriods(events, 11), undefined, "never that many");
  assert.equal(recoveryPeriods(events.filter((e) => e.ev !== "vmexit"), 5), undefined);
  // No look before the change: its period comes from the two after it.
  assert.equal(recoveryPeriods(events.slice(1), 5), 25);
});

Deno.test("adaptive falls short where the oracle or a static policy does better by the margins", () => {
  const row = (adaptive: { local: number; cost: number } | undefined): Row => ({
    topology: "2 nodes",
    workload: "master-init",
    policies: {
      "first-touch": { local: 0.5, cost: 1.5 },
      interleave: { local: 0.5, cost: 1.5 },
      adaptive,
    },
    oracle: { local: 1, cost: 1 },
    worst: { local: 0, cost: 2 },
  });
  assert.deepEqual(shortfalls(row({ local: 0.96, cost: 1.04 })), []);
  const short = shortfalls(row({ local: 0.9, cost: 1.1 }));
  assert.equal(short.length, 2, short.join("; "));
  assert.match(short[0]!, /90.0 % local, under 95 % of the oracle's 100.0/);
  assert.match(short[1]!, /cost 1.10, over 5 % above the oracle's 1.00/);
  const worse = { ...row({ local: 1, cost: 1.3 }), oracle: { local: 1, cost: 1.25 } };
  worse.policies["first-touch"] = { local: 0.8, cost: 1.2 };
  assert.deepEqual(shortfalls(worse), [
    "2 nodes master-init adaptive: cost 1.30, over 4 % above the best static policy's 1.20",
  ]);
  assert.deepEqual(shortfalls(row(undefined)), ["2 nodes master-init adaptive: no run"]);
  assert.deepEqual(shortfalls(row({ local: 1, cost: 1 }), "adaptive-faults"), [
    "2 nodes master-init adaptive-faults: no run",
  ]);
});
