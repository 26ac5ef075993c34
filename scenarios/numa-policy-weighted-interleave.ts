import { placedAsPolicySays } from "../harness/numa.ts";
import { numa, policy, regionsGuest, TWO_NODES } from "../harness/numa_scenario.ts";
import { defineScenario } from "../harness/scenario.ts";

// weighted-interleave: node 0 has twice node 1's bandwidth in the HMAT, so
// pages cycle 0, 0, 1 (on QEMU). Bochs has no HMAT: equal weights, 0, 1.
const bandwidth = [0, 1].map((node) => ({
  initiator: node,
  target: node,
  kind: "access-bandwidth" as const,
  value: node === 0 ? 200 : 100,
}));
export default defineScenario(
  {
    name: "numa-policy-weighted-interleave",
    description: "weighted interleave follows the nodes' HMAT bandwidths (2:1)",
  },
  numa({ ...TWO_NODES, hmat: bandwidth }, 2, { bochs: ["tigerlake"] }),
  ...regionsGuest,
  policy({ policy: "weighted-interleave" }),
  {
    checks: [
      placedAsPolicySays((page, _events, run) => run.fakeNodes ? page % 2 : [0, 0, 1][page % 3]),
    ],
  },
);
