import { svThreadsProblems } from "../harness/linux.ts";
import { defineLinuxScenario } from "../harness/linux_scenario.ts";
import type { RunCheck, RunInfo } from "../harness/scenario.ts";

// A program of the project's own runs inside Linux: `sv-threads`, C built
// static on the host (payloads/linux/sv-threads.c), one thread pinned to
// each of the 4 CPUs of a 2-node machine, each first-touching and updating
// its own 8 MiB, under first-touch placement with the locality meter on. The
// guest's console must show every thread on its own CPU with the sum its
// passes give; the meter must have counted the run, and the passes apart in
// the window each thread opened on its CPU (a run whose meter counted
// nothing fails).
const MIB = 8, PASSES = 4, CPUS = 4;
const WORDS = (MIB << 20) / 8;

const scenario = defineLinuxScenario({
  name: "linux-program",
  description: "a C program of the project's own runs pinned on every CPU inside Linux",
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
  programs: ["linux/sv-threads.c"],
  run: `sv-threads private ${MIB} ${PASSES}`,
});

/** Each CPU's window (the threads' passes) counted at least one access per word a pass. */
const windowCounted: RunCheck = (_events, run) => {
  const cpus = run.meter?.window?.cpus ?? [];
  const short = Array.from({ length: CPUS }, (_, i) => i).filter((i) => {
    const counted = cpus.find((c) => c.cpu === i)?.accesses.reduce((a, b) => a + b, 0) ?? 0;
    return counted < WORDS * PASSES;
  });
  return short.length ? [`the meter's window counted too little on CPUs ${short.join(", ")}`] : [];
};

export default {
  ...scenario,
  checks: [...scenario.checks ?? [], windowCounted],
  guestOutput: (text: string, run: RunInfo) => [
    ...scenario.guestOutput?.(text, run) ?? [],
    ...svThreadsProblems(text, CPUS, WORDS, PASSES),
  ],
};
