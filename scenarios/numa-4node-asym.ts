import { defineNumaScenario } from "../harness/numa_scenario.ts";
import { ASYMMETRIC_4_NODES } from "../harness/numa.ts";

export default defineNumaScenario({
  name: "numa-4node-asym",
  description: "four nodes with unequal and asymmetric distances (16, 22, 28 out, 18, 22, 28 back)",
  smp: 4,
  numa: ASYMMETRIC_4_NODES,
});
