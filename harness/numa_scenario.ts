/**
 * The NUMA part of a scenario: a machine with the declared topology, on QEMU
 * (its SRAT, SLIT and HMAT) and on Bochs models with the topology faked;
 * the topology and every node's probe frames checked.
 */
import { everyVcpu, guest, guestEnd } from "./guests.ts";
import type { SvEvent } from "./events.ts";
import { cpuNodes, placementMap, probesOnTheirNodes, topologyMatches } from "./numa.ts";
import {
  defineScenario,
  type Numa,
  type RunInfo,
  type Scenario,
  type ScenarioPart,
} from "./scenario.ts";

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

/** A placement policy as `numa.policy=` names it. */
export type PolicyName =
  | "first-touch"
  | "interleave"
  | "weighted-interleave"
  | `bind:${string}`
  | `preferred:${string}`
  | "adaptive";

/**
 * The policy part: where the guest's pages go (`numa.policy=`), with which
 * page size (`numa.page=`, default 4k), the map reported (`numa.dump`), and
 * the `placement` event checked to name the policy and account every page.
 */
export function policy(p: { policy: PolicyName; page?: "4k" | "2m" }): ScenarioPart {
  const name = p.policy.split(":")[0];
  return {
    groups: ["numa"],
    cmdline: `numa.policy=${p.policy} numa.page=${p.page ?? "4k"} numa.dump`,
    // Adaptive runs under multi-threaded TCG meet its open problem (docs/numa.md): single-threaded
    // here, multi-threaded in stress-memory and `deno task stress`.
    machine: { meter: true, ...(p.policy === "adaptive" ? { singleThreaded: true } : {}) },
    // Whole-run: `placement` comes once every vCPU has ended, among their ends.
    checks: [(events) => {
      const e = events.find((e) => e.ev === "placement");
      if (!e) return ["no placement event"];
      const page = p.page ?? "4k";
      if (e.policy !== name || e.page !== page) {
        return [`placement: policy ${e.policy} with ${e.page} pages, not ${name} with ${page}`];
      }
      const nodes = e.nodes as { pages: number; large_pages: number }[];
      return nodes.some((n) => n.pages + n.large_pages > 0) ? [] : ["no page was backed"];
    }],
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

/**
 * Two nodes of one CPU and 128 MiB each: the machine of the policy
 * scenarios (SRAT on QEMU EPYC, `numa=fake:2` on Bochs tigerlake).
 */
export const TWO_NODES: Numa = {
  nodes: [{ cpus: [0], memoryMiB: 128 }, { cpus: [1], memoryMiB: 128 }],
};

/**
 * The guest of the policy scenarios (`payloads/numa-regions.asm`): each vCPU
 * touches 64 pages of its own 2 MiB region, from 2 MiB + vCPU * 2 MiB, and
 * checks them; 8 MiB of guest RAM, exits summarised.
 */
export const regionsGuest: ScenarioPart[] = [
  guest({ payload: "numa-regions.asm", cmdline: "guest=long guest.memory=8", trace: "summary" }),
  guestEnd({ counts: { hlt: 1 } }),
  { checks: [everyVcpu("guest-end", { how: "hlt", failed: false }), meterAgreesWithMap] },
];

/** The vCPU whose region holds 4 KiB page `page` in `regionsGuest`, if any. */
export function regionOwner(page: number): number | undefined {
  const region = Math.floor(page / 512) - 1; // 2 MiB regions from 2 MiB
  return region >= 0 && page % 512 < 64 ? region : undefined;
}

/**
 * The local fraction the placement map implies for `regionsGuest`: each
 * vCPU accesses each page of its region alike (one write, one read), so it
 * is the share of region pages on their owner's CPU's node.
 */
export function impliedLocality(events: SvEvent[]): number | undefined {
  const map = placementMap(events);
  const nodes = cpuNodes(events);
  let local = 0, total = 0;
  map?.forEach((node, page) => {
    const owner = regionOwner(page);
    if (owner === undefined || node === null) return; // not a region page, or never touched
    total++;
    if (node === nodes.get(owner)) local++;
  });
  return total ? local / total : undefined;
}

/**
 * The meter and the map agree (on metered runs): the local fraction the
 * meter measured is the one the placement implies, within 1 %.
 */
export function meterAgreesWithMap(events: SvEvent[], run: RunInfo): string[] {
  if (!run.meter) return run.backend === "qemu" ? ["the meter measured nothing"] : [];
  const want = impliedLocality(events);
  if (want === undefined) return ["no region pages in the placement map"];
  const got = run.meter.localFraction;
  return Math.abs(got - want) <= 0.01 ? [] : [
    `the meter measured ${(got * 100).toFixed(1)} % local, the map implies ${
      (want * 100).toFixed(1)
    } %`,
  ];
}

/**
 * The local fraction the placement map implies for accesses declared per
 * 4 KiB data page and vCPU (`accesses[page][vcpu]`, pages from `first`):
 * each access is local when its page lies on its vCPU's CPU's node.
 */
export function impliedByModel(
  events: SvEvent[],
  accesses: number[][],
  first: number,
): number | undefined {
  const map = placementMap(events);
  const nodes = cpuNodes(events);
  if (!map) return undefined;
  let local = 0, total = 0;
  accesses.forEach((perVcpu, i) =>
    perVcpu.forEach((count, v) => {
      total += count;
      if (map[first + i] === nodes.get(v)) local += count;
    })
  );
  return total ? local / total : undefined;
}
