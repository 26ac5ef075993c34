/** Turns what happened during a run into one verdict with its reason. */
import { isEvent, type KernelEvent } from "./event_types.ts";
import type { SvEvent } from "./events.ts";
import type { Status } from "./scenario.ts";

export interface Outcome {
  events: SvEvent[];
  /** The run was stopped at its deadline. */
  timedOut: boolean;
  /** The emulator's exit status (null: killed or never started). */
  exitCode: number | null;
  /** Set when the emulator could not be started at all. */
  spawnError?: string;
  /**
   * A crash the emulator logged (a triple fault). It is the verdict only when
   * the kernel did not go on to report its `exit`: a guest's triple fault,
   * which the hypervisor handles, can leave the same line in Bochs' log.
   */
  emulatorCrash?: string;
  /**
   * How the emulator's own log says the machine ended, where it records that
   * (Bochs): `byKernel` when it was the kernel's power-off.
   */
  emulatorEnd?: EmulatorEnd;
  /** The backend records how the machine ended (then `emulatorEnd` is expected). */
  recordsEnd?: boolean;
  /** Lines on the hypervisor's channel that were not events. */
  malformed?: number;
  /** The tail of the emulator's stderr, to explain its failures. */
  stderrTail: string;
  /** QEMU's isa-debug-exit status for a kernel that powered off with success. */
  successExitCode?: number;
  /** Problems found by the scenario's expectations. */
  problems: string[];
}

export interface EmulatorEnd {
  what: string;
  byKernel: boolean;
}

export interface Verdict {
  status: Status;
  reason: string;
}

function first(events: SvEvent[], ev: string): SvEvent | undefined {
  return events.find((e) => e.ev === ev);
}

function crashReason(e: SvEvent): string {
  if (e.ev === "panic") return `kernel panic: ${e.message} at ${e.file}:${e.line}`;
  return `exception ${e.vector} (${e.name}) at rip ${e.rip}, error code ${e.error_code}, cr2 ${e.cr2}`;
}

/**
 * What the evidence says twice, differently: only the hypervisor writes its
 * channel, so any of these is a kernel bug or evidence that is not its own.
 */
export function contradictions(o: Outcome): string[] {
  const found: string[] = [];
  const evs = o.events;
  const exits = evs.filter((e) => e.ev === "exit");
  if (exits.length > 1) {
    found.push(`${exits.length} exit events (${exits.map((e) => e.status).join(", ")})`);
  }
  const ends = new Map<string, number>();
  for (const e of evs.filter((e) => e.ev === "guest-end")) {
    const vcpu = String(e.vcpu);
    ends.set(vcpu, (ends.get(vcpu) ?? 0) + 1);
  }
  for (const [vcpu, n] of ends) if (n > 1) found.push(`${n} guest-end events for vCPU ${vcpu}`);
  const exitAt = evs.findIndex((e) => e.ev === "exit");
  if (exitAt >= 0 && exitAt < evs.length - 1) {
    found.push(`event "${evs[exitAt + 1]!.ev}" after the kernel's exit`);
  }
  const skipAt = evs.findIndex((e) => e.ev === "skip");
  const ranAt = evs.findIndex((e) => e.ev === "vmexit" || e.ev === "guest-end");
  if (skipAt >= 0 && ranAt >= 0 && ranAt < skipAt) found.push("a skip after the guest ran");
  const exit = exits[0];
  if (exit && (exit.status === "skip") !== (skipAt >= 0)) {
    found.push(`exit status ${exit.status} ${skipAt >= 0 ? "after" : "without"} a skip event`);
  }
  if (exit && o.successExitCode !== undefined && o.exitCode === o.successExitCode) {
    if (exit.status === "fail") {
      found.push("kernel exit status fail, but the emulator exited with success");
    }
  }
  if (exit && o.recordsEnd && !o.emulatorEnd?.byKernel) {
    found.push(
      `the kernel reported its exit, but the emulator recorded ${
        o.emulatorEnd?.what ?? "no power-off by the kernel"
      }`,
    );
  }
  if (!exit && o.emulatorEnd?.byKernel) {
    found.push("the emulator recorded the kernel's power-off, but no exit event was read");
  }
  return found;
}

export function classify(o: Outcome): Verdict {
  if (o.spawnError) return { status: "emulator-error", reason: o.spawnError };
  const crash = o.events.find((e) => e.ev === "exception" || e.ev === "panic");
  if (crash) return { status: "crash", reason: crashReason(crash) };
  if (o.emulatorCrash && !first(o.events, "exit")) {
    return { status: "crash", reason: o.emulatorCrash };
  }
  // The hypervisor's own check of its code and constants: written by
  // someone (a guest's DMA) while it ran, nothing it reported can be trusted.
  if (first(o.events, "exit")?.image === "changed") {
    return {
      status: "fail",
      reason: "the hypervisor's image (code and constants) changed during the run",
    };
  }
  // The hypervisor caught the emulator writing the host's state over a
  // guest's at a #VMEXIT (QEMU's multi-threaded TCG, docs/numa.md): the run
  // tells nothing of the hypervisor or the guest.
  const lost = o.events.find((e) => e.ev === "svm-lost-state");
  if (lost) {
    return {
      status: "emulator-error",
      reason: `vCPU ${lost.vcpu}: the emulator's #VMEXIT (exit ${lost.exit_code}) ` +
        "saved the host's state as the guest's (svm-lost-state)",
    };
  }
  const contradicted = contradictions(o);
  if (contradicted.length > 0) {
    return { status: "fail", reason: `contradictory evidence: ${contradicted.join("; ")}` };
  }
  if (o.malformed) {
    return {
      status: "fail",
      reason: `${o.malformed} malformed line(s) on the hypervisor's channel (malformed.txt)`,
    };
  }
  const skip = first(o.events, "skip");
  if (skip) return { status: "skip", reason: String(skip.reason ?? "the kernel skipped the run") };
  const last = o.events.at(-1);
  if (o.timedOut) {
    return {
      status: "timeout",
      reason: last ? `no end after the last event "${last.ev}"` : "the kernel never wrote an event",
    };
  }
  // The emulator failed only if the kernel never spoke: an `error` before
  // `boot` (boot information it could not read) is the kernel's verdict.
  if (o.events.length === 0) {
    const errorExit = o.exitCode !== null && o.exitCode !== 0 &&
      o.exitCode !== o.successExitCode && o.stderrTail.trim().length > 0;
    if (errorExit) {
      return {
        status: "emulator-error",
        reason: `emulator exited with status ${o.exitCode}: ${o.stderrTail.trim()}`,
      };
    }
  }
  const assertion = o.events.find((e): e is SvEvent & KernelEvent<"vmexit"> =>
    isEvent(e, "vmexit") && e.call === "assert"
  );
  if (assertion) {
    return {
      status: "fail",
      reason:
        `guest assert failed at ${assertion.text} (left ${assertion.left}, right ${assertion.right})`,
    };
  }
  const error = o.events.find((e) => e.ev === "error" && e.fatal === true);
  if (error) return { status: "fail", reason: `kernel error in ${error.stage}: ${error.message}` };
  const exit = first(o.events, "exit");
  if (!exit) {
    return {
      status: "fail",
      reason: last
        ? `output ended without an exit event, after "${last.ev}" (emulator status ${o.exitCode})`
        : `no event at all (emulator status ${o.exitCode})`,
    };
  }
  if (exit.status !== "pass") {
    return { status: "fail", reason: `kernel exit status ${exit.status}` };
  }
  if (o.successExitCode !== undefined && o.exitCode !== o.successExitCode) {
    return {
      status: "fail",
      reason: `kernel reported pass but the emulator exited ${o.exitCode}, ` +
        `not ${o.successExitCode}`,
    };
  }
  if (o.problems.length > 0) {
    return { status: "fail", reason: `${o.problems.length} expectation(s) not met` };
  }
  return { status: "pass", reason: "all expectations met" };
}

/** Process exit code of the `scenario` command for a verdict. */
export function exitCodeFor(status: Status): number {
  return status === "pass" ? 0 : status === "skip" ? 77 : 1;
}
