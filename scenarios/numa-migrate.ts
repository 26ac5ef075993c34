import { everyVcpu, guest, guestEnd, VENDOR_TARGETS } from "../harness/guests.ts";
import type { SvEvent } from "../harness/events.ts";
import { defineScenario, type RunInfo } from "../harness/scenario.ts";

// Page migration (`migrate` hypercall): vCPU 0 moves a page between the two
// nodes again and again while vCPU 1 increments a counter in it. The
// guest's asserts check that no write was lost and the contents moved; the
// hypervisor's summary must count the flushes the moves needed (two per
// move on the writer) and its placement must still hold every page.
const migrations = (events: SvEvent[]) =>
  events.find((e) => e.ev === "vmexit" && e.call === "report" && e.tag === "0x2");

export default defineScenario(
  {
    name: "numa-migrate",
    description: "a page migrates between nodes under concurrent writes: none lost, contents kept",
    groups: ["numa", "smp"],
    machine: {
      smp: 2,
      memoryMiB: 256,
      numa: { nodes: [{ cpus: [0], memoryMiB: 128 }, { cpus: [1], memoryMiB: 128 }] },
    },
  },
  guest({
    payload: "numa-migrate.asm",
    trace: "summary",
    cmdline: "guest=long guest.memory=4",
    targets: VENDOR_TARGETS,
  }),
  guestEnd({ counts: { hlt: 1 } }),
  {
    checks: [
      everyVcpu("vmexit", { call: "report" }),
      (events: SvEvent[], _run: RunInfo) => {
        const moved = migrations(events);
        const n = moved ? Number(BigInt(moved.value as string)) : 0;
        const writer = events.find((e) => e.ev === "guest-end" && e.vcpu === 1);
        const flushes = (writer?.flushes as number | undefined) ?? 0;
        return [
          ...(n >= 9 ? [] : [`${n} moves overlapped the writes; the writer waits for 9 at least`]),
          // Each move flushes every vCPU twice (write-protect, remap).
          ...(flushes === 2 * n ? [] : [`the writer flushed ${flushes} times for ${n} moves`]),
        ];
      },
    ],
  },
);
