import { placedAsPolicySays } from "../harness/numa.ts";
import { numa, policy, regionsGuest, TWO_NODES } from "../harness/numa_scenario.ts";
import { defineScenario } from "../harness/scenario.ts";

// bind:1: every page on node 1, whoever touches it (vCPU 0 is on node 0).
export default defineScenario(
  {
    name: "numa-policy-bind",
    description: "bind:1 never backs a page outside node 1",
  },
  numa(TWO_NODES, 2, { bochs: ["tigerlake"] }),
  ...regionsGuest,
  policy({ policy: "bind:1" }),
  { checks: [placedAsPolicySays(() => 1)] },
);
