/**
 * An emulator's own pseudo-terminal, drained into a file. Bochs' `term`
 * display, its stdout not a terminal, opens one (/dev/ptmx) and draws the
 * screen into it; nobody reads the other side, so once about 4 KiB of
 * screen wait there its next write blocks, and Bochs with it, forever (a
 * Linux boot on Bochs stopped so, its vCPUs halfway through). The harness
 * finds the terminal through /proc, puts its other side in raw mode (no
 * echo back into the emulator, no line to wait for) and reads it to the end.
 */
import $ from "dax";

/** The /dev/pts number of the pseudo-terminal process `pid` holds, if it opened one. */
export async function ptyOf(pid: number): Promise<number | undefined> {
  try {
    for await (const fd of Deno.readDir(`/proc/${pid}/fd`)) {
      const target = await Deno.readLink(`/proc/${pid}/fd/${fd.name}`).catch(() => "");
      if (target !== "/dev/ptmx") continue;
      const info = await Deno.readTextFile(`/proc/${pid}/fdinfo/${fd.name}`);
      const index = info.match(/^tty-index:\s*(\d+)/m)?.[1];
      if (index !== undefined) return Number(index);
    }
  } catch { /* exited, or no /proc */ }
  return undefined;
}

/**
 * Drains `pid`'s pseudo-terminal into `file` until the emulator closes it:
 * true once draining started, false while it has none (try again later).
 */
export async function drainPty(pid: number, file: string): Promise<boolean> {
  const index = await ptyOf(pid);
  if (index === undefined) return false;
  const path = `/dev/pts/${index}`;
  await $`stty -F ${path} raw -echo`.quiet().noThrow();
  const pts = await Deno.open(path, { read: true }).catch(() => undefined);
  if (!pts) return false;
  const out = await Deno.create(file);
  // Ends with an error (EIO) when the emulator closes its side: that is the end.
  pts.readable.pipeTo(out.writable).catch(() => {});
  return true;
}
