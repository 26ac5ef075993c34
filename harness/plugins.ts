/**
 * The QEMU TCG plugins the harness measures with (`harness/meter/*.c`, with
 * the API declarations they share in `plugin_api.h`): the locality meter
 * (`meter.ts`) and the instruction counter (`bench linux`). Each is compiled
 * with the C compiler (`cc`) once per source and cached.
 */
import { join } from "node:path";
import { cached, run, sha256 } from "./build.ts";
import { CACHE_DIR, ROOT } from "./paths.ts";

const DIR = join(ROOT, "harness", "meter");

/** The plugin `harness/meter/NAME.c`, built: the path of its shared object. */
export async function buildPlugin(name: string, progress: (m: string) => void): Promise<string> {
  const source = join(DIR, `${name}.c`);
  const hash = await sha256(
    await Deno.readFile(source),
    await Deno.readFile(join(DIR, "plugin_api.h")),
  );
  return cached(join(CACHE_DIR, "meter", `${name}-${hash}.so`), async (tmp) => {
    progress(`building the ${name} plugin (cc)`);
    await run(
      "cc",
      ["-shared", "-fPIC", "-O2", "-Wall", "-o", tmp, source],
      `cc (the ${name} plugin)`,
    );
  });
}
