import { cpuNodes, placedAsPolicySays } from "../harness/numa.ts";
import { numa, policy, regionOwner, regionsGuest, TWO_NODES } from "../harness/numa_scenario.ts";
import { defineScenario } from "../harness/scenario.ts";

// first-touch: each vCPU's region lies on its own CPU's node; what the
// loader wrote lies on the boot CPU's.
export default defineScenario(
  {
    name: "numa-policy-first-touch",
    description: "first-touch backs each vCPU's pages on its CPU's node",
  },
  numa(TWO_NODES, 2, { bochs: ["tigerlake"] }),
  ...regionsGuest,
  policy({ policy: "first-touch" }),
  {
    checks: [placedAsPolicySays((page, events) => cpuNodes(events).get(regionOwner(page) ?? 0))],
  },
);
