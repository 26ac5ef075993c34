/**
 * The host tools a run needs, found before anything runs. As root or in CI
 * the missing Debian packages are installed (and that is said); otherwise
 * the one apt-get line to run is printed.
 */
import $ from "dax";
import { existsSync } from "node:fs";
import { BOCHS_BIOS, BOCHS_TERM_PLUGINS, BOCHS_VGABIOS } from "./backends/bochs.ts";
import { findOvmf } from "./backends/qemu.ts";
import type { RunPlan } from "./scenario.ts";

export type Tool =
  | "cargo"
  | "qemu"
  | "bochs"
  | "ovmf"
  | "grub"
  | "grub-efi"
  | "nasm"
  | "libc-static"
  | "e2fsprogs";

interface Requirement {
  present(): boolean;
  packages: string[];
}

function which(cmd: string): string | undefined {
  const dirs = (Deno.env.get("PATH") ?? "").split(":");
  return dirs.map((d) => `${d}/${cmd}`).find((p) => p.length > cmd.length + 1 && existsSync(p));
}

const onPath = (cmd: string) => which(cmd) !== undefined;

/** Whether the C compiler finds a static libc (it names the file's full path when it does). */
function staticLibc(): boolean {
  if (!onPath("cc")) return false;
  const out = new Deno.Command("cc", { args: ["-print-file-name=libc.a"], stderr: "null" })
    .outputSync();
  const path = new TextDecoder().decode(out.stdout).trim();
  return path.startsWith("/") && existsSync(path);
}

/** GRUB's modules for a platform: Debian's, or beside grub-mkrescue (Nix). */
function grubPlatform(platform: string): boolean {
  const mkrescue = which("grub-mkrescue");
  const prefix = mkrescue ? Deno.realPathSync(mkrescue).replace(/\/bin\/[^/]+$/, "") : "";
  return [`/usr/lib/grub/${platform}`, `${prefix}/lib/grub/${platform}`].some(existsSync);
}

const REQUIREMENTS: Record<Tool, Requirement> = {
  cargo: { present: () => ["cargo", "objcopy", "cc"].every(onPath), packages: ["binutils", "gcc"] },
  qemu: { present: () => onPath("qemu-system-x86_64"), packages: ["qemu-system-x86"] },
  bochs: {
    present: () =>
      onPath("bochs") && existsSync(BOCHS_BIOS) && existsSync(BOCHS_VGABIOS) &&
      BOCHS_TERM_PLUGINS.some((f) => existsSync(f)),
    packages: ["bochs", "bochs-term", "bochsbios", "vgabios"],
  },
  ovmf: { present: () => findOvmf() !== undefined, packages: ["ovmf"] },
  grub: {
    present: () => ["grub-mkrescue", "xorriso", "mformat"].every(onPath) && grubPlatform("i386-pc"),
    packages: ["grub-common", "grub-pc-bin", "xorriso", "mtools"],
  },
  "grub-efi": { present: () => grubPlatform("x86_64-efi"), packages: ["grub-efi-amd64-bin"] },
  nasm: { present: () => onPath("nasm"), packages: ["nasm"] },
  // glibc's static libraries: C programs for the Linux guest are built static.
  "libc-static": { present: () => staticLibc(), packages: ["libc6-dev"] },
  // debugfs reads a guest's ext2 disk image on the host (linux-disk).
  e2fsprogs: { present: () => onPath("debugfs"), packages: ["e2fsprogs"] },
};

export const ALL_TOOLS = Object.keys(REQUIREMENTS) as Tool[];

export function toolsFor(plan: RunPlan): Tool[] {
  const tools: Tool[] = ["cargo", plan.backend === "bochs" ? "bochs" : "qemu"];
  if (plan.boot === "iso") tools.push("grub");
  if (plan.firmware === "uefi") tools.push("ovmf", "grub-efi");
  if (plan.scenario.payload) tools.push("nasm");
  const programs = plan.scenario.linux?.programs ?? [];
  if (programs.some((p) => p.endsWith(".asm"))) tools.push("nasm");
  if (programs.some((p) => p.endsWith(".c"))) tools.push("libc-static");
  tools.push(...plan.scenario.needs ?? []);
  return tools;
}

export class SetupError extends Error {}

export function missing(tools: Iterable<Tool>): Tool[] {
  return [...new Set(tools)].filter((t) => !REQUIREMENTS[t].present());
}

/** Makes sure `tools` are there; throws SetupError with the fix when not. */
export async function ensureTools(tools: Iterable<Tool>, say: (msg: string) => void) {
  const absent = missing(tools);
  if (absent.length === 0) return;
  if (absent.includes("cargo")) {
    throw new SetupError(
      "cargo not found: install Rust (https://rustup.rs) and make sure cargo is on PATH",
    );
  }
  const packages = [...new Set(absent.flatMap((t) => REQUIREMENTS[t].packages))];
  const root = Deno.uid() === 0;
  const ci = Deno.env.get("CI") === "true";
  if (!root && !ci) {
    throw new SetupError(
      `missing ${absent.join(", ")}; install with:\n  sudo apt-get install -y ${
        packages.join(" ")
      }`,
    );
  }
  say(`installing Debian packages: ${packages.join(" ")}`);
  const sudo = root ? [] : ["sudo", "-n"];
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  for (
    const args of [["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", ...packages]]
  ) {
    const out = await $`${[...sudo, ...args]}`.env(env).stdin("null").captureCombined().noThrow();
    if (out.code !== 0) throw new SetupError(`${args.join(" ")} failed:\n${out.combined}`);
  }
  const still = missing(absent);
  if (still.length > 0) throw new SetupError(`still missing after install: ${still.join(", ")}`);
}
