/** Checks a run's events against a scenario's expectations. */
import type { SvEvent } from "./events.ts";
import type { EventExpectation, RunInfo } from "./scenario.ts";

function show(v: unknown): string {
  return v === undefined ? "nothing" : JSON.stringify(v);
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a), kb = Object.keys(b);
  return ka.length === kb.length &&
    ka.every((k) =>
      deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])
    );
}

/** Problems of one event against one expectation (empty: it matches). */
export function eventProblems(
  e: SvEvent,
  x: EventExpectation,
  run: RunInfo,
  events: SvEvent[] = [],
): string[] {
  const fields = typeof x.fields === "function" ? x.fields(run) : x.fields ?? {};
  const problems = Object.entries(fields)
    .filter(([k, want]) => !deepEqual(e[k], want))
    .map(([k, want]) => `${x.ev}.${k}: expected ${show(want)}, got ${show(e[k])}`);
  if (x.check) {
    try {
      problems.push(...x.check(e, run, events).map((p) => `${x.ev}: ${p}`));
    } catch (err) {
      problems.push(`${x.ev}: check threw ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return problems;
}

/**
 * Matches expectations in order against the events. Each expectation takes
 * the first later event of its name that satisfies it; when none does, the
 * problems of the first candidate are reported, or its absence.
 */
export function checkExpectations(
  events: SvEvent[],
  expect: EventExpectation[],
  run: RunInfo,
  absent: string[] = [],
  exits?: string[],
): string[] {
  const problems: string[] = [];
  if (exits) {
    const got = events.filter((e) => e.ev === "vmexit").map((e) => String(e.reason));
    if (!deepEqual(got, exits)) {
      problems.push(`VM exits: expected [${exits.join(", ")}], got [${got.join(", ")}]`);
    }
  }
  let from = 0;
  let previous = "the start";
  for (const x of expect) {
    let firstProblems: string[] | undefined;
    let matched = -1;
    for (let i = from; i < events.length; i++) {
      const e = events[i]!;
      if (e.ev !== x.ev) continue;
      const p = eventProblems(e, x, run, events);
      if (p.length === 0) {
        matched = i;
        break;
      }
      firstProblems ??= p;
    }
    if (matched >= 0) {
      from = matched + 1;
      previous = `"${x.ev}"`;
    } else if (firstProblems) {
      problems.push(...firstProblems);
    } else {
      const seen = events.some((e) => e.ev === x.ev);
      problems.push(
        seen
          ? `event "${x.ev}" came, but not after ${previous}`
          : `expected event "${x.ev}", it never came`,
      );
    }
  }
  for (const name of absent) {
    const e = events.find((e) => e.ev === name);
    if (e) problems.push(`event "${name}" must not appear, got ${JSON.stringify(e)}`);
  }
  return problems;
}
