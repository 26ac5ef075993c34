import { defineNumaScenario } from "../harness/numa_scenario.ts";

/** Local accesses: 5 ns and 200 MB/s; remote: 10 ns and 100 MB/s. */
const hmat = [0, 1].flatMap((initiator) =>
  [0, 1].flatMap((target) => [
    { initiator, target, kind: "access-latency" as const, value: initiator === target ? 5 : 10 },
    {
      initiator,
      target,
      kind: "access-bandwidth" as const,
      value: initiator === target ? 200 : 100,
    },
  ])
);

export default defineNumaScenario({
  name: "numa-2node",
  description: "two nodes of two CPUs and 128 MiB each, distance 20, with an HMAT",
  smp: 4,
  bochs: ["tigerlake"], // no SRAT there: numa=fake:2, checked for what it keeps
  numa: {
    nodes: [{ cpus: [0, 1], memoryMiB: 128 }, { cpus: [2, 3], memoryMiB: 128 }],
    distances: [[10, 20], [20, 10]],
    hmat,
  },
});
