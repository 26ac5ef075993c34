import { everyVcpu, guest, guestEnd, VENDOR_TARGETS } from "../harness/guests.ts";
import { defineScenario } from "../harness/scenario.ts";

// A page released while four vCPUs hold its translation: the hypervisor
// unmaps it, flushes every CPU (its kick IPI, waited for) and frees the
// frame; each vCPU then reads zeros, never the old frame (its own asserts),
// and reports one TLB flush. The emulators here drop cached translations
// at every VM entry anyway, so the flush count is what shows the shootdown.
export default defineScenario(
  {
    name: "smp-release",
    description: "a released page is unmapped and flushed on every vCPU, then reads zeros",
    groups: ["smp"],
    machine: { smp: 4, memoryMiB: 128 },
  },
  guest({
    payload: "smp-release.asm",
    trace: "summary",
    cmdline: "guest=long guest.memory=4",
    targets: VENDOR_TARGETS,
  }),
  guestEnd({ counts: { hlt: 1 } }),
  {
    checks: [
      everyVcpu("vmexit", { call: "report", tag: "0x1" }),
      everyVcpu("guest-end", { flushes: 1 }),
    ],
  },
);
