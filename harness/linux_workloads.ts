/**
 * Workloads inside the Linux guest: the reference access patterns as
 * `sv-threads` (payloads/linux/sv-threads.c, a thread pinned to each CPU),
 * and multi-threaded programs from Debian packages run on a fixed input
 * (payloads/linux/sv-lines.c) between `sv-window` marks
 * (payloads/linux/sv-window.c). Each says what
 * /init runs, what the guest needs in its initramfs, what is wrong with
 * what the program reported, and how long its measured phase took.
 */
import { linuxMarkers, MARKER } from "./linux.ts";
import type { Workload } from "./workloads.ts";

/** sv-threads' access patterns: the reference workloads' (harness/workloads.ts). */
export type SvPattern = Workload;

/** What sv-threads must be run with, for its report to be checked. */
export interface SvThreads {
  pattern: SvPattern;
  /** Data per thread. */
  mib: number;
  /** The measured passes (each thread makes at least these). */
  passes: number;
  /** Unmeasured passes before them, in milliseconds of the guest's clock. */
  warmupMs?: number;
}

/** /init's line that runs `t` (the program must be in `programs`). */
export function svThreadsLine(t: SvThreads): string {
  return `sv-threads ${t.pattern} ${t.mib} ${t.passes}${t.warmupMs ? ` ${t.warmupMs}` : ""}`;
}

/** sv-threads' C source, for a scenario's `programs`. */
export const SV_THREADS = "linux/sv-threads.c";

/** The 64 KiB hot region of `shared-write-hot`, in words. */
const HOT_WORDS = (16 * 4096) / 8;

/**
 * What one pass adds to the sum thread `i` of `cpus` reports, by the
 * pattern's definition in payloads/linux/sv-threads.c: the words it updates
 * (once each), or for `shared-read` the ones it reads (all of them, ones).
 */
export function svThreadsPerPass(t: SvThreads, cpus: number, i: number): number {
  const words = (t.mib << 20) / 8;
  switch (t.pattern) {
    case "shared-read":
      return words * cpus;
    case "shared-write-hot": {
      const mine = Math.ceil((HOT_WORDS - i) / cpus);
      return Math.floor(words / Math.floor(HOT_WORDS / cpus)) * mine;
    }
    case "stream":
      return words / 2;
    default:
      return words;
  }
}

/** A thread's line of sv-threads' report. */
export interface SvThread {
  /** The CPU it ran on; -1: it moved. */
  cpu: number;
  passes: number;
  sum: number;
  /** Its measured passes, in milliseconds of the guest's clock. */
  ms: number;
}

/** sv-threads' report, thread by thread (undefined: a thread's line is missing or malformed). */
export function svThreadsReport(console: string, cpus: number): (SvThread | undefined)[] {
  const m = linuxMarkers(console);
  return Array.from({ length: cpus }, (_, i) => {
    const [, cpu, passes, sum, ms] =
      (m.get(`thread${i}`) ?? "").match(/^cpu (-?\d+) passes (\d+) sum (\d+) ms (\d+)$/) ?? [];
    return cpu === undefined
      ? undefined
      : { cpu: Number(cpu), passes: Number(passes), sum: Number(sum), ms: Number(ms) };
  });
}

/**
 * What is wrong with `sv-threads`' report (payloads/linux/sv-threads.c) of
 * a run of `t` on `cpus` CPUs: a thread per CPU, each on its own CPU, with
 * at least the measured passes, whose sum is its passes times what a pass
 * gives it.
 */
export function svThreadsProblems(console: string, cpus: number, t: SvThreads): string[] {
  const m = linuxMarkers(console);
  const problems = m.get("threads") === String(cpus)
    ? []
    : [`sv-threads ran ${m.get("threads") ?? "no"} threads, not ${cpus}`];
  svThreadsReport(console, cpus).forEach((r, i) => {
    const per = svThreadsPerPass(t, cpus, i);
    if (!r || r.cpu !== i || r.passes < t.passes || r.sum !== r.passes * per) {
      problems.push(
        `thread ${i}: "${
          m.get(`thread${i}`) ?? "nothing"
        }", expected "cpu ${i} passes P sum P*${per} ms M" with P at least ${t.passes}`,
      );
    }
  });
  return problems;
}

/** A program run inside Linux with its measured phase. */
export interface LinuxWorkload {
  name: string;
  /** The project's programs it needs (`LinuxGuest.programs`). */
  programs: string[];
  /** The Debian programs it needs (`LinuxGuest.debian`). */
  debian?: string[];
  /** /init's lines. */
  run: string;
  /** What is wrong with what it reported, on `cpus` CPUs. */
  problems: (console: string, cpus: number) => string[];
  /** Its measured phase, in ms of the guest's clock (the slowest thread's). */
  ms: (console: string, cpus: number) => number | undefined;
}

/** sv-threads as a workload. */
export function svThreadsWorkload(t: SvThreads): LinuxWorkload {
  return {
    name: t.pattern,
    programs: [SV_THREADS],
    run: svThreadsLine(t),
    problems: (console, cpus) => svThreadsProblems(console, cpus, t),
    ms: (console, cpus) => {
      const report = svThreadsReport(console, cpus);
      return report.every((r) => r) ? Math.max(...report.map((r) => r!.ms)) : undefined;
    },
  };
}

/** Opens and closes the meter's window on every CPU (payloads/linux/sv-window.c). */
export const SV_WINDOW = "linux/sv-window.c";

/** Makes the fixed input (payloads/linux/sv-lines.c). */
export const SV_LINES = "linux/sv-lines.c";
/** The input: lines of a pseudo-random number and the line's number, 6 MiB. */
const MAKE_INPUT = "sv-lines 400000 > /tmp/input";

/** The window's time from its marks, or undefined without both. */
function windowMs(console: string): number | undefined {
  const m = linuxMarkers(console);
  // A missing mark reads as NaN.
  const [open, close] = [Number(m.get("window-open")), Number(m.get("window-close"))];
  return Number.isFinite(open) && Number.isFinite(close) ? close - open : undefined;
}

/** A problem unless markers `a` and `b` are there and equal. */
function markerEquals(m: Map<string, string>, a: string, b: string): string[] {
  const [x, y] = [m.get(a), m.get(b)];
  return x && x === y ? [] : [`${a} is ${JSON.stringify(x)} but ${b} ${JSON.stringify(y)}`];
}

/** A Debian program between sv-window's marks, after the input is made. */
function debianWorkload(
  name: string,
  debian: string[],
  command: string,
  check: string[],
  problems: (m: Map<string, string>) => string[],
): LinuxWorkload {
  return {
    name,
    programs: [SV_LINES, SV_WINDOW],
    debian,
    run: [MAKE_INPUT, "sv-window open", command, "sv-window close", ...check].join("\n"),
    problems: (console) => {
      const m = linuxMarkers(console);
      return [
        ...windowMs(console) === undefined ? ["the window's marks are missing"] : [],
        ...problems(m),
      ];
    },
    ms: windowMs,
  };
}

/**
 * pigz (Debian's parallel gzip): the main thread reads the input, a thread
 * per CPU compresses 128 KiB blocks of it; the compressed file must give
 * the input back.
 */
export const PIGZ = debianWorkload(
  "pigz",
  ["pigz:/usr/bin/pigz"],
  "/usr/bin/pigz -p $(nproc) -b 128 -c /tmp/input > /tmp/input.gz",
  [
    `echo "${MARKER} input-md5=$(md5sum < /tmp/input | cut -d' ' -f1)"`,
    `echo "${MARKER} pigz-back-md5=$(/usr/bin/pigz -dc /tmp/input.gz | md5sum | cut -d' ' -f1)"`,
  ],
  (m) => markerEquals(m, "input-md5", "pigz-back-md5"),
);

/**
 * GNU sort (coreutils) with a thread per CPU: the input read into one
 * buffer, sorted in parallel parts and merged; the output must be in order
 * and hold every line.
 */
export const SORT = debianWorkload(
  "sort",
  ["coreutils:/usr/bin/sort"],
  "/usr/bin/sort --parallel=$(nproc) -S 64M -n /tmp/input > /tmp/sorted",
  [
    `/usr/bin/sort -c -n /tmp/sorted && echo "${MARKER} sorted=yes"`,
    `echo "${MARKER} input-lines=$(wc -l < /tmp/input)"`,
    `echo "${MARKER} sorted-lines=$(wc -l < /tmp/sorted)"`,
  ],
  (m) => [
    ...m.get("sorted") === "yes" ? [] : ["sort's output is not in order"],
    ...markerEquals(m, "input-lines", "sorted-lines"),
  ],
);

/** The Debian programs the benchmark runs beside sv-threads. */
export const DEBIAN_WORKLOADS = [PIGZ, SORT];
