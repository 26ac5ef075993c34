/** Finds, imports and validates scenario files. */
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { SCENARIOS_DIR } from "./paths.ts";
import { type Scenario, ScenarioError, validateScenario } from "./scenario.ts";

export class UnknownScenario extends Error {}

export async function scenarioNames(): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(SCENARIOS_DIR)) {
    if (entry.isFile && entry.name.endsWith(".ts")) names.push(entry.name.slice(0, -3));
  }
  return names.sort();
}

/** The scenarios of one file: its default export, or each of its variants. */
async function loadFile(file: string): Promise<Scenario[]> {
  let mod: { default?: unknown };
  try {
    mod = await import(pathToFileURL(join(SCENARIOS_DIR, `${file}.ts`)).href);
  } catch (e) {
    throw new ScenarioError(file, [`cannot load: ${e instanceof Error ? e.message : e}`]);
  }
  if (!Array.isArray(mod.default)) return [validateScenario(mod.default, file)];
  if (mod.default.length === 0) throw new ScenarioError(file, ["the list of variants is empty"]);
  const list = mod.default.map((v) => validateScenario(v, file, true));
  const names = list.map((s) => s.name);
  const twice = names.filter((n, i) => names.indexOf(n) !== i);
  if (twice.length) throw new ScenarioError(file, [`variants named twice: ${twice.join(", ")}`]);
  return list;
}

/** A scenario by name: a file's, or one of its variants (`file/suffix`). */
export async function loadScenario(name: string): Promise<Scenario> {
  const [file] = name.split("/") as [string];
  const names = await scenarioNames();
  if (!names.includes(file)) {
    const near = names.filter((n) => n.includes(file) || file.includes(n.split("-")[0]!));
    throw new UnknownScenario(
      `no scenario named "${name}" in scenarios/` +
        (near.length ? `; did you mean ${near.join(", ")}?` : "") +
        ` (run \`deno task list\` to see them all)`,
    );
  }
  const list = await loadFile(file);
  const found = list.find((s) => s.name === name);
  if (found) return found;
  throw new UnknownScenario(
    `${file} has variants: ${list.map((s) => s.name).join(", ")}; name one of them`,
  );
}

export async function loadAll(): Promise<Scenario[]> {
  return (await Promise.all((await scenarioNames()).map(loadFile))).flat();
}
