/** One frame for the NUMA scenarios: a QEMU machine with the declared topology. */
import { probesOnTheirNodes, topologyMatches } from "./numa.ts";
import { defineScenario, type Numa, type Scenario } from "./scenario.ts";

export function defineNumaScenario(s: {
  name: string;
  description: string;
  smp: number;
  numa: Numa;
  /** Bochs models to run it on too, with the topology faked (`numa=fake:N`). */
  bochs?: string[];
}): Scenario {
  const memoryMiB = s.numa.nodes.reduce((sum, n) => sum + n.memoryMiB, 0);
  return defineScenario({
    name: s.name,
    description: s.description,
    groups: ["numa"],
    cmdline: "numa.probe",
    machine: { smp: s.smp, memoryMiB, numa: s.numa },
    targets: [
      { backend: "qemu", boot: "kernel", cpus: ["EPYC"] },
      ...(s.bochs ? [{ backend: "bochs" as const, cpus: s.bochs }] : []),
    ],
    timeoutS: 60,
    expect: [topologyMatches(), probesOnTheirNodes(), { ev: "exit", fields: { status: "pass" } }],
    absent: ["error"],
  });
}
