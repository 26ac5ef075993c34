import assert from "node:assert/strict";
import { accessWeights, imageRange, meterRanges, parseMeter } from "./meter.ts";

const twoNodes = { nodes: [{ cpus: [0], memoryMiB: 128 }, { cpus: [1], memoryMiB: 128 }] };

Deno.test("the meter's node ranges are in QEMU 7.2's plugin address space", () => {
  assert.deepEqual(meterRanges(twoNodes, 256), [
    "mem=0:0x0-0x8000000",
    "mem=1:0x10000000-0x18000000",
  ]);
  const memless = { nodes: [...twoNodes.nodes, { cpus: [2], memoryMiB: 0 }] };
  assert.equal(meterRanges(memless, 256).length, 2, "a node without memory has no range");
  assert.deepEqual(meterRanges(undefined, 64), ["mem=0:0x0-0x4000000"]);
});

Deno.test("the meter's counts become a local fraction and a distance-weighted cost", () => {
  const m = parseMeter("cpu 0 node 0: 30 10 other: 2\ncpu 1 node 1: 0 60 other: 0\n", {
    ...twoNodes,
    distances: [[10, 30], [30, 10]],
  })!;
  assert.equal(m.localFraction, 0.9);
  assert.equal(m.other, 2);
  assert.ok(Math.abs(m.cost - (30 + 10 * 3 + 60) / 100) < 1e-9);
  assert.equal(parseMeter("", twoNodes), undefined, "nothing written");
  assert.equal(m.window, undefined, "no window opened");
});

Deno.test("a guest program's windows are counted apart", () => {
  const m = parseMeter(
    "cpu 0 node 0: 30 10 other: 0\ncpu 1 node 1: 10 50 other: 0\n" +
      "window cpu 0 node 0: 20 0 other: 0\nwindow cpu 1 node 1: 5 15 other: 0\n",
    twoNodes,
  )!;
  assert.equal(m.localFraction, 0.8);
  assert.equal(m.window?.localFraction, 0.875);
  assert.deepEqual(m.window?.cpus.map((c) => c.accesses), [[20, 0], [5, 15]]);
});

Deno.test("HMAT latencies weigh accesses where declared", () => {
  const hmat = [
    { initiator: 0, target: 0, kind: "access-latency" as const, value: 5 },
    { initiator: 0, target: 1, kind: "access-latency" as const, value: 15 },
  ];
  const w = accessWeights({ ...twoNodes, hmat }, 2);
  assert.equal(w[0]![1], 3, "latency 15 over 5");
  assert.equal(w[1]![0], 2, "no latency from node 1: SLIT default 20 over 10");
});

Deno.test("the kernel image's range comes from its loadable segments", () => {
  const elf = new Uint8Array(64 + 2 * 56);
  const v = new DataView(elf.buffer);
  v.setUint32(0, 0x7f454c46);
  elf[4] = 2;
  v.setBigUint64(0x20, 64n, true);
  v.setUint16(0x36, 56, true);
  v.setUint16(0x38, 2, true);
  for (const [i, vaddr, memsz] of [[0, 0x200000, 0x1000], [1, 0x300000, 0x2000]]) {
    v.setUint32(64 + i! * 56, 1, true);
    v.setBigUint64(64 + i! * 56 + 16, BigInt(vaddr!), true);
    v.setBigUint64(64 + i! * 56 + 40, BigInt(memsz!), true);
  }
  assert.deepEqual(imageRange(elf), [0x200000, 0x302000]);
  assert.equal(imageRange(new Uint8Array(10)), undefined);
});
