import { guest, guestEnd } from "../harness/guests.ts";
import { numa, policy } from "../harness/numa_scenario.ts";
import { defineScenario } from "../harness/scenario.ts";
import { workloadPayload } from "../harness/workloads.ts";

// bind:1 where node 1 (32 MiB, no CPU) cannot hold the 48 MiB the guest
// touches: bind never falls back, so the vCPU whose page cannot be backed
// ends (ept-violation, "out of host memory"), and the hypervisor reports it
// and exits: the guest fails, nothing else. (One vCPU: see numa-policy-fallback.)
const size = { sizeMiB: 48, passes: 1 };
export default defineScenario(
  {
    name: "numa-policy-bind-full",
    description: "bind:1 on a node too small: the guest fails cleanly, no page falls back",
  },
  numa({ nodes: [{ cpus: [0], memoryMiB: 128 }, { cpus: [], memoryMiB: 32 }] }, 1),
  guest({
    payload: workloadPayload("private", size),
    cmdline: "guest=long guest.memory=52",
    trace: "summary",
  }),
  policy({ policy: "bind:1" }),
  {
    expect: [{
      ev: "vmexit",
      fields: { reason: "ept-violation", action: "out of host memory", mapped: false },
    }],
    checks: [(events) => {
      const p = events.find((e) => e.ev === "placement");
      const nodes = (p?.nodes ?? []) as { id: number; pages: number }[];
      const on0 = nodes.find((n) => n.id === 0)?.pages ?? 0;
      return on0 === 0 && p?.fallbacks === 0
        ? []
        : [`${on0} pages on node 0, ${p?.fallbacks} fallbacks: bind:1 left its node`];
    }],
  },
  guestEnd({ how: "ept-violation", failed: true }),
);
