/**
 * Bochs, headless: the curses `term` display drawing into its own
 * pseudo-terminal, which the runner drains into screen.log, the
 * debugger told by an rc file to continue and then quit, COM1 (the guest's)
 * and COM2 (the hypervisor's) to files. Its exit status is always 1, so the
 * verdict comes from the hypervisor's output alone. (The `rfb` display is no good in parallel: with a second Bochs on
 * port 5900 its bind/listen retry fails on every other port.)
 */
import type { RunPlan } from "../scenario.ts";
import { DEFAULT_MEMORY_MIB, DEFAULT_SMP } from "../scenario.ts";
import { type Artifacts, type Backend, RUN_FILES } from "./backend.ts";

/** Bochs' own convention: BXSHARE names its share directory (the Nix shell sets it). */
const SHARE = Deno.env.get("BXSHARE") ?? "/usr/share/bochs";
export const BOCHS_BIOS = `${SHARE}/BIOS-bochs-latest`;
export const BOCHS_VGABIOS = `${SHARE}/VGABIOS-lgpl-latest`;
/** Where the `term` display plugin may be: Debian's bochs-term, or beside BXSHARE (Nix). */
export const BOCHS_TERM_PLUGINS = [
  "/usr/lib/x86_64-linux-gnu/bochs/plugins/libbx_term_gui.so",
  `${SHARE}/../../lib/bochs/plugins/libbx_term_gui.so`,
];

export function bochsConfig(plan: RunPlan): string {
  const m = plan.scenario.machine;
  return [
    `megs: ${m.memoryMiB ?? DEFAULT_MEMORY_MIB}`,
    // Without a reset a triple fault becomes a panic, which ends Bochs.
    `cpu: model=${plan.cpu}, count=${m.smp ?? DEFAULT_SMP}, reset_on_triple_fault=0`,
    `romimage: file=${BOCHS_BIOS}`,
    `vgaromimage: file=${BOCHS_VGABIOS}`,
    `ata0-master: type=cdrom, path=${RUN_FILES.iso}, status=inserted`,
    "boot: cdrom",
    `com1: enabled=1, mode=file, dev=${RUN_FILES.guest}`,
    `com2: enabled=1, mode=file, dev=${RUN_FILES.serial}`,
    "display_library: term",
    "speaker: enabled=0",
    "sound: waveoutdrv=dummy",
    "mouse: enabled=0",
    // time0=local aborts Debian's Bochs 2.7 (glibc fortify): keep the default.
    "clock: sync=none",
    "port_e9_hack: enabled=1",
    "log: bochs.log",
    // A CPU panic is reported, not fatal: Bochs 2.7 raises its triple-fault
    // panic before it checks an SVM guest's SHUTDOWN intercept.
    "panic: action=fatal, cpu0=report",
    "error: action=report",
    ...m.emulatorArgs?.bochs ?? [],
    "",
  ].join("\n");
}

export const bochs: Backend = {
  unsupported(plan) {
    if (plan.scenario.machine.acpiTables?.length) return "Bochs cannot add ACPI tables";
    return undefined;
  },
  launch(plan, _artifacts: Artifacts, _cmdline) {
    return {
      bin: "bochs",
      // curses wants a terminal type; the screen goes to screen.log.
      env: { TERM: "xterm" },
      args: ["-q", "-f", "bochsrc.txt", "-rc", "bochs.rc"],
      // Each reported panic stops in the built-in debugger: continue past them.
      files: { "bochsrc.txt": bochsConfig(plan), "bochs.rc": "continue\n".repeat(4) + "quit\n" },
      copies: {},
      log: "bochs.log",
      terminal: "screen.log",
      stopSignal: "SIGKILL",
    };
  },
  endIn(log) {
    if (/Shutdown port: shutdown requested/.test(log)) {
      return { what: "the kernel's power-off (shutdown port)", byKernel: true };
    }
    if (/ACPI control: soft power off/.test(log)) {
      return { what: "an ACPI power-off", byKernel: false };
    }
    // Bochs resets the machine once at time 0; a later reset was asked for.
    const reset = /^0*[1-9]\d*i\[SYS\s*\] bx_pc_system_c::Reset\((\w+)\)/m.exec(log);
    if (reset) return { what: `a ${reset[1]!.toLowerCase()} reset`, byKernel: false };
    return undefined;
  },
  crashIn(log) {
    const m = /exception\(\): 3rd \((\d+)\) exception with no resolution/.exec(log);
    return m ? `triple fault: Bochs saw a 3rd exception (${m[1]}) with no resolution` : undefined;
  },
};
