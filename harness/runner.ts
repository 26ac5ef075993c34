/**
 * Runs one plan: builds what it boots, starts the emulator in a run
 * directory of its own, follows the serial output as events, stops the
 * emulator at the end, the deadline or a crash, and gives the verdict.
 */
import { basename, join } from "node:path";
import {
  type Artifacts,
  type Backend,
  type Launch,
  RUN_FILES,
  shellQuote,
} from "./backends/backend.ts";
import { bochs } from "./backends/bochs.ts";
import { qemu } from "./backends/qemu.ts";
import { buildIso, buildKernel, buildPayload, buildProgram, type IsoModule } from "./build.ts";
import {
  buildInitrd,
  buildLinuxBundle,
  buildLinuxGuest,
  debianFiles,
  LINUX_CMDLINE,
  type LinuxGuest as BuiltLinux,
} from "./linux.ts";
import { type Meter, parseMeter } from "./meter.ts";
import { buildPlugin } from "./plugins.ts";
import { drainPty } from "./pty.ts";
import { type CpuModel, hostCpu, resolveCpu } from "./cpus.ts";
import { describe, EventStream, type SvEvent } from "./events.ts";
import { checkExpectations } from "./expect.ts";
import { RUNS_DIR } from "./paths.ts";
import {
  DEFAULT_MEMORY_MIB,
  DEFAULT_SMP,
  fakeNodes,
  type HostSide,
  type LinuxGuest,
  planId,
  type RunInfo,
  type RunPlan,
  type Status,
} from "./scenario.ts";
import { classify, type EmulatorEnd } from "./verdict.ts";

export interface RunResult {
  scenario: string;
  backend: string;
  cpu: string;
  firmware: string;
  boot: string;
  status: Status;
  /** The verdict the scenario is meant to produce. */
  expected: Status;
  reason: string;
  /** Expectations not met, whatever the verdict. */
  problems: string[];
  durationMs: number;
  runDir: string;
  events: SvEvent[];
  /** When each event was read, in ms after the emulator started (within POLL_MS). */
  eventTimesMs: number[];
  /** What the locality meter measured, on metered runs. */
  meter?: Meter;
}

export interface RunOptions {
  progress: (msg: string) => void;
  /** Echo the serial output as it comes. */
  verbose?: boolean;
}

const POLL_MS = 10;
/** How long an emulator may take to exit after the kernel's last event. */
const GRACE_MS = 5000;
/** How long the kernel has to go on after the emulator logged a crash. */
const CRASH_GRACE_MS = 2000;
const TERMINAL = new Set(["exit", "exception", "panic"]);
/** Run directories kept; older ones are removed when a new run starts. */
const KEEP_RUNS = 500;

/** Removes all but the newest `keep` run directories (their names start with the time). */
export async function pruneRuns(keep = KEEP_RUNS) {
  const dirs: string[] = [];
  try {
    for await (const e of Deno.readDir(RUNS_DIR)) if (e.isDirectory) dirs.push(e.name);
  } catch {
    return; // no runs yet
  }
  dirs.sort();
  for (const name of dirs.slice(0, Math.max(0, dirs.length - keep))) {
    await Deno.remove(join(RUNS_DIR, name), { recursive: true }).catch(() => {});
  }
}

export function backendFor(plan: RunPlan): Backend {
  return plan.backend === "bochs" ? bochs : qemu;
}

function cpuModel(plan: RunPlan): CpuModel {
  const host = plan.backend === "kvm" ? hostCpu(readOr("/proc/cpuinfo", "")) : undefined;
  const model = resolveCpu(plan.backend, plan.cpu, host);
  if (typeof model === "string") throw new Error(model); // validated with the scenario
  return model;
}

function readOr(path: string, fallback = ""): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return fallback;
  }
}

function runDirName(plan: RunPlan): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const rand = crypto.getRandomValues(new Uint8Array(2)).reduce(
    (s, b) => s + b.toString(16).padStart(2, "0"),
    "",
  );
  const cpu = plan.cpu.replace(/[^A-Za-z0-9_-]/g, "_");
  const name = plan.scenario.name.replace("/", "+"); // a variant's name
  return `${stamp}-${rand}-${name}-${plan.backend}-${cpu}-${plan.boot}-${plan.firmware}`;
}

/** What a run boots: the kernel, its payload or Linux guest, the ISO, the meter. */
/**
 * The initramfs of a scenario's Linux guest: the stock one, or one with its
 * programs, Debian's, modules and /init lines.
 */
export async function linuxInitrd(
  guest: BuiltLinux,
  linux: LinuxGuest,
  progress: (m: string) => void,
): Promise<string> {
  if (!(linux.programs || linux.run || linux.modules || linux.debian)) return guest.initrd;
  const programs = await Promise.all(
    (linux.programs ?? []).map(async (file) => ({
      name: basename(file).replace(/\.(asm|c)$/, ""),
      path: await buildProgram(file, progress),
    })),
  );
  const debian = linux.debian ? await debianFiles(linux.debian, progress) : [];
  return buildInitrd(guest, programs, linux.run, linux.modules, debian);
}

export async function build(plan: RunPlan, progress: (m: string) => void): Promise<Artifacts> {
  const kernel = await buildKernel(progress);
  const payload = plan.scenario.payload
    ? await buildPayload(plan.scenario.payload, progress)
    : undefined;
  const modules: IsoModule[] = payload
    ? [{ path: payload, name: "payload.bin", args: "payload" }]
    : [];
  const linux = plan.scenario.linux;
  let bundle: string | undefined;
  if (linux) {
    // GRUB passes the kernel and initrd as two modules; QEMU -kernel one: a bundle.
    const guest = await buildLinuxGuest(progress);
    const args = [LINUX_CMDLINE, linux.cmdline].filter((a) => a).join(" ");
    const image = linux.image === "bzImage" ? guest.bzImage : guest.vmlinux;
    const initrd = await linuxInitrd(guest, linux, progress);
    if (plan.boot === "kernel") bundle = await buildLinuxBundle(image, initrd, args);
    modules.push(
      { path: image, name: linux.image ?? "vmlinux", args },
      { path: initrd, name: "initrd.cpio", args: "initrd" },
    );
  }
  const iso = plan.boot === "iso"
    ? await buildIso(kernel, plan.cmdline, modules, progress)
    : undefined;
  const meter = plan.scenario.machine.meter && plan.backend === "qemu"
    ? await buildPlugin("meter", progress)
    : undefined;
  return { kernel, payload: payload ?? bundle, iso, meter };
}

/**
 * Puts in `dir` what `launch` runs on: the built files linked under their
 * run names, the files the launch writes, and the copies it needs.
 */
export async function fillRunDir(
  dir: string,
  artifacts: Partial<Artifacts>,
  launch: Launch,
): Promise<void> {
  for (const [name, path] of Object.entries(artifacts)) {
    if (path) await Deno.symlink(path, join(dir, RUN_FILES[name as keyof Artifacts]));
  }
  for (const [name, content] of Object.entries(launch.files)) {
    if (typeof content === "string") await Deno.writeTextFile(join(dir, name), content);
    else await Deno.writeFile(join(dir, name), content);
  }
  for (const [name, source] of Object.entries(launch.copies)) {
    await Deno.copyFile(source, join(dir, name));
  }
}

/** The bytes a growing file gained since the last read. */
class FileTail {
  #offset = 0;
  constructor(readonly path: string) {}

  async read(): Promise<Uint8Array> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(this.path);
    } catch {
      return new Uint8Array(); // not created yet
    }
    try {
      await file.seek(this.#offset, Deno.SeekMode.Start);
      const chunks: Uint8Array[] = [];
      const buf = new Uint8Array(65536);
      for (let n = await file.read(buf); n !== null && n > 0; n = await file.read(buf)) {
        chunks.push(buf.slice(0, n));
        this.#offset += n;
      }
      const all = new Uint8Array(chunks.reduce((s, c) => s + c.length, 0));
      chunks.reduce((at, c) => (all.set(c, at), at + c.length), 0);
      return all;
    } finally {
      file.close();
    }
  }
}

async function tail(path: string, chars: number): Promise<string> {
  try {
    return (await Deno.readTextFile(path)).slice(-chars);
  } catch {
    return "";
  }
}

/** The result of a plan that ran no emulator (skipped, or its build failed), or its base. */
export function notRun(plan: RunPlan, status: Status, reason: string, runDir = ""): RunResult {
  return {
    scenario: plan.scenario.name,
    backend: plan.backend,
    cpu: plan.cpu,
    firmware: plan.firmware,
    boot: plan.boot,
    status,
    expected: plan.scenario.expectStatus ?? "pass",
    reason,
    problems: [],
    durationMs: 0,
    runDir,
    events: [],
    eventTimesMs: [],
  };
}

/** Runs `plan`; throws BuildError when its kernel, ISO or payload cannot be built. */
/**
 * How much slower than idle this machine runs now, from its 1-minute load
 * per CPU: 1, 2, 4 or 8 (powers of two, so that the kernel command lines,
 * and the ISOs built from them, stay few).
 */
export function busyFactor(load: number, cpus: number): number {
  const f = load / Math.max(1, cpus);
  return f <= 1.5 ? 1 : f <= 3 ? 2 : f <= 6 ? 4 : 8;
}

/** The hypervisor's watchdog for a payload or test kernel guest, unless the scenario sets it. */
const WATCHDOG_MS = 10_000;

/**
 * The plan on a machine `factor` times slower than idle: its timeout that
 * many times longer, and so the hypervisor's watchdog, which counts the
 * emulated TSC (host time under TCG, not emulated work), for guests whose
 * scenario leaves it at its default. Exact bounds belong to emulated time
 * instead (QEMU's `-icount`, Bochs' clock: docs/harness.md).
 */
export function underLoad(plan: RunPlan, factor: number): RunPlan {
  if (factor <= 1) return plan;
  const words = plan.cmdline.split(" ");
  const guest = words.some((w) => w.startsWith("guest=") && w !== "guest=linux") &&
    !words.some((w) => w.startsWith("guest.watchdog="));
  return {
    ...plan,
    busy: factor,
    timeoutS: plan.timeoutS * factor,
    cmdline: guest ? `${plan.cmdline} guest.watchdog=${WATCHDOG_MS * factor}` : plan.cmdline,
  };
}

/**
 * Runs the human-monitor `command` through the QMP socket at `path` and
 * returns its output; undefined when the monitor cannot be reached or does
 * not answer within 5 s.
 */
async function ask(path: string, command: string): Promise<string | undefined> {
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path });
  } catch {
    return undefined;
  }
  const encoder = new TextEncoder(), decoder = new TextDecoder();
  const send = (o: unknown) => conn.write(encoder.encode(JSON.stringify(o) + "\n"));
  const until = performance.now() + 5000;
  const buf = new Uint8Array(65536);
  let text = "";
  // The next message that says `key` (QMP: one JSON object a line).
  const next = async (key: string): Promise<Record<string, unknown> | undefined> => {
    while (performance.now() < until) {
      for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n")) {
        const line = text.slice(0, nl);
        text = text.slice(nl + 1);
        try {
          const m = JSON.parse(line) as Record<string, unknown>;
          if (key in m) return m;
        } catch { /* not a message */ }
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<null>((r) =>
        timer = setTimeout(() => r(null), until - performance.now())
      );
      const n = await Promise.race([conn.read(buf).catch(() => null), late]);
      clearTimeout(timer);
      if (n === null) return undefined;
      text += decoder.decode(buf.subarray(0, n));
    }
    return undefined;
  };
  try {
    if (!(await next("QMP"))) return undefined;
    await send({ execute: "qmp_capabilities" });
    if (!(await next("return"))) return undefined;
    await send({ execute: "human-monitor-command", arguments: { "command-line": command } });
    const answer = await next("return");
    return typeof answer?.return === "string" ? answer.return : undefined;
  } catch {
    return undefined; // the emulator went away
  } finally {
    try {
      conn.close();
    } catch { /* closed already */ }
  }
}

export async function runPlan(declared: RunPlan, opts: RunOptions): Promise<RunResult> {
  // An emulator pinned to some host CPUs (`machine.hostCpus`) has those alone.
  const cpus = declared.scenario.machine?.hostCpus?.length ?? navigator.hardwareConcurrency;
  const plan = underLoad(declared, busyFactor(Deno.loadavg()[0]!, cpus));
  const backend = backendFor(plan);
  const dir = join(RUNS_DIR, runDirName(plan));
  await Deno.mkdir(dir, { recursive: true });
  const finish = async (r: RunResult) => {
    await Deno.writeTextFile(join(dir, "result.json"), JSON.stringify(r, null, 2) + "\n");
    await Deno.remove(join(RUNS_DIR, "latest")).catch(() => {});
    await Deno.symlink(dir, join(RUNS_DIR, "latest")).catch(() => {});
    return r;
  };

  const unsupported = backend.unsupported(plan);
  if (unsupported) {
    return finish(notRun(plan, "skip", unsupported, dir));
  }

  const artifacts = await build(plan, opts.progress);
  const host = await plan.scenario.host?.(dir);
  try {
    return await runOn(plan, host, dir, artifacts, opts, finish);
  } finally {
    await host?.stop?.();
  }
}

/** The run itself, with what the scenario's host side set up. */
async function runOn(
  plan: RunPlan,
  host: HostSide | undefined,
  dir: string,
  artifacts: Artifacts,
  opts: RunOptions,
  finish: (r: RunResult) => Promise<RunResult>,
): Promise<RunResult> {
  const backend = backendFor(plan);
  const cmdline = plan.cmdline;
  const machine = plan.scenario.machine;
  const launched = host
    ? {
      ...plan,
      scenario: {
        ...plan.scenario,
        machine: {
          ...machine,
          emulatorArgs: {
            ...machine.emulatorArgs,
            qemu: [...machine.emulatorArgs?.qemu ?? [], ...host.qemuArgs],
          },
        },
      },
    }
    : plan;
  const launch = backend.launch(launched, artifacts, cmdline);
  await fillRunDir(dir, artifacts, launch);
  // The monitor's socket: in a short directory of its own (a socket's path
  // has at most 107 bytes; run directories' are longer).
  const monitorDir = launch.monitor && await Deno.makeTempDir({ prefix: "sv-" });
  const monitor = monitorDir && join(monitorDir, "monitor");
  const emulatorArgs = [...launch.args, ...(monitor ? launch.monitor!.args(monitor) : [])];
  // Pinned to some host CPUs (`machine.hostCpus`): through taskset, which execs the emulator.
  const pinned = plan.scenario.machine?.hostCpus;
  const [bin, ...args] = pinned
    ? ["taskset", "-c", pinned.join(","), launch.bin, ...emulatorArgs]
    : [launch.bin, ...emulatorArgs];
  await Deno.writeTextFile(
    join(dir, "command.txt"),
    `cd ${shellQuote(dir)} && ${[bin!, ...args].map(shellQuote).join(" ")}\n`,
  );

  opts.progress(`booting ${planId(plan)}`);
  const stream = new EventStream();
  const eventTimesMs: number[] = [];
  const started = performance.now();
  let spawnError: string | undefined;
  let exitCode: number | null = null;
  let timedOut = false;
  // The emulator's log, read as it grows: a crash it records may leave it running.
  const emulatorLog = new FileTail(join(dir, launch.log));
  let logText = "";
  let emulatorCrash: string | undefined;
  // The first end the log records stays: a reset is not hidden by a later power-off.
  let emulatorEnd: EmulatorEnd | undefined;
  const readLog = async () => {
    // The fresh bytes with the end of the last read, for a line split between reads.
    const window = logText + new TextDecoder().decode(await emulatorLog.read());
    emulatorCrash ??= backend.crashIn(window);
    emulatorEnd ??= backend.endIn?.(window);
    logText = window.slice(-4096);
  };
  try {
    // Deno.Command, not dax: the run follows the emulator's files while it
    // runs and stops it with the signal its backend needs.
    const child = new Deno.Command(bin!, {
      args,
      env: launch.env,
      cwd: dir,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const outputs = Promise.all([
      child.stdout.pipeTo((await Deno.create(join(dir, "stdout.log"))).writable),
      child.stderr.pipeTo((await Deno.create(join(dir, "stderr.log"))).writable),
    ]);
    let exited = false;
    const status = child.status.then((s) => {
      exited = true;
      return s;
    });
    const serial = new FileTail(join(dir, RUN_FILES.serial));
    const readSerial = async () => {
      const fresh = stream.push(await serial.read());
      const now = Math.round(performance.now() - started);
      for (const _ of fresh) eventTimesMs.push(now);
      if (opts.verbose) { for (const e of fresh) opts.progress(`  ${describe(e)}`); }
    };
    const deadline = started + plan.timeoutS * 1000;
    let endedAt: number | undefined;
    let crashedAt: number | undefined;
    let draining = !launch.terminal;
    while (!exited) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      draining ||= await drainPty(child.pid, join(dir, launch.terminal!));
      await readSerial();
      const now = performance.now();
      if (endedAt === undefined && stream.events.some((e) => TERMINAL.has(e.ev))) endedAt = now;
      // Bochs in shutdown state keeps running after the crash it logged.
      await readLog();
      if (crashedAt === undefined && emulatorCrash) crashedAt = now;
      const graceOver = (endedAt !== undefined && now - endedAt > GRACE_MS) ||
        (crashedAt !== undefined && now - crashedAt > CRASH_GRACE_MS);
      if (!exited && (now > deadline || graceOver)) {
        timedOut = endedAt === undefined && crashedAt === undefined;
        // Where every vCPU was, for a hang: the emulator's own view.
        if (timedOut && monitor) {
          const registers = await ask(monitor, launch.monitor!.registers);
          if (registers) await Deno.writeTextFile(join(dir, RUN_FILES.registers), registers);
        }
        try {
          child.kill(launch.stopSignal);
        } catch { /* exited meanwhile */ }
        const killed = await Promise.race([
          status.then(() => true),
          new Promise<boolean>((r) => setTimeout(() => r(false), 2000)),
        ]);
        if (!killed) {
          try {
            child.kill("SIGKILL");
          } catch { /* exited meanwhile */ }
        }
        break;
      }
    }
    const s = await status;
    exitCode = s.signal ? null : s.code;
    await outputs;
    await readSerial();
  } catch (e) {
    spawnError = e instanceof Deno.errors.NotFound
      ? `${launch.bin} not found`
      : `cannot start ${launch.bin}: ${e instanceof Error ? e.message : e}`;
  }
  stream.end();
  if (monitorDir) await Deno.remove(monitorDir, { recursive: true }).catch(() => {});
  await readLog();
  const durationMs = Math.round(performance.now() - started);

  const model = cpuModel(plan);
  const info: RunInfo = {
    backend: plan.backend,
    cpu: plan.cpu,
    boot: plan.boot,
    firmware: plan.firmware,
    timeoutS: plan.timeoutS,
    busy: plan.busy,
    vendor: model.vendor,
    features: model.features,
    cmdline,
    memoryMiB: plan.scenario.machine.memoryMiB ?? DEFAULT_MEMORY_MIB,
    smp: plan.scenario.machine.smp ?? DEFAULT_SMP,
    numa: plan.scenario.machine.numa,
    fakeNodes: fakeNodes(plan.scenario, plan.backend),
    payloadSize: artifacts.payload ? (await Deno.stat(artifacts.payload)).size : undefined,
    meter: artifacts.meter
      ? parseMeter(readOr(join(dir, "meter.txt")), plan.scenario.machine.numa)
      : undefined,
  };
  const events = stream.events;
  const s = plan.scenario;
  const expect = typeof s.expect === "function" ? s.expect(info) : s.expect;
  const problems = checkExpectations(events, expect, info, s.absent, s.exits);
  // A metered run that counted nothing measured nothing: never a 0 % local.
  if (artifacts.meter && !(info.meter && info.meter.cpus.some((c) => c.accesses.some((n) => n)))) {
    problems.push("the meter counted no access");
  }
  for (const check of s.checks ?? []) problems.push(...check(events, info));
  if (s.guestOutput) {
    problems.push(
      ...s.guestOutput(readOr(join(dir, RUN_FILES.guest)), info).map((p) => `guest output: ${p}`),
    );
  }
  if (host?.check && spawnError === undefined) {
    problems.push(...(await host.check(plan)).map((p) => `host: ${p}`));
  }
  const stderrTail = (await tail(join(dir, "stderr.log"), 1500)) +
    (await tail(join(dir, "stdout.log"), 500));
  const verdict = classify({
    events,
    timedOut,
    exitCode,
    spawnError,
    emulatorCrash,
    emulatorEnd,
    recordsEnd: backend.endIn !== undefined && spawnError === undefined,
    malformed: stream.malformed.length,
    stderrTail,
    successExitCode: launch.successExitCode,
    problems,
  });
  if (s.expectReason && !s.expectReason.test(verdict.reason)) {
    problems.push(`verdict reason "${verdict.reason}" does not match ${s.expectReason}`);
  }
  await Deno.writeTextFile(
    join(dir, "events.jsonl"),
    events.map((e) => JSON.stringify(e)).join("\n") + (events.length ? "\n" : ""),
  );
  if (stream.malformed.length > 0) {
    await Deno.writeTextFile(join(dir, "malformed.txt"), stream.malformed.join("\n") + "\n");
  }
  return finish({
    ...notRun(plan, verdict.status, verdict.reason, dir),
    problems,
    durationMs,
    events,
    eventTimesMs,
    meter: info.meter,
  });
}
