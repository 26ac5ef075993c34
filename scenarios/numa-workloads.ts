import { everyVcpu, guest, guestEnd } from "../harness/guests.ts";
import { placementMap } from "../harness/numa.ts";
import { impliedByModel, numa, policy, TWO_NODES } from "../harness/numa_scenario.ts";
import { defineScenario, type RunCheck, variants } from "../harness/scenario.ts";
import { DATA, model, type Workload, workloadPayload, WORKLOADS } from "../harness/workloads.ts";

// The reference workloads (deno task bench numa), small, under first-touch:
// on QEMU EPYC the meter must measure the locality that the placement map
// and the workload's declared accesses imply; on Bochs (fake nodes) every
// data page they touch must be in the map. `random` draws its pages, so
// its model holds only on average: 5 % there, 1 % elsewhere.
const size = { sizeMiB: 2, passes: 1 };
const base = defineScenario(
  { name: "numa-workloads", description: "the reference workloads under first-touch" },
  numa(TWO_NODES, 2, { bochs: ["tigerlake", "ryzen"] }),
  guest({ payload: "numa-regions.asm", cmdline: "guest=long guest.memory=6", trace: "summary" }),
  policy({ policy: "first-touch" }),
  guestEnd({ counts: { hlt: 1 } }),
);
const check = (w: Workload): RunCheck => (events, run) => {
  const accesses = model(w, size, 2);
  const first = DATA / 4096;
  const map = placementMap(events);
  if (!map) return ["no placement map"];
  const untouched = accesses.findIndex((a, i) => a.some((n) => n > 0) && map[first + i] == null);
  if (untouched >= 0) return [`data page ${untouched} was accessed but is not backed`];
  if (!run.meter) return [];
  const want = impliedByModel(events, accesses, first)!;
  const got = run.meter.localFraction, tolerance = w === "random" ? 0.05 : 0.01;
  return Math.abs(got - want) <= tolerance
    ? []
    : [`meter ${(got * 100).toFixed(1)} % local, map and model ${(want * 100).toFixed(1)} %`];
};
export default variants(
  base,
  Object.fromEntries(WORKLOADS.map((w) => [w, {
    payload: workloadPayload(w, size),
    checks: [...base.checks ?? [], everyVcpu("guest-end", { how: "hlt" }), check(w)],
  }])),
);
