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
  type EventExpectation,
  type Group,
  type HostSide,
  type Machine,
  type RunCheck,
  type RunInfo,
  type Scenario,
  type Target,
} from "./scenario.ts";
import type { Tool } from "./prereq.ts";

/**
 * Linux on QEMU runs on single-threaded TCG: under multi-threaded TCG a
 * #VMEXIT of its boot CPU sometimes saves the host's state as the guest's
 * (`svm-lost-state`; docs/numa.md, the open problem of multi-threaded TCG),
 * more often since PCI configuration exits. `deno task stress` keeps trying the concurrency scenarios
 * multi-threaded.
 */
const SINGLE_THREADED = { singleThreaded: true };

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
  /** Programs in the guest's /bin, Debian's, and the lines /init runs (`LinuxGuest`). */
  programs?: string[];
  debian?: string[];
  run?: string;
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
      ...(l.programs ? { programs: l.programs } : {}),
      ...(l.debian ? { debian: l.debian } : {}),
      ...(l.run ? { run: l.run } : {}),
    },
    cmdline: ["guest=linux", `guest.memory=${l.guestMiB}`, l.cmdline].filter((c) => c).join(" "),
    machine: { ...SINGLE_THREADED, ...l.machine },
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

/** One way a root process in the Linux guest tries to take the machine. */
export interface LinuxAttack {
  /** The variant's name: `linux-attack/<name>`. */
  name: string;
  description: string;
  /** Shell lines /init runs as root (`sv-attack`, busybox's `devmem`...). */
  run: string;
  /** The hypervisor's events that show the attack refused, in order. */
  refused: EventExpectation[];
  /** How the attacking vCPU ends: the guest's own power-off when the attack
   * was refused and the guest went on, or the end the attack itself asked. */
  ends?: "power-off" | "reset" | "ept-violation";
  /** QEMU's arguments added to the machine's (a device: `-device amd-iommu`). */
  qemuArgs?: string[];
  /** The hypervisor's events at boot, before the guest runs, in order. */
  boot?: EventExpectation[];
  /**
   * What the guest must print (a line's pattern): that the attack ran as
   * far as it could, e.g. that a device's DMA did land where the guest
   * sees it. Never evidence of what the hypervisor did.
   */
  shows?: RegExp;
}

/** The program the attacks run (payloads/linux/sv-attack.asm). */
const ATTACK_PROGRAM = "linux/sv-attack.asm";

/**
 * An attack on the platform from inside Linux, on QEMU EPYC (q35): it must
 * be refused or end the guest, the hypervisor's own `exit` must follow with
 * its image intact (the verdict checks it), and nothing the guest wrote may
 * reach the hypervisor's channel (a malformed line fails the run).
 */
export function defineLinuxAttack(a: LinuxAttack): Scenario {
  const ends = a.ends ?? "power-off";
  return defineScenario({
    name: `linux-attack/${a.name}`,
    description: a.description,
    groups: ["linux", "hostile"],
    // devtmpfs: /dev/mem, for busybox's devmem.
    // `iomem=relaxed`: /dev/mem reaches the devices the kernel drives too
    // (the guest's kernel is the attacker's as much as its programs).
    linux: {
      cmdline: "iomem=relaxed",
      programs: [ATTACK_PROGRAM],
      run: `mount -t devtmpfs devtmpfs /dev\necho "SV-ATTACK ${a.name}"\n${a.run}`,
    },
    cmdline: "guest=linux guest.memory=256",
    machine: {
      ...SINGLE_THREADED,
      smp: 2,
      memoryMiB: 512,
      ...(a.qemuArgs ? { emulatorArgs: { qemu: a.qemuArgs } } : {}),
    },
    targets: [{ backend: "qemu", cpus: ["EPYC"] }],
    timeoutS: 180,
    expect: (run) => [
      ...a.boot ?? [],
      ...lifecycle(run).start,
      ...a.refused,
      { ev: "guest-end", fields: { how: ends, failed: false } },
      { ev: "exit", fields: { status: "pass", image: "intact" } },
    ],
    absent: ["error", "entry-failure"],
    guestOutput: (text) => {
      const m = linuxMarkers(text);
      if (!m.has("init")) return ["the guest never reached its /init (no `init` marker)"];
      const problems = text.includes("SV-ATTACK ")
        ? []
        : ["the attack never ran (no SV-ATTACK line)"];
      if (ends === "power-off" && !m.has("done")) {
        problems.push("the guest did not go on after the attack (no `done` marker)");
      }
      if (a.shows && !a.shows.test(text)) problems.push(`the guest never printed ${a.shows}`);
      return problems;
    },
  });
}

/** A Linux guest that uses devices of its own, which master the bus. */
export interface LinuxDevices {
  name: string;
  description: string;
  /** The drivers /init loads (with what they need). */
  modules: string[];
  /** Shell lines /init runs as root, devtmpfs on /dev. */
  run: string;
  /** Sets up what the devices reach on the host and gives QEMU's arguments. */
  host: (runDir: string) => Promise<HostSide>;
  /** What the guest's markers must say, as problems. */
  markers: (m: Map<string, string>) => string[];
  needs?: Tool[];
  groups?: Group[];
}

/**
 * Devices on QEMU EPYC (q35) behind the AMD IOMMU, which the hypervisor
 * gives the guest's own nested table (`dma`: remapped, its RAM pinned).
 * Virtio devices as a guest under a hypervisor with an IOMMU has them:
 * modern only, with VIRTIO_F_ACCESS_PLATFORM (`iommu_platform`). `pci=nomsi`:
 * the hypervisor keeps MSIs off (docs/guests.md); the drivers take INTx.
 */
export function defineLinuxDevices(d: LinuxDevices): Scenario {
  return defineScenario({
    name: d.name,
    description: d.description,
    groups: d.groups ?? ["linux"],
    linux: {
      cmdline: "pci=nomsi",
      modules: d.modules,
      run: `mount -t devtmpfs devtmpfs /dev\n${d.run}`,
    },
    cmdline: "guest=linux guest.memory=256",
    machine: {
      ...SINGLE_THREADED,
      smp: 2,
      memoryMiB: 512,
      emulatorArgs: { qemu: ["-device", "amd-iommu"] },
    },
    targets: [{ backend: "qemu", cpus: ["EPYC"] }],
    timeoutS: 180,
    host: d.host,
    ...(d.needs ? { needs: d.needs } : {}),
    // `dma` comes before the first VMRUN: the guest runs with its devices.
    expect: [
      { ev: "iommu", fields: { vendor: "amd", mode: "blocking" } },
      { ev: "dma", fields: { mode: "remapped", ioapics_remapped: 1 } },
      { ev: "vmrun" },
      { ev: "guest-end", fields: { how: "power-off", failed: false } },
      { ev: "exit", fields: { status: "pass", image: "intact" } },
    ],
    absent: ["error", "entry-failure"],
    guestOutput: (text) => {
      const m = linuxMarkers(text);
      if (!m.has("done")) return ["the guest's /init did not finish (no `done` marker)"];
      const unloaded = m.get("insmod-failed");
      return [...unloaded ? [`a module did not load: ${unloaded}`] : [], ...d.markers(m)];
    },
  });
}
