/**
 * `deno task bench linux`: how long Linux takes from the emulator's start to
 * its /init, bare on the machine and under Scalevisor on the same machine
 * (the machines of the `linux-uma*` scenarios, or of those `filter`
 * names), median of `runs` after a warm-up;
 * and what the overhead is made of: the hypervisor's exits by reason, from
 * its `guest-end` summaries. Figures, not assertions.
 */
import { join } from "node:path";
import { type Artifacts, type Launch, RUN_FILES } from "./backends/backend.ts";
import { median } from "./bench.ts";
import { parseLog } from "./events.ts";
import { buildGrubIso } from "./build.ts";
import { buildLinuxGuest, LINUX_CMDLINE, type LinuxGuest, MARKER } from "./linux.ts";
import { selectPlans } from "./matrix.ts";
import { ensureTools, toolsFor } from "./prereq.ts";
import { columns } from "./report.ts";
import { backendFor, build, fillRunDir } from "./runner.ts";
import { planId, type RunPlan } from "./scenario.ts";

interface Timing {
  /** From the emulator's start to the guest's `init` marker; undefined: never. */
  initMs?: number;
  totalMs: number;
  /** Exits by reason over every vCPU (Scalevisor runs). */
  exits: Record<string, number>;
}

/** Starts `launch` in a fresh directory with `files` linked in; times the guest's /init. */
async function timeRun(
  launch: Launch,
  files: Partial<Artifacts>,
  timeoutS: number,
): Promise<Timing> {
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
    const exits: Record<string, number> = {};
    const log = await Deno.readTextFile(join(dir, RUN_FILES.serial)).catch(() => "");
    for (const e of parseLog(log).events.filter((e) => e.ev === "guest-end")) {
      for (const [reason, n] of Object.entries(e.counts as Record<string, number>)) {
        exits[reason] = (exits[reason] ?? 0) + n;
      }
    }
    return { initMs, totalMs, exits };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const secs = (ms: number | undefined) => ms === undefined ? "never" : `${(ms / 1000).toFixed(2)}s`;

/** Bare Linux on Bochs: GRUB boots the bzImage (Linux's own loader and decompressor). */
function bareBochsIso(guest: LinuxGuest, say: (m: string) => void): Promise<string> {
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
    { path: guest.initrd, name: "initrd.cpio" },
  ], say);
}

export async function runLinuxBench(
  o: { runs: number; filter: string; say: (m: string) => void },
): Promise<number> {
  const plans = await selectPlans({ vendor: "all", filter: o.filter });
  await ensureTools(plans.flatMap(toolsFor), o.say);
  const guest = await buildLinuxGuest(o.say);
  const rows: string[][] = [];
  for (const plan of plans) {
    const backend = backendFor(plan);
    const artifacts = await build(plan, o.say);
    const under = backend.launch(plan, artifacts, plan.cmdline);
    // The same machine, kernel and initramfs without Scalevisor: on QEMU
    // entered by PVH as under Scalevisor; Bochs has no direct kernel boot, so
    // there GRUB loads the bzImage.
    const bareFiles: Partial<Artifacts> = plan.backend === "bochs"
      ? { kernel: guest.vmlinux, iso: await bareBochsIso(guest, o.say) }
      : { kernel: guest.vmlinux, payload: guest.initrd };
    const barePlan: RunPlan = { ...plan, boot: plan.backend === "bochs" ? "iso" : "kernel" };
    const bare = backend.launch(barePlan, bareFiles as Artifacts, LINUX_CMDLINE);
    const results: { bare: Timing[]; under: Timing[] } = { bare: [], under: [] };
    for (let i = 0; i <= o.runs; i++) {
      const b = await timeRun(bare, bareFiles, plan.timeoutS);
      const u = await timeRun(under, artifacts, plan.timeoutS);
      o.say(
        `${planId(plan)} run ${i}${i ? "" : " (warm-up)"}: bare ${secs(b.initMs)}, under ${
          secs(u.initMs)
        }`,
      );
      if (i === 0) continue;
      results.bare.push(b);
      results.under.push(u);
    }
    const med = (ts: Timing[]) => {
      const xs = ts.map((t) => t.initMs).filter((x): x is number => x !== undefined);
      return xs.length === ts.length ? median(xs) : undefined;
    };
    const [mb, mu] = [med(results.bare), med(results.under)];
    const last = results.under.at(-1)?.exits ?? {};
    const total = Object.values(last).reduce((a, b) => a + b, 0);
    rows.push([
      planId(plan),
      secs(mb),
      secs(mu),
      mb && mu ? `${(mu / mb).toFixed(2)}x` : "-",
      `${total} (${Object.entries(last).map(([k, v]) => `${k} ${v}`).join(", ")})`,
    ]);
  }
  console.log(`launch to the guest's /init, median of ${o.runs} runs each after a warm-up`);
  console.log(
    columns(["run", "bare", "under Scalevisor", "ratio", "exits, all vCPUs (last run)"], rows),
  );
  return 0;
}
