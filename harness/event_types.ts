/**
 * One TypeScript type per kernel event, from one table of their fields.
 * `event_types_test.ts` holds the table to the kernel's event structs (read
 * from hypervisor/src by `rust_events.ts`) and to docs/events.md: a field
 * added to or removed from a Rust event fails that test until this table,
 * and the docs, follow. A field is `kind`, `kind?` (absent when not set)
 * or `kind|null`; `hex` is a `"0x…"` string.
 */
import type { SvEvent } from "./events.ts";

export const EVENTS = {
  "cpu-up": { cpu: "number", apic_id: "number", node: "number", bsp: "boolean" },
  "cpu-timeout": { cpu: "number", apic_id: "number", waited_us: "number" },
  smp: { expected: "number", started: "number", apic: "string" },
  exception: {
    cpu: "number|null",
    vector: "number",
    name: "string",
    error_code: "hex",
    rip: "hex",
    cs: "hex",
    rflags: "hex",
    rsp: "hex",
    ss: "hex",
    "cr2": "hex",
    "cr3": "hex",
    regs: "object",
  },
  cpu: {
    vendor: "string",
    signature: "string",
    family: "number",
    model: "number",
    stepping: "number",
    brand: "string",
    hypervisor: "string|null",
    vmx: "boolean",
    ept: "boolean",
    unrestricted_guest: "boolean",
    svm: "boolean",
    npt: "boolean",
  },
  error: { stage: "string", message: "string", fatal: "boolean" },
  "event-overflow": { event: "string" },
  boot: {
    schema: "number",
    version: "string",
    proto: "string",
    loader: "string",
    cmdline: "string",
  },
  memmap: { regions: "array", usable_bytes: "number", dropped: "number", direct_map: "hex" },
  modules: { modules: "array" },
  acpi: {
    rsdp: "hex",
    source: "string",
    revision: "number",
    oem: "string",
    rsdt: "hex",
    xsdt: "hex|null",
  },
  selftest: { test: "string" },
  panic: { cpu: "number|null", message: "string", file: "string", line: "number" },
  skip: { reason: "string" },
  exit: { status: "string", image: "string" },
  iommu: { base: "hex", vendor: "string", mode: "string", devices: "number" },
  dma: {
    mode: "string",
    why: "string?",
    devices: "number",
    pinned_pages: "number",
    ioapics_remapped: "number",
  },
  "dma-fault": { device: "hex", address: "hex", access: "string" },
  chipset: {
    pm1_control: "array",
    reset: "hex|null",
    smi_command: "hex|null",
    ecam: "hex|null",
    ioapics: "array",
    hpet: "hex|null",
    iommus: "array",
    pci_functions: "number",
    masters_stopped: "number",
    dma: "boolean",
  },
  topology: { source: "string", cpus: "number", nodes: "array", distances: "array", hmat: "array" },
  "node-memory": { home: "number", nodes: "array" },
  "svm-on": { asids: "number", nrip_save: "boolean", hsave: "hex" },
  vmrun: { vcpu: "number", vmcb: "hex", asid: "number" },
  "svm-shutdown": {
    vcpu: "number",
    rip: "hex",
    rsp: "hex",
    cr3: "hex",
    cs: "hex",
    efer: "hex",
    event_inject: "hex",
    exit_int_info: "hex",
    host_rip: "hex",
    host_rsp: "hex",
    host_cr3: "hex",
  },
  "svm-lost-state": {
    vcpu: "number",
    exit_code: "hex",
    exit_info1: "hex",
    exit_info2: "hex",
    exit_int_info: "hex",
    entered_rip: "hex",
    entered_rsp: "hex",
    entered_cr3: "hex",
  },
  "svm-off": { exits: "number" },
  "entry-failure": {
    vcpu: "number",
    instruction: "string",
    code: "hex",
    reason: "string",
    guest: "object",
  },
  vmexit: {
    vcpu: "number",
    reason: "string",
    rip: "hex",
    leaf: "hex?",
    subleaf: "hex?",
    eax: "hex?",
    ebx: "hex?",
    ecx: "hex?",
    edx: "hex?",
    call: "string?",
    value: "hex?",
    tag: "hex?",
    text: "string?",
    passed: "boolean?",
    check: "hex?",
    status: "hex?",
    port: "hex?",
    size: "number?",
    dir: "string?",
    msr: "hex?",
    action: "string?",
    vector: "number?",
    name: "string?",
    error_code: "hex?",
    instruction: "string?",
    gpa: "hex?",
    access: "string?",
    mapped: "boolean?",
    code: "hex?",
    cpl: "number?",
    left: "hex?",
    right: "hex?",
    line: "number?",
    cr: "number?",
  },
  "guest-end": {
    vcpu: "number",
    how: "string",
    failed: "boolean",
    exits: "number",
    counts: "object",
    backed: "number",
    flushes: "number",
  },
  "recent-exits": { vcpu: "number", exits: "array" },
  placement: {
    policy: "string",
    page: "string",
    nodes: "array",
    vcpus: "array",
    fallbacks: "number",
    adaptive: "object?",
  },
  "placement-map": { part: "number", last: "boolean", ranges: "array" },
  "adaptive-look": {
    look: "number",
    period: "number",
    tsc: "number",
    migrated: "number",
    bounced: "number",
    replicated: "number",
  },
  vmxon: {
    revision: "number",
    vmcs_size: "number",
    true_controls: "boolean",
    region: "hex",
    vpid: "boolean",
  },
  vmclear: { vcpu: "number", vmcs: "hex" },
  vmptrld: { vcpu: "number", vmcs: "hex" },
  vmlaunch: { vcpu: "number", vmcs: "hex" },
  vmxoff: { exits: "number" },
} as const satisfies Record<string, Record<string, FieldSpec>>;

export type Kind = "string" | "number" | "boolean" | "hex" | "array" | "object";
export type FieldSpec = Kind | `${Kind}?` | `${Kind}|null`;
export type EventName = keyof typeof EVENTS;

type Base<K> = K extends "string" ? string
  : K extends "number" ? number
  : K extends "boolean" ? boolean
  : K extends "hex" ? `0x${string}`
  : K extends "array" ? unknown[]
  : Record<string, unknown>;
type Value<S> = S extends `${infer K}|null` ? Base<K> | null
  : S extends `${infer K}?` ? Base<K>
  : Base<S>;
type Fields<F> =
  & { [K in keyof F as F[K] extends `${string}?` ? never : K]: Value<F[K]> }
  & { [K in keyof F as F[K] extends `${string}?` ? K : never]?: Value<F[K]> };

/** The event named `N`, typed: `KernelEvent<"guest-end">["how"]` is a string. */
export type KernelEvent<N extends EventName = EventName> = N extends EventName
  ? { ev: N } & Fields<typeof EVENTS[N]>
  : never;

/** Narrows a parsed event to its type (the protocol's schema says the fields are there). */
export function isEvent<N extends EventName>(e: SvEvent, name: N): e is SvEvent & KernelEvent<N> {
  return e.ev === name;
}
