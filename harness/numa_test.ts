import assert from "node:assert/strict";
import type { SvEvent } from "./events.ts";
import { probesOnTheirNodes, topologyDifferences } from "./numa.ts";
import type { RunInfo } from "./scenario.ts";
import { runInfo } from "./testing.ts";

const MiB = 1 << 20;

const run: RunInfo = runInfo({
  features: new Set(),
  smp: 3,
  numa: {
    nodes: [{ cpus: [0, 1], memoryMiB: 128 }, { cpus: [2], memoryMiB: 0 }, {
      cpus: [],
      memoryMiB: 128,
    }],
    distances: [[10, 16, 22], [16, 10, 28], [22, 28, 10]],
  },
});

function topology(over: Partial<Record<string, unknown>> = {}): SvEvent {
  return {
    ev: "topology",
    source: "srat",
    nodes: [
      {
        id: 0,
        cpus: [1, 0],
        memory_bytes: 128 * MiB - 384 * 1024,
        ranges: [{ base: "0x0", len: "0x8000000" }],
      },
      { id: 1, cpus: [2], memory_bytes: 0, ranges: [] },
      {
        id: 2,
        cpus: [],
        memory_bytes: 128 * MiB,
        ranges: [{ base: "0x8000000", len: "0x8000000" }],
      },
    ],
    distances: [[10, 16, 22], [16, 10, 28], [22, 28, 10]],
    ...over,
  };
}

Deno.test("a topology equal to the declared one, within a 2 MiB frame, has no differences", () => {
  assert.deepEqual(topologyDifferences(topology(), run), []);
});

Deno.test("each difference is named: node count, CPUs, memory, distances", () => {
  const nodes = topology().nodes as Record<string, unknown>[];
  assert.deepEqual(topologyDifferences(topology({ nodes: nodes.slice(0, 2) }), run), [
    "2 nodes, declared 3",
  ]);
  const moved = [{ ...nodes[0], cpus: [0] }, { ...nodes[1], cpus: [1, 2] }, nodes[2]];
  const small = [nodes[0], nodes[1], { ...nodes[2], memory_bytes: 125 * MiB }];
  assert.deepEqual(topologyDifferences(topology({ nodes: moved }), run), [
    "node 0: CPUs [0], declared [0,1]",
    "node 1: CPUs [1,2], declared [2]",
  ]);
  assert.deepEqual(topologyDifferences(topology({ nodes: small }), run), [
    "node 2: 125.0 MiB, declared 128 MiB",
  ]);
  assert.match(
    topologyDifferences(
      topology({ distances: [[10, 16, 22], [16, 10, 28], [22, 20, 10]] }),
      run,
    )[0]!,
    /^distances \[\[10,16,22\],\[16,10,28\],\[22,20,10\]\], declared/,
  );
});

Deno.test("without NUMA, one node holds every CPU and all memory", () => {
  const flat = { ...run, numa: undefined, smp: 2 };
  const one = topology({
    nodes: [{ id: 0, cpus: [0, 1], memory_bytes: 256 * MiB, ranges: [] }],
    distances: [[10]],
  });
  assert.deepEqual(topologyDifferences(one, flat), []);
});

Deno.test("probes must come from their node, or the nearest node with memory", () => {
  const check = probesOnTheirNodes().check!;
  const probe = (frame: string, node: number) => ({ frame, node });
  const memoryEvent = (nodes: unknown[]): SvEvent => ({ ev: "node-memory", home: 0, nodes });
  const good = memoryEvent([
    { id: 0, small: probe("0x100000", 0), large: probe("0x400000", 0) },
    { id: 1, small: probe("0x200000", 0), large: probe("0x600000", 0) }, // 16 beats 28
    { id: 2, small: probe("0x8000000", 2), large: probe("0x8200000", 2) },
  ]);
  assert.deepEqual(check(good, run, [topology()]), []);
  const bad = memoryEvent([
    { id: 0, small: probe("0x8000000", 0), large: probe("0x400000", 0) }, // frame outside node 0
    { id: 1, small: probe("0x8001000", 2), large: probe("0x600000", 0) }, // not the nearest
    { id: 2, large: probe("0x8200000", 2) },
  ]);
  assert.deepEqual(check(bad, run, [topology()]), [
    "node 0: 4 KiB frame 0x8000000 from node 0, expected node 0's memory",
    "node 1: 4 KiB frame 0x8001000 from node 2, expected node 0's memory",
    "node 2: no 4 KiB probe",
  ]);
  assert.deepEqual(check(good, run, []), ["no topology event to check against"]);
});

Deno.test("declared HMAT entries must be in the topology event, in its units", () => {
  const withHmat: RunInfo = {
    ...run,
    numa: {
      ...run.numa!,
      hmat: [
        { initiator: 0, target: 2, kind: "access-latency", value: 10 },
        { initiator: 0, target: 2, kind: "access-bandwidth", value: 100 },
      ],
    },
  };
  const e = topology({
    hmat: [
      { kind: "access-latency", initiator: 0, target: 2, value: 10000 },
      { kind: "access-bandwidth", initiator: 0, target: 2, value: 50 },
    ],
  });
  assert.deepEqual(topologyDifferences(e, withHmat), [
    "HMAT access-bandwidth 0->2: 50, declared 100",
  ]);
  assert.deepEqual(topologyDifferences(topology(), withHmat).length, 2, "both absent");
});
