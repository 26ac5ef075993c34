/**
 * Builds what a run boots: the kernel (cargo), a GRUB ISO (grub-mkrescue)
 * and the payload (nasm), each run through dax. ISOs and payloads are cached
 * by the hash of their inputs, so a warm run rebuilds nothing; cargo keeps
 * its own cache. (The emulators are not run through dax: the runner follows
 * their output files while they run and stops them with its own signals.)
 */
import $ from "dax";
import { join } from "node:path";
import { CACHE_DIR, KERNEL, KERNEL_DEBUG, PAYLOADS_DIR, ROOT } from "./paths.ts";
import type { Payload } from "./scenario.ts";

export class BuildError extends Error {}

/** The SHA-256 of `bytes`, in hex. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(bytes)));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A short hex digest of `parts` (a cache entry's name): 12 bytes of their SHA-256. */
export async function sha256(...parts: (string | Uint8Array)[]): Promise<string> {
  const chunks = parts.map((p) => typeof p === "string" ? new TextEncoder().encode(p) : p);
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.length + 1, 0));
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length + 1; // a zero between parts keeps ("ab","c") apart from ("a","bc")
  }
  return (await sha256Hex(all)).slice(0, 24);
}

export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Runs a build tool (dax quotes each argument); its output, or a BuildError with it. */
/** Runs a build tool; a `BuildError` with its output when it fails. */
export async function run(cmd: string, args: string[], what: string, cwd = ROOT): Promise<string> {
  // No standard input: rustc's probes read "-", and an inherited stdin may carry anything.
  const out = await $`${cmd} ${args}`.cwd(cwd).stdin("null").captureCombined().noThrow();
  if (out.code !== 0) throw new BuildError(`${what} failed:\n${out.combined.trim()}`);
  return out.combined;
}

let kernelBuild: Promise<string> | undefined;

/**
 * `cargo build --release` of the kernel, once per harness process, and its
 * image stripped for the loaders (`objcopy --strip-all`; the debug ELF stays).
 */
export function buildKernel(progress: (msg: string) => void): Promise<string> {
  kernelBuild ??= (async () => {
    progress("building kernel (cargo build --release)");
    // A spinner on a terminal while cargo works (a cold build takes a minute); silent in logs.
    await $.progress("cargo build --release").with(() =>
      run("cargo", ["build", "--release", "--quiet", "-p", "hypervisor"], "cargo build")
    );
    await run("objcopy", ["--strip-all", KERNEL_DEBUG, KERNEL], "objcopy --strip-all");
    return KERNEL;
  })();
  return kernelBuild;
}

const pending = new Map<string, Promise<string>>();

/**
 * Runs `make` once per output path, also when several runs ask at once;
 * the output appears whole (made under a temporary name, then renamed).
 */
export function cached(path: string, make: (tmp: string) => Promise<void>): Promise<string> {
  let p = pending.get(path);
  if (!p) {
    p = (async () => {
      if (await exists(path)) return path;
      await Deno.mkdir(join(path, ".."), { recursive: true });
      const tmp = `${path}.${Deno.pid}.tmp`;
      await make(tmp);
      await Deno.rename(tmp, path); // atomic: a cache entry is whole or absent
      return path;
    })();
    pending.set(path, p);
  }
  return p;
}

/** A boot module on the ISO: a file, its name there, and the string GRUB passes with it. */
export interface IsoModule {
  path: string;
  name: string;
  args: string;
}

export function grubConfig(cmdline: string, modules: Omit<IsoModule, "path">[]): string {
  return [
    "set timeout=0",
    "set default=0",
    'menuentry "scalevisor" {',
    `  multiboot2 /boot/hypervisor.elf ${cmdline}`,
    ...modules.map((m) => `  module2 /boot/${m.name} ${m.args}`),
    "  boot",
    "}",
    "",
  ].join("\n");
}

/**
 * A hybrid BIOS/UEFI GRUB ISO booting the kernel by multiboot2, with
 * `modules`.
 */
export function buildIso(
  kernel: string,
  cmdline: string,
  modules: IsoModule[],
  progress: (msg: string) => void,
): Promise<string> {
  const files = [{ path: kernel, name: "hypervisor.elf" }, ...modules];
  return buildGrubIso(grubConfig(cmdline, modules), files, progress);
}

/**
 * A hybrid BIOS/UEFI GRUB ISO with `cfg` as its grub.cfg and `files` in
 * /boot; cached by their contents (a file of more than 16 MiB, a kernel
 * from the Linux guest's cache, by its path, size and time).
 */
export async function buildGrubIso(
  cfg: string,
  files: { path: string; name: string }[],
  progress: (msg: string) => void,
): Promise<string> {
  const identities = await Promise.all(files.map(async (m) => {
    const st = await Deno.stat(m.path);
    return st.size > 16 << 20
      ? `${m.name}=${m.path}:${st.size}:${st.mtime?.getTime()}`
      : await Deno.readFile(m.path);
  }));
  const hash = await sha256(cfg, ...files.map((f) => f.name), ...identities);
  return cached(join(CACHE_DIR, "iso", `${hash}.iso`), async (out) => {
    progress("building GRUB ISO (grub-mkrescue)");
    const stage = await Deno.makeTempDir({ prefix: "scalevisor-iso-" });
    try {
      await Deno.mkdir(join(stage, "boot", "grub"), { recursive: true });
      await Deno.writeTextFile(join(stage, "boot", "grub", "grub.cfg"), cfg);
      for (const f of files) await Deno.copyFile(f.path, join(stage, "boot", f.name));
      await run("grub-mkrescue", ["-o", out, stage], "grub-mkrescue");
    } finally {
      await Deno.remove(stage, { recursive: true });
    }
  });
}

let includes: Promise<string[]> | undefined;

/** The payloads' include files, name and text (read once): an edit to one rebuilds every payload. */
function includeFiles(): Promise<string[]> {
  includes ??= readIncludeFiles();
  return includes;
}

async function readIncludeFiles(): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(PAYLOADS_DIR)) if (e.name.endsWith(".inc")) names.push(e.name);
  names.sort();
  return [
    ...names,
    ...await Promise.all(names.map((n) => Deno.readTextFile(join(PAYLOADS_DIR, n)))),
  ];
}

/**
 * A program for the Linux guest's /bin, from `payloads/FILE`: NASM source
 * assembled to a static ELF (`buildPayload`), or C built static with the
 * host's compiler (`cc -static -O2 -pthread`; glibc's static libraries,
 * Debian's libc6-dev), cached by its source.
 */
export async function buildProgram(file: string, progress: (msg: string) => void): Promise<string> {
  if (!file.endsWith(".c")) return buildPayload({ file }, progress);
  const path = join(PAYLOADS_DIR, file);
  let source: string;
  try {
    source = await Deno.readTextFile(path);
  } catch {
    throw new BuildError(`program ${file} not found in payloads/`);
  }
  return cached(join(CACHE_DIR, "programs", `${await sha256(file, source)}`), async (out) => {
    progress(`compiling ${file} (cc -static)`);
    await run("cc", ["-static", "-O2", "-pthread", "-Wall", "-o", out, path], `cc ${file}`);
  });
}

/** Assembles a payload with `nasm -f bin`. */
export async function buildPayload(p: Payload, progress: (msg: string) => void): Promise<string> {
  let source: string;
  let name: string;
  if ("file" in p) {
    const path = join(PAYLOADS_DIR, p.file);
    try {
      source = await Deno.readTextFile(path);
    } catch {
      throw new BuildError(`payload ${p.file} not found in payloads/`);
    }
    name = p.file;
  } else {
    source = p.asm;
    name = "inline payload";
  }
  // %line names the source as the payload's own (assert.inc quotes it), not the copy.
  const shown = "file" in p ? `payloads/${p.file}` : "inline-payload";
  const hash = await sha256(shown, source, ...(await includeFiles()));
  return cached(join(CACHE_DIR, "payloads", `${hash}.bin`), async (out) => {
    progress(`assembling ${name} (nasm)`);
    const src = `${out}.asm`;
    await Deno.writeTextFile(src, `%line 0+1 ${shown}\n${source}`);
    try {
      // -i lets inline payloads %include files from payloads/.
      await run("nasm", ["-f", "bin", "-i", `${PAYLOADS_DIR}/`, "-o", out, src], `nasm ${name}`);
      if ((await Deno.stat(out)).size === 0) {
        await Deno.remove(out);
        throw new BuildError(`payload ${name} assembles to no bytes: a guest needs an instruction`);
      }
    } finally {
      await Deno.remove(src).catch(() => {});
    }
  });
}
