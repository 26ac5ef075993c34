/**
 * `deno task bench linux-numa`: the reference workloads as programs inside
 * Linux (`sv-threads`, payloads/linux/sv-threads.c, a thread pinned to each
 * CPU) on QEMU EPYC, on two topologies (2 nodes; 4 nodes with asymmetric
 * distances), under every way of managing NUMA the project compares:
 * Linux seeing one node while Scalevisor places its pages (first-touch,
 * interleave, adaptive by accessed bits, adaptive by hinting faults), Linux
 * seeing the nodes (`numa.guest=mirror`) with its own balancing off and on,
 * and Linux on the bare emulated machine (no hypervisor) with its balancing
 * on. Per run, measured from outside the guest by the locality meter: the
 * local fraction and cost of the program's measured passes (its window);
 * and from the run: the program's own time for them, the pages Scalevisor
 * migrated and replicated, and Linux's own `numa_pages_migrated`. Prints a
 * line per run as it goes, then the table and where one-node adaptive
 * placement is less local than Linux managing NUMA itself; writes
 * `bench-linux-numa.json` and `.svg` under `.runs/`. Figures, not
 * assertions.
 */
import { join } from "node:path";
import { type Artifacts, RUN_FILES } from "./backends/backend.ts";
import { launchOnce } from "./bench_linux.ts";
import { buildKernel } from "./build.ts";
import { buildLinuxGuest, LINUX_CMDLINE, linuxMarkers, MARKER } from "./linux.ts";
import { DEBIAN_WORKLOADS, type LinuxWorkload, svThreadsWorkload } from "./linux_workloads.ts";
import { defineLinuxScenario } from "./linux_scenario.ts";
import { globRegExp, inParallel } from "./matrix.ts";
import { type Counts, meterArgument, parseMeter } from "./meter.ts";
import { ASYMMETRIC_4_NODES } from "./numa.ts";
import { RUNS_DIR } from "./paths.ts";
import { buildPlugin } from "./plugins.ts";
import { ensureTools, toolsFor } from "./prereq.ts";
import { barsSvg, columns } from "./report.ts";
import { backendFor, linuxInitrd, runPlan } from "./runner.ts";
import { expandTargets, type Numa, type RunPlan } from "./scenario.ts";
import { WORKLOADS } from "./workloads.ts";

/** One way of managing NUMA for the guest. */
interface Config {
  /** Added to the hypervisor's command line; none: the bare machine. */
  cmdline?: string;
  /** Added to Linux's. */
  guest?: string;
  /** Whether Linux sees the nodes. */
  nodes: boolean;
}

export const CONFIGS: Record<string, Config> = {
  "first-touch": { cmdline: "numa.policy=first-touch numa.page=4k", nodes: false },
  interleave: { cmdline: "numa.policy=interleave numa.page=4k", nodes: false },
  "adaptive-bits": { cmdline: "numa.policy=adaptive numa.track=bits", nodes: false },
  "adaptive-faults": { cmdline: "numa.policy=adaptive numa.track=faults", nodes: false },
  mirror: { cmdline: "numa.guest=mirror", guest: "numa_balancing=disable", nodes: true },
  "mirror-balancing": { cmdline: "numa.guest=mirror", guest: "numa_balancing=enable", nodes: true },
  "bare-balancing": { guest: "numa_balancing=enable", nodes: true },
};
const ADAPTIVE = ["adaptive-bits", "adaptive-faults"];
/** Linux managing NUMA itself: what one-node adaptive placement is held to. */
const LINUX_OWN = ["mirror-balancing", "bare-balancing"];

/** One CPU per node, as `bench numa`; Linux's 256 MiB fit on either. */
export const LINUX_TOPOLOGIES: { name: string; short: string; numa: Numa }[] = [
  {
    name: "2 nodes",
    short: "2n",
    numa: { nodes: [0, 1].map((i) => ({ cpus: [i], memoryMiB: 256 })) },
  },
  { name: "4 nodes asym", short: "4n", numa: ASYMMETRIC_4_NODES },
];

const GUEST_MIB = 256;
/** /init's line after the program: Linux's own page migrations. */
const LINUX_MIGRATED =
  `echo "${MARKER} numa-migrated=$(sed -n 's/^numa_pages_migrated //p' /proc/vmstat)"`;

export interface LinuxNumaResult {
  topology: string;
  workload: string;
  config: string;
  /** The measured passes' local fraction and cost (meter); undefined: the run failed. */
  local?: number;
  cost?: number;
  /** The slowest thread's measured passes, in ms of the guest's clock. */
  ms?: number;
  /** Pages Scalevisor migrated and replicated (adaptive placement). */
  migrated?: number;
  replicated?: number;
  /** Linux's own numa_pages_migrated. */
  linuxMigrated?: number;
  /** Why the run gave no figure. */
  failure?: string;
}

interface Job {
  topology: (typeof LINUX_TOPOLOGIES)[number];
  workload: LinuxWorkload;
  config: string;
  plan: RunPlan;
}

/** The scenario of one run: the machine, Linux's lines, its checks. */
function jobPlan(t: (typeof LINUX_TOPOLOGIES)[number], w: LinuxWorkload, config: string): RunPlan {
  const c = CONFIGS[config]!;
  const s = defineLinuxScenario({
    name: `bench-linux-numa-${t.short}-${w.name}-${config}`,
    description: `${w.name} under ${config} on ${t.name}`,
    machine: {
      smp: t.numa.nodes.length,
      memoryMiB: t.numa.nodes.reduce((a, n) => a + n.memoryMiB, 0),
      numa: t.numa,
      meter: true,
    },
    targets: [{ backend: "qemu", cpus: ["EPYC"] }],
    guestMiB: GUEST_MIB,
    cmdline: c.cmdline,
    guestCmdline: c.guest,
    programs: w.programs,
    debian: w.debian,
    run: `${w.run}\n${LINUX_MIGRATED}`,
    guestNodes: () => (c.nodes ? t.numa.nodes.length : 1),
    everyNode: false,
    timeoutS: 900,
  });
  return expandTargets(s)[0]!;
}

/** What a run's console and meter window say, as a result (or why it has none). */
function resultOf(
  job: Job,
  console: string,
  window: Counts | undefined,
  problems: string[],
  adaptive?: { migrated?: number; replicated?: number },
): LinuxNumaResult {
  const base = { topology: job.topology.name, workload: job.workload.name, config: job.config };
  const cpus = job.topology.numa.nodes.length;
  const all = [...problems, ...job.workload.problems(console, cpus)];
  if (!window) all.push("the meter saw no window");
  if (all.length || !window) return { ...base, failure: all.join("; ") };
  const migrated = linuxMarkers(console).get("numa-migrated");
  return {
    ...base,
    local: window.localFraction,
    cost: window.cost,
    ms: job.workload.ms(console, cpus),
    migrated: adaptive?.migrated,
    replicated: adaptive?.replicated,
    linuxMigrated: migrated && /^\d+$/.test(migrated) ? Number(migrated) : undefined,
  };
}

/** `job` on the bare machine: the same QEMU, kernel and initramfs, no hypervisor. */
async function runBare(job: Job, say: (m: string) => void): Promise<LinuxNumaResult> {
  const guest = await buildLinuxGuest(say);
  const initrd = await linuxInitrd(guest, job.plan.scenario.linux!, say);
  const meter = await buildPlugin("meter", say);
  const m = job.plan.scenario.machine;
  const plan: RunPlan = {
    ...job.plan,
    boot: "kernel",
    scenario: {
      ...job.plan.scenario,
      // Counted from each CPU's first instruction: there is no hypervisor to skip.
      machine: { ...m, emulatorArgs: { qemu: ["-plugin", meterArgument(job.plan, meter)] } },
    },
  };
  const files = { kernel: guest.vmlinux, payload: initrd };
  const cmdline = [LINUX_CMDLINE, CONFIGS[job.config]!.guest].filter((c) => c).join(" ");
  const launch = backendFor(plan).launch(plan, files as Artifacts, cmdline);
  const r = await launchOnce(launch, files, plan.timeoutS, async (dir) => ({
    console: await Deno.readTextFile(join(dir, RUN_FILES.guest)).catch(() => ""),
    meter: await Deno.readTextFile(join(dir, "meter.txt")).catch(() => ""),
  }));
  const window = parseMeter(r.read.meter, job.topology.numa)?.window;
  const done = linuxMarkers(r.read.console).has("done");
  return resultOf(job, r.read.console, window, done ? [] : ["/init did not finish"]);
}

/** `job` under Scalevisor: a run like any scenario's, its problems the failure. */
async function runUnder(job: Job): Promise<LinuxNumaResult> {
  const r = await runPlan(job.plan, { progress: () => {} });
  const console = await Deno.readTextFile(join(r.runDir, RUN_FILES.guest)).catch(() => "");
  const placement = r.events.find((e) => e.ev === "placement");
  const problems = r.status === "pass" ? r.problems : [`${r.status}: ${r.reason}`, ...r.problems];
  return resultOf(
    job,
    console,
    r.meter?.window,
    problems,
    placement?.adaptive as { migrated?: number; replicated?: number } | undefined,
  );
}

const pct = (x?: number) => (x === undefined ? "-" : (x * 100).toFixed(1));

/** The table: a line per topology and workload, local % / cost per configuration. */
export function linuxNumaTable(results: LinuxNumaResult[]): string {
  const configs = Object.keys(CONFIGS).filter((c) => results.some((r) => r.config === c));
  const rows = groups(results).map(([topology, workload, rs]) => [
    topology,
    workload,
    ...configs.map((c) => {
      const r = rs.find((r) => r.config === c);
      return r?.local === undefined
        ? (r ? "failed" : "")
        : `${pct(r.local)} / ${r.cost!.toFixed(2)}`;
    }),
  ]);
  const runs = results.map((r) => [
    r.topology,
    r.workload,
    r.config,
    pct(r.local),
    r.cost?.toFixed(2) ?? "-",
    r.ms === undefined ? "-" : String(r.ms),
    r.migrated === undefined ? "-" : String(r.migrated),
    r.replicated === undefined ? "-" : String(r.replicated),
    r.linuxMigrated === undefined ? "-" : String(r.linuxMigrated),
    r.failure ?? "",
  ]);
  return [
    "measured passes: local % / cost (mean access distance, local = 1), by the locality meter",
    columns(["topology", "workload", ...configs], rows),
    "",
    "per run: the program's time for its measured passes (guest ms, slowest thread); pages moved",
    columns([
      "topology",
      "workload",
      "config",
      "local %",
      "cost",
      "ms",
      "migrated",
      "replicated",
      "linux migrated",
      "failure",
    ], runs),
  ].join("\n");
}

/** Results grouped by topology and workload, in the order they first appear. */
function groups(results: LinuxNumaResult[]): [string, string, LinuxNumaResult[]][] {
  const keys = [...new Set(results.map((r) => `${r.topology}|${r.workload}`))];
  return keys.map((k) => {
    const [topology, workload] = k.split("|") as [string, string];
    return [topology, workload, results.filter((r) => `${r.topology}|${r.workload}` === k)];
  });
}

/**
 * Where one-node adaptive placement (the better of bits and faults) is
 * less local than Linux managing NUMA itself (the better of mirror with
 * balancing and the bare machine), row by row, with the points between.
 */
export function linuxNumaShortfalls(results: LinuxNumaResult[]): string[] {
  return groups(results).flatMap(([topology, workload, rs]) => {
    const best = (cs: string[]) =>
      Math.max(...rs.filter((r) => cs.includes(r.config)).map((r) => r.local ?? -1));
    const [ours, theirs] = [best(ADAPTIVE), best(LINUX_OWN)];
    if (ours < 0 || theirs < 0) return [];
    return ours >= theirs ? [] : [
      `${topology} ${workload}: adaptive ${pct(ours)} % local, Linux's own ${pct(theirs)} % (${
        ((theirs - ours) * 100).toFixed(1)
      } points short)`,
    ];
  });
}

export async function runLinuxNumaBench(o: {
  say: (m: string) => void;
  jobs: number;
  /** A glob on run names (`bench-linux-numa-2n-master-init-adaptive-faults`). */
  filter?: string;
  mib: number;
  passes: number;
  warmupMs: number;
}): Promise<number> {
  const only = o.filter ? globRegExp(o.filter) : undefined;
  const workloads = [
    ...WORKLOADS.map((pattern) =>
      svThreadsWorkload({ pattern, mib: o.mib, passes: o.passes, warmupMs: o.warmupMs })
    ),
    ...DEBIAN_WORKLOADS,
  ];
  const jobs: Job[] = LINUX_TOPOLOGIES.flatMap((topology) =>
    workloads.flatMap((workload) =>
      Object.keys(CONFIGS).map((config) => ({
        topology,
        workload,
        config,
        plan: jobPlan(topology, workload, config),
      }))
    )
  ).filter((j) => !only || only.test(j.plan.scenario.name));
  if (!jobs.length) {
    o.say(`no run is named like ${o.filter}`);
    return 1;
  }
  await ensureTools(jobs.flatMap((j) => toolsFor(j.plan)), o.say);
  await buildKernel(o.say);
  const results: LinuxNumaResult[] = [];
  let done = 0;
  await inParallel(jobs, o.jobs, async (job) => {
    const r = CONFIGS[job.config]!.cmdline === undefined
      ? await runBare(job, o.say)
      : await runUnder(job);
    results.push(r);
    o.say(
      `[${++done}/${jobs.length}] ${job.topology.name} ${job.workload.name} ${job.config}: ${
        r.failure ?? `${pct(r.local)} % local, cost ${r.cost!.toFixed(2)}, ${r.ms} ms`
      }`,
    );
  });
  // In the order of the jobs, whichever finished first.
  const order = (r: LinuxNumaResult) =>
    jobs.findIndex((j) =>
      j.topology.name === r.topology && j.workload.name === r.workload && j.config === r.config
    );
  results.sort((a, b) => order(a) - order(b));
  const dir = join(RUNS_DIR, `bench-linux-numa-${new Date().toISOString().replace(/[:.]/g, "-")}`);
  await Deno.mkdir(dir, { recursive: true });
  const size = { mib: o.mib, passes: o.passes, warmupMs: o.warmupMs };
  await Deno.writeTextFile(
    join(dir, "bench-linux-numa.json"),
    JSON.stringify({ size, results }, null, 2),
  );
  await Deno.writeTextFile(
    join(dir, "bench-linux-numa.svg"),
    barsSvg(
      "Local fraction of the measured passes inside Linux (locality meter)",
      Object.keys(CONFIGS),
      groups(results).map(([topology, workload, rs]) => ({
        label: `${topology.replace(" nodes", "n")} ${workload}`,
        values: Object.fromEntries(rs.map((r) => [r.config, r.local])),
      })),
    ),
  );
  console.log(linuxNumaTable(results));
  const short = linuxNumaShortfalls(results);
  console.log(
    short.length
      ? `one-node adaptive placement is less local than Linux's own NUMA management:\n${
        short.map((l) => `  ${l}`).join("\n")
      }`
      : "one-node adaptive placement is as local as Linux's own NUMA management on every row run",
  );
  console.log(
    `written: ${join(dir, "bench-linux-numa.json")}, ${join(dir, "bench-linux-numa.svg")}`,
  );
  return results.some((r) => r.failure) ? 1 : 0;
}
