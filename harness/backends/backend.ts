/** What every emulator backend provides to the runner. */
import type { RunPlan } from "../scenario.ts";
import type { EmulatorEnd } from "../verdict.ts";

/** Build outputs, linked into the run directory under these names. */
export interface Artifacts {
  kernel: string;
  iso?: string;
  payload?: string;
  /** The locality meter plugin, for QEMU runs whose machine asks for it. */
  meter?: string;
}

export const RUN_FILES = {
  kernel: "kernel.elf",
  iso: "boot.iso",
  payload: "payload.bin",
  meter: "meter.so",
  /** COM2: the hypervisor's events, on a port no guest reaches. */
  serial: "hypervisor.log",
  /** COM1: firmware, GRUB and the guest's own output; never evidence. */
  guest: "guest.log",
  /** Every vCPU's registers when the run timed out (emulators with a monitor). */
  registers: "registers.txt",
} as const;

/** How to start one run; every path is relative to the run directory. */
export interface Launch {
  bin: string;
  args: string[];
  /** Environment variables added to the harness's own. */
  env?: Record<string, string>;
  /** Files to write into the run directory before starting. */
  files: Record<string, string | Uint8Array>;
  /** Files to copy into the run directory (name: source), e.g. OVMF's VARS. */
  copies: Record<string, string>;
  /** The emulator's own log file. */
  log: string;
  /** Exit status of an emulator whose kernel powered off with success. */
  successExitCode?: number;
  /**
   * The file the emulator's own pseudo-terminal is drained into, for one
   * that opens one and blocks when nobody reads it (`pty.ts`).
   */
  terminal?: string;
  /** SIGKILL for emulators that ignore SIGTERM. */
  stopSignal: Deno.Signal;
  /**
   * The arguments that give the emulator a QMP monitor on the Unix socket
   * at `path`, and the human-monitor command that prints every vCPU's
   * registers: a run that times out saves its answer (`RUN_FILES.registers`).
   */
  monitor?: { args: (path: string) => string[]; registers: string };
}

export interface Backend {
  /** Why this backend cannot run `plan` on this host; undefined when it can. */
  unsupported(plan: RunPlan): string | undefined;
  launch(plan: RunPlan, artifacts: Artifacts, cmdline: string): Launch;
  /** A crash the emulator logged that the kernel could not report. */
  crashIn(log: string): string | undefined;
  /**
   * How the machine ended, as the emulator's log records it; backends whose
   * log does not say (QEMU: its exit status does) have none.
   */
  endIn?(log: string): EmulatorEnd | undefined;
}

/** Quotes an argument for a copy-pasteable shell command line. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_.,:=+\/@%-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}
