import assert from "node:assert/strict";
import type { SvEvent } from "./events.ts";
import { classify, exitCodeFor, type Outcome } from "./verdict.ts";

const boot: SvEvent = { ev: "boot", proto: "pvh" };
const pass: SvEvent = { ev: "exit", status: "pass" };

function outcome(o: Partial<Outcome>): Outcome {
  return {
    events: [boot, pass],
    timedOut: false,
    exitCode: 33,
    stderrTail: "",
    successExitCode: 33,
    problems: [],
    ...o,
  };
}

Deno.test("pass needs an exit event, the success status and no problems", () => {
  assert.equal(classify(outcome({})).status, "pass");
  const failed = classify(outcome({ problems: ["cpu.vendor: expected ..."] }));
  assert.equal(failed.status, "fail");
  assert.match(failed.reason, /1 expectation/);
});

Deno.test("an exception or panic event is a crash, whatever else happened", () => {
  const ex: SvEvent = { ev: "exception", vector: 14, name: "page-fault", rip: "0x1", cr2: "0x2" };
  const v = classify(outcome({ events: [boot, ex], timedOut: true }));
  assert.equal(v.status, "crash");
  assert.match(v.reason, /exception 14 \(page-fault\)/);
  const panic: SvEvent = { ev: "panic", message: "boom", file: "k.rs", line: 3 };
  assert.equal(classify(outcome({ events: [boot, panic] })).status, "crash");
});

Deno.test("a triple fault seen in the emulator log is a crash, unless the kernel went on", () => {
  const v = classify(outcome({ events: [boot], exitCode: 0, emulatorCrash: "triple fault" }));
  assert.deepEqual(v, { status: "crash", reason: "triple fault" });
  // A guest's triple fault, handled by the hypervisor, leaves the same line in Bochs' log.
  assert.equal(classify(outcome({ emulatorCrash: "triple fault" })).status, "pass");
});

Deno.test("timeout names the last event; an early end is a failure, not a timeout", () => {
  const t = classify(outcome({ events: [boot], timedOut: true, exitCode: null }));
  assert.equal(t.status, "timeout");
  assert.match(t.reason, /"boot"/);
  const early = classify(outcome({ events: [boot], exitCode: 0 }));
  assert.equal(early.status, "fail");
  assert.match(early.reason, /without an exit event/);
});

Deno.test("an emulator that fails before the kernel boots is an emulator error", () => {
  const spawn = classify(outcome({ events: [], spawnError: "qemu-system-x86_64 not found" }));
  assert.equal(spawn.status, "emulator-error");
  const bad = classify(
    outcome({ events: [], exitCode: 1, stderrTail: "qemu: -cpu bogus: unknown CPU model" }),
  );
  assert.equal(bad.status, "emulator-error");
  assert.match(bad.reason, /unknown CPU model/);
  // The kernel spoke (boot information it refused): its error is the verdict, whatever QEMU warned.
  const refused: SvEvent = { ev: "error", stage: "boot-info", message: "bad", fatal: true };
  const kernel = classify(
    outcome({ events: [refused], exitCode: 35, stderrTail: "warning: TCG doesn't support" }),
  );
  assert.deepEqual(kernel, { status: "fail", reason: "kernel error in boot-info: bad" });
});

Deno.test("a fatal kernel error and a failed exit status are failures", () => {
  const err: SvEvent = {
    ev: "error",
    stage: "cmdline",
    message: "unknown option 'x'",
    fatal: true,
  };
  const v = classify(
    outcome({ events: [boot, err, { ev: "exit", status: "fail" }], exitCode: 35 }),
  );
  assert.equal(v.status, "fail");
  assert.match(v.reason, /cmdline: unknown option/);
  const quiet = classify(outcome({ events: [boot, { ev: "exit", status: "fail" }] }));
  assert.equal(quiet.status, "fail");
});

Deno.test("a pass the emulator contradicts is a failure", () => {
  assert.equal(classify(outcome({ exitCode: 35 })).status, "fail");
  assert.equal(classify(outcome({ exitCode: 1, successExitCode: undefined })).status, "pass");
});

Deno.test("the kernel may skip a run, naming why", () => {
  const v = classify(outcome({ events: [boot, { ev: "skip", reason: "no EPT" }] }));
  assert.deepEqual(v, { status: "skip", reason: "no EPT" });
});

Deno.test("exit codes of the scenario command", () => {
  assert.equal(exitCodeFor("pass"), 0);
  assert.equal(exitCodeFor("skip"), 77);
  for (const s of ["fail", "crash", "timeout", "emulator-error"] as const) {
    assert.equal(exitCodeFor(s), 1);
  }
});

Deno.test("contradictory evidence fails the run, naming the contradiction", () => {
  const end = (vcpu: number): SvEvent => ({ ev: "guest-end", vcpu, how: "hlt", failed: false });
  const cases: [SvEvent[], RegExp][] = [
    [[boot, pass, { ev: "exit", status: "fail" }], /2 exit events \(pass, fail\)/],
    [[boot, end(0), end(0), pass], /2 guest-end events for vCPU 0/],
    [[boot, pass, { ev: "vmexit", reason: "hlt" }], /event "vmexit" after the kernel's exit/],
    [[boot, end(0), { ev: "skip", reason: "x" }, { ev: "exit", status: "skip" }], /skip after/],
    [[boot, { ev: "exit", status: "skip" }], /exit status skip without a skip event/],
    [[boot, { ev: "exit", status: "fail" }], /emulator exited with success/],
  ];
  for (const [events, reason] of cases) {
    const v = classify(outcome({ events }));
    assert.equal(v.status, "fail", JSON.stringify(events));
    assert.match(v.reason, /^contradictory evidence: /);
    assert.match(v.reason, reason);
  }
  // One guest-end per vCPU is no contradiction.
  assert.equal(classify(outcome({ events: [boot, end(0), end(1), pass] })).status, "pass");
});

Deno.test("a hypervisor whose image changed while it ran fails the run", () => {
  const changed: SvEvent = { ev: "exit", status: "pass", image: "changed" };
  const v = classify(outcome({ events: [boot, changed] }));
  assert.equal(v.status, "fail");
  assert.match(v.reason, /image \(code and constants\) changed/);
  const intact: SvEvent = { ev: "exit", status: "pass", image: "intact" };
  assert.equal(classify(outcome({ events: [boot, intact] })).status, "pass");
});

Deno.test("an exit that lost the guest's state to the host's is the emulator's error", () => {
  const lost: SvEvent = {
    ev: "svm-lost-state",
    vcpu: 0,
    exit_code: "0x60",
    exit_info1: "0x0",
    exit_info2: "0x0",
    exit_int_info: "0x0",
    entered_rip: "0x1000",
    entered_rsp: "0x8000",
    entered_cr3: "0x3000",
  };
  const failed: SvEvent = { ev: "exit", status: "fail", image: "intact" };
  const v = classify(outcome({ events: [boot, lost, failed] }));
  assert.equal(v.status, "emulator-error");
  assert.match(v.reason, /vCPU 0: the emulator's #VMEXIT \(exit 0x60\) saved the host's state/);
  assert.equal(classify(outcome({ events: [boot, failed] })).status, "fail");
});

Deno.test("an emulator that records how the machine ended must agree with the kernel", () => {
  const bochs = { exitCode: 1, successExitCode: undefined, recordsEnd: true };
  const byKernel = { what: "the kernel's power-off", byKernel: true };
  assert.equal(classify(outcome({ ...bochs, emulatorEnd: byKernel })).status, "pass");
  const reset = classify(
    outcome({ ...bochs, emulatorEnd: { what: "a hardware reset", byKernel: false } }),
  );
  assert.equal(reset.status, "fail");
  assert.match(reset.reason, /emulator recorded a hardware reset/);
  assert.match(classify(outcome(bochs)).reason, /no power-off by the kernel/);
  const lost = classify(outcome({ ...bochs, events: [boot], emulatorEnd: byKernel }));
  assert.match(lost.reason, /no exit event was read/);
});

Deno.test("malformed lines on the hypervisor's channel fail the run", () => {
  assert.match(classify(outcome({ malformed: 2 })).reason, /2 malformed line/);
});

Deno.test("a failed guest assert fails the run, quoting its source line", () => {
  const assertion: SvEvent = {
    ev: "vmexit",
    reason: "hypercall",
    call: "assert",
    text: "payloads/a.asm:9: ASSERT_LT(rax, 3)",
    left: "0x5",
    right: "0x3",
    line: 9,
  };
  const v = classify(
    outcome({ events: [boot, assertion, { ev: "exit", status: "fail" }], exitCode: 35 }),
  );
  assert.deepEqual(v, {
    status: "fail",
    reason: "guest assert failed at payloads/a.asm:9: ASSERT_LT(rax, 3) (left 0x5, right 0x3)",
  });
});
