import { everyVcpu, guest, guestEnd, VENDOR_TARGETS } from "../harness/guests.ts";
import { defineScenario, variants } from "../harness/scenario.ts";

// A page released while four vCPUs hold its translation: the hypervisor
// unmaps it, flushes every CPU (its kick IPI, waited for) and frees the
// frame; each vCPU then reads zeros, never the old frame, and its
// neighbours' data (its own asserts), and reports one TLB flush. The
// emulators here drop cached translations at every VM entry anyway, so the
// flush count is what shows the shootdown. With 2 MiB pages the release
// splits the page first (one more shootdown): the other 511 pages keep
// their data, and the placement counts 511 of them as 4 KiB pages.
const base = defineScenario(
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

export default variants(base, {
  "4k": {},
  "2m": {
    description: "releasing a 4 KiB page of a 2 MiB page keeps the other 511 pages' data",
    cmdline: `${base.cmdline} numa.page=2m`,
    checks: [
      everyVcpu("vmexit", { call: "report", tag: "0x1" }),
      // The split and the release: two shootdowns.
      everyVcpu("guest-end", { flushes: 2 }),
      (events) => {
        const p = events.find((e) => e.ev === "placement");
        const nodes = (p?.nodes ?? []) as { pages: number; large_pages: number }[];
        const small = nodes.reduce((n, x) => n + x.pages, 0);
        // The 2 MiB page at 2 MiB split: 511 of its pages stay, as 4 KiB
        // ones, and the released one is backed again, zeroed, at the reads
        // after it (the loader's first 2 MiB stays one large page).
        return small === 512 ? [] : [`${small} 4 KiB pages placed, expected 512`];
      },
    ],
  },
});
