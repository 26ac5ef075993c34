import { placedAsPolicySays } from "../harness/numa.ts";
import { numa, policy, regionsGuest, TWO_NODES } from "../harness/numa_scenario.ts";
import { defineScenario } from "../harness/scenario.ts";

// interleave: page n on node n mod 2, whichever vCPU touched it.
export default defineScenario(
  {
    name: "numa-policy-interleave",
    description: "interleave alternates the guest's pages between the two nodes",
  },
  numa(TWO_NODES, 2, { bochs: ["tigerlake"] }),
  ...regionsGuest,
  policy({ policy: "interleave" }),
  { checks: [placedAsPolicySays((page) => page % 2)] },
);
