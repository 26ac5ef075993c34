import { linuxMarkers } from "../harness/linux.ts";
import { defineLinuxScenario } from "../harness/linux_scenario.ts";
import type { RunInfo } from "../harness/scenario.ts";

// A program of the project's own runs inside Linux: `sv-threads`, C built
// static on the host (payloads/linux/sv-threads.c), one thread pinned to
// each of the 4 CPUs of a 2-node machine, each first-touching and updating
// its own 8 MiB, under first-touch placement with the locality meter on. The
// guest's console must show every thread on its own CPU with the sum its
// passes give; the meter must have counted (a run whose meter counted
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
  run: `sv-threads ${MIB} ${PASSES}`,
});

export default {
  ...scenario,
  guestOutput: (text: string, run: RunInfo) => {
    const problems = scenario.guestOutput?.(text, run) ?? [];
    const m = linuxMarkers(text);
    if (m.get("threads") !== String(CPUS)) {
      problems.push(`sv-threads ran ${m.get("threads") ?? "no"} threads, not ${CPUS}`);
    }
    for (let i = 0; i < CPUS; i++) {
      const want = `cpu ${i} sum ${WORDS * PASSES}`;
      if (m.get(`thread${i}`) !== want) {
        problems.push(`thread ${i}: "${m.get(`thread${i}`) ?? "nothing"}", expected "${want}"`);
      }
    }
    return problems;
  },
};
