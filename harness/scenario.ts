/**
 * The scenario model: what a `scenarios/*.ts` file exports, how it is
 * validated, and how its targets expand into runs.
 */
import type { Tool } from "./prereq.ts";
import type { Meter } from "./meter.ts";
import { resolveCpu } from "./cpus.ts";
import type { SvEvent } from "./events.ts";

export type Backend = "qemu" | "bochs" | "kvm";
export type Firmware = "bios" | "uefi";
export type BootPath = "kernel" | "iso";
export type Vendor = "intel" | "amd";
export type Status = "pass" | "fail" | "crash" | "timeout" | "emulator-error" | "skip";

export const BACKENDS: readonly Backend[] = ["qemu", "bochs", "kvm"];
/**
 * What a scenario is about, for selecting runs (`matrix --group`, `list
 * --group`): `boot` (boot paths and reports), `numa` (topology and
 * placement), `smp` (every CPU), `guest` (a guest under VMX or SVM),
 * `hostile` (a guest attacking the hypervisor), `selftest` (the harness's
 * own verdicts), `vmx` and `svm` (one vendor's extension only), `linux`
 * and `slow` for what comes, `stress` (the concurrency scenarios `deno task
 * stress` repeats).
 */
export const GROUPS = [
  "boot",
  "numa",
  "smp",
  "guest",
  "hostile",
  "selftest",
  "vmx",
  "svm",
  "linux",
  "slow",
  "bench",
  "stress",
] as const;
export type Group = typeof GROUPS[number];
export const FIRMWARES: readonly Firmware[] = ["bios", "uefi"];
export const BOOT_PATHS: readonly BootPath[] = ["kernel", "iso"];
export const STATUSES: readonly Status[] = [
  "pass",
  "fail",
  "crash",
  "timeout",
  "emulator-error",
  "skip",
];

/**
 * An OS kernel as the guest (`guest=linux`): Debian's Linux with a busybox
 * initramfs (harness/linux.ts), two modules on the ISO, or one bundle for
 * QEMU's `-kernel`.
 */
export interface LinuxGuest {
  /** Added to the guest's own kernel command line. */
  cmdline?: string;
  /**
   * How the kernel is entered: `vmlinux` (the ELF, by PVH; default) or
   * `bzImage` (the x86 boot protocol; the kernel decompresses itself).
   */
  image?: "vmlinux" | "bzImage";
  /**
   * Programs of the scenario's own in the guest's /bin, each named as its
   * file without `.asm` or `.c`: NASM sources under `payloads/` that
   * assemble (`-f bin`) to a static ELF64 executable
   * (`payloads/linux/elf.inc`), or C sources built static with the host's
   * compiler (`build.buildProgram`).
   */
  programs?: string[];
  /**
   * Programs from Debian packages, each `PACKAGE:/PATH` (`pigz:/usr/bin/pigz`),
   * at their own paths with the shared libraries they need
   * (`linux.debianFiles`).
   */
  debian?: string[];
  /** Shell lines the guest's /init runs after its markers, as root. */
  run?: string;
  /**
   * Kernel modules (`virtio_pci`, `virtio_blk`...) from the kernel's
   * package, with those they need, loaded by /init before `run`.
   */
  modules?: string[];
}

/** A guest payload: a file under `payloads/`, or NASM source given inline. */
export type Payload = { file: string } | { asm: string };

export interface NumaNode {
  /** CPU indexes (0-based, below `smp`) in this node; empty for a CPU-less node. */
  cpus: number[];
  /** Memory of this node; 0 for a memory-less node. */
  memoryMiB: number;
}

/** An HMAT measurement from a node with CPUs to a node's memory. */
export interface HmatEntry {
  initiator: number;
  target: number;
  kind: "access-latency" | "access-bandwidth";
  /** Nanoseconds for a latency, MB/s for a bandwidth. */
  value: number;
}

export interface Numa {
  nodes: NumaNode[];
  /** distances[i][j], 10 on the diagonal; omitted: QEMU's defaults. */
  distances?: number[][];
  /** Makes QEMU build an HMAT (`-machine hmat=on`, `-numa hmat-lb`). */
  hmat?: HmatEntry[];
}

/** An extra ACPI table: QEMU writes its header and checksum around `body`. */
export interface AcpiTable {
  signature: string;
  body: number[];
}

export interface Machine {
  /** Restricts the scenario to one vendor's CPU models. */
  vendor?: Vendor;
  smp?: number;
  memoryMiB?: number;
  numa?: Numa;
  /** Tables added to the firmware's (QEMU only): malformed ones test the kernel's parsers. */
  acpiTables?: AcpiTable[];
  /**
   * Added to what the harness gives the emulator, for benchmarks and
   * experiments: `qemu`, arguments appended to QEMU's command line (QEMU and
   * KVM runs), e.g. `["-icount", "shift=0,sleep=off"]`; `bochs`, lines
   * appended to the generated bochsrc (a later line overrides an earlier one).
   */
  emulatorArgs?: { qemu?: string[]; bochs?: string[] };
  /**
   * Runs the locality meter (a QEMU TCG plugin, `harness/meter.ts`) on QEMU
   * runs: the run's `meter` has the guest's accesses by node.
   */
  meter?: boolean;
  /**
   * QEMU TCG runs every vCPU on one host thread (`-accel tcg,thread=single`)
   * instead of one each: for runs that multi-threaded TCG's SVM emulation
   * wrecks (docs/numa.md, "An open problem").
   */
  singleThreaded?: boolean;
  /**
   * Host CPUs the emulator may run on (`taskset -c`): all of them when
   * absent. `deno task stress` puts every vCPU thread on one host CPU to
   * change how they interleave.
   */
  hostCpus?: number[];
}

/** Where a scenario runs: a backend, its boot path and firmware, and CPU models. */
export interface Target {
  backend: Backend;
  /** Default: `kernel` on QEMU and KVM, `iso` on Bochs. */
  boot?: BootPath;
  /** Default: `bios`. */
  firmware?: Firmware;
  cpus: string[];
  /** Overrides the scenario's timeout for this target (OVMF is slower). */
  timeoutS?: number;
  /** Added to the scenario's kernel command line on this target's runs. */
  cmdline?: string;
}

/** One concrete run of a scenario. */
export interface RunPlan {
  scenario: Scenario;
  backend: Backend;
  cpu: string;
  boot: BootPath;
  firmware: Firmware;
  timeoutS: number;
  /**
   * The kernel command line of this run: the scenario's, the target's, and
   * on Bochs, which has no NUMA tables, `numa=fake:N` for a declared
   * topology of N nodes (`runCmdline`).
   */
  cmdline: string;
  /**
   * How much slower than idle the machine ran at the run's start
   * (`runner.busyFactor`: 1, 2, 4 or 8); the timeout is already that many
   * times longer. Absent: idle.
   */
  busy?: number;
}

/** What expectations see of the run that produced the events. */
export type RunInfo = Omit<RunPlan, "scenario" | "cmdline"> & {
  vendor: Vendor;
  features: ReadonlySet<string>;
  cmdline: string;
  memoryMiB: number;
  smp: number;
  numa?: Numa;
  /** The declared topology's nodes, made by `numa=fake:N` (Bochs): no SRAT, SLIT or HMAT. */
  fakeNodes?: number;
  /** Size in bytes of the assembled payload, when there is one. */
  payloadSize?: number;
  /** What the locality meter measured, on metered QEMU runs (`machine.meter`). */
  meter?: Meter;
};

/**
 * An event that must appear, after the previous expectation's match. Events
 * in between are allowed. `fields` are compared for deep equality (only the
 * keys given); `check` returns a description of each further problem.
 */
export interface EventExpectation {
  ev: string;
  fields?: Record<string, unknown> | ((run: RunInfo) => Record<string, unknown>);
  /** `events` is every event of the run, for checks that relate several. */
  check?: (event: SvEvent, run: RunInfo, events: SvEvent[]) => string[];
}

/** A check of the whole run's events (order-free), returning its problems. */
export type RunCheck = (events: SvEvent[], run: RunInfo) => string[];

export interface Scenario {
  name: string;
  description: string;
  /** At least one of `GROUPS`. */
  groups: Group[];
  payload?: Payload;
  /** An OS kernel as the guest, instead of a payload. */
  linux?: LinuxGuest;
  /** Kernel command line. */
  cmdline?: string;
  machine: Machine;
  targets: Target[];
  timeoutS: number;
  /** Expected events in order; a function when they depend on the run (vendor, boot path). */
  expect: EventExpectation[] | ((run: RunInfo) => EventExpectation[]);
  /** Events that must not appear at all. */
  absent?: string[];
  /** Checks of the whole run beside the ordered `expect` (e.g. per-vCPU streams). */
  checks?: RunCheck[];
  /**
   * Checks the guest's own output (COM1, `guest.log`): never evidence of what
   * the hypervisor did, but a scenario may check what the guest wrote there.
   */
  guestOutput?: (text: string, run: RunInfo) => string[];
  /** The exact sequence of VM exit reasons (`vmexit` events), when given. */
  exits?: string[];
  /**
   * The host's part of a QEMU run: called in the run's directory before
   * the emulator starts, it sets up what the guest reaches (a disk image, a
   * server on the host's loopback) and gives QEMU's arguments for it.
   */
  host?: (runDir: string) => Promise<HostSide>;
  /** Host tools the scenario needs beyond the emulator's (`host`'s). */
  needs?: Tool[];
  /**
   * The verdict this scenario is meant to produce (default `pass`): the
   * harness's own selftests expect `timeout` or `crash`. `scenario` still
   * exits with the real verdict; `matrix` counts a match as passed.
   */
  expectStatus?: Status;
  /** What the verdict's reason must say, with `expectStatus`. */
  expectReason?: RegExp;
}

/** What a scenario's `host` set up for a run. */
export interface HostSide {
  /** Added to QEMU's command line. */
  qemuArgs: string[];
  /**
   * After the run, with what the guest and hypervisor did already checked:
   * the problems the host sees (a disk image's contents, a second boot).
   */
  check?: (plan: RunPlan) => Promise<string[]>;
  /** Ends what was started (a server), whatever the run did. */
  stop?: () => Promise<void>;
}

/**
 * Several runs of one scenario in one file (kvm-unit-tests' `unittests.cfg`
 * rows): each variant overrides what it names (command line, machine,
 * targets, expectations...) and is called `<base name>/<suffix>`.
 */
export function variants(
  base: Scenario,
  each: Record<string, Partial<Omit<Scenario, "name">>>,
): Scenario[] {
  return Object.entries(each).map(([suffix, v]) => ({
    ...base,
    ...v,
    name: `${base.name}/${suffix}`,
  }));
}

/** A piece of a scenario: what it adds to the parts before it (`defineScenario`). */
export type ScenarioPart = Partial<Scenario>;

/** Expectations as a function of the run, whichever way a part gave them. */
function expectOf(p: ScenarioPart): (run: RunInfo) => EventExpectation[] {
  const e = p.expect ?? [];
  return typeof e === "function" ? e : () => e;
}

/**
 * Two parts as one: command lines joined, groups and absent events united,
 * machines merged, expectations and checks in order (the first part's first); for the
 * rest (name, payload, targets, timeout, exits...) the later part decides.
 */
export function mergeParts(a: ScenarioPart, b: ScenarioPart): ScenarioPart {
  const union = <T>(
    x?: T[],
    y?: T[],
  ) => (x || y ? [...new Set([...(x ?? []), ...(y ?? [])])] : undefined);
  const cmdline = [a.cmdline, b.cmdline].filter((c) => c).join(" ");
  const expect = a.expect || b.expect
    ? (run: RunInfo) => [...expectOf(a)(run), ...expectOf(b)(run)]
    : undefined;
  const defined = Object.fromEntries(Object.entries(b).filter(([, v]) => v !== undefined));
  const merged: ScenarioPart = {
    ...a,
    ...defined,
    cmdline: cmdline || undefined,
    groups: union(a.groups, b.groups),
    absent: union(a.absent, b.absent),
    checks: a.checks || b.checks ? [...(a.checks ?? []), ...(b.checks ?? [])] : undefined,
    machine: a.machine || b.machine ? { ...a.machine, ...b.machine } : undefined,
    expect,
  };
  for (const key of Object.keys(merged) as (keyof ScenarioPart)[]) {
    if (merged[key] === undefined) delete merged[key];
  }
  return merged;
}

/**
 * A scenario from its parts, merged left to right (`mergeParts`): a whole
 * scenario, or a base (name, description, timeout) with parts such as
 * `guest()`, `numa()`, `guestEnd()` (harness/parts.ts). The result is
 * validated when the file is loaded.
 */
export function defineScenario(...parts: [ScenarioPart, ...ScenarioPart[]]): Scenario {
  return parts.reduce(mergeParts) as Scenario;
}

export const DEFAULT_SMP = 1;
export const DEFAULT_MEMORY_MIB = 256;

export class ScenarioError extends Error {
  constructor(public readonly scenario: string, public readonly problems: string[]) {
    super(`scenario ${scenario} is invalid:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  }
}

/** GRUB and QEMU pass the command line through; keep it to plain words. */
const CMDLINE_RE = /^[A-Za-z0-9_.,:=+\/ -]*$/;
/** The kernel reads at most this many bytes of command line (`boot::CMDLINE_MAX`). */
export const CMDLINE_MAX = 1024;

export function defaultBoot(backend: Backend): BootPath {
  return backend === "bochs" ? "iso" : "kernel";
}

/** Why a backend, boot path and firmware cannot go together, if they cannot. */
export function comboProblem(
  backend: Backend,
  boot: BootPath,
  firmware: Firmware,
): string | undefined {
  if (backend === "bochs" && boot === "kernel") {
    return "Bochs has no direct kernel boot: use --boot iso";
  }
  if (backend === "bochs" && firmware === "uefi") return "Bochs runs no OVMF: use --firmware bios";
  if (boot === "kernel" && firmware === "uefi") {
    return "QEMU -kernel does not work with OVMF: use --boot iso with --firmware uefi";
  }
  return undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Checks a scenario module's export; returns it typed or throws
 * ScenarioError. A file's variants (an exported list) are named
 * `<file>/<suffix>`.
 */
export function validateScenario(value: unknown, fileName: string, variant = false): Scenario {
  const problems: string[] = [];
  const need = (ok: boolean, problem: string) => {
    if (!ok) problems.push(problem);
  };
  if (!isRecord(value)) throw new ScenarioError(fileName, ["the default export is not an object"]);
  const s = value as Partial<Scenario>;
  need(
    variant
      ? typeof s.name === "string" && s.name.startsWith(`${fileName}/`) &&
        /^[a-z0-9][a-z0-9.-]*$/.test(s.name.slice(fileName.length + 1))
      : s.name === fileName,
    variant
      ? `a variant's name must be "${fileName}/<suffix>" (lower case, digits, . and -), found ${
        JSON.stringify(s.name)
      }`
      : `name must be "${fileName}" (the file name), found ${JSON.stringify(s.name)}`,
  );
  need(typeof s.description === "string" && s.description.length > 0, "description is missing");
  need(
    Array.isArray(s.groups) && s.groups.length > 0 &&
      s.groups.every((g) => (GROUPS as readonly string[]).includes(g)),
    `groups must list at least one of ${GROUPS.join(", ")}`,
  );
  need(
    s.cmdline === undefined || (typeof s.cmdline === "string" && CMDLINE_RE.test(s.cmdline)),
    `cmdline must be plain words (${CMDLINE_RE.source})`,
  );
  need(
    (s.cmdline ?? "").length <= CMDLINE_MAX,
    `cmdline must be at most ${CMDLINE_MAX} bytes (the kernel refuses a longer one)`,
  );
  need(typeof s.timeoutS === "number" && s.timeoutS > 0, "timeoutS must be a positive number");
  if (s.payload !== undefined) {
    const p = s.payload as Record<string, unknown>;
    need(
      isRecord(p) && (typeof p.file === "string" || typeof p.asm === "string"),
      "payload must be { file } or { asm }",
    );
  }
  if (s.linux !== undefined) {
    need(
      isRecord(s.linux) &&
        (s.linux.cmdline === undefined ||
          (typeof s.linux.cmdline === "string" && CMDLINE_RE.test(s.linux.cmdline))) &&
        [undefined, "vmlinux", "bzImage"].includes(s.linux.image as string | undefined) &&
        (s.linux.programs === undefined ||
          (Array.isArray(s.linux.programs) &&
            s.linux.programs.every((p) =>
              typeof p === "string" && /^[\w/-]+\.(asm|c)$/.test(p)
            ))) &&
        (s.linux.debian === undefined ||
          (Array.isArray(s.linux.debian) &&
            s.linux.debian.every((d) =>
              typeof d === "string" && /^[a-z0-9][\w+.-]*:\//.test(d)
            ))) &&
        (s.linux.run === undefined || typeof s.linux.run === "string") &&
        (s.linux.modules === undefined ||
          (Array.isArray(s.linux.modules) &&
            s.linux.modules.every((m) => typeof m === "string" && /^[\w-]+$/.test(m)))),
      `linux must be { cmdline?: plain words (${CMDLINE_RE.source}), image?: "vmlinux" | "bzImage", ` +
        "programs?: NASM or C files under payloads/, debian?: PACKAGE:/PATH, run?: shell lines, " +
        "modules?: module names }",
    );
    need(s.payload === undefined, "a scenario has a payload or a linux guest, not both");
  }
  need(s.host === undefined || typeof s.host === "function", "host must be a function");
  const m = s.machine as Partial<Machine> | undefined;
  if (!isRecord(m)) {
    problems.push("machine is missing");
  } else {
    const smp = m.smp ?? DEFAULT_SMP;
    need(Number.isInteger(smp) && smp >= 1 && smp <= 64, "machine.smp must be an integer in 1..64");
    const mem = m.memoryMiB ?? DEFAULT_MEMORY_MIB;
    need(Number.isInteger(mem) && mem >= 32, "machine.memoryMiB must be an integer of at least 32");
    need(
      m.vendor === undefined || m.vendor === "intel" || m.vendor === "amd",
      "machine.vendor must be intel or amd",
    );
    if (m.numa) problems.push(...numaProblems(m.numa, smp, mem));
    const extra = m.emulatorArgs as Record<string, unknown> | undefined;
    need(
      extra === undefined ||
        (isRecord(extra) &&
          Object.entries(extra).every(([k, v]) =>
            ["qemu", "bochs"].includes(k) && Array.isArray(v) &&
            v.every((a) => typeof a === "string" && !a.includes("\n"))
          )),
      "machine.emulatorArgs must be { qemu?: string[], bochs?: string[] } (one line per string)",
    );
    for (const [i, t] of (m.acpiTables ?? []).entries()) {
      need(
        /^[A-Z0-9]{4}$/.test(t.signature),
        `machine.acpiTables[${i}].signature must be 4 characters`,
      );
      need(
        Array.isArray(t.body) && t.body.every((b) => Number.isInteger(b) && b >= 0 && b < 256),
        `machine.acpiTables[${i}].body must be bytes`,
      );
    }
  }
  if (!Array.isArray(s.targets) || s.targets.length === 0) {
    problems.push("targets must list at least one target");
  } else {
    s.targets.forEach((t, i) => {
      const at = `targets[${i}]`;
      if (!isRecord(t) || !BACKENDS.includes(t.backend)) {
        problems.push(`${at}.backend must be one of ${BACKENDS.join(", ")}`);
        return;
      }
      const boot = t.boot ?? defaultBoot(t.backend);
      const firmware = t.firmware ?? "bios";
      need(BOOT_PATHS.includes(boot), `${at}.boot must be one of ${BOOT_PATHS.join(", ")}`);
      need(FIRMWARES.includes(firmware), `${at}.firmware must be one of ${FIRMWARES.join(", ")}`);
      const combo = comboProblem(t.backend, boot, firmware);
      if (combo) problems.push(`${at}: ${combo}`);
      if (!Array.isArray(t.cpus) || t.cpus.length === 0) {
        problems.push(`${at}.cpus must list at least one CPU model`);
      } else {
        for (const cpu of t.cpus) {
          const r = resolveCpu(t.backend, cpu);
          if (typeof r === "string") problems.push(`${at}: ${r}`);
          else if (isRecord(m) && m.vendor && r.vendor !== m.vendor && t.backend !== "kvm") {
            problems.push(`${at}: CPU model ${cpu} is ${r.vendor}, the machine is ${m.vendor}`);
          }
        }
      }
    });
  }
  need(
    s.expectReason === undefined || s.expectReason instanceof RegExp,
    "expectReason must be a regular expression",
  );
  need(
    s.checks === undefined ||
      (Array.isArray(s.checks) && s.checks.every((c) => typeof c === "function")),
    "checks must be a list of functions",
  );
  need(
    s.guestOutput === undefined || typeof s.guestOutput === "function",
    "guestOutput must be a function",
  );
  need(
    s.exits === undefined ||
      (Array.isArray(s.exits) && s.exits.every((x) => typeof x === "string")),
    "exits must be a list of exit reasons",
  );
  if (typeof s.expect === "function") {
    // Checked when the run is known.
  } else if (!Array.isArray(s.expect)) {
    problems.push(
      "expect must be a list of event expectations, or a function of the run giving one",
    );
  } else {
    s.expect.forEach((e, i) => {
      need(isRecord(e) && typeof e.ev === "string", `expect[${i}].ev must be an event name`);
    });
  }
  need(
    s.expectStatus === undefined || STATUSES.includes(s.expectStatus),
    `expectStatus must be one of ${STATUSES.join(", ")}`,
  );
  if (problems.length > 0) throw new ScenarioError(fileName, problems);
  return s as Scenario;
}

function numaProblems(numa: Numa, smp: number, memoryMiB: number): string[] {
  const problems: string[] = [];
  const n = numa.nodes?.length ?? 0;
  if (n === 0) return ["machine.numa.nodes must list at least one node"];
  const seen = new Set<number>();
  numa.nodes.forEach((node, i) => {
    for (const cpu of node.cpus) {
      if (!Number.isInteger(cpu) || cpu < 0 || cpu >= smp) {
        problems.push(`numa.nodes[${i}]: CPU ${cpu} is not below smp (${smp})`);
      } else if (seen.has(cpu)) {
        problems.push(`numa.nodes[${i}]: CPU ${cpu} is in two nodes`);
      } else {
        seen.add(cpu);
      }
    }
  });
  if (seen.size !== smp) problems.push(`numa nodes cover ${seen.size} of ${smp} CPUs`);
  const total = numa.nodes.reduce((sum, node) => sum + node.memoryMiB, 0);
  if (total !== memoryMiB) {
    problems.push(`numa node memory adds up to ${total} MiB, machine.memoryMiB is ${memoryMiB}`);
  }
  for (const [i, h] of (numa.hmat ?? []).entries()) {
    if (!numa.nodes[h.initiator]?.cpus.length) {
      problems.push(`numa.hmat[${i}]: initiator ${h.initiator} is not a node with CPUs`);
    }
    if (!numa.nodes[h.target]) problems.push(`numa.hmat[${i}]: no target node ${h.target}`);
    if (!(Number.isInteger(h.value) && h.value > 0)) {
      problems.push(`numa.hmat[${i}]: value must be a positive integer`);
    }
  }
  const d = numa.distances;
  if (d) {
    const square = d.length === n && d.every((row) => row.length === n);
    if (!square) problems.push(`numa.distances must be ${n}x${n}`);
    else {
      d.forEach((row, i) =>
        row.forEach((v, j) => {
          if (i === j && v !== 10) problems.push(`numa.distances[${i}][${i}] must be 10`);
          if (i !== j && (!Number.isInteger(v) || v <= 10 || v > 255)) {
            problems.push(`numa.distances[${i}][${j}] must be an integer in 11..255`);
          }
        })
      );
    }
  }
  return problems;
}

/** The nodes a run fakes with `numa=fake:N`: a declared topology, on Bochs. */
export function fakeNodes(s: Scenario, backend: Backend): number | undefined {
  const n = s.machine.numa?.nodes.length ?? 1;
  return backend === "bochs" && n > 1 ? n : undefined;
}

/** The kernel command line of a run of `s` on `backend` (see `RunPlan.cmdline`). */
export function runCmdline(s: Scenario, backend: Backend, target?: Target): string {
  const fake = fakeNodes(s, backend);
  return [s.cmdline, target?.cmdline, fake ? `numa=fake:${fake}` : undefined]
    .filter((x) => x)
    .join(" ");
}

/** Every run a scenario declares, in declaration order. */
export function expandTargets(s: Scenario): RunPlan[] {
  return s.targets.flatMap((t) =>
    t.cpus.map((cpu) => ({
      scenario: s,
      backend: t.backend,
      cpu,
      boot: t.boot ?? defaultBoot(t.backend),
      firmware: t.firmware ?? "bios",
      timeoutS: t.timeoutS ?? s.timeoutS,
      cmdline: runCmdline(s, t.backend, t),
    }))
  );
}

export function planId(p: Omit<RunPlan, "scenario" | "timeoutS"> & { scenario: { name: string } }) {
  return `${p.scenario.name} ${p.backend} ${p.cpu} ${p.boot}/${p.firmware}`;
}

export interface PlanChoice {
  backend?: Backend;
  cpu?: string;
  firmware?: Firmware;
  boot?: BootPath;
  timeoutS?: number;
}

/**
 * The run `scenario` performs: the first declared run that fits the choice;
 * else the closest declared run with the choice applied (`declared: false`),
 * when that combination is valid. Returns why not otherwise.
 */
export function selectPlan(
  s: Scenario,
  c: PlanChoice,
): { plan: RunPlan; declared: boolean } | string {
  const runs = expandTargets(s);
  const withTimeout = (p: RunPlan) => (c.timeoutS ? { ...p, timeoutS: c.timeoutS } : p);
  const fits = (p: RunPlan) =>
    (!c.backend || p.backend === c.backend) && (!c.cpu || p.cpu === c.cpu) &&
    (!c.firmware || p.firmware === c.firmware) && (!c.boot || p.boot === c.boot);
  const exact = runs.find(fits);
  if (exact) return { plan: withTimeout(exact), declared: true };

  const backend = c.backend ?? runs[0]!.backend;
  // KVM runs what QEMU runs, on the host CPU.
  const sameFamily = (p: RunPlan) =>
    p.backend === backend || (backend === "kvm" && p.backend === "qemu");
  const base = runs.find(sameFamily) ?? runs[0]!;
  const cpu = c.cpu ?? (backend === "kvm" ? "host" : base.backend === backend ? base.cpu : "");
  if (!cpu) return `scenario ${s.name} declares no ${backend} run: give --cpu`;
  const boot = c.boot ??
    (c.firmware === "uefi" ? "iso" : sameFamily(base) ? base.boot : defaultBoot(backend));
  const firmware = c.firmware ?? (boot === "kernel" ? "bios" : base.firmware);
  const combo = comboProblem(backend, boot, firmware);
  if (combo) return combo;
  const model = resolveCpu(backend, cpu);
  if (typeof model === "string") return model;
  if (s.machine.vendor && backend !== "kvm" && model.vendor !== s.machine.vendor) {
    return `scenario ${s.name} needs a ${s.machine.vendor} CPU; ${cpu} is ${model.vendor}`;
  }
  const timeoutS = base.backend === backend ? base.timeoutS : s.timeoutS;
  return {
    plan: withTimeout({
      scenario: s,
      backend,
      cpu,
      boot,
      firmware,
      timeoutS,
      cmdline: runCmdline(s, backend),
    }),
    declared: false,
  };
}
