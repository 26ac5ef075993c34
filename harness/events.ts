/**
 * The kernel's event protocol (docs/events.md): lines `@sv {json}` on the
 * serial console. The parser takes arbitrary chunks, finds the prefix
 * anywhere in a line (firmware and GRUB write before and around it) and
 * keeps what it could not parse instead of failing.
 */

export const PREFIX = "@sv ";
export const SCHEMA = 2;

export interface SvEvent {
  ev: string;
  [field: string]: unknown;
}

/** Parses one line: an event, `malformed` for a broken one, or undefined. */
export function parseLine(line: string): SvEvent | "malformed" | undefined {
  const at = line.indexOf(PREFIX);
  if (at < 0) return undefined;
  const text = line.slice(at + PREFIX.length).trim();
  try {
    const value: unknown = JSON.parse(text);
    if (
      typeof value === "object" && value !== null && !Array.isArray(value) &&
      typeof (value as { ev?: unknown }).ev === "string"
    ) {
      return value as SvEvent;
    }
  } catch {
    // fall through: a partial or garbled line
  }
  return "malformed";
}

export class EventStream {
  readonly events: SvEvent[] = [];
  readonly malformed: string[] = [];
  #pending = "";
  #decoder = new TextDecoder("utf-8", { fatal: false });

  /** Feeds bytes; returns the events completed by them. */
  push(chunk: Uint8Array | string): SvEvent[] {
    const text = typeof chunk === "string" ? chunk : this.#decoder.decode(chunk, { stream: true });
    const lines = (this.#pending + text).split("\n");
    this.#pending = lines.pop() ?? "";
    return lines.flatMap((l) => this.#take(l));
  }

  /** The output has ended: parses what is left of the last line. */
  end(): SvEvent[] {
    const rest = this.#pending + this.#decoder.decode();
    this.#pending = "";
    return rest.length > 0 ? this.#take(rest) : [];
  }

  #take(rawLine: string): SvEvent[] {
    const line = rawLine.replace(/\r$/, "");
    const parsed = parseLine(line);
    if (parsed === "malformed") {
      this.malformed.push(line);
      return [];
    }
    if (parsed === undefined) return [];
    this.events.push(parsed);
    return [parsed];
  }
}

export function parseLog(text: string): EventStream {
  const s = new EventStream();
  s.push(text);
  s.end();
  return s;
}

/** One line per event, for people reading a log. */
export function describe(e: SvEvent): string {
  const { ev, ...rest } = e;
  const text = JSON.stringify(rest);
  return `${ev} ${text.length > 160 ? text.slice(0, 157) + "..." : text}`;
}
