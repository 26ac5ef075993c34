/**
 * `deno task bench linux`: what Linux takes from the emulator's start to its
 * /init, bare on the machine and under Scalevisor on the same machine (the
 * machines of the `linux-uma*` scenarios, or of those `filter` names),
 * counted and timed, median of `runs` after a warm-up, bare and under
 * alternating; and what the overhead is made of: the hypervisor's exits by
 * reason, from its `guest-end` summaries. Counted: /init runs `sv-mark`
 * (`payloads/linux/sv-mark.asm`); on QEMU the instruction counter
 * (`harness/meter/insns.c`) gives the instructions every CPU executed up to
 * its mark, on Bochs the TSC it prints does (Bochs' clock counts them). A
 * count barely moves from run to run (QEMU's vCPUs take turns by the host's
 * clock, so spinning waits vary a little); a wall time moves with the host's
 * load. (`-icount`, which would make QEMU's counts exact, hangs Linux's SMP
 * start-up in QEMU 7.2, bare too.) Figures, not assertions.
 */
import { join } from "node:path";
import { type Artifacts, type Launch, RUN_FILES } from "./backends/backend.ts";
import { median } from "./bench.ts";
import { parseLog } from "./events.ts";
import { buildGrubIso, buildPayload } from "./build.ts";
import {
  buildInitrd,
  buildLinuxGuest,
  LINUX_CMDLINE,
  type LinuxGuest,
  linuxMarkers,
  MARKER,
} from "./linux.ts";
import { selectPlans } from "./matrix.ts";
import { buildPlugin } from "./plugins.ts";
import { ensureTools, toolsFor } from "./prereq.ts";
import { columns } from "./report.ts";
import { backendFor, build, fillRunDir } from "./runner.ts";
import { planId, type RunPlan } from "./scenario.ts";

/** The program /init runs for the count, and the line it prints. */
const MARK_PROGRAM = "linux/sv-mark.asm";
const MARK_LINE = `echo "${MARKER} tsc=$(sv-mark)"`;
/** What QEMU's instruction counter writes, in the run's directory. */
const INSNS = "insns.txt";

/** `plan` counted: /init also runs sv-mark, and QEMU loads the counter `plugin`. */
function counted(plan: RunPlan, plugin: string): RunPlan {
  const s = plan.scenario, linux = s.linux ?? {};
  const args = s.machine.emulatorArgs;
  const qemu = [...(args?.qemu ?? []), "-plugin", `${plugin},out=${INSNS}`];
  return {
    ...plan,
    scenario: {
      ...s,
      linux: {
        ...linux,
        programs: [...(linux.programs ?? []), MARK_PROGRAM],
        run: [linux.run, MARK_LINE].filter((l) => l).join("\n"),
      },
      machine: { ...s.machine, emulatorArgs: { ...args, qemu } },
    },
  };
}

interface Timing {
  /** From the emulator's start to the guest's `init` marker; undefined: never. */
  initMs?: number;
  /** Instructions to /init's mark (QEMU), or the TSC it printed (Bochs); undefined: never. */
  count?: number;
  totalMs: number;
  /** Exits by reason over every vCPU (Scalevisor runs). */
  exits: Record<string, number>;
}

/**
 * Starts `launch` in a fresh directory with `files` linked in and waits for
 * it to end (at most `timeoutS`), timing the guest's /init; `read` takes
 * what it needs from the directory before it goes.
 */
export async function launchOnce<T>(
  launch: Launch,
  files: Partial<Artifacts>,
  timeoutS: number,
  read: (dir: string) => Promise<T>,
): Promise<{ initMs?: number; totalMs: number; read: T }> {
  const dir = await Deno.makeTempDir({ prefix: "scalevisor-bench-linux-" });
  try {
    await fillRunDir(dir, files, launch);
    const t0 = performance.now();
    const child = new Deno.Command(launch.bin, {
      args: launch.args,
      env: launch.env,
      cwd: dir,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    let initMs: number | undefined;
    let done = false;
    const status = child.status.then((s) => {
      done = true;
      return s;
    });
    const deadline = t0 + timeoutS * 1000;
    const console = join(dir, RUN_FILES.guest);
    while (!done && performance.now() < deadline) {
      if (initMs === undefined) {
        const text = await Deno.readTextFile(console).catch(() => "");
        if (text.includes(`${MARKER} init`)) initMs = performance.now() - t0;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    if (!done) child.kill(launch.stopSignal);
    await status;
    const totalMs = performance.now() - t0;
    if (initMs === undefined) {
      const text = await Deno.readTextFile(console).catch(() => "");
      if (text.includes(`${MARKER} init`)) initMs = totalMs; // printed in the last poll's gap
    }
    return { initMs, totalMs, read: await read(dir) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs `launch` once and times it: to /init, counted, and its exits. */
async function timeRun(
  launch: Launch,
  files: Partial<Artifacts>,
  timeoutS: number,
): Promise<Timing> {
  const r = await launchOnce(launch, files, timeoutS, async (dir) => {
    const counter = await Deno.readTextFile(join(dir, INSNS)).catch(() => undefined);
    const count = counter === undefined
      ? linuxMarkers(await Deno.readTextFile(join(dir, RUN_FILES.guest)).catch(() => "")).get(
        "tsc",
      )
      : counter.match(/^mark (\d+)$/m)?.[1];
    const exits: Record<string, number> = {};
    const log = await Deno.readTextFile(join(dir, RUN_FILES.serial)).catch(() => "");
    for (const e of parseLog(log).events.filter((e) => e.ev === "guest-end")) {
      for (const [reason, n] of Object.entries(e.counts as Record<string, number>)) {
        exits[reason] = (exits[reason] ?? 0) + n;
      }
    }
    return { count: count && /^\d+$/.test(count) ? Number(count) : undefined, exits };
  });
  return { initMs: r.initMs, totalMs: r.totalMs, ...r.read };
}

const secs = (ms: number | undefined) => ms === undefined ? "never" : `${(ms / 1000).toFixed(2)}s`;
const mticks = (n: number | undefined) => n === undefined ? "never" : `${(n / 1e6).toFixed(1)}M`;

/** Bare Linux on Bochs: GRUB boots the bzImage (Linux's own loader and decompressor). */
function bareBochsIso(
  guest: LinuxGuest,
  initrd: string,
  say: (m: string) => void,
): Promise<string> {
  const cfg = [
    "set timeout=0",
    "set default=0",
    'menuentry "linux" {',
    // Bochs never ends an MWAITX wait (Scalevisor hides MWAITX from its guests).
    `  linux /boot/bzImage ${LINUX_CMDLINE} clearcpuid=mwaitx`,
    "  initrd /boot/initrd.cpio",
    "  boot",
    "}",
    "",
  ].join("\n");
  return buildGrubIso(cfg, [
    { path: guest.bzImage, name: "bzImage" },
    { path: initrd, name: "initrd.cpio" },
  ], say);
}

export async function runLinuxBench(
  o: { runs: number; filter: string; say: (m: string) => void },
): Promise<number> {
  const plans = await selectPlans({ vendor: "all", filter: o.filter });
  await ensureTools(plans.flatMap(toolsFor), o.say);
  const guest = await buildLinuxGuest(o.say);
  // Bare, /init runs the same count: the stock initramfs with sv-mark.
  const mark = { name: "sv-mark", path: await buildPayload({ file: MARK_PROGRAM }, o.say) };
  const bareInitrd = await buildInitrd(guest, [mark], MARK_LINE);
  const plugin = await buildPlugin("insns", o.say);
  const rows: string[][] = [];
  for (const declared of plans) {
    const plan = counted(declared, plugin);
    const backend = backendFor(plan);
    const artifacts = await build(plan, o.say);
    const under = backend.launch(plan, artifacts, plan.cmdline);
    // The same machine, kernel and initramfs without Scalevisor: on QEMU
    // entered by PVH as under Scalevisor; Bochs has no direct kernel boot, so
    // there GRUB loads the bzImage.
    const bareFiles: Partial<Artifacts> = plan.backend === "bochs"
      ? { kernel: guest.vmlinux, iso: await bareBochsIso(guest, bareInitrd, o.say) }
      : { kernel: guest.vmlinux, payload: bareInitrd };
    const barePlan: RunPlan = { ...plan, boot: plan.backend === "bochs" ? "iso" : "kernel" };
    const bare = backend.launch(barePlan, bareFiles as Artifacts, LINUX_CMDLINE);
    const results: { bare: Timing[]; under: Timing[] } = { bare: [], under: [] };
    for (let i = 0; i <= o.runs; i++) {
      const b = await timeRun(bare, bareFiles, plan.timeoutS);
      const u = await timeRun(under, artifacts, plan.timeoutS);
      o.say(
        `${planId(plan)} run ${i}${i ? "" : " (warm-up)"}: bare ${secs(b.initMs)} ${
          mticks(b.count)
        }, under ${secs(u.initMs)} ${mticks(u.count)}`,
      );
      if (i === 0) continue;
      results.bare.push(b);
      results.under.push(u);
    }
    // The median of every run's figure; undefined when a run has none.
    const med = (ts: Timing[], f: (t: Timing) => number | undefined) => {
      const xs = ts.map(f).filter((x): x is number => x !== undefined);
      return xs.length === ts.length ? median(xs) : undefined;
    };
    const ratio = (u?: number, b?: number) => (u && b ? `${(u / b).toFixed(2)}x` : "-");
    const [cb, cu] = [med(results.bare, (t) => t.count), med(results.under, (t) => t.count)];
    const [wb, wu] = [med(results.bare, (t) => t.initMs), med(results.under, (t) => t.initMs)];
    const last = results.under.at(-1)?.exits ?? {};
    const total = Object.values(last).reduce((a, b) => a + b, 0);
    rows.push([
      planId(plan),
      mticks(cb),
      mticks(cu),
      ratio(cu, cb),
      secs(wb),
      secs(wu),
      ratio(wu, wb),
      `${total} (${Object.entries(last).map(([k, v]) => `${k} ${v}`).join(", ")})`,
    ]);
  }
  console.log(
    `launch to the guest's /init, median of ${o.runs} runs each after a warm-up; ` +
      "counted, in millions: instructions to /init's mark (QEMU), the TSC there (Bochs)",
  );
  console.log(
    columns([
      "run",
      "bare (counted)",
      "under",
      "ratio",
      "bare (wall)",
      "under",
      "ratio",
      "exits, all vCPUs (last run)",
    ], rows),
  );
  return 0;
}
