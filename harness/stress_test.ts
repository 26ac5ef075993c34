import assert from "node:assert/strict";
import { oneCpuFewer, PERTURBATIONS, stressPlans } from "./stress.ts";
import type { Scenario } from "./scenario.ts";
import { runPlan as plan } from "./testing.ts";

const scenario = (s: Partial<Scenario>): Scenario => ({
  name: "stress-x",
  description: "",
  groups: ["stress"],
  targets: [],
  ...s,
} as Scenario);

Deno.test("one CPU fewer takes the last CPU of the last node that has several", () => {
  const m = oneCpuFewer({
    smp: 4,
    numa: { nodes: [{ cpus: [0, 1], memoryMiB: 64 }, { cpus: [2, 3], memoryMiB: 64 }] },
  });
  assert.equal(m?.smp, 3);
  assert.deepEqual(m?.numa?.nodes.map((n) => n.cpus), [[0, 1], [2]]);
  // Renumbered without gaps when the CPU removed is not the highest.
  const r = oneCpuFewer({
    smp: 3,
    numa: { nodes: [{ cpus: [0, 1], memoryMiB: 64 }, { cpus: [2], memoryMiB: 64 }] },
  });
  assert.deepEqual(r?.numa?.nodes.map((n) => n.cpus), [[0], [1]]);
  assert.equal(oneCpuFewer({ smp: 2 }), undefined, "two vCPUs stay two");
  assert.equal(oneCpuFewer({ smp: 4 })?.smp, 3);
});

Deno.test("each run takes the next perturbation that applies, all multi-threaded", () => {
  const metered = plan(scenario({ machine: { smp: 2, meter: true, singleThreaded: true } }));
  const runs = stressPlans([metered], PERTURBATIONS.length);
  assert.deepEqual(runs.map((r) => r.how), [
    "mttcg",
    "mttcg, one host CPU",
    "mttcg, no meter",
    // One vCPU fewer does not apply to two: the first one again.
    "mttcg",
  ]);
  assert.ok(runs.every((r) => r.plan.scenario.machine?.singleThreaded === false));
  assert.deepEqual(runs[1]!.plan.scenario.machine?.hostCpus, [0]);
  assert.equal(runs[2]!.plan.scenario.machine?.meter, false);
  // Outside the stress group, the pace and the vCPU count are never changed.
  const smp = plan(scenario({ groups: ["smp"], machine: { smp: 4, meter: true } }));
  assert.ok(
    stressPlans([smp], 8).every((r) => {
      const m = r.plan.scenario.machine;
      return m?.smp === 4 && m.meter === true;
    }),
  );
});
