/**
 * The Linux guest, made from Debian packages without installing a kernel on
 * the host: `apt-get download` of the kernel image and busybox-static,
 * unpacked into the harness cache; the kernel's ELF vmlinux taken out of its
 * bzImage (the PVH entry skips the xz decompression, most of a Bochs boot);
 * and a busybox initramfs whose /init prints markers on the console
 * (`MARKER` lines: node count, distances, CPUs, MemTotal, CPU flags, uptime)
 * and powers off. Cached by the resolved package names and the init script,
 * so a warm run rebuilds nothing.
 */
import $ from "dax";
import { basename, dirname, join } from "node:path";
import { cached, exists, sha256 } from "./build.ts";
import { CACHE_DIR } from "./paths.ts";

export class LinuxBuildError extends Error {}

/** The marker prefix of /init's lines. */
export const MARKER = "SV-LINUX";

/** The package the kernel image comes from, resolved to its versioned name. */
const KERNEL_META = "linux-image-amd64";
const BUSYBOX = "busybox-static";

/** Where a scenario's own lines go in /init (`initScript`). */
const RUN_HERE = "# the scenario's own lines";

/** /init: mounts, prints the markers, powers off (ACPI: the hypervisor sees it). */
export const INIT_SCRIPT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
echo "${MARKER} init"
echo "${MARKER} nodes=$(ls -d /sys/devices/system/node/node[0-9]* | wc -l)"
for n in /sys/devices/system/node/node[0-9]*; do
  echo "${MARKER} distance \${n##*/}=$(cat $n/distance)"
done
echo "${MARKER} nproc=$(nproc)"
echo "${MARKER} online=$(cat /sys/devices/system/cpu/online)"
echo "${MARKER} memtotal-kib=$(sed -n 's/^MemTotal: *\\([0-9]*\\) kB/\\1/p' /proc/meminfo)"
echo "${MARKER} flags=$(sed -n 's/^flags[^:]*: //p' /proc/cpuinfo | head -n 1)"
echo "${MARKER} uptime=$(cut -d' ' -f1 /proc/uptime)"
${RUN_HERE}
echo "${MARKER} done"
poweroff -f
`;

/** /init, running `run` (a scenario's shell lines) after its markers. */
export function initScript(run?: string): string {
  return run ? INIT_SCRIPT.replace(RUN_HERE, run.trim()) : INIT_SCRIPT;
}

/** The guest's kernel command line (COM1 is its console). */
// `no_timer_check`: Linux's boot-time check that the timer interrupt
// reaches the CPU panics a guest on a starved emulator ("IO-APIC + timer
// doesn't work!"); KVM guests skip it the same way.
export const LINUX_CMDLINE = "console=ttyS0,115200 panic=-1 rdinit=/init no_timer_check";

export interface LinuxGuest {
  /** The ELF vmlinux (PVH entry). */
  vmlinux: string;
  /** The bzImage it came from (x86 boot protocol). */
  bzImage: string;
  /** The busybox initramfs (newc cpio, uncompressed). */
  initrd: string;
  /** The static busybox it holds. */
  busybox: string;
  /** The Debian package the kernel came from. */
  package: string;
}

async function tool(cmd: string, args: string[], what: string, cwd?: string): Promise<string> {
  let c = $`${cmd} ${args}`.stdin("null").captureCombined().noThrow();
  if (cwd) c = c.cwd(cwd);
  const out = await c;
  if (out.code !== 0) throw new LinuxBuildError(`${what} failed:\n${out.combined.trim()}`);
  return out.combined;
}

/** The versioned kernel package `linux-image-amd64` depends on. */
async function kernelPackage(): Promise<string> {
  const out = await tool("apt-cache", ["depends", KERNEL_META], `apt-cache depends ${KERNEL_META}`);
  const name = out.match(/Depends:\s*(linux-image-[0-9][^\s]*)/)?.[1];
  if (!name) throw new LinuxBuildError(`${KERNEL_META} names no kernel package:\n${out}`);
  return name;
}

/** Downloads `pkg` (apt-get download) to `deb` (staged beside it: one rename puts it there). */
async function download(pkg: string, deb: string): Promise<void> {
  const stage = await Deno.makeTempDir({ dir: dirname(deb), prefix: "scalevisor-deb-" });
  try {
    await tool("apt-get", ["download", pkg], `apt-get download ${pkg}`, stage);
    const debs = [...Deno.readDirSync(stage)].filter((e) => e.name.endsWith(".deb"));
    const one = debs.length === 1 ? debs[0] : undefined;
    if (!one) throw new LinuxBuildError(`apt-get download ${pkg} gave no single .deb`);
    await Deno.rename(join(stage, one.name), deb);
  } finally {
    await Deno.remove(stage, { recursive: true });
  }
}

/** Downloads `pkg` and unpacks it into `dir`. */
async function unpack(pkg: string, dir: string): Promise<void> {
  const stage = await Deno.makeTempDir({ prefix: "scalevisor-deb-" });
  try {
    const deb = join(stage, "package.deb");
    await download(pkg, deb);
    await tool("dpkg-deb", ["-x", deb, dir], `dpkg-deb -x ${pkg}`);
  } finally {
    await Deno.remove(stage, { recursive: true });
  }
}

/**
 * The kernel's package, kept next to the kernel (in `dir`): the image and
 * the modules come from it, downloaded once.
 */
async function kernelDeb(dir: string, pkg: string): Promise<string> {
  const deb = join(dir, "kernel.deb");
  if (!(await exists(deb))) await download(pkg, deb);
  return deb;
}

/**
 * The shared libraries `ldd` names for a binary, with the dynamic loader:
 * absolute paths on this host (Debian's, from the packages installed);
 * throws naming each library the host lacks.
 */
export function lddLibraries(output: string, binary: string): string[] {
  const missing = [...output.matchAll(/^\s*(\S+) => not found/gm)].map((m) => m[1]!);
  if (missing.length) {
    throw new LinuxBuildError(
      `${binary} needs ${missing.join(", ")}, which this host lacks: ` +
        `install the Debian packages that hold them (apt-file search ${missing[0]})`,
    );
  }
  return [...output.matchAll(/^\s*(?:\S+ => )?(\/\S+) \(0x[0-9a-f]+\)$/gm)].map((m) => m[1]!);
}

/** A file of the guest's initramfs at an absolute path of its own. */
export interface GuestFile {
  path: string;
  data: Uint8Array;
}

/**
 * Programs from Debian packages for the guest, each `PACKAGE:/PATH`
 * (`pigz:/usr/bin/pigz`): the package downloaded and unpacked once into the
 * harness cache, the program at its own path, and the shared libraries and
 * loader it needs at theirs, taken from this host (Debian's own files, as
 * `ldd` resolves them).
 */
export async function debianFiles(
  wanted: string[],
  progress: (msg: string) => void,
): Promise<GuestFile[]> {
  const files = new Map<string, string>(); // guest path -> host file
  for (const w of wanted) {
    const [, pkg, path] = w.match(/^([a-z0-9][a-z0-9+.-]*):(\/[\w/.+-]+)$/) ?? [];
    if (!pkg || !path) throw new LinuxBuildError(`"${w}" is not PACKAGE:/PATH`);
    const dir = join(CACHE_DIR, "debian", pkg);
    if (!(await exists(join(dir, ".unpacked")))) {
      progress(`downloading ${pkg} (apt-get download)`);
      await Deno.mkdir(dir, { recursive: true });
      await unpack(pkg, dir);
      await Deno.writeTextFile(join(dir, ".unpacked"), "");
    }
    const binary = join(dir, path);
    if (!(await exists(binary))) throw new LinuxBuildError(`package ${pkg} holds no ${path}`);
    files.set(path, binary);
    for (const lib of lddLibraries(await tool("ldd", [binary], `ldd ${path}`), path)) {
      files.set(lib, lib);
    }
  }
  return Promise.all(
    [...files].map(async ([path, from]) => ({ path, data: await Deno.readFile(from) })),
  );
}

/** A module's name as the kernel knows it: its file's, `-` read as `_`. */
export function moduleName(file: string): string {
  return basename(file).replace(/\.ko$/, "").replaceAll("-", "_");
}

/** The modules a module needs loaded first: its modinfo's `depends=`. */
export function moduleDepends(ko: Uint8Array): string[] {
  const text = new TextDecoder("latin1").decode(ko);
  const at = text.indexOf("\0depends=");
  if (at < 0) return [];
  const end = text.indexOf("\0", at + 1);
  return text.slice(at + "\0depends=".length, end).split(",").filter((d) => d).map(moduleName);
}

/**
 * `wanted` and every module they need, in an order `insmod` can load them
 * (each after what it needs); `depends(name)` gives a module's needs.
 */
export function loadOrder(wanted: string[], depends: (name: string) => string[]): string[] {
  const order: string[] = [];
  const visiting = new Set<string>();
  const visit = (name: string) => {
    if (order.includes(name)) return;
    if (visiting.has(name)) throw new LinuxBuildError(`modules depend on each other: ${name}`);
    visiting.add(name);
    depends(name).forEach(visit);
    order.push(name);
  };
  wanted.map(moduleName).forEach(visit);
  return order;
}

/**
 * The kernel's modules `wanted` and those they need, as files in the
 * order they load: taken from the kernel's package (kept next to the
 * kernel), each once, and cached there.
 */
export async function kernelModules(
  guest: LinuxGuest,
  wanted: string[],
): Promise<{ name: string; path: string }[]> {
  const dir = join(guest.initrd, "..", "modules");
  await Deno.mkdir(dir, { recursive: true });
  const file = (name: string) => join(dir, `${name}.ko`);
  // The package and its listing are read only for a module not cached yet.
  let members: Map<string, string> | undefined;
  const member = async (name: string) => {
    if (!members) {
      const deb = await kernelDeb(join(dir, ".."), guest.package);
      const listing = await tool("dpkg-deb", ["-c", deb], `dpkg-deb -c ${guest.package}`);
      members = new Map();
      for (const [, path] of listing.matchAll(/\s\.(\/lib\/modules\/\S+\.ko)$/gm)) {
        if (path) members.set(moduleName(path), `.${path}`);
      }
    }
    return members.get(name);
  };
  const fetch = async (name: string) => {
    if (await exists(file(name))) return;
    const path = await member(name);
    if (!path) throw new LinuxBuildError(`${guest.package} has no module ${name}`);
    const deb = join(dir, "..", "kernel.deb");
    const stage = await Deno.makeTempDir({ dir, prefix: "scalevisor-ko-" });
    try {
      const out = await $`dpkg-deb --fsys-tarfile ${deb} | tar -x -C ${stage} ${path}`
        .stdin("null").captureCombined().noThrow();
      if (out.code !== 0) {
        throw new LinuxBuildError(`taking ${path} out failed:\n${out.combined}`);
      }
      await Deno.rename(join(stage, path), file(name));
    } finally {
      await Deno.remove(stage, { recursive: true });
    }
  };
  // Fetch level by level: a module's needs are read from its file.
  const needs = new Map<string, string[]>();
  let pending = wanted.map(moduleName);
  while (pending.length) {
    const next: string[] = [];
    for (const name of pending.filter((n) => !needs.has(n))) {
      await fetch(name);
      const deps = moduleDepends(await Deno.readFile(file(name)));
      needs.set(name, deps);
      next.push(...deps);
    }
    pending = next;
  }
  return loadOrder(wanted, (n) => needs.get(n) ?? []).map((name) => ({ name, path: file(name) }));
}

/** The xz stream's magic, which starts a Debian bzImage's compressed kernel. */
const XZ_MAGIC = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];

export function findMagic(bytes: Uint8Array, magic: number[]): number {
  outer: for (let i = 0; i + magic.length <= bytes.length; i++) {
    for (let k = 0; k < magic.length; k++) if (bytes[i + k] !== magic[k]) continue outer;
    return i;
  }
  return -1;
}

/** The ELF vmlinux inside a bzImage whose kernel is xz-compressed. */
async function extractVmlinux(bzImage: string, out: string): Promise<void> {
  const bytes = await Deno.readFile(bzImage);
  const at = findMagic(bytes, XZ_MAGIC);
  if (at < 0) throw new LinuxBuildError(`${bzImage} holds no xz-compressed kernel`);
  // --single-stream stops at the stream's end: what follows it in the bzImage is not xz.
  const tail = `${out}.xz`;
  await Deno.writeFile(tail, bytes.subarray(at));
  const result = await new Deno.Command("xz", { args: ["-dcq", "--single-stream", tail] }).output()
    .finally(() => Deno.remove(tail));
  const elf = result.stdout;
  if (!result.success || elf[0] !== 0x7f || elf[1] !== 0x45) {
    throw new LinuxBuildError(
      `xz could not unpack the kernel in ${bzImage}: ${new TextDecoder().decode(result.stderr)}`,
    );
  }
  await Deno.writeFile(out, elf);
}

/** A newc cpio archive entry. */
export interface CpioEntry {
  path: string;
  /** Full st_mode: type and permissions. */
  mode: number;
  data?: Uint8Array;
}

/** A newc ("070701") cpio archive, as the kernel's initramfs unpacker reads it. */
export function cpio(entries: CpioEntry[]): Uint8Array {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  let size = 0;
  const push = (b: Uint8Array) => {
    parts.push(b);
    size += b.length;
    const pad = (4 - size % 4) % 4;
    if (pad) {
      parts.push(new Uint8Array(pad));
      size += pad;
    }
  };
  const hex = (n: number) => n.toString(16).padStart(8, "0");
  const all = [...entries, { path: "TRAILER!!!", mode: 0 }];
  all.forEach((e, i) => {
    const data = e.data ?? new Uint8Array();
    const name = enc.encode(`${e.path}\0`);
    const fields = [i + 1, e.mode, 0, 0, 1, 0, data.length, 0, 0, 0, 0, name.length, 0];
    parts.push(enc.encode(`070701${fields.map(hex).join("")}`));
    size += 110;
    push(name); // the header (110) and name are padded to 4 together
    if (data.length) push(data);
  });
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const DIR = 0o040755;
const FILE = 0o100755;
const LINK = 0o120777;

/** A program of a scenario's, in the initramfs's /bin. */
export interface Program {
  name: string;
  data: Uint8Array;
}

/**
 * The initramfs: busybox, /init, the directories /init mounts on,
 * `programs` in /bin, kernel `modules` in /lib/modules and `files` at
 * their own paths.
 */
export function initramfs(
  busybox: Uint8Array,
  init = INIT_SCRIPT,
  programs: Program[] = [],
  modules: Program[] = [],
  files: GuestFile[] = [],
): Uint8Array {
  const enc = new TextEncoder();
  const paths = files.map((f) => f.path.replace(/^\/+/, ""));
  // Every directory above a file, parents first.
  const above = paths.flatMap((p) =>
    p.split("/").slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join("/"))
  );
  const dirs = [
    ...new Set([
      "bin",
      "dev",
      "proc",
      "sys",
      "tmp",
      ...modules.length ? ["lib", "lib/modules"] : [],
      ...above,
    ]),
  ];
  return cpio([
    ...dirs.map((path) => ({ path, mode: DIR })),
    { path: "bin/busybox", mode: FILE, data: busybox },
    { path: "bin/sh", mode: LINK, data: enc.encode("busybox") },
    ...programs.map((p) => ({ path: `bin/${p.name}`, mode: FILE, data: p.data })),
    ...modules.map((m) => ({ path: `lib/modules/${m.name}.ko`, mode: FILE, data: m.data })),
    ...files.map((f, i) => ({ path: paths[i]!, mode: FILE, data: f.data })),
    { path: "init", mode: FILE, data: enc.encode(init) },
  ]);
}

let built: Promise<LinuxGuest> | undefined;

/**
 * The Linux guest's files, built once per harness process and cached in
 * `target/harness/linux/<kernel package>/`.
 */
export function buildLinuxGuest(progress: (msg: string) => void): Promise<LinuxGuest> {
  built ??= (async () => {
    for (const t of ["apt-get", "apt-cache", "dpkg-deb", "xz"]) {
      if (!(await $.which(t))) {
        throw new LinuxBuildError(
          `${t} is missing: the Linux guest is made from Debian packages (Debian or Ubuntu hosts)`,
        );
      }
    }
    const pkg = await kernelPackage();
    const dir = join(CACHE_DIR, "linux", pkg);
    const guest: LinuxGuest = {
      vmlinux: join(dir, "vmlinux"),
      bzImage: join(dir, "bzImage"),
      initrd: join(dir, "initrd.cpio"),
      busybox: join(dir, "busybox"),
      package: pkg,
    };
    await Deno.mkdir(dir, { recursive: true });
    if (!(await exists(guest.vmlinux)) || !(await exists(guest.bzImage))) {
      progress(`downloading ${pkg} (apt-get download)`);
      const stage = await Deno.makeTempDir({ prefix: "scalevisor-linux-" });
      try {
        const deb = await kernelDeb(dir, pkg);
        await tool("dpkg-deb", ["-x", deb, stage], `dpkg-deb -x ${pkg}`);
        const boot = join(stage, "boot");
        const vmlinuz = [...Deno.readDirSync(boot)].find((e) => e.name.startsWith("vmlinuz-"));
        if (!vmlinuz) throw new LinuxBuildError(`${pkg} holds no /boot/vmlinuz-*`);
        // Temporary names per process: another harness may build them at once.
        const tmp = (p: string) => `${p}.${Deno.pid}.tmp`;
        await Deno.copyFile(join(boot, vmlinuz.name), tmp(guest.bzImage));
        await extractVmlinux(tmp(guest.bzImage), tmp(guest.vmlinux));
        await Deno.rename(tmp(guest.vmlinux), guest.vmlinux);
        await Deno.rename(tmp(guest.bzImage), guest.bzImage);
      } finally {
        await Deno.remove(stage, { recursive: true });
      }
    }
    // The init script is part of the initramfs's name: an edit rebuilds it.
    const initrd = join(dir, `initrd-${await sha256(INIT_SCRIPT)}.cpio`);
    await cached(guest.busybox, async (tmp) => {
      progress(`unpacking ${BUSYBOX}`);
      const stage = await Deno.makeTempDir({ prefix: "scalevisor-busybox-" });
      try {
        await unpack(BUSYBOX, stage);
        await Deno.copyFile(join(stage, "bin", "busybox"), tmp);
      } finally {
        await Deno.remove(stage, { recursive: true });
      }
    });
    guest.initrd = await cached(initrd, async (tmp) => {
      progress("building the initramfs");
      await Deno.writeFile(tmp, initramfs(await Deno.readFile(guest.busybox)));
    });
    return guest;
  })();
  return built;
}

/**
 * An initramfs with a scenario's programs in /bin and its lines in /init,
 * cached next to the kernel by what it holds.
 */
export async function buildInitrd(
  guest: LinuxGuest,
  programs: { name: string; path: string }[],
  run: string | undefined,
  modules: string[] = [],
  files: GuestFile[] = [],
): Promise<string> {
  const kos = modules.length ? await kernelModules(guest, modules) : [];
  // The modules load first, in order, before the scenario's lines.
  const insmod = kos.map((m) =>
    `insmod /lib/modules/${m.name}.ko || echo "${MARKER} insmod-failed=${m.name}"`
  );
  const init = initScript([...insmod, run ?? ""].join("\n").trim() || undefined);
  const read = (files: { name: string; path: string }[]) =>
    Promise.all(files.map(async (p) => ({ name: p.name, data: await Deno.readFile(p.path) })));
  const key = await sha256(
    init,
    ...[...programs, ...kos].map((p) => `${p.name}:${p.path}`),
    ...files.flatMap((f) => [f.path, f.data]),
  );
  return cached(join(guest.initrd, "..", `initrd-${key}.cpio`), async (tmp) => {
    const busybox = await Deno.readFile(guest.busybox);
    await Deno.writeFile(
      tmp,
      initramfs(busybox, init, await read(programs), await read(kos), files),
    );
  });
}

/**
 * The guest's files as one module, for loaders that pass one (QEMU's
 * `-kernel` with `-initrd`): a newc cpio of `kernel`, `initrd` and
 * `cmdline`, which the hypervisor unpacks (hypervisor/src/vcpu/bundle.rs).
 * Cached next to the kernel.
 */
export async function buildLinuxBundle(
  kernel: string,
  initrd: string,
  cmdline: string,
): Promise<string> {
  const path = join(kernel, "..", `bundle-${await sha256(kernel, initrd, cmdline)}.cpio`);
  // Several runs may ask at once: one makes it, all get it.
  return cached(path, async (tmp) => {
    const file = 0o100644;
    const archive = cpio([
      { path: "kernel", mode: file, data: await Deno.readFile(kernel) },
      { path: "initrd", mode: file, data: await Deno.readFile(initrd) },
      { path: "cmdline", mode: file, data: new TextEncoder().encode(cmdline) },
    ]);
    await Deno.writeFile(tmp, archive);
  });
}

/** The markers /init printed, by name (`nodes`, `nproc`, ...), from the guest's console. */
export function linuxMarkers(console: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const line of console.split(/\r?\n/)) {
    const at = line.indexOf(`${MARKER} `);
    if (at < 0) continue;
    // The kernel's own messages can land in the middle of a marker line
    // (`SV-LINUX init[   11.63] hrtimer: ...`): they start at a timestamp.
    const rest = line.slice(at + MARKER.length + 1).replace(/\[\s*\d+\.\d+\].*$/, "").trim();
    const eq = rest.indexOf("=");
    if (eq < 0) found.set(rest, "");
    else found.set(rest.slice(0, eq), rest.slice(eq + 1));
  }
  return found;
}
