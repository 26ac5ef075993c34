import assert from "node:assert/strict";
import { median } from "./bench.ts";
import { exitCosts, exitGoal } from "./exit_cost.ts";
import { BuildError, buildPayload, grubConfig } from "./build.ts";
import { hostCpu, resolveCpu } from "./cpus.ts";
import { globRegExp, saveFailures, selectPlans } from "./matrix.ts";
import { counts, failures, junit, outcome, summaryLine, tap } from "./report.ts";
import { busyFactor, type RunResult, underLoad } from "./runner.ts";
import type { Scenario } from "./scenario.ts";
import { cargoTestCounts, denoTestCounts } from "./test.ts";
import { runPlan } from "./testing.ts";

Deno.test("CPU models: flags change SVM and NPT, VMX is refused on TCG", () => {
  const m = resolveCpu("qemu", "qemu64,+svm,+npt,+avx2");
  assert.ok(typeof m !== "string");
  assert.deepEqual([...m.features].sort(), ["npt", "svm"]);
  const no = resolveCpu("qemu", "EPYC,-svm");
  assert.ok(typeof no !== "string");
  assert.deepEqual([...no.features], [], "NPT goes with SVM");
  assert.match(resolveCpu("qemu", "qemu64,+vmx") as string, /cannot emulate VMX/);
  assert.match(resolveCpu("qemu", "qemu64,svm") as string, /bad CPU flag/);
  assert.match(resolveCpu("bochs", "ryzen,+svm") as string, /no flags/);
  assert.match(resolveCpu("kvm", "EPYC") as string, /"host" only/);
});

Deno.test("the host CPU is read from /proc/cpuinfo", () => {
  const amd = hostCpu("vendor_id\t: AuthenticAMD\nflags\t\t: fpu svm npt sse2\n");
  assert.deepEqual([amd.vendor, [...amd.features].sort()], ["amd", ["npt", "svm"]]);
  const intel = hostCpu("vendor_id\t: GenuineIntel\nflags\t\t: fpu vmx ept\n");
  assert.deepEqual([...intel.features].sort(), ["ept", "unrestricted_guest", "vmx"]);
});

Deno.test("the GRUB config boots by multiboot2 and adds the modules in order", () => {
  const cfg = grubConfig("selftest=hang", [{ name: "payload.bin", args: "payload" }]);
  assert.match(cfg, /^ {2}multiboot2 \/boot\/hypervisor.elf selftest=hang$/m);
  assert.match(cfg, /^ {2}module2 \/boot\/payload.bin payload$/m);
  assert.doesNotMatch(grubConfig("", []), /module2/);
  const linux = grubConfig("guest=linux", [
    { name: "vmlinux", args: "console=ttyS0 quiet" },
    { name: "initrd.cpio", args: "initrd" },
  ]);
  assert.match(
    linux,
    /module2 \/boot\/vmlinux console=ttyS0 quiet\n {2}module2 \/boot\/initrd.cpio initrd/,
  );
});

Deno.test("globs match whole scenario names", () => {
  assert.ok(globRegExp("boot-*").test("boot-hello"));
  assert.ok(!globRegExp("boot").test("boot-hello"));
  assert.ok(globRegExp("numa-?node").test("numa-2node"));
  assert.ok(!globRegExp("a.b").test("axb"), "dots are literal");
});

Deno.test("closing lines of deno test and cargo test are counted", () => {
  assert.deepEqual(denoTestCounts("ok | 41 passed | 0 failed | 2 ignored (1s)"), {
    passed: 41,
    failed: 0,
    skipped: 2,
  });
  assert.deepEqual(denoTestCounts("FAILED | 3 passed (2 steps) | 1 failed (9ms)"), {
    passed: 3,
    failed: 1,
    skipped: 0,
  });
  assert.deepEqual(
    cargoTestCounts(
      "test result: ok. 27 passed; 0 failed; 1 ignored; 0 measured\n" +
        "test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured",
    ),
    { passed: 29, failed: 1, skipped: 1 },
  );
  assert.equal(cargoTestCounts("error: could not compile"), undefined);
});

function result(over: Partial<RunResult>): RunResult {
  return {
    scenario: "s",
    backend: "qemu",
    cpu: "EPYC",
    firmware: "bios",
    boot: "kernel",
    status: "pass",
    expected: "pass",
    reason: "ok",
    problems: [],
    durationMs: 1500,
    runDir: "/r",
    events: [],
    eventTimesMs: [],
    ...over,
  };
}

Deno.test("outcomes: expected verdicts pass only with their expectations met", () => {
  assert.equal(outcome(result({})), "passed");
  assert.equal(outcome(result({ status: "timeout", expected: "timeout" })), "passed");
  assert.equal(outcome(result({ status: "crash", expected: "crash", problems: ["x"] })), "failed");
  assert.equal(outcome(result({ status: "pass", expected: "crash" })), "failed");
  assert.equal(outcome(result({ status: "skip", reason: "no KVM" })), "skipped");
});

Deno.test("TAP, JUnit and the summary line report the same counts", () => {
  const rs = [
    result({}),
    result({ status: "timeout", reason: 'no end <after> "boot"', problems: ["p & q"] }),
    result({ status: "skip", reason: "no KVM" }),
  ];
  assert.equal(summaryLine(counts(rs)), "1 passed, 1 failed, 1 skipped");
  const t = tap(rs);
  assert.match(t, /^TAP version 13\n1\.\.3\nok 1 - s qemu EPYC kernel\/bios\nnot ok 2/);
  assert.match(t, /ok 3 - s qemu EPYC kernel\/bios # SKIP no KVM/);
  assert.match(t, / {2}status: timeout/);
  const x = junit(rs);
  assert.match(x, /tests="3" failures="1" skipped="1"/);
  assert.match(x, /<failure message="timeout: no end &#60;after&#62; &#34;boot&#34;">p &#38; q/);
  assert.match(x, /<skipped message="no KVM"\/>/);
  assert.deepEqual(failures(rs), [
    'FAILED s qemu EPYC kernel/bios: timeout (expected pass): no end <after> "boot"\n  p & q\n  logs: /r',
  ]);
});

Deno.test("medians of odd and even counts", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
});

Deno.test("the files of failed runs are saved, not the links to build outputs", async () => {
  const tmp = await Deno.makeTempDir();
  const run = `${tmp}/runs/123-s-qemu`;
  await Deno.mkdir(run, { recursive: true });
  await Deno.writeTextFile(`${run}/serial.log`, "@sv {}\n");
  await Deno.symlink("/etc/hostname", `${run}/boot.iso`);
  await saveFailures(
    [result({ status: "crash", runDir: run }), result({ runDir: `${tmp}/runs/passed` })],
    `${tmp}/out`,
  );
  const saved = [...Deno.readDirSync(`${tmp}/out`)].map((e) => e.name);
  assert.deepEqual(saved, ["123-s-qemu"]);
  assert.deepEqual([...Deno.readDirSync(`${tmp}/out/123-s-qemu`)].map((e) => e.name), [
    "serial.log",
  ]);
  await Deno.remove(tmp, { recursive: true });
});

Deno.test("a payload that assembles to nothing is refused before any emulator runs", async () => {
  await assert.rejects(
    buildPayload({ asm: "; nothing but a comment\n" }, () => {}),
    (e: unknown) => e instanceof BuildError && /assembles to no bytes/.test(e.message),
  );
});

Deno.test("a group selects its scenarios only", async () => {
  const numa = await selectPlans({ vendor: "all", group: "numa" });
  assert.ok(numa.length > 0);
  assert.ok(numa.every((p) => p.scenario.groups.includes("numa")), "only numa scenarios");
  const hostile = await selectPlans({ vendor: "all", group: "hostile" });
  assert.ok(hostile.every((p) => /^(hostile-|linux-attack\/)/.test(p.scenario.name)));
  assert.ok(!hostile.some((p) => numa.includes(p)));
});

Deno.test("the exit bench takes the slope of the guest's reports", () => {
  const report = (tag: number, value: number) => ({
    ev: "vmexit",
    call: "report",
    tag: `0x${tag.toString(16)}`,
    value: `0x${value.toString(16)}`,
  });
  const events = [[1, 1500], [2, 5500], [3, 2000], [4, 8000], [5, 500], [6, 2500]].map(([t, v]) =>
    report(t!, v!)
  );
  assert.deepEqual(exitCosts(events), { cpuid: 2, hypercall: 3 });
  assert.match(String(exitCosts(events.slice(1))), /four loops/);
  assert.deepEqual([exitGoal({ backend: "bochs" }), exitGoal({ backend: "qemu" })], [300, 400]);
});

Deno.test("a busy machine gives runs more time, and the hypervisor's watchdog with them", () => {
  assert.equal(busyFactor(0.5, 2), 1);
  assert.equal(busyFactor(3, 2), 1);
  assert.equal(busyFactor(5, 2), 2);
  assert.equal(busyFactor(10, 2), 4, "two emulators and two CPU-bound programs on 2 cores");
  assert.equal(busyFactor(100, 2), 8, "at most 8");
  const plan = runPlan({} as Scenario, { cmdline: "guest=long guest.memory=4" });
  assert.equal(underLoad(plan, 1), plan, "idle: as declared");
  const busy = underLoad(plan, 4);
  assert.equal(busy.timeoutS, 40);
  assert.equal(busy.cmdline, "guest=long guest.memory=4 guest.watchdog=40000");
  // A scenario's own watchdog, and Linux (no watchdog), are left alone.
  const own = { ...plan, cmdline: "guest=long guest.watchdog=500" };
  assert.equal(underLoad(own, 4).cmdline, own.cmdline);
  const linux = { ...plan, cmdline: "guest=linux guest.memory=256" };
  assert.equal(underLoad(linux, 4).cmdline, linux.cmdline);
  assert.equal(underLoad({ ...plan, cmdline: "numa=fake:2" }, 2).cmdline, "numa=fake:2");
});
