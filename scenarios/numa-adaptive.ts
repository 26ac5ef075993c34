import { everyVcpu, guest, guestEnd } from "../harness/guests.ts";
import type { SvEvent } from "../harness/events.ts";
import { cpuNodes, placementMap } from "../harness/numa.ts";
import { numa, policy, TWO_NODES } from "../harness/numa_scenario.ts";
import { defineScenario, type RunCheck } from "../harness/scenario.ts";
import {
  DATA,
  model,
  type Workload,
  workloadPayload,
  type WorkloadSize,
} from "../harness/workloads.ts";

// Adaptive placement moves pages where sampling sees them used. Two
// workloads that first-touch places badly, on two nodes of one CPU each:
// `master-init` (vCPU 0 writes all the data, then each vCPU updates its own
// half: first-touch leaves it all on node 0) and `phase-change` (each vCPU
// updates its half, then the other's). At the end every data page must be
// on the node of the vCPU that used it last (the map), the hypervisor must
// count the moves, and on QEMU the meter must agree with the map over the
// run: more local than first-touch's placement would have been.

/** Whose data page `i` is last: its half's vCPU, or the other one after a phase change. */
const lastUser = (w: Workload, i: number) => {
  const owner = i < 256 ? 0 : 1;
  return w === "phase-change" ? 1 - owner : owner;
};

const check = (w: Workload, size: WorkloadSize): RunCheck => (events: SvEvent[], run) => {
  const problems: string[] = [];
  const placement = events.find((e) => e.ev === "placement");
  const stats = placement?.adaptive as { migrated: number; hints: number } | undefined;
  if (!stats || stats.migrated < 256) {
    problems.push(`adaptive moved ${stats?.migrated ?? "no"} pages; 256 at least must move`);
  }
  const map = placementMap(events), nodes = cpuNodes(events);
  if (!map) return [...problems, "no placement map"];
  const first = DATA / 4096;
  const wrong = Array.from({ length: 512 }, (_, i) => i)
    .filter((i) => map[first + i] !== nodes.get(lastUser(w, i)));
  if (wrong.length) {
    problems.push(`${wrong.length} data pages not on their last user's node (page ${wrong[0]})`);
  }
  if (run.meter) {
    // First-touch's placement: master-init all on node 0, phase-change each half on its owner's.
    const accesses = model(w, size, 2);
    const ft = accesses.reduce(
      (a, perVcpu, i) => {
        const home = w === "master-init" ? 0 : (i < 256 ? 0 : 1);
        return {
          local: a.local + perVcpu[home]!,
          total: a.total + perVcpu[0]! + perVcpu[1]!,
        };
      },
      { local: 0, total: 0 },
    );
    const firstTouch = ft.local / ft.total, got = run.meter.localFraction;
    if (got < firstTouch + 0.1) {
      problems.push(
        `meter ${(got * 100).toFixed(1)} % local; first-touch's placement gives ${
          (firstTouch * 100).toFixed(1)
        } %`,
      );
    }
  }
  return problems;
};

/** Sizes and sampling per emulator: Bochs counts 4 million instructions a second. */
const ON = {
  qemu: { size: { sizeMiB: 2, passes: 20000 }, sampling: "numa.sample=64 numa.period=2" },
  bochs: { size: { sizeMiB: 2, passes: 1000 }, sampling: "numa.sample=64 numa.period=20" },
};

const scenario = (w: Workload, on: keyof typeof ON) => {
  const { size, sampling } = ON[on];
  const s = defineScenario(
    {
      name: `numa-adaptive/${w}${on === "bochs" ? "-bochs" : ""}`,
      description: `adaptive placement moves the pages of ${w} to their users`,
    },
    numa(TWO_NODES, 2, { bochs: ["tigerlake"] }),
    guest({
      payload: workloadPayload(w, size),
      cmdline: `guest=long guest.memory=6 guest.watchdog=0 ${sampling}`,
      trace: "summary",
    }),
    policy({ policy: "adaptive" }),
    guestEnd({ counts: { hlt: 1 } }),
  );
  return {
    ...s,
    targets: s.targets.filter((t) => t.backend === on),
    checks: [
      ...s.checks ?? [],
      everyVcpu("guest-end", { how: "hlt", failed: false }),
      check(w, size),
    ],
  };
};

export default (["master-init", "phase-change"] as const).flatMap((w) => [
  scenario(w, "qemu"),
  scenario(w, "bochs"),
]);
