import { guest, guestEnd, report, VENDOR_TARGETS } from "../harness/guests.ts";
import { exitCosts, exitGoal } from "../harness/exit_cost.ts";
import { defineScenario, type RunCheck, variants } from "../harness/scenario.ts";

// The exit-cost benchmark's guest (`deno task bench exits` takes the
// slopes): as a scenario it checks that every loop ran and was counted, and
// guards the goal a CPUID round trip met at the default trace level. QEMU
// counts instructions in its TSC with -icount; Bochs' TSC does already (on
// KVM the TSC counts time: no goal there).
const N1 = 500, N2 = 2500;
const positive = (v: bigint) => (v > 0n ? undefined : "no time passed");
const withinGoal: RunCheck = (events, run) => {
  if (run.backend === "kvm" || run.cmdline.includes("trace=exits")) return [];
  const cost = exitCosts(events), goal = exitGoal(run);
  if (typeof cost === "string") return [cost];
  return cost.cpuid <= goal
    ? []
    : [`a CPUID round trip costs ${cost.cpuid} instructions (goal ${goal})`];
};
const base = defineScenario(
  {
    name: "bench-exits",
    description: "loops of CPUID and nop-hypercall exits, timed by the guest's TSC",
    groups: ["bench"],
    machine: { memoryMiB: 128, emulatorArgs: { qemu: ["-icount", "shift=0,sleep=off"] } },
  },
  guest({
    payload: "bench-exits.asm",
    trace: "summary",
    targets: VENDOR_TARGETS,
  }),
  { expect: [1, 2, 3, 4].map((tag) => report(tag, positive)) },
  guestEnd({
    counts: { cpuid: N1 + N2 + 1, hypercall: N1 + N2 + 6, hlt: 1 },
  }),
  { checks: [withinGoal] },
);
/** The default trace level, and every exit an event: what tracing costs. */
export default variants(base, {
  summary: {},
  // Each traced exit costs a line on the UART: longer than the default watchdog allows on Bochs.
  traced: { cmdline: base.cmdline!.replace("trace=summary", "trace=exits guest.watchdog=0") },
});
