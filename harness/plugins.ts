/**
 * The QEMU TCG plugins the harness measures with (`harness/meter/*.c`, with
 * the API declarations they share in `plugin_api.h`): the locality meter
 * (`meter.ts`) and the instruction counter (`bench linux`). Each is compiled
 * with the C compiler (`cc`) once per source and cached.
 */
import $ from "dax";
import { join } from "node:path";
import { sha256 } from "./build.ts";
import { CACHE_DIR, ROOT } from "./paths.ts";

const DIR = join(ROOT, "harness", "meter");
const built = new Map<string, Promise<string>>();

/** The plugin `harness/meter/NAME.c`, built: the path of its shared object. */
export function buildPlugin(name: string, progress: (m: string) => void): Promise<string> {
  let plugin = built.get(name);
  if (!plugin) {
    plugin = (async () => {
      const source = join(DIR, `${name}.c`);
      const hash = await sha256(
        await Deno.readFile(source),
        await Deno.readFile(join(DIR, "plugin_api.h")),
      );
      const out = join(CACHE_DIR, "meter", `${name}-${hash}.so`);
      try {
        await Deno.stat(out);
        return out;
      } catch { /* not built yet */ }
      progress(`building the ${name} plugin (cc)`);
      await Deno.mkdir(join(CACHE_DIR, "meter"), { recursive: true });
      const tmp = `${out}.${Deno.pid}.tmp`;
      const r = await $`cc -shared -fPIC -O2 -Wall -o ${tmp} ${source}`.stdin("null")
        .captureCombined().noThrow();
      if (r.code !== 0) throw new Error(`cc (the ${name} plugin) failed:\n${r.combined}`);
      await Deno.rename(tmp, out);
      return out;
    })();
    built.set(name, plugin);
  }
  return plugin;
}
