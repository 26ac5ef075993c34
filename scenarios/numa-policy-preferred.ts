import { placedAsPolicySays } from "../harness/numa.ts";
import { numa, policy, regionsGuest, TWO_NODES } from "../harness/numa_scenario.ts";
import { defineScenario } from "../harness/scenario.ts";

// preferred:1: every page on node 1 while it has memory (it has plenty).
export default defineScenario(
  {
    name: "numa-policy-preferred",
    description: "preferred:1 backs the guest on node 1 while node 1 has memory",
  },
  numa(TWO_NODES, 2, { bochs: ["tigerlake"] }),
  ...regionsGuest,
  policy({ policy: "preferred:1" }),
  { checks: [placedAsPolicySays(() => 1)] },
);
