import { cpuNodes, placedAsPolicySays } from "../harness/numa.ts";
import { numa, policy, regionOwner, regionsGuest, TWO_NODES } from "../harness/numa_scenario.ts";
import { defineScenario } from "../harness/scenario.ts";

// first-touch with 2 MiB pages: each vCPU's 2 MiB region is one large page
// on its CPU's node, all 512 of its 4 KiB pages with it.
export default defineScenario(
  {
    name: "numa-policy-large",
    description: "first-touch with 2 MiB pages: a whole region on its toucher's node",
  },
  numa(TWO_NODES, 2, { bochs: ["tigerlake"] }),
  ...regionsGuest,
  policy({ policy: "first-touch", page: "2m" }),
  {
    checks: [
      placedAsPolicySays((page, events) =>
        cpuNodes(events).get(regionOwner(page - (page % 512)) ?? 0)
      ),
      (events) => {
        const p = events.find((e) => e.ev === "placement");
        const large = (p?.nodes as { large_pages: number }[] | undefined)
          ?.reduce((n, x) => n + x.large_pages, 0);
        // The loader's first 2 MiB and each vCPU's region; the last 2 MiB untouched.
        return large === 3 ? [] : [`${large} large pages, expected 3`];
      },
    ],
  },
);
