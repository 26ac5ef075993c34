/**
 * The kernel's events as its Rust source declares them: every `impl Event
 * for T` outside test code, its `NAME`, and the fields `T` serializes (a
 * `#[serde(transparent)]` newtype's are its inner struct's). Read with
 * regular expressions from the source, so that `event_types_test.ts` can
 * hold the TypeScript types (`event_types.ts`) to the structs without a
 * build step. It knows the shapes the kernel uses, and says so when it
 * meets one it does not.
 */
import { join } from "node:path";

/** What a field serializes to: JSON kinds, `hex` for `event::Hex` ("0x…"). */
export type Kind = "string" | "number" | "boolean" | "hex" | "array" | "object";

export interface RustField {
  kind: Kind;
  /** `Option` skipped when `None`: the field may be absent. */
  optional: boolean;
  /** `Option` serialized as `null` when `None`. */
  nullable: boolean;
}

export type RustEvents = Record<string, Record<string, RustField>>;

const NUMBERS = /^(u8|u16|u32|u64|usize|i8|i16|i32|i64|isize|f32|f64)$/;

/** The kind of a Rust type, given the names of the enums (serialized as strings) in the crate. */
function kindOf(ty: string, enums: Set<string>): Kind {
  // `&'a heapless::Vec<T, N>` is a `Vec`: references, generics and paths go.
  const bare = ty.replace(/&'?\w*\s*/g, "").replace(/<.*>$/, "").trim();
  if (bare.startsWith("[")) return "array";
  const t = bare.split("::").at(-1)!;
  if (NUMBERS.test(t)) return "number";
  if (t === "bool") return "boolean";
  if (t === "Hex") return "hex";
  if (t === "str" || t === "String" || enums.has(t)) return "string";
  if (t === "Vec") return "array";
  return "object";
}

/** The top-level comma-separated items of a struct body (types may span lines and nest). */
function items(body: string): string[] {
  const text = body.replace(/\/\/.*$/gm, "");
  const out: string[] = [];
  let depth = 0, start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if ("<([{".includes(c)) depth++;
    else if (">)]}".includes(c) && text[i - 1] !== "-") depth--;
    else if (c === "," && depth === 0) {
      out.push(text.slice(start, i));
      start = i + 1;
    }
  }
  out.push(text.slice(start));
  return out.map((x) => x.replace(/\s+/g, " ").trim()).filter((x) => x.length > 0);
}

/** `{ name: Type, ... }` of a struct body into fields, with their serde attributes. */
function fieldsOf(body: string, enums: Set<string>): Record<string, RustField> {
  const fields: Record<string, RustField> = {};
  for (const item of items(body)) {
    const skip = item.includes("#[serde(skip_serializing_if");
    const m = /^(?:pub\s+)?(\w+)\s*:\s*(.+)$/.exec(item.replace(/#\[[^\]]*\]/g, "").trim());
    if (!m) continue;
    const [, name, ty] = m as unknown as [string, string, string];
    const option = /^Option<(.+)>$/.exec(ty);
    fields[name] = {
      kind: kindOf(option ? option[1]! : ty, enums),
      optional: Boolean(option) && skip,
      nullable: Boolean(option) && !skip,
    };
  }
  return fields;
}

/** Struct bodies by name (`struct X<..> { .. }`, braces matched), and newtypes (`struct X(Inner);`). */
function structsIn(text: string) {
  const bodies = new Map<string, string>();
  const newtypes = new Map<string, string>();
  for (const m of text.matchAll(/struct\s+(\$?\w+)(?:<[^>{]*>)?\s*\{/g)) {
    const open = m.index! + m[0].length;
    let depth = 1, at = open;
    while (depth > 0 && at < text.length) {
      if (text[at] === "{") depth++;
      else if (text[at] === "}") depth--;
      at++;
    }
    bodies.set(m[1]!, text.slice(open, at - 1));
  }
  for (const m of text.matchAll(/struct\s+(\$?\w+)\((\w+)\);/g)) newtypes.set(m[1]!, m[2]!);
  return { bodies, newtypes };
}

/** Every Rust source file under `dir`. */
function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    const path = join(dir, e.name);
    if (e.isDirectory) out.push(...sources(path));
    else if (e.name.endsWith(".rs")) out.push(path);
  }
  return out.sort();
}

export function readRustEvents(srcDir: string): RustEvents {
  const files = sources(srcDir).map((path) => {
    const text = Deno.readTextFileSync(path);
    // Test modules (events made up for unit tests) are not the kernel's.
    const tests = text.search(/#\[cfg\(test\)\]\s*mod\s+\w+/);
    return { path, text: tests < 0 ? text : text.slice(0, tests) };
  });
  const all = files.map((f) => f.text).join("\n");
  const enums = new Set([...all.matchAll(/enum\s+(\w+)/g)].map((m) => m[1]!));
  // `use …::Source as TopologySource`: the alias is an enum too.
  for (const m of all.matchAll(/(\w+)\s+as\s+(\w+)/g)) if (enums.has(m[1]!)) enums.add(m[2]!);
  const { bodies, newtypes } = structsIn(all);
  const fieldsFor = (name: string): Record<string, RustField> => {
    const inner = newtypes.get(name);
    if (inner) return fieldsFor(inner);
    const body = bodies.get(name);
    if (body === undefined) throw new Error(`event struct ${name} not found`);
    return fieldsOf(body, enums);
  };
  const events: RustEvents = {};
  for (const f of files) {
    for (
      const m of f.text.matchAll(
        /impl(?:<[^>]*>)?\s+Event\s+for\s+(\$?\w+)[^{]*\{\s*const NAME: &'static str = (?:"([^"]+)"|\$name);/g,
      )
    ) {
      const [, ty, name] = m as unknown as [string, string, string | undefined];
      if (name) {
        events[name] = fieldsFor(ty);
        continue;
      }
      // A macro's events: `macro!(Type, "name")` invocations in the same file.
      for (const call of f.text.matchAll(/\w+!\((\w+),\s*"([^"]+)"\);/g)) {
        events[call[2]!] = fieldsFor(newtypes.get(ty) ?? ty);
      }
    }
  }
  return events;
}
