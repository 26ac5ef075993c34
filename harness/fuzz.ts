/**
 * Random guests against the real hypervisor: random bytes and random
 * instruction sequences aimed at what a guest controls (ports, MSRs, control
 * registers, descriptor tables, hypercalls, virtualization instructions), in
 * real, protected and long mode, on QEMU EPYC (AMD) and Bochs tigerlake
 * (Intel). The guest may do anything; the hypervisor may not fail: a run is
 * a hypervisor failure when the kernel reports an exception, a panic or a
 * VM-entry failure, when the run ends without the kernel's own `exit`, or
 * when its evidence contradicts itself. Each case is made from its seed
 * alone, so a failing seed replays exactly (`--seed S --count 1`).
 */
import { join } from "node:path";
import { BuildError, buildKernel } from "./build.ts";
import { ensureTools, toolsFor } from "./prereq.ts";
import { RUN_FILES } from "./backends/backend.ts";
import { copyRunFiles, inParallel } from "./matrix.ts";
import type { Outcome } from "./report.ts";
import { pruneRuns, runPlan, type RunResult } from "./runner.ts";
import type { RunPlan, Scenario, Vendor } from "./scenario.ts";

export type Mode = "real" | "protected" | "long";
const MODES: readonly Mode[] = ["real", "protected", "long"];

/** A small, fast PRNG (mulberry32): the same seed gives the same guest everywhere. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0);
  };
}

export interface FuzzCase {
  seed: number;
  mode: Mode;
  kind: "bytes" | "instructions";
  /** NASM source of the payload. */
  asm: string;
}

/** Ports and MSRs a hostile guest would try first; random ones are added. */
const PORTS = [
  0x20,
  0x21,
  0x40,
  0x43,
  0x61,
  0x64,
  0x70,
  0x71,
  0x80,
  0x92,
  0xa0,
  0xcf8,
  0xcf9,
  0xcfc,
  0xf4,
  0x2f8,
  0x2fd,
  0x3f8,
  0x3fb,
  0x3fc,
  0x3fd,
  0x402,
  0x604,
  0x8900,
  0xb000,
  0xb004,
  0xe9,
];
const MSRS = [
  0x10,
  0x1b,
  0x3a,
  0x48,
  0x49,
  0x174,
  0x277,
  0x480,
  0x48d,
  0x491,
  0x6e0,
  0x802,
  0x830,
  0xc0000080,
  0xc0000081,
  0xc0000082,
  0xc0000100,
  0xc0000102,
  0xc0010114,
  0xc0010117,
  0xc0010015,
  0x40000000,
];
const PLAIN = [
  "cli",
  "sti",
  "hlt",
  "pause",
  "nop",
  "int3",
  "ud2",
  "cpuid",
  "rdtsc",
  "rdtscp",
  "rdpmc",
  "xgetbv",
  "xsetbv",
  "invd",
  "wbinvd",
  "clts",
  "vmcall",
  "vmmcall",
  "vmlaunch",
  "vmresume",
  "vmxoff",
  "vmrun",
  "vmload",
  "vmsave",
  "stgi",
  "clgi",
  "db 0x0f, 0x01, 0xde", // SKINIT (NASM refuses it in 16-bit code)
  "monitor",
  "mwait",
  "iret",
  "sysenter",
  "rep outsb",
  "rep insb",
  "outsb",
  "insb",
  "db 0xf0, 0x0f, 0x01, 0xc1", // LOCK VMCALL
  "db 0x66, 0x0f, 0x01, 0xc1", // 66 VMCALL
  "db 0xf1", // INT1
];

/** One random instruction (or a few that set one up) for `mode`. */
function instruction(next: () => number, mode: Mode): string {
  const pick = <T>(xs: readonly T[]): T => xs[next() % xs.length]!;
  const long = mode === "long";
  const a = long ? "rax" : "eax";
  const addr = () => `0x${(mode === "real" ? next() & 0xffff : next() & 0x3fffff).toString(16)}`;
  const u32 = () => `0x${next().toString(16)}`;
  const bit = () => next() % (long ? 64 : 32);
  switch (next() % 14) {
    case 0:
    case 1:
      return pick(PLAIN);
    case 2:
      return `mov dx, 0x${(next() % 4 === 0 ? next() & 0xffff : pick(PORTS)).toString(16)}\n` +
        `    mov eax, ${u32()}\n    ${
          pick(["out dx, al", "out dx, ax", "out dx, eax", "in al, dx", "in eax, dx"])
        }`;
    case 3:
      return `mov ecx, 0x${(next() % 4 === 0 ? next() : pick(MSRS)).toString(16)}\n` +
        `    mov eax, ${u32()}\n    mov edx, ${next() % 2 ? "0" : u32()}\n    ${
          pick(["rdmsr", "wrmsr"])
        }`;
    case 4: {
      const cr = pick(["cr0", "cr3", "cr4", "cr0", "cr4"]);
      return `mov ${a}, ${cr}\n    btc ${a}, ${bit()}\n    mov ${cr}, ${a}`;
    }
    case 5:
      return `mov ${a}, ${
        long ? `0x${next().toString(16)}${next().toString(16).padStart(8, "0")}` : u32()
      }\n` +
        `    mov ${
          pick(["cr0", "cr4", "cr3", "cr8", "dr7"].filter((r) => long || r !== "cr8"))
        }, ${a}`;
    case 6:
      return `${pick(["lidt", "lgdt", "sidt", "sgdt", "invlpg"])} [${addr()}]`;
    case 7:
      return `mov eax, ${next() % 6}\n    mov ebx, ${u32()}\n    mov ecx, ${
        next() % 300
      }\n    vmcall`;
    case 8:
      return `mov ax, ${next() & 0xffff}\n    ${
        pick(["ltr ax", "lldt ax", "lmsw ax", "mov ss, ax", "mov ds, ax", "verr ax"])
      }`;
    case 9:
      return `mov dword [${addr()}], ${u32()}`;
    case 10:
      return `int 0x${(next() & 0xff).toString(16)}`;
    case 11:
      return `${pick(["vmxon", "vmptrld", "vmclear", "vmptrst"])} [${addr()}]`;
    case 12:
      return `jmp short $ + ${(next() % 24) - 8}`;
    default:
      return `db ${
        Array.from({ length: 1 + next() % 6 }, () => `0x${(next() & 0xff).toString(16)}`).join(", ")
      }`;
  }
}

/** The guest made from `seed`: its mode, and either random bytes or random instructions. */
export function fuzzCase(seed: number): FuzzCase {
  const next = rng(seed);
  const mode = MODES[next() % MODES.length]!;
  const kind = next() % 3 === 0 ? "bytes" : "instructions";
  const bits = mode === "real" ? 16 : mode === "protected" ? 32 : 64;
  const body = kind === "bytes"
    ? Array.from({ length: 16 + next() % 240 }, () => `0x${(next() & 0xff).toString(16)}`)
      .reduce((lines: string[], b, i) => {
        if (i % 16 === 0) lines.push(`    db ${b}`);
        else lines[lines.length - 1] += `, ${b}`;
        return lines;
      }, [])
    : Array.from({ length: 4 + next() % 36 }, () => `    ${instruction(next, mode)}`);
  return {
    seed,
    mode,
    kind,
    asm: [`; fuzz seed ${seed}: ${kind}, ${mode} mode`, `bits ${bits}`, "org 0x8000", ...body, ""]
      .join("\n"),
  };
}

/** Why `r` shows a hypervisor failure, or undefined when the hypervisor held. */
export function hypervisorFailure(r: RunResult): string | undefined {
  const bad = r.events.find((e) => ["exception", "panic", "entry-failure"].includes(e.ev));
  if (bad) return `the kernel reported ${bad.ev}`;
  if (r.status === "crash" || r.status === "timeout" || r.status === "emulator-error") {
    return `${r.status}: ${r.reason}`;
  }
  if (!r.events.some((e) => e.ev === "exit")) return `no exit event: ${r.reason}`;
  if (r.reason.startsWith("contradictory evidence") || r.reason.includes("malformed")) {
    return r.reason;
  }
  return undefined;
}

/** Where each vendor's guests run. */
export const FUZZ_TARGETS: Record<Vendor, Pick<RunPlan, "backend" | "cpu" | "boot">> = {
  intel: { backend: "bochs", cpu: "tigerlake", boot: "iso" },
  amd: { backend: "qemu", cpu: "EPYC", boot: "kernel" },
};

/** The guest's watchdog: long enough for any straight-line case, short against spinning. */
const WATCHDOG_MS = 300;

export function fuzzPlan(c: FuzzCase, vendor: Vendor): RunPlan {
  const scenario: Scenario = {
    name: `fuzz-${vendor}-${c.seed}`,
    description: `fuzz seed ${c.seed}: ${c.kind} in ${c.mode} mode`,
    groups: ["guest", "hostile"],
    payload: { asm: c.asm },
    cmdline: `guest=${c.mode} guest.watchdog=${WATCHDOG_MS}`,
    machine: { memoryMiB: 128 },
    targets: [],
    timeoutS: 30,
    expect: [],
  };
  return {
    scenario,
    ...FUZZ_TARGETS[vendor],
    firmware: "bios",
    timeoutS: 30,
    cmdline: scenario.cmdline!,
  };
}

export interface FuzzOptions {
  vendors: Vendor[];
  count: number;
  seed: number;
  jobs: number;
  /** Where failing seeds are saved with their run directories. */
  saveDir: string;
  say: (msg: string) => void;
}

export interface FuzzSummary {
  runs: number;
  failures: { vendor: Vendor; seed: number; why: string; saved: string }[];
  /** Seeds whose payload did not assemble. */
  unbuilt: number[];
  /** How the guests ended (`guest-end`'s `how`), per vendor. */
  ends: Record<string, Record<string, number>>;
}

export async function runFuzz(o: FuzzOptions): Promise<FuzzSummary> {
  const plans = o.vendors.flatMap((vendor) =>
    Array.from({ length: o.count }, (_, i) => o.seed + i).map((seed) => ({
      vendor,
      seed,
      plan: fuzzPlan(fuzzCase(seed), vendor),
    }))
  );
  await ensureTools(plans.flatMap((p) => toolsFor(p.plan)), o.say);
  await buildKernel(o.say);
  await pruneRuns();
  const summary: FuzzSummary = { runs: 0, failures: [], unbuilt: [], ends: {} };
  await inParallel(plans, o.jobs, async ({ vendor, seed, plan }) => {
    let r: RunResult;
    try {
      r = await runPlan(plan, { progress: () => {} });
    } catch (e) {
      if (!(e instanceof BuildError)) throw e;
      // A case that does not assemble is the generator's bug, not a run.
      summary.unbuilt.push(seed);
      o.say(`seed ${seed}: ${e.message}`);
      return;
    }
    await dropIso(r);
    summary.runs++;
    const end = r.events.find((e) => e.ev === "guest-end");
    const how = end ? String(end.how) : "no guest-end";
    const tally = summary.ends[vendor] ??= {};
    tally[how] = (tally[how] ?? 0) + 1;
    const why = hypervisorFailure(r);
    if (why) {
      const saved = join(o.saveDir, `${vendor}-${seed}`);
      await saveCase(r, plan, saved);
      summary.failures.push({ vendor, seed, why, saved });
      o.say(
        `FAIL ${vendor} seed ${seed}: ${why}\n  saved: ${saved}\n  replay: ` +
          `deno task fuzz --vendor ${vendor} --seed ${seed} --count 1`,
      );
    }
  });
  return summary;
}

/** Each case's ISO is used once: removed from the build cache (24 MB each). */
async function dropIso(r: RunResult) {
  if (!r.runDir) return;
  try {
    await Deno.remove(await Deno.realPath(join(r.runDir, RUN_FILES.iso)));
  } catch {
    // no ISO (QEMU -kernel)
  }
}

async function saveCase(r: RunResult, plan: RunPlan, to: string) {
  if (r.runDir) await copyRunFiles(r.runDir, to);
  else await Deno.mkdir(to, { recursive: true });
  const asm = plan.scenario.payload && "asm" in plan.scenario.payload
    ? plan.scenario.payload.asm
    : "";
  await Deno.writeTextFile(join(to, "payload.asm"), asm);
}

/** The counts per vendor and ending, and the closing `N passed, N failed` line. */
/** Guests the hypervisor held as passed; its failures and unassembled cases as failed. */
export function fuzzCounts(s: FuzzSummary): Record<Outcome, number> {
  return {
    passed: s.runs - s.failures.length,
    failed: s.failures.length + s.unbuilt.length,
    skipped: 0,
  };
}

export function fuzzReport(s: FuzzSummary): string {
  const lines = Object.entries(s.ends).map(([vendor, ends]) =>
    `${vendor} (${FUZZ_TARGETS[vendor as Vendor].backend} ${
      FUZZ_TARGETS[vendor as Vendor].cpu
    }): ` +
    Object.entries(ends).sort(([, a], [, b]) => b - a).map(([how, n]) => `${how} ${n}`).join(", ")
  );
  const { passed, failed } = fuzzCounts(s);
  lines.push(
    `${s.runs} guests, ${s.failures.length} hypervisor failure(s)` +
      (s.unbuilt.length ? `, ${s.unbuilt.length} case(s) that did not assemble` : ""),
  );
  lines.push(`${passed} passed, ${failed} failed`);
  return lines.join("\n");
}
