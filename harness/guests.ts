/**
 * Helpers for scenarios that run a guest: the CPU models that can, the
 * events that open and close virtualization, and the values a guest reports
 * through the `report` hypercall.
 */
import { checkExpectations } from "./expect.ts";
import { modelsWith } from "./cpus.ts";
import type { SvEvent } from "./events.ts";
import {
  defineScenario,
  type EventExpectation,
  type Group,
  type Payload,
  type RunCheck,
  type RunInfo,
  type Scenario,
  type ScenarioPart,
  type Target,
} from "./scenario.ts";

/** Bochs Intel models with VMX, EPT and unrestricted guest. */
export const INTEL_EPT_MODELS = modelsWith("bochs", "intel", ["vmx", "ept", "unrestricted_guest"]);
/** Bochs Intel models with VMX but no EPT: the kernel must skip, naming EPT. */
export const INTEL_NO_EPT_MODELS = modelsWith("bochs", "intel", ["vmx"]).filter(
  (m) => !INTEL_EPT_MODELS.includes(m),
);
/** QEMU models with SVM and NPT, and one with SVM but no NPT: the kernel must skip it. */
export const AMD_NPT_MODELS = [...modelsWith("qemu", "amd", ["svm", "npt"]), "qemu64,+svm,+npt"];
export const AMD_NO_NPT_MODELS = ["qemu64,+svm,-npt"];

/**
 * Where a guest scenario runs: every Intel model on Bochs (QEMU's TCG has no
 * VMX), the AMD models on QEMU TCG and Bochs' ryzen, and the host CPU under
 * KVM where it nests. The same expectations hold on both vendors.
 */
export const GUEST_TARGETS: Target[] = [
  { backend: "bochs", cpus: [...INTEL_EPT_MODELS, ...INTEL_NO_EPT_MODELS, "ryzen"] },
  { backend: "qemu", boot: "kernel", cpus: [...AMD_NPT_MODELS, ...AMD_NO_NPT_MODELS] },
  { backend: "kvm", cpus: ["host"] },
];

/**
 * One model per vendor and emulator (Bochs tigerlake and ryzen, QEMU EPYC):
 * enough to show that a protection holds (hostile guests) or that a
 * mechanism works on both vendors (SMP guests, memory, benchmarks).
 */
export const VENDOR_TARGETS: Target[] = [
  { backend: "bochs", cpus: ["tigerlake", "ryzen"] },
  { backend: "qemu", boot: "kernel", cpus: ["EPYC"] },
];

/** The events that enter and leave virtualization, in order, for the run's vendor. */
export function lifecycle(run: RunInfo): { start: EventExpectation[]; end: EventExpectation[] } {
  return run.vendor === "intel"
    ? {
      start: [{ ev: "vmxon" }, { ev: "vmclear" }, { ev: "vmptrld" }, { ev: "vmlaunch" }],
      end: [{ ev: "vmxoff" }],
    }
    : { start: [{ ev: "svm-on" }, { ev: "vmrun" }], end: [{ ev: "svm-off" }] };
}

/** A `report` hypercall with this tag; `check` judges its value. */
export function report(
  tag: number,
  check: (value: bigint) => string | undefined,
): EventExpectation {
  return {
    ev: "vmexit",
    fields: { reason: "hypercall", call: "report", tag: `0x${tag.toString(16)}` },
    check: (e: SvEvent) => {
      if (typeof e.value !== "string") return []; // the fields check names what is wrong
      const problem = check(BigInt(e.value));
      return problem ? [`report ${tag}: ${problem} (value ${e.value})`] : [];
    },
  };
}

/** Exits by reason: each named reason exactly `n` times, or `[min, max]`. */
export type ExitCounts = Record<string, number | [number, number]>;

/**
 * How `guest-end`'s `counts` (the reported exits by reason) differ from
 * `want`; reasons not named are free. For guests whose exits are many, or
 * differ by emulator, where an exact `exits` list would be long or brittle.
 */
export function exitCountProblems(e: SvEvent, want: ExitCounts): string[] {
  const got = (e.counts ?? {}) as Record<string, number>;
  return Object.entries(want).flatMap(([reason, w]) => {
    const [min, max] = typeof w === "number" ? [w, w] : w;
    const n = got[reason] ?? 0;
    return n >= min && n <= max
      ? []
      : [`${n} ${reason} exits, expected ${min === max ? min : `${min} to ${max}`}`];
  });
}

/** vCPUs a payload guest has: one per CPU, at most 8 (docs/hypercalls.md). */
export const MAX_VCPUS = 8;

/** How many vCPUs a payload guest has on this run. */
export function vcpusOf(run: RunInfo): number {
  return Math.min(run.smp, MAX_VCPUS);
}

/**
 * Expectations per vCPU: each vCPU's own events (`vcpu: i`) must meet
 * `expect` in order, whatever the interleaving between vCPUs. `vcpus` is
 * how many vCPUs the guest has (default: one per CPU of the run).
 */
export function perVcpu(expect: EventExpectation[], vcpus?: number): RunCheck {
  return (events, run) =>
    Array.from(
      { length: vcpus ?? vcpusOf(run) },
      (_, i) =>
        checkExpectations(events.filter((e) => e.vcpu === i), expect, run)
          .map((p) => `vCPU ${i}: ${p}`),
    ).flat();
}

/** Every vCPU, sooner or later, reports `ev` (with `fields`). */
export function everyVcpu(ev: string, fields?: Record<string, unknown>, vcpus?: number): RunCheck {
  return perVcpu([{ ev, fields }], vcpus);
}

/** A report whose value must be exactly `want`. */
export function reportEquals(tag: number, want: bigint): EventExpectation {
  return report(tag, (v) => (v === want ? undefined : `expected 0x${want.toString(16)}`));
}

/**
 * The guest's end and the kernel's, after a guest that ended `how` after
 * `exits` exits (when given); a `failed` guest fails the kernel's run.
 */
export function guestEnds(
  run: RunInfo,
  how: string,
  exits?: number,
  failed = false,
  counts?: ExitCounts,
): EventExpectation[] {
  return [
    {
      ev: "guest-end",
      fields: { how, failed, ...(exits === undefined ? {} : { exits }) },
      check: (e) => (counts ? exitCountProblems(e, counts) : []),
    },
    ...lifecycle(run).end,
    { ev: "exit", fields: { status: failed ? "fail" : "pass" } },
  ];
}

export interface GuestScenario {
  name: string;
  description: string;
  /** A file in payloads/, or inline NASM. */
  payload: string | Payload;
  /** Default: `guest=long`. */
  cmdline?: string;
  /** The exact VM exits, in order; unchecked when omitted. */
  exits?: string[];
  /** Exits by reason, exactly or within a range (`guest-end`'s `counts`). */
  counts?: ExitCounts;
  /** What happens between VM entry and the guest's end. */
  expect: (run: RunInfo) => EventExpectation[];
  /** How the guest ends (`guest-end`'s `how`); default `hlt`. */
  ends?: string;
  /** The guest ends failed (the run then fails, as it is meant to); default false. */
  failed?: boolean;
  /** Default: `GUEST_TARGETS`. */
  targets?: Target[];
  /** Groups besides `guest`. */
  groups?: Group[];
  guestOutput?: Scenario["guestOutput"];
}

/**
 * How much of a guest's exits the kernel reports (its `trace=` option):
 * `exits`, every exit as a `vmexit` event, for scenarios that assert on them;
 * `summary` (the kernel's default), only the guest's own messages and the exit
 * that ended it, with every exit counted in `guest-end`'s `counts`: for
 * guests whose exits are many (benchmarks, large memory, many vCPUs).
 */
export type Trace = "exits" | "summary";

/**
 * The guest part of a scenario (`defineScenario(base, guest({...}), ...)`):
 * its payload and mode (`cmdline`, default `guest=long`), its trace level
 * (default `exits`), its targets when given (the machine and targets of a
 * part before it stay otherwise), and virtualization entered; no `error` or
 * `entry-failure` event.
 */
export function guest(g: {
  payload: string | Payload;
  cmdline?: string;
  trace?: Trace;
  targets?: Target[];
}): ScenarioPart {
  return {
    groups: ["guest"],
    payload: typeof g.payload === "string" ? { file: g.payload } : g.payload,
    cmdline: `${g.cmdline ?? "guest=long"} trace=${g.trace ?? "exits"}`,
    targets: g.targets,
    timeoutS: 60,
    expect: (run) => lifecycle(run).start,
    checks: [everyVcpu("guest-end")],
    absent: ["error", "entry-failure"],
  };
}

/**
 * The end part of a guest scenario: the guest ends `how` (default `hlt`),
 * failed or not, after `exits` exits or within `counts`; virtualization is
 * left and the run passes, or fails as expected for a failed guest.
 */
export function guestEnd(e: {
  how?: string;
  exits?: number;
  failed?: boolean;
  counts?: ExitCounts;
} = {}): ScenarioPart {
  return {
    expect: (run) => guestEnds(run, e.how ?? "hlt", e.exits, e.failed, e.counts),
    ...(e.failed ? { expectStatus: "fail" as const } : {}),
  };
}

/**
 * A guest scenario on every guest target: virtualization is entered,
 * `expect` happens with exactly `exits`, the guest ends as `ends` says,
 * failed or not as `failed` says, virtualization is left, and the run
 * passes (or fails, for a failed guest). Made of the parts above.
 */
export function defineGuestScenario(g: GuestScenario): Scenario {
  return defineScenario(
    {
      name: g.name,
      description: g.description,
      groups: g.groups,
      exits: g.exits,
      guestOutput: g.guestOutput,
      machine: { memoryMiB: 128 },
    },
    guest({ ...g, targets: g.targets ?? GUEST_TARGETS }),
    { expect: g.expect },
    guestEnd({ how: g.ends, exits: g.exits?.length, failed: g.failed, counts: g.counts }),
  );
}

/**
 * A guest image refused before any vCPU runs: the kernel's fatal `error`
 * (stage `guest`, `message`), then a failed exit; no guest ends, as nothing
 * of it ran, nor do the events in `alsoAbsent` come.
 */
export function refusedImage(message: string, alsoAbsent: string[] = []): ScenarioPart {
  return {
    expect: [
      { ev: "error", fields: { stage: "guest", message, fatal: true } },
      { ev: "exit", fields: { status: "fail" } },
    ],
    expectStatus: "fail",
    absent: ["guest-end", ...alsoAbsent],
  };
}

/** An OUT the guest makes to ask the platform to power off or reset. */
export interface PlatformRequest {
  port: number;
  value: number;
  size: 1 | 2;
  how: "power-off" | "reset";
}

const hex = (n: number) => `0x${n.toString(16)}`;

/**
 * A guest that asks the platform to power off or reset, after `prelude`
 * (inline NASM that may `REPORT`): the request ends the guest (`guest-end`
 * how: power-off or reset), and the hypervisor's own exit follows. The
 * machine is never powered off or reset behind the hypervisor's back.
 */
export function platformRequestScenario(
  name: string,
  description: string,
  r: PlatformRequest,
  prelude: { asm: string; exits: string[]; expect: EventExpectation[] } = {
    asm: "",
    exits: [],
    expect: [],
  },
): Scenario {
  const reg = r.size === 1 ? "al" : "ax";
  return defineGuestScenario({
    name,
    description,
    payload: {
      asm: [
        "bits 64",
        "org 0x8000",
        '%include "hypercall.inc"',
        prelude.asm,
        `    mov dx, ${hex(r.port)}`,
        `    mov ${reg}, ${hex(r.value)}`,
        `    out dx, ${reg}`,
        "    REPORT 0xbad, 99           ; never runs: the request ended the guest",
        "    hlt",
        "",
      ].join("\n"),
    },
    targets: VENDOR_TARGETS,
    groups: ["hostile"],
    exits: [...prelude.exits, "io"],
    ends: r.how,
    expect: () => [
      ...prelude.expect,
      {
        ev: "vmexit",
        fields: { reason: "io", port: hex(r.port), dir: "out", value: hex(r.value), action: r.how },
      },
    ],
  });
}
