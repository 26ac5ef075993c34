/**
 * Scenarios that boot Linux as the guest (`guest=linux`, harness/linux.ts):
 * what the guest says of itself on its console (its `/init` markers: nodes,
 * distances, CPUs online, MemTotal) and what the hypervisor reports on its
 * own channel (every vCPU ends when the guest powers off; the `placement`
 * summary has the guest's pages on every node it should).
 */
import type { SvEvent } from "./events.ts";
import { lifecycle } from "./guests.ts";
import { linuxMarkers } from "./linux.ts";
import {
  defineScenario,
  type Group,
  type Machine,
  type RunCheck,
  type RunInfo,
  type Scenario,
  type Target,
} from "./scenario.ts";

/** What Linux keeps of its RAM for itself, at most (kernel image, memmap, reserves). */
const KERNEL_RESERVE_MIB = 96;

export interface LinuxScenario {
  name: string;
  description: string;
  machine: Machine;
  targets: Target[];
  /** Guest RAM (`guest.memory`). */
  guestMiB: number;
  /** Added to the hypervisor's command line (`numa.guest=mirror`, a policy...). */
  cmdline?: string;
  /** Added to the guest kernel's command line. */
  guestCmdline?: string;
  /** How the kernel is entered (default `vmlinux`, by PVH). */
  image?: "vmlinux" | "bzImage";
  /** The nodes the guest must report: 1 (UMA) unless given. */
  guestNodes?: (run: RunInfo) => number;
  /** The distances the guest must report, node by node, when given. */
  guestDistances?: (run: RunInfo) => number[][];
  /** Whether the placement summary must show pages on every node (default true). */
  everyNode?: boolean;
  groups?: Group[];
  timeoutS?: number;
}

/** The vCPUs of a run: one per CPU. */
function cpusOf(run: RunInfo): number {
  return run.smp;
}

/** What the guest's markers must say, as problems. */
export function markerProblems(
  text: string,
  want: { nodes: number; cpus: number; guestMiB: number; distances?: number[][] },
): string[] {
  const m = linuxMarkers(text);
  if (!m.has("init")) return ["the guest never reached its /init (no `init` marker)"];
  const problems: string[] = [];
  const eq = (key: string, value: string) => {
    if (m.get(key) !== value) {
      problems.push(`${key} is ${JSON.stringify(m.get(key))}, expected ${JSON.stringify(value)}`);
    }
  };
  eq("nodes", String(want.nodes));
  eq("nproc", String(want.cpus));
  eq("online", want.cpus === 1 ? "0" : `0-${want.cpus - 1}`);
  const kib = Number(m.get("memtotal-kib"));
  const [low, high] = [(want.guestMiB - KERNEL_RESERVE_MIB) * 1024, want.guestMiB * 1024];
  if (!(kib >= low && kib <= high)) {
    problems.push(`MemTotal ${m.get("memtotal-kib")} KiB is outside ${low}..${high} KiB`);
  }
  want.distances?.forEach((row, i) => eq(`distance node${i}`, row.join(" ")));
  if (!m.has("done")) problems.push("the guest's /init did not finish (no `done` marker)");
  return problems;
}

/** The hypervisor's placement summary has pages on every node of the machine. */
function pagesOnEveryNode(events: SvEvent[], run: RunInfo): string[] {
  const placement = events.find((e) => e.ev === "placement");
  if (!placement) return ["no placement summary"];
  const nodes = placement.nodes as { id: number; pages: number; large_pages: number }[];
  const want = run.numa?.nodes.filter((n) => n.memoryMiB > 0).length ?? run.fakeNodes ?? 1;
  const used = nodes.filter((n) => n.pages + n.large_pages > 0).length;
  return used >= want ? [] : [`guest pages on ${used} of ${want} nodes: ${JSON.stringify(nodes)}`];
}

/** Every vCPU ends: vCPU 0 by the guest's power-off, the others stopped by it. */
const everyVcpuEnds: RunCheck = (events, run) => {
  const ends = events.filter((e) => e.ev === "guest-end");
  const problems: string[] = [];
  if (ends.length !== cpusOf(run)) {
    problems.push(`${ends.length} guest-end events for ${cpusOf(run)} vCPUs`);
  }
  if (!ends.some((e) => e.how === "power-off")) problems.push("no vCPU ended by power-off");
  if (ends.some((e) => e.failed)) problems.push("a vCPU failed");
  return problems;
};

export function defineLinuxScenario(l: LinuxScenario): Scenario {
  const nodes = l.guestNodes ?? (() => 1);
  return defineScenario({
    name: l.name,
    description: l.description,
    groups: l.groups ?? ["linux"],
    linux: {
      ...(l.guestCmdline ? { cmdline: l.guestCmdline } : {}),
      ...(l.image ? { image: l.image } : {}),
    },
    cmdline: ["guest=linux", `guest.memory=${l.guestMiB}`, l.cmdline].filter((c) => c).join(" "),
    machine: l.machine,
    targets: l.targets,
    timeoutS: l.timeoutS ?? 180,
    expect: (run) => [...lifecycle(run).start, { ev: "placement" }],
    checks: [everyVcpuEnds, ...(l.everyNode ?? true ? [pagesOnEveryNode] : [])],
    absent: ["error", "entry-failure"],
    guestOutput: (text, run) =>
      markerProblems(text, {
        nodes: nodes(run),
        cpus: cpusOf(run),
        guestMiB: l.guestMiB,
        distances: l.guestDistances?.(run),
      }),
  });
}
