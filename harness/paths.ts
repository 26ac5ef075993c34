/** Where things are, relative to the repository root. */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
export const SCENARIOS_DIR = join(ROOT, "scenarios");
export const PAYLOADS_DIR = join(ROOT, "payloads");
export const RUNS_DIR = join(ROOT, ".runs");
/** Failing fuzz seeds, each with its run directory and payload source. */
export const FUZZ_DIR = join(ROOT, ".fuzz");
/** Failed stress runs, each with its run directory (`deno task stress`). */
export const STRESS_DIR = join(ROOT, ".stress");
/** Build caches: ISOs and payloads, named by the hash of what went in. */
export const CACHE_DIR = join(ROOT, "target", "harness");
/** The kernel as cargo links it, with its debug information: for symbols. */
export const KERNEL_DEBUG = join(
  ROOT,
  "target",
  "x86_64-unknown-linux-gnu",
  "release",
  "hypervisor",
);
/** The stripped kernel that loaders read (GRUB reads every byte: on Bochs that is most of a boot). */
export const KERNEL = `${KERNEL_DEBUG}.stripped`;
