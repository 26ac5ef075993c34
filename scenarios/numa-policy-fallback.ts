import { everyVcpu, guest, guestEnd } from "../harness/guests.ts";
import { placementMap } from "../harness/numa.ts";
import { numa, policy } from "../harness/numa_scenario.ts";
import { defineScenario } from "../harness/scenario.ts";
import { DATA, workloadPayload } from "../harness/workloads.ts";

// preferred:1 where node 1 (32 MiB, no CPU) cannot hold the guest's 48 MiB:
// once it is full, pages fall back to node 0 by distance, the placement
// event counts them, and every page the guest touched is backed somewhere.
// One vCPU: two vCPUs faulting this much at once under QEMU's multi-threaded
// TCG sometimes wreck vCPU 0 (a known, open problem; docs/numa.md).
const size = { sizeMiB: 48, passes: 1 };
export default defineScenario(
  {
    name: "numa-policy-fallback",
    description: "preferred:1 overflows node 1: pages fall back to node 0, and say so",
  },
  numa({ nodes: [{ cpus: [0], memoryMiB: 128 }, { cpus: [], memoryMiB: 32 }] }, 1),
  guest({
    payload: workloadPayload("private", size),
    cmdline: "guest=long guest.memory=52",
    trace: "summary",
  }),
  policy({ policy: "preferred:1" }),
  guestEnd({ counts: { hlt: 1 } }),
  {
    checks: [
      everyVcpu("guest-end", { how: "hlt", failed: false }),
      (events) => {
        const p = events.find((e) => e.ev === "placement");
        const nodes = (p?.nodes ?? []) as { id: number; pages: number }[];
        const on = (id: number) => nodes.find((n) => n.id === id)?.pages ?? 0;
        const problems: string[] = [];
        if (!(Number(p?.fallbacks) > 0)) problems.push("no fallback counted");
        if (on(1) < 4096) problems.push(`only ${on(1)} pages on node 1: it was not filled first`);
        if (Number(p?.fallbacks) !== on(0)) {
          problems.push(`${p?.fallbacks} fallbacks, but ${on(0)} pages on node 0`);
        }
        const map = placementMap(events) ?? [];
        const first = DATA / 4096, pages = (size.sizeMiB << 20) / 4096;
        const holes = Array.from({ length: pages }, (_, i) => map[first + i]).filter((n) =>
          n == null
        );
        if (holes.length) problems.push(`${holes.length} data pages not backed`);
        return problems;
      },
    ],
  },
);
