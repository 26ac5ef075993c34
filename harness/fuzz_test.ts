import assert from "node:assert/strict";
import { fuzzCase, fuzzPlan, fuzzReport, hypervisorFailure, rng } from "./fuzz.ts";
import { notRun, type RunResult } from "./runner.ts";
import type { SvEvent } from "./events.ts";

Deno.test("a seed makes the same guest every time, and seeds differ", () => {
  assert.deepEqual(fuzzCase(42), fuzzCase(42));
  assert.notEqual(fuzzCase(42).asm, fuzzCase(43).asm);
  const a = rng(7), b = rng(7);
  assert.deepEqual([a(), a(), a()], [b(), b(), b()]);
});

Deno.test("cases cover every mode and both kinds, with the matching NASM bits", () => {
  const cases = Array.from({ length: 60 }, (_, i) => fuzzCase(i + 1));
  for (const mode of ["real", "protected", "long"]) {
    assert.ok(cases.some((c) => c.mode === mode), mode);
  }
  assert.ok(cases.some((c) => c.kind === "bytes") && cases.some((c) => c.kind === "instructions"));
  const bits = { real: 16, protected: 32, long: 64 };
  for (const c of cases) assert.match(c.asm, new RegExp(`^bits ${bits[c.mode]}$`, "m"));
  const plan = fuzzPlan(cases[0]!, "amd");
  assert.equal(plan.backend, "qemu");
  assert.match(plan.scenario.cmdline ?? "", /^guest=(real|protected|long) guest\.watchdog=300$/);
  assert.equal(fuzzPlan(cases[0]!, "intel").cpu, "tigerlake");
});

function run(status: RunResult["status"], events: SvEvent[], reason = "r"): RunResult {
  const plan = fuzzPlan(fuzzCase(1), "amd");
  return { ...notRun(plan, status, reason), events };
}

const ended: SvEvent[] = [
  { ev: "guest-end", how: "triple-fault", failed: false },
  { ev: "exit", status: "pass" },
];

Deno.test("only the hypervisor's failures count, never the guest's", () => {
  assert.equal(hypervisorFailure(run("pass", ended)), undefined, "a guest's triple fault");
  const watchdog: SvEvent[] = [{ ev: "guest-end", how: "watchdog" }, {
    ev: "exit",
    status: "fail",
  }];
  assert.equal(hypervisorFailure(run("fail", watchdog)), undefined, "a failed guest");
  const entry: SvEvent[] = [{ ev: "entry-failure" }, ...ended];
  assert.match(hypervisorFailure(run("fail", entry)) ?? "", /entry-failure/);
  assert.match(hypervisorFailure(run("crash", [{ ev: "exception" }])) ?? "", /exception/);
  assert.match(hypervisorFailure(run("timeout", [], "no end")) ?? "", /^timeout/);
  assert.match(hypervisorFailure(run("fail", [{ ev: "boot" }])) ?? "", /no exit event/);
  const contradicted = run("fail", ended, "contradictory evidence: 2 exit events");
  assert.match(hypervisorFailure(contradicted) ?? "", /contradictory/);
});

Deno.test("the report counts endings per vendor and closes with the passed/failed line", () => {
  const text = fuzzReport({
    runs: 3,
    failures: [{ vendor: "amd", seed: 9, why: "timeout", saved: "x" }],
    unbuilt: [],
    ends: { amd: { "triple-fault": 2, "no guest-end": 1 } },
  });
  assert.match(text, /^amd \(qemu EPYC\): triple-fault 2, no guest-end 1$/m);
  assert.match(text, /^3 guests, 1 hypervisor failure\(s\)$/m);
  assert.match(text, /^2 passed, 1 failed$/m);
});
