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

export async function loadScenario(name: string): Promise<Scenario> {
  const names = await scenarioNames();
  if (!names.includes(name)) {
    const near = names.filter((n) => n.includes(name) || name.includes(n.split("-")[0]!));
    throw new UnknownScenario(
      `no scenario named "${name}" in scenarios/` +
        (near.length ? `; did you mean ${near.join(", ")}?` : "") +
        ` (run \`deno task list\` to see them all)`,
    );
  }
  let mod: { default?: unknown };
  try {
    mod = await import(pathToFileURL(join(SCENARIOS_DIR, `${name}.ts`)).href);
  } catch (e) {
    throw new ScenarioError(name, [`cannot load: ${e instanceof Error ? e.message : e}`]);
  }
  return validateScenario(mod.default, name);
}

export async function loadAll(): Promise<Scenario[]> {
  return await Promise.all((await scenarioNames()).map(loadScenario));
}
