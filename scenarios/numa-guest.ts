import { guest, guestEnd } from "../harness/guests.ts";
import { numa } from "../harness/numa_scenario.ts";
import { defineScenario, variants } from "../harness/scenario.ts";

// A guest on a two-node machine: the SRAT's on QEMU EPYC, numa=fake:2 on
// Bochs tigerlake; it checks its own memory (ASSERT_EQ), the topology is
// checked, and one variant per guest RAM size.
const twoNodes = { nodes: [{ cpus: [0], memoryMiB: 128 }, { cpus: [1], memoryMiB: 128 }] };
const base = defineScenario(
  { name: "numa-guest", description: "a guest on two nodes checks the memory it touched" },
  numa(twoNodes, 2, { bochs: ["tigerlake"] }),
  guest({ payload: "numa-touch.asm" }),
  guestEnd({ counts: { hlt: 1, hypercall: 0 } }),
);
export default variants(base, {
  "2mib": { cmdline: `${base.cmdline} guest.memory=2` },
  "64mib": { cmdline: `${base.cmdline} guest.memory=64` },
});
