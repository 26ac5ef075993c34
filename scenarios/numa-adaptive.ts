import { everyVcpu, guest, guestEnd } from "../harness/guests.ts";
import { cpuNodes, placementMap } from "../harness/numa.ts";
import { numa, policy, TWO_NODES } from "../harness/numa_scenario.ts";
import { defineScenario, type RunCheck } from "../harness/scenario.ts";
import {
  DATA,
  model,
  recoveryPeriods,
  type Workload,
  workloadPayload,
  type WorkloadSize,
} from "../harness/workloads.ts";

// Adaptive placement moves pages where sampling sees them used. Two
// workloads that first-touch places badly, on two nodes of one CPU each:
// `master-init` (vCPU 0 writes all the data, then each vCPU updates its own
// half: first-touch leaves it all on node 0) and `phase-change` (each vCPU
// updates its half, then the other's). At the end every data page must be
// on the node of the vCPU that used it last (the map) and the hypervisor
// must count the moves; on QEMU the meter must find the run more local than
// first-touch's placement would have made it. After the phase change the
// 512 data pages must have moved within the bound the decisions give: a
// page moves at the 4th look at it after the change (the look whose rounds
// straddle the change, then 3: `numa::adaptive`'s tests), looks at it come
// a rotation over backed guest RAM apart, the first within a rotation: 4
// rotations (`ON` says what each emulator adds), after the look under way
// at the change, which may be a slowed one. `split`: master-init
// with the guest in 2 MiB pages, the data one of them (both vCPUs' halves
// in it): it must be split, and each half end on its user's node. Both
// CPUs keep accessed and dirty bits in the second-level table (nested
// paging; EPT with A/D), so these see the accesses by the bits of each
// node's table, at no fault; `faults`: master-init seen by hinting faults
// (`numa.track=faults`), each sighting a sampled fault.

const MEMORY_MIB = 6;
/**
 * Sizes, sampling and the phase change's bound in rotations, per emulator.
 * Both count rather than time, so that a run repeats on any host at any
 * load: Bochs' clock follows its instructions, and QEMU runs with `-icount`
 * (its TSC and timers count instructions; its one TCG thread switches vCPUs
 * at timer deadlines). Bochs interleaves its CPUs finely: the design's 4
 * rotations, one to spare (measured: 170 periods, 3 rotations). QEMU's
 * vCPUs run in longer turns, and a look in which the page's user did not run
 * does not count: 6 (measured: 244 periods, 5 rotations).
 */
const ON = {
  qemu: { size: { sizeMiB: 2, passes: 20000 }, window: 64, periodMs: 2, rotations: 6 },
  bochs: { size: { sizeMiB: 2, passes: 1000 }, window: 64, periodMs: 20, rotations: 5 },
};
/** QEMU's counted time: one nanosecond an instruction, no sleeping on the host's clock. */
const ICOUNT = ["-icount", "shift=0,sleep=off"];
/** Periods a window is sampled before its look (`vcpu::sampler::ROUNDS`). */
const ROUNDS = 4;
/**
 * Periods the look under way at the change may take: looks slow down 16
 * times while pages stay (`numa::adaptive::Pace`), back to full pace at the
 * first look that sees the change.
 */
const SLOWEST_LOOK = ROUNDS * 16;

/** Whose data page `i` is last: its half's vCPU, or the other one after a phase change. */
const lastUser = (w: Workload, i: number) => {
  const owner = i < 256 ? 0 : 1;
  return w === "phase-change" ? 1 - owner : owner;
};

/** The local fraction first-touch's placement gives `w`: master-init all on node 0. */
function firstTouchLocality(w: Workload, size: WorkloadSize): number {
  let local = 0, total = 0;
  model(w, size, 2).forEach((perVcpu, i) => {
    local += perVcpu[w === "master-init" ? 0 : (i < 256 ? 0 : 1)]!;
    total += perVcpu[0]! + perVcpu[1]!;
  });
  return local / total;
}

/** How a variant differs: the guest in 2 MiB pages (`split`), or sampled by faults. */
type Variant = "split" | "faults" | undefined;

const check = (w: Workload, on: keyof typeof ON, variant: Variant): RunCheck => (events, run) => {
  const { size, window, rotations } = ON[on];
  const problems: string[] = [];
  const placement = events.find((e) => e.ev === "placement");
  const stats = placement?.adaptive as
    | { track: string; migrated: number; split: number; hints: number }
    | undefined;
  if (!stats || stats.migrated < 256) {
    problems.push(`adaptive moved ${stats?.migrated ?? "no"} pages; 256 at least must move`);
  }
  if (variant === "split" && !(stats && stats.split >= 1)) {
    problems.push(`the data's 2 MiB page was not split (${stats?.split ?? "no"} splits)`);
  }
  // By bits, the accesses seen cost no exits: far fewer faults than
  // sightings; by faults, each sighting is one.
  const track = variant === "faults" ? "faults" : "bits";
  if (stats && stats.track !== track) problems.push(`sampled by ${stats.track}, not ${track}`);
  const faults = events.filter((e) => e.ev === "guest-end")
    .reduce((a, e) => a + ((e.counts as Record<string, number>)["ept-violation"] ?? 0), 0);
  if (stats && (track === "bits" ? faults * 4 >= stats.hints : faults < stats.hints)) {
    problems.push(`${faults} second-level faults for ${stats.hints} accesses seen by ${track}`);
  }
  const map = placementMap(events), nodes = cpuNodes(events);
  if (!map) return [...problems, "no placement map"];
  const first = DATA / 4096;
  const wrong = Array.from({ length: 512 }, (_, i) => i)
    .filter((i) => map[first + i] !== nodes.get(lastUser(w, i)));
  if (wrong.length) {
    problems.push(`${wrong.length} data pages not on their last user's node (page ${wrong[0]})`);
  }
  if (w === "phase-change") {
    // A rotation: the windows of `window` backed pages each sampled ROUNDS periods.
    const nodes = (placement?.nodes ?? []) as { pages: number; large_pages: number }[];
    const backed = nodes.reduce((a, n) => a + n.pages + 512 * n.large_pages, 0);
    const bound = rotations * Math.ceil(backed / window) * ROUNDS + SLOWEST_LOOK;
    const periods = recoveryPeriods(events, 512);
    if (periods === undefined || periods > bound) {
      problems.push(
        `the data moved ${periods ?? "?"} periods after the change (bound ${bound})`,
      );
    }
  }
  if (run.meter) {
    const firstTouch = firstTouchLocality(w, size), got = run.meter.localFraction;
    if (got < firstTouch + 0.1) {
      const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
      problems.push(`meter ${pct(got)} local; first-touch's placement gives ${pct(firstTouch)}`);
    }
  }
  return problems;
};

const scenario = (w: Workload, on: keyof typeof ON, variant?: Variant) => {
  const { size, window, periodMs } = ON[on];
  const s = defineScenario(
    {
      name: `numa-adaptive/${variant ?? w}${on === "bochs" ? "-bochs" : ""}`,
      description: {
        split: "adaptive placement splits a 2 MiB page two nodes use, and moves the parts",
        faults: `adaptive placement sees ${w}'s accesses by hinting faults, and moves its pages`,
        none: `adaptive placement moves the pages of ${w} to their users`,
      }[variant ?? "none"],
    },
    numa(TWO_NODES, 2, { bochs: ["tigerlake"] }),
    guest({
      payload: workloadPayload(w, size),
      cmdline: `guest=long guest.memory=${MEMORY_MIB} guest.watchdog=0 ` +
        `numa.sample=${window} numa.period=${periodMs}` +
        (variant === "faults" ? " numa.track=faults" : ""),
      trace: "summary",
    }),
    policy({ policy: "adaptive", page: variant === "split" ? "2m" : "4k" }),
    guestEnd({ counts: { hlt: 1 } }),
  );
  return {
    ...s,
    machine: { ...s.machine, emulatorArgs: { qemu: ICOUNT } },
    targets: s.targets.filter((t) => t.backend === on),
    // Counted QEMU (single-threaded) and Bochs, busy machines: room to spare
    // (the runs take 10-30 s here).
    timeoutS: 180,
    checks: [
      ...s.checks ?? [],
      everyVcpu("guest-end", { how: "hlt", failed: false }),
      check(w, on, variant),
    ],
  };
};

export default (["qemu", "bochs"] as const).flatMap((on) => [
  scenario("master-init", on),
  scenario("phase-change", on),
  scenario("master-init", on, "split"),
  scenario("master-init", on, "faults"),
]);
