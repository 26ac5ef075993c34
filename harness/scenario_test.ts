import assert from "node:assert/strict";
import {
  defineScenario,
  expandTargets,
  type Group,
  type RunInfo,
  type Scenario,
  ScenarioError,
  selectPlan,
  validateScenario,
  variants,
} from "./scenario.ts";

function scenario(over: Partial<Scenario> = {}): Scenario {
  return {
    name: "demo",
    description: "a demo",
    groups: ["boot"],
    machine: { smp: 2, memoryMiB: 256 },
    targets: [
      { backend: "qemu", cpus: ["EPYC", "qemu64"] },
      { backend: "qemu", boot: "iso", firmware: "uefi", cpus: ["EPYC"], timeoutS: 90 },
      { backend: "bochs", cpus: ["tigerlake"] },
    ],
    timeoutS: 30,
    expect: [{ ev: "boot" }],
    ...over,
  };
}

/** Asserts that each of `wants` appears in one of the problems. */
function assertMentions(problems: string[], wants: string[]) {
  const text = problems.join("\n");
  for (const want of wants) assert.ok(text.includes(want), `missing "${want}" in:\n${text}`);
}

function problems(value: unknown, variant = false): string[] {
  try {
    validateScenario(value, "demo", variant);
    return [];
  } catch (e) {
    assert.ok(e instanceof ScenarioError);
    return e.problems;
  }
}

Deno.test("a valid scenario passes validation", () => {
  assert.deepEqual(problems(scenario()), []);
});

Deno.test("a Linux guest's Debian programs are PACKAGE:/PATH", () => {
  const linux = (debian: unknown) => ({ ...scenario(), payload: undefined, linux: { debian } });
  assert.deepEqual(problems(linux(["pigz:/usr/bin/pigz", "coreutils:/usr/bin/sort"])), []);
  for (const bad of [["/usr/bin/pigz"], ["pigz:usr/bin/pigz"], "pigz:/usr/bin/pigz"]) {
    assertMentions(problems(linux(bad)), ["debian?: PACKAGE:/PATH"]);
  }
});

Deno.test("validation names every problem", () => {
  const p = problems({
    ...scenario(),
    name: "other",
    description: "",
    groups: ["everything" as Group],
    cmdline: "a; rm -rf /",
    timeoutS: 0,
    targets: [
      { backend: "bochs", firmware: "uefi", cpus: ["tigerlake"] },
      { backend: "qemu", boot: "kernel", firmware: "uefi", cpus: ["Nehalem"] },
      { backend: "vbox", cpus: ["x"] },
      { backend: "qemu", cpus: [] },
    ],
    expect: [{ name: "boot" }],
  });
  assertMentions(p, [
    'name must be "demo"',
    "description is missing",
    "groups must list at least one of boot, numa",
    "cmdline must be plain words",
    "timeoutS must be a positive number",
    "targets[0]: Bochs runs no OVMF",
    "targets[1]: QEMU -kernel does not work with OVMF",
    'unknown qemu CPU model "Nehalem"',
    "targets[2].backend must be one of",
    "targets[3].cpus must list at least one",
    "expect[0].ev must be an event name",
  ]);
});

Deno.test("a command line the kernel would cut is refused", () => {
  assertMentions(problems({ ...scenario(), cmdline: "guest=long ".repeat(100) }), [
    "cmdline must be at most 1024 bytes",
  ]);
  assert.deepEqual(problems({ ...scenario(), cmdline: "x".repeat(1024) }), []);
});

Deno.test("a non-object export is refused", () => {
  assert.deepEqual(problems(undefined), ["the default export is not an object"]);
});

Deno.test("a CPU of the wrong vendor for the machine is refused", () => {
  const p = problems(scenario({ machine: { vendor: "intel" } }));
  assert.ok(p.some((x) => x.includes("CPU model EPYC is amd, the machine is intel")), p.join());
});

Deno.test("NUMA topologies must cover every CPU and the memory, with sane distances", () => {
  const p = problems(scenario({
    machine: {
      smp: 4,
      memoryMiB: 256,
      numa: {
        nodes: [{ cpus: [0, 1], memoryMiB: 128 }, { cpus: [1, 5], memoryMiB: 64 }],
        distances: [[10, 20], [20, 9]],
      },
    },
  }));
  assertMentions(p, [
    "CPU 5 is not below smp (4)",
    "CPU 1 is in two nodes",
    "numa nodes cover 2 of 4 CPUs",
    "adds up to 192 MiB",
    "distances[1][1] must be 10",
  ]);
});

Deno.test("targets expand per CPU with defaults per backend", () => {
  const runs = expandTargets(scenario()).map((p) =>
    `${p.backend}/${p.cpu}/${p.boot}/${p.firmware}/${p.timeoutS}`
  );
  assert.deepEqual(runs, [
    "qemu/EPYC/kernel/bios/30",
    "qemu/qemu64/kernel/bios/30",
    "qemu/EPYC/iso/uefi/90",
    "bochs/tigerlake/iso/bios/30",
  ]);
});

Deno.test("selectPlan takes the first declared run that fits", () => {
  const s = scenario();
  const first = selectPlan(s, {});
  assert.ok(typeof first !== "string");
  assert.equal(first.plan.cpu, "EPYC");
  assert.ok(first.declared);
  const uefi = selectPlan(s, { backend: "qemu", boot: "iso", firmware: "uefi" });
  assert.ok(typeof uefi !== "string");
  assert.equal(uefi.plan.timeoutS, 90);
  const bochs = selectPlan(s, { backend: "bochs", timeoutS: 2 });
  assert.ok(typeof bochs !== "string");
  assert.deepEqual([bochs.plan.cpu, bochs.plan.boot, bochs.plan.timeoutS], ["tigerlake", "iso", 2]);
});

Deno.test("selectPlan builds an undeclared run when the choice is valid", () => {
  const s = scenario();
  const iso = selectPlan(s, { backend: "qemu", cpu: "qemu64", boot: "iso" });
  assert.ok(typeof iso !== "string");
  assert.deepEqual([iso.plan.cpu, iso.plan.boot, iso.plan.firmware, iso.declared], [
    "qemu64",
    "iso",
    "bios",
    false,
  ]);
  const uefi = selectPlan(s, { cpu: "qemu64", firmware: "uefi" });
  assert.ok(typeof uefi !== "string");
  assert.equal(uefi.plan.boot, "iso", "UEFI implies the ISO");
  const kvm = selectPlan(s, { backend: "kvm" });
  assert.ok(typeof kvm !== "string");
  assert.deepEqual([kvm.plan.cpu, kvm.plan.boot], ["host", "kernel"]);
});

Deno.test("selectPlan refuses what cannot run", () => {
  assert.match(
    selectPlan(scenario(), { backend: "bochs", firmware: "uefi" }) as string,
    /Bochs runs no OVMF/,
  );
  assert.match(
    selectPlan(scenario(), { backend: "qemu", cpu: "Cascadelake" }) as string,
    /unknown qemu CPU model/,
  );
  assert.match(
    selectPlan(scenario(), { backend: "bochs", boot: "kernel" }) as string,
    /no direct kernel boot/,
  );
  const intel = scenario({
    machine: { vendor: "intel" },
    targets: [{ backend: "bochs", cpus: ["tigerlake"] }],
  });
  assert.match(
    selectPlan(intel, { backend: "bochs", cpu: "ryzen" }) as string,
    /needs a intel CPU/,
  );
});

Deno.test("variants are named <file>/<suffix> and override what they name", () => {
  const [a, b] = variants(scenario(), {
    "first-touch": { cmdline: "numa.probe" },
    interleave: { cmdline: "numa.probe x=1", timeoutS: 5 },
  });
  assert.equal(a!.name, "demo/first-touch");
  assert.equal(b!.cmdline, "numa.probe x=1");
  assert.equal(b!.timeoutS, 5);
  assert.equal(a!.timeoutS, scenario().timeoutS);
  assert.equal(validateScenario(a, "demo", true).name, "demo/first-touch");
  assertMentions(problems({ ...scenario(), name: "demo/Bad Name" }, true), [
    `a variant's name must be "demo/<suffix>"`,
  ]);
});

Deno.test("a target's command line, and fake nodes on Bochs, join the scenario's", () => {
  const s = scenario({
    cmdline: "numa.probe",
    machine: {
      smp: 2,
      memoryMiB: 256,
      numa: { nodes: [{ cpus: [0], memoryMiB: 128 }, { cpus: [1], memoryMiB: 128 }] },
    },
    targets: [
      { backend: "qemu", cpus: ["EPYC"], cmdline: "smp.x2apic" },
      { backend: "bochs", cpus: ["tigerlake"] },
    ],
  });
  assert.deepEqual(expandTargets(s).map((p) => p.cmdline), [
    "numa.probe smp.x2apic",
    "numa.probe numa=fake:2",
  ]);
});

Deno.test("parts merge: command lines joined, groups united, expectations in order", () => {
  const run = { vendor: "amd" } as RunInfo;
  const s = defineScenario(
    { name: "demo", description: "d", groups: ["guest"], cmdline: "guest=long", expect: [] },
    { groups: ["numa", "guest"], cmdline: "numa.probe", machine: { smp: 2 } },
    { machine: { memoryMiB: 64 }, expect: () => [{ ev: "a" }], timeoutS: 9 },
    { expect: [{ ev: "b" }], absent: ["error"], targets: undefined },
  );
  assert.equal(s.cmdline, "guest=long numa.probe");
  assert.deepEqual(s.groups, ["guest", "numa"]);
  assert.deepEqual(s.machine, { smp: 2, memoryMiB: 64 });
  assert.equal(s.timeoutS, 9);
  assert.deepEqual(s.absent, ["error"]);
  assert.ok(typeof s.expect === "function");
  assert.deepEqual((s.expect as (r: RunInfo) => { ev: string }[])(run).map((e) => e.ev), [
    "a",
    "b",
  ]);
  assert.ok(!("targets" in s), "an undefined value does not clobber");
  const whole = scenario();
  assert.equal(defineScenario(whole), whole, "one whole scenario is itself");
});
