/**
 * The NUMA part of a scenario: a machine with the declared topology, on QEMU
 * (its SRAT, SLIT and HMAT) and on Bochs models with the topology faked;
 * the topology and every node's probe frames checked.
 */
import { probesOnTheirNodes, topologyMatches } from "./numa.ts";
import { defineScenario, type Numa, type Scenario, type ScenarioPart } from "./scenario.ts";

export function numa(
  topology: Numa,
  smp: number,
  opts: { bochs?: string[] } = {},
): ScenarioPart {
  const memoryMiB = topology.nodes.reduce((sum, n) => sum + n.memoryMiB, 0);
  return {
    groups: ["numa"],
    cmdline: "numa.probe",
    machine: { smp, memoryMiB, numa: topology },
    targets: [
      { backend: "qemu", boot: "kernel", cpus: ["EPYC"] },
      ...(opts.bochs ? [{ backend: "bochs" as const, cpus: opts.bochs }] : []),
    ],
    timeoutS: 60,
    expect: [topologyMatches(), probesOnTheirNodes()],
    absent: ["error"],
  };
}

/** The kernel's own `exit` with status `pass`. */
export const passes: ScenarioPart = { expect: [{ ev: "exit", fields: { status: "pass" } }] };

/** A NUMA scenario from a topology alone: `numa()` and a passing run. */
export function defineNumaScenario(s: {
  name: string;
  description: string;
  smp: number;
  numa: Numa;
  /** Bochs models to run it on too, with the topology faked (`numa=fake:N`). */
  bochs?: string[];
}): Scenario {
  return defineScenario(
    { name: s.name, description: s.description },
    numa(s.numa, s.smp, { bochs: s.bochs }),
    passes,
  );
}
