import { numa, passes } from "../harness/numa_scenario.ts";
import { defineScenario } from "../harness/scenario.ts";

// 4 GiB on q35 puts 2 GiB below the PCI hole and 2 GiB from 4 GiB up: node 1
// lies entirely above 4 GiB. The direct map must reach it, and the frames
// probed on node 1 must come from there.
const nodes = { nodes: [{ cpus: [0], memoryMiB: 2048 }, { cpus: [1], memoryMiB: 2048 }] };
export default defineScenario(
  {
    name: "numa-high",
    description: "two nodes of 2 GiB, the second entirely above 4 GiB: the direct map reaches it",
  },
  numa(nodes, 2),
  passes,
  {
    checks: [(events) => {
      const node1 = (events.find((e) => e.ev === "node-memory")?.nodes as {
        id: number;
        small?: { frame: string };
        large?: { frame: string };
      }[] | undefined)?.find((n) => n.id === 1);
      const above = (f?: { frame: string }) => f !== undefined && BigInt(f.frame) >= 1n << 32n;
      return above(node1?.small) && above(node1?.large)
        ? []
        : [`node 1's probed frames are not above 4 GiB: ${JSON.stringify(node1)}`];
    }],
  },
);
