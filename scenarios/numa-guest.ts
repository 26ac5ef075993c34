import { placedAsPolicySays, type Want } from "../harness/numa.ts";
import type { PolicyName } from "../harness/numa_scenario.ts";
import { numa, policy, regionsGuest, TWO_NODES } from "../harness/numa_scenario.ts";
import { defineScenario, variants } from "../harness/scenario.ts";

// One guest (each vCPU fills and checks its own region: its ASSERTs) under
// two policies, on QEMU EPYC (SRAT) and Bochs tigerlake (numa=fake:2); the
// placement map must say what the policy says, page by page.
const base = defineScenario(
  { name: "numa-guest", description: "a guest on two nodes under two placement policies" },
  numa(TWO_NODES, 2, { bochs: ["tigerlake"] }),
  ...regionsGuest,
);
const under = (p: PolicyName, want: (page: number) => Want) =>
  defineScenario(base, policy({ policy: p }), { checks: [placedAsPolicySays(want)] });
export default variants(base, {
  interleave: under("interleave", (page) => page % 2),
  "bind-1": under("bind:1", () => 1),
});
