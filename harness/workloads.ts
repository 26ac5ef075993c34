/**
 * Reference NUMA workloads: SMP guest payloads that run on every vCPU over
 * `sizeMiB` of data from 2 MiB, touching one quadword every `STRIDE` bytes,
 * `passes` times; each vCPU reports how many accesses it made (tag 1). Each
 * workload also declares its access pattern (`model`), from which the
 * benchmark derives the oracle (every page on the node that uses it most)
 * and the worst placement (every page on the node that uses it least).
 */
import type { SvEvent } from "./events.ts";
import type { Payload } from "./scenario.ts";

export const WORKLOADS = [
  "private",
  "master-init",
  "shared-read",
  "shared-write-hot",
  "random",
  "stream",
  "phase-change",
] as const;
export type Workload = typeof WORKLOADS[number];

/** Data starts at 2 MiB: below are the payload, tables and stacks. */
export const DATA = 0x200000;
/** Bytes between two accesses: 16 per 4 KiB page. */
export const STRIDE = 256;
/** The hot region of `shared-write-hot`: 16 pages. */
const HOT_BYTES = 16 * 4096;

export interface WorkloadSize {
  sizeMiB: number;
  passes: number;
}

/** Defines and registers every workload starts from: its vCPU, the count, its slice. */
const prologue = (s: WorkloadSize) => [
  "bits 64",
  "org 0x8000",
  '%include "hypercall.inc"',
  `%define DATA ${DATA}`,
  `%define STRIDE ${STRIDE}`,
  `%define SIZE ${s.sizeMiB * 0x100000}`,
  `%define PASSES ${s.passes}`,
  "    mov r12, rdi                ; this vCPU",
  "    mov r13, rsi                ; vCPUs",
  "    xor r8d, r8d                ; accesses made",
  "    mov rax, SIZE",
  "    xor edx, edx",
  "    div r13",
  "    mov r15, rax                ; the slice of one vCPU",
  "    imul rax, r12",
  "    lea r14, [rax + DATA]       ; this vCPU's slice",
];

const EPILOGUE = ["done:", "    REPORT64 r8, 1", "    hlt", ""];

/** `body` over [start, start + len) every STRIDE, `passes` times (`rsi`: the address). */
function sweep(label: string, start: string, len: string, body: string[], passes = "PASSES") {
  return [
    `    mov rbx, ${passes}`,
    `${label}_pass:`,
    `    mov rsi, ${start}`,
    `    mov rdi, ${start}`,
    `    add rdi, ${len}`,
    `${label}_loop:`,
    ...body,
    "    add rsi, STRIDE",
    "    cmp rsi, rdi",
    `    jb ${label}_loop`,
    "    dec rbx",
    `    jnz ${label}_pass`,
  ];
}

const UPDATE = ["    mov rax, [rsi]", "    inc rax", "    mov [rsi], rax", "    add r8, 2"];
const READ = ["    mov rax, [rsi]", "    add r8, 1"];
const WRITE = ["    mov [rsi], r12", "    add r8, 1"];
const BARRIER = ["    mov eax, HC_BARRIER", "    vmcall"];
/** Only vCPU 0 runs `body`, then all meet. */
const byFirst = (label: string, body: string[]) => [
  "    test r12, r12",
  `    jnz ${label}_skip`,
  ...body,
  `${label}_skip:`,
  ...BARRIER,
];

const BODIES: Record<Workload, string[]> = {
  private: sweep("work", "r14", "r15", UPDATE),
  "master-init": [
    ...byFirst("init", sweep("init", "DATA", "SIZE", WRITE, "1")),
    ...sweep("work", "r14", "r15", UPDATE),
  ],
  "shared-read": [
    ...byFirst("init", sweep("init", "DATA", "SIZE", WRITE, "1")),
    ...sweep("work", "DATA", "SIZE", READ),
  ],
  "shared-write-hot": sweep("work", "DATA", `${HOT_BYTES}`, UPDATE, "PASSES * 16"),
  random: [
    // An LCG per vCPU; SIZE / STRIDE / vCPUs updates a pass, anywhere in the data.
    "    lea r9, [r12 * 2 + 1]       ; the LCG's state",
    "    mov rax, SIZE / STRIDE",
    "    xor edx, edx",
    "    div r13",
    "    imul rax, PASSES",
    "    mov rbx, rax",
    "work_loop:",
    "    mov rax, 6364136223846793005",
    "    imul r9, rax",
    "    mov rax, 1442695040888963407",
    "    add r9, rax",
    "    mov rax, r9",
    "    shr rax, 33",
    "    xor edx, edx",
    "    mov rcx, SIZE / STRIDE",
    "    div rcx",
    "    imul rsi, rdx, STRIDE",
    "    add rsi, DATA",
    ...UPDATE,
    "    dec rbx",
    "    jnz work_loop",
  ],
  stream: [
    // Half the slice read, the other half written: b[i] = a[i].
    "    shr r15, 1",
    "    lea rdi, [r14 + r15]",
    "    mov rbx, PASSES",
    "work_pass:",
    "    xor ecx, ecx",
    "work_loop:",
    "    mov rax, [r14 + rcx]",
    "    mov [rdi + rcx], rax",
    "    add r8, 2",
    "    add rcx, STRIDE",
    "    cmp rcx, r15",
    "    jb work_loop",
    "    dec rbx",
    "    jnz work_pass",
  ],
  "phase-change": [
    // Each vCPU updates its slice, then (all met) the next vCPU's slice;
    // vCPU 0 reports the time stamp counter at the change (tag 2).
    ...sweep("first", "r14", "r15", UPDATE),
    ...byFirst("change", [
      "    rdtsc",
      "    shl rdx, 32",
      "    or rax, rdx",
      "    REPORT64 rax, 2",
    ]),
    "    lea rax, [r12 + 1]",
    "    xor edx, edx",
    "    div r13",
    "    mov rax, rdx",
    "    imul rax, r15",
    "    lea r14, [rax + DATA]       ; the next vCPU's slice",
    ...sweep("second", "r14", "r15", UPDATE),
  ],
};

/** The payload of `w` with its size and passes. */
export function workloadPayload(w: Workload, s: WorkloadSize): Payload {
  return {
    asm: [
      `; workload ${w}: ${s.sizeMiB} MiB, ${s.passes} passes`,
      ...prologue(s),
      ...BODIES[w],
      ...EPILOGUE,
    ].join("\n"),
  };
}

/**
 * Accesses per 4 KiB data page and vCPU, as the workload declares them:
 * `accesses[page][vcpu]`. `random` spreads its updates evenly over every
 * page, for every vCPU.
 */
export function model(w: Workload, s: WorkloadSize, vcpus: number): number[][] {
  const perPage = 4096 / STRIDE;
  const pages = (s.sizeMiB * 0x100000) / 4096;
  const slice = pages / vcpus;
  const owner = (p: number) => Math.min(vcpus - 1, Math.floor(p / slice));
  return Array.from({ length: pages }, (_, p) =>
    Array.from({ length: vcpus }, (_, v) => {
      const mine = owner(p) === v;
      switch (w) {
        case "private":
          return mine ? 2 * perPage * s.passes : 0;
        case "master-init":
          return (mine ? 2 * perPage * s.passes : 0) + (v === 0 ? perPage : 0);
        case "shared-read":
          return perPage * s.passes + (v === 0 ? perPage : 0);
        case "shared-write-hot":
          return p < HOT_BYTES / 4096 ? 2 * perPage * s.passes * 16 : 0;
        case "random":
          return (2 * perPage * s.passes) / vcpus;
        case "stream": {
          // Each slice: its first half read, its second half written, once per pass.
          return mine ? perPage * s.passes : 0;
        }
        case "phase-change": {
          // Its owner's for `passes`, then the previous vCPU's, moved on to it.
          const second = (v + 1) % vcpus === owner(p);
          return (mine ? 2 * perPage * s.passes : 0) + (second ? 2 * perPage * s.passes : 0);
        }
      }
    }));
}

/**
 * The oracle's and the worst placement's local fraction and cost for
 * `accesses` (per page and vCPU), vCPU v on node `nodeOf[v]`, with access
 * weights `weight[from][to]` (local 1): each page on the node where its
 * accesses are cheapest (oracle), or dearest (worst).
 */
export function bounds(
  accesses: number[][],
  nodeOf: number[],
  weight: number[][],
): { oracle: { local: number; cost: number }; worst: { local: number; cost: number } } {
  const nodes = weight.length;
  let total = 0;
  const acc = { oracle: { local: 0, cost: 0 }, worst: { local: 0, cost: 0 } };
  for (const page of accesses) {
    const costOn = (n: number) =>
      page.reduce((c, count, v) => c + count * (weight[nodeOf[v]!]?.[n] ?? 1), 0);
    const localOn = (n: number) =>
      page.reduce((c, count, v) => c + (nodeOf[v] === n ? count : 0), 0);
    const all = Array.from({ length: nodes }, (_, n) => n);
    const best = all.reduce((a, b) => (costOn(b) < costOn(a) ? b : a));
    const worst = all.reduce((a, b) => (costOn(b) > costOn(a) ? b : a));
    acc.oracle.local += localOn(best);
    acc.oracle.cost += costOn(best);
    acc.worst.local += localOn(worst);
    acc.worst.cost += costOn(worst);
    total += page.reduce((a, b) => a + b, 0);
  }
  const norm = (x: { local: number; cost: number }) => ({
    local: total ? x.local / total : 0,
    cost: total ? x.cost / total : 0,
  });
  return { oracle: norm(acc.oracle), worst: norm(acc.worst) };
}

/**
 * `phase-change` under `adaptive`: how many sampling periods after the
 * change (vCPU 0's time stamp counter, reported with tag 2) `pages` pages
 * had moved. The `adaptive-look` events give periods and time stamps; the
 * change's period is interpolated between the looks around it (periods
 * last longer while pages move). Undefined without a change, two looks
 * around it, or when fewer pages moved.
 */
export function recoveryPeriods(events: SvEvent[], pages: number): number | undefined {
  const change = events.find((e) => e.ev === "vmexit" && e.call === "report" && e.tag === "0x2");
  if (!change) return undefined;
  const at = Number(BigInt(change.value as string));
  const looks = events.filter((e) => e.ev === "adaptive-look") as unknown as {
    period: number;
    tsc: number;
    migrated: number;
  }[];
  const after = looks.findIndex((l) => l.tsc > at);
  const [a, b] = after > 0 ? [looks[after - 1], looks[after]] : [looks[0], looks[1]];
  if (after < 0 || !a || !b || a.period === b.period) return undefined;
  const changed = a.period + ((at - a.tsc) * (b.period - a.period)) / (b.tsc - a.tsc);
  let moved = 0;
  const done = looks.slice(after).find((l) => (moved += l.migrated) >= pages);
  return done && Math.max(0, Math.ceil(done.period - changed));
}
