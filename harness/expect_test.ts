import assert from "node:assert/strict";
import type { SvEvent } from "./events.ts";
import { checkExpectations } from "./expect.ts";
import { everyVcpu, perVcpu } from "./guests.ts";
import { runInfo } from "./testing.ts";

const run = runInfo();

const events: SvEvent[] = [
  { ev: "boot", proto: "pvh" },
  { ev: "cpu", vendor: "amd", svm: true },
  { ev: "memmap", regions: [{ base: "0x0" }] },
  { ev: "exit", status: "pass" },
];

Deno.test("expectations in order, with events in between, match", () => {
  assert.deepEqual(
    checkExpectations(events, [{ ev: "boot" }, { ev: "memmap" }, { ev: "exit" }], run),
    [],
  );
});

Deno.test("a field mismatch says expected and actual", () => {
  const p = checkExpectations(events, [{ ev: "cpu", fields: { vendor: "intel", svm: true } }], run);
  assert.deepEqual(p, ['cpu.vendor: expected "intel", got "amd"']);
});

Deno.test("fields may depend on the run and compare deeply", () => {
  assert.deepEqual(
    checkExpectations(events, [
      { ev: "cpu", fields: (r) => ({ vendor: r.vendor, svm: r.features.has("svm") }) },
      { ev: "memmap", fields: { regions: [{ base: "0x0" }] } },
    ], run),
    [],
  );
  assert.equal(
    checkExpectations(events, [{ ev: "memmap", fields: { regions: [] } }], run).length,
    1,
  );
});

Deno.test("order matters: an event before the previous match does not count", () => {
  const p = checkExpectations(events, [{ ev: "exit" }, { ev: "boot" }], run);
  assert.deepEqual(p, ['event "boot" came, but not after "exit"']);
});

Deno.test("a missing event, a failing check and a forbidden event are reported", () => {
  const p = checkExpectations(
    events,
    [
      { ev: "acpi" },
      { ev: "boot", check: (e) => e.proto === "multiboot2" ? [] : [`proto ${e.proto}`] },
    ],
    run,
    ["exit"],
  );
  assert.deepEqual(p, [
    'expected event "acpi", it never came',
    "boot: proto pvh",
    'event "exit" must not appear, got {"ev":"exit","status":"pass"}',
  ]);
});

Deno.test("a check that throws is a problem, not a harness crash", () => {
  const p = checkExpectations(events, [{
    ev: "boot",
    check: () => {
      throw new Error("bad field");
    },
  }], run);
  assert.deepEqual(p, ["boot: check threw bad field"]);
});

Deno.test("a later event of the same name may satisfy the expectation", () => {
  const two: SvEvent[] = [{ ev: "x", n: 1 }, { ev: "x", n: 2 }];
  assert.deepEqual(checkExpectations(two, [{ ev: "x", fields: { n: 2 } }], run), []);
});

Deno.test("per-vCPU expectations hold in each vCPU's stream, whatever the interleaving", () => {
  const interleaved: SvEvent[] = [
    { ev: "vmexit", vcpu: 1, reason: "cpuid" },
    { ev: "vmexit", vcpu: 0, reason: "cpuid" },
    { ev: "guest-end", vcpu: 1, how: "hlt" },
    { ev: "vmexit", vcpu: 0, reason: "hlt" },
    { ev: "guest-end", vcpu: 0, how: "hlt" },
  ];
  const stream = [{ ev: "vmexit", fields: { reason: "cpuid" } }, { ev: "guest-end" }];
  assert.deepEqual(perVcpu(stream, 2)(interleaved, run), []);
  assert.deepEqual(everyVcpu("guest-end", { how: "hlt" }, 2)(interleaved, run), []);
  const missing = everyVcpu("guest-end", undefined, 3)(interleaved, run);
  assert.deepEqual(missing, ['vCPU 2: expected event "guest-end", it never came']);
  // The same streams as one global list do not hold: vCPU 0's CPUID came before vCPU 1 ended.
  assert.notDeepEqual(checkExpectations(interleaved, [...stream, ...stream], run), []);
});
