import assert from "node:assert/strict";
import { join } from "node:path";
import { EVENTS, type FieldSpec, isEvent, type KernelEvent } from "./event_types.ts";
import type { SvEvent } from "./events.ts";
import { ROOT } from "./paths.ts";
import { readRustEvents, type RustField } from "./rust_events.ts";

const spec = (f: RustField): string =>
  `${f.kind}${f.optional ? "?" : ""}${f.nullable ? "|null" : ""}`;

/** Every difference between the kernel's events and the table, in words. */
function differences(): string[] {
  const rust = readRustEvents(join(ROOT, "hypervisor", "src"));
  const ts = EVENTS as Record<string, Record<string, FieldSpec>>;
  const out: string[] = [];
  for (const [name, fields] of Object.entries(rust)) {
    const mine = ts[name];
    if (!mine) {
      out.push(`Rust event "${name}" has no TypeScript type`);
      continue;
    }
    for (const [field, f] of Object.entries(fields)) {
      if (!(field in mine)) out.push(`${name}.${field} (${spec(f)}) is missing in TypeScript`);
      else if (mine[field] !== spec(f)) {
        out.push(`${name}.${field} is ${spec(f)} in Rust, ${mine[field]} in TypeScript`);
      }
    }
    for (const field of Object.keys(mine)) {
      if (!(field in fields)) out.push(`${name}.${field} is in TypeScript, not in Rust`);
    }
  }
  for (const name of Object.keys(ts)) {
    if (!(name in rust)) out.push(`TypeScript event "${name}" is not a Rust event`);
  }
  return out;
}

Deno.test("every kernel event has its TypeScript type, field by field", () => {
  assert.deepEqual(differences(), []);
});

Deno.test("docs/events.md names every event and every field", () => {
  const doc = Deno.readTextFileSync(join(ROOT, "docs", "events.md"));
  const missing = Object.entries(EVENTS).flatMap(([name, fields]) => [
    ...(doc.includes(`\`${name}\``) ? [] : [`event ${name}`]),
    ...Object.keys(fields).filter((f) => !doc.includes(`\`${f}\``)).map((f) => `${name}.${f}`),
  ]);
  assert.deepEqual(missing, []);
});

Deno.test("events narrow to their types", () => {
  const e: SvEvent = { ev: "guest-end", vcpu: 0, how: "hlt", failed: false, exits: 2 };
  assert.ok(isEvent(e, "guest-end") && e.how === "hlt");
  assert.ok(!isEvent(e, "exit"));
  const exit: KernelEvent<"exit"> = { ev: "exit", status: "pass", image: "intact" };
  assert.equal(exit.status, "pass");
});
