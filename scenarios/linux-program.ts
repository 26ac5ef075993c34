import { defineLinuxScenario } from "../harness/linux_scenario.ts";
import {
  DEBIAN_WORKLOADS,
  type LinuxWorkload,
  type SvThreads,
  svThreadsPerPass,
  svThreadsWorkload,
} from "../harness/linux_workloads.ts";
import type { RunCheck, RunInfo, Scenario } from "../harness/scenario.ts";
import { WORKLOADS } from "../harness/workloads.ts";

// Programs run inside Linux, one variant each (`linux-program/<name>`), on
// the 4 CPUs of a 2-node machine under first-touch placement with the
// locality meter on: the project's `sv-threads` (C built static on the
// host, payloads/linux/sv-threads.c) in each of the seven reference access
// patterns, a thread pinned to each CPU; and two multi-threaded programs
// from Debian packages with the libraries they need (pigz, GNU sort) on a
// fixed input, between the marks of `sv-window`. What each program
// reported must prove it did its work (sv-threads: every thread on its CPU
// with the sum its passes give; pigz: the input back from its output;
// sort: every line, in order); the meter must have counted the run, and the
// measured phase apart in its window: for sv-threads at least an access for
// each word a pass gives each thread, for the others an access on some CPU
// (a run whose meter counted nothing fails).
const CPUS = 4;

const windowAccesses = (run: RunInfo, cpu: number) =>
  run.meter?.window?.cpus.find((c) => c.cpu === cpu)?.accesses.reduce((a, b) => a + b, 0) ?? 0;

/** Each CPU's window counted at least an access per word a pass gives its thread. */
const everyPassCounted = (t: SvThreads): RunCheck => (_events, run) => {
  const short = Array.from({ length: CPUS }, (_, i) => i).filter((i) =>
    windowAccesses(run, i) < svThreadsPerPass(t, CPUS, i) * t.passes
  );
  return short.length ? [`the meter's window counted too little on CPUs ${short.join(", ")}`] : [];
};

/** The window counted something. */
const windowCounted: RunCheck = (_events, run) =>
  Array.from({ length: CPUS }, (_, i) => windowAccesses(run, i)).some((n) => n > 0)
    ? []
    : ["the meter's window counted nothing"];

const linuxProgram = (w: LinuxWorkload, check: RunCheck): Scenario => {
  const scenario = defineLinuxScenario({
    name: "linux-program",
    description: `${w.name} runs on every CPU inside Linux`,
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
    programs: w.programs,
    debian: w.debian,
    run: w.run,
  });
  return {
    ...scenario,
    name: `${scenario.name}/${w.name}`,
    checks: [...scenario.checks ?? [], check],
    guestOutput: (text: string, run: RunInfo) => [
      ...scenario.guestOutput?.(text, run) ?? [],
      ...w.problems(text, CPUS),
    ],
  };
};

export default [
  ...WORKLOADS.map((pattern) => {
    const t = { pattern, mib: 4, passes: 4 };
    return linuxProgram(svThreadsWorkload(t), everyPassCounted(t));
  }),
  ...DEBIAN_WORKLOADS.map((w) => linuxProgram(w, windowCounted)),
];
