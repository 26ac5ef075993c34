import {
  SV_THREADS,
  type SvThreads,
  svThreadsLine,
  svThreadsPerPass,
  svThreadsProblems,
} from "../harness/linux.ts";
import { defineLinuxScenario } from "../harness/linux_scenario.ts";
import type { RunCheck, RunInfo, Scenario } from "../harness/scenario.ts";
import { WORKLOADS } from "../harness/workloads.ts";

// Programs of the project's own run inside Linux: `sv-threads`, C built
// static on the host (payloads/linux/sv-threads.c), one thread pinned to
// each of the 4 CPUs of a 2-node machine, in each of the seven reference
// access patterns (`linux-program/<pattern>`), under first-touch placement
// with the locality meter on. The guest's console must show every thread
// on its own CPU with the sum its passes give; the meter must have counted
// the run, and the passes apart in the window each thread opened on its
// CPU: at least an access for each word a pass gives the thread (a run
// whose meter counted nothing fails).
const CPUS = 4;

const linuxProgram = (t: SvThreads): Scenario => {
  const scenario = defineLinuxScenario({
    name: "linux-program",
    description: `sv-threads ${t.pattern} runs pinned on every CPU inside Linux`,
    machine: {
      smp: CPUS,
      memoryMiB: 512,
      numa: {
        nodes: [{ cpus: [0, 1], memoryMiB: 256 }, { cpus: [2, 3], memoryMiB: 256 }],
      },
      meter: true,
    },
    targets: [{ backend: "qemu", cpus: ["EPYC"] }],
    guestMiB: 256,
    cmdline: "numa.policy=first-touch",
    programs: [SV_THREADS],
    run: svThreadsLine(t),
  });
  /** Each CPU's window (the threads' passes) counted at least an access per word a pass. */
  const windowCounted: RunCheck = (_events, run) => {
    const cpus = run.meter?.window?.cpus ?? [];
    const short = Array.from({ length: CPUS }, (_, i) => i).filter((i) => {
      const counted = cpus.find((c) => c.cpu === i)?.accesses.reduce((a, b) => a + b, 0) ?? 0;
      return counted < svThreadsPerPass(t, CPUS, i) * t.passes;
    });
    return short.length
      ? [`the meter's window counted too little on CPUs ${short.join(", ")}`]
      : [];
  };
  return {
    ...scenario,
    name: `${scenario.name}/${t.pattern}`,
    checks: [...scenario.checks ?? [], windowCounted],
    guestOutput: (text: string, run: RunInfo) => [
      ...scenario.guestOutput?.(text, run) ?? [],
      ...svThreadsProblems(text, CPUS, t),
    ],
  };
};

export default WORKLOADS.map((pattern) => linuxProgram({ pattern, mib: 4, passes: 4 }));
