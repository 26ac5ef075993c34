import { everyVcpu, guest, guestEnd } from "../harness/guests.ts";
import { numa, policy } from "../harness/numa_scenario.ts";
import { defineScenario, type Numa, type Scenario } from "../harness/scenario.ts";

// Guest memory under every change at once (payloads/stress-memory.asm): four
// vCPUs on two nodes each write, read back, release, move and touch their own
// pages of one region, interleaved page by page, 40 rounds, while adaptive
// placement samples and moves pages under them (or, for `first-touch`,
// while only the guest's releases and moves change them). Every page's
// contents are checked by its owner (tags at both ends): a stale
// translation, a lost write, two pages sharing a frame or a neighbour's data
// lost fails the guest's own asserts. On QEMU and Bochs; `deno task
// stress` runs them again and again under QEMU's multi-threaded TCG, where
// the vCPUs are truly parallel.
const FOUR_CPUS: Numa = {
  nodes: [{ cpus: [0, 1], memoryMiB: 128 }, { cpus: [2, 3], memoryMiB: 128 }],
};

const variant = (name: string, placement: string, page: "4k" | "2m"): Scenario => {
  const s = defineScenario(
    {
      name: `stress-memory/${name}`,
      description: `four vCPUs write, check, release and move pages under ${placement}, ${page}`,
      groups: ["smp", "stress"],
    },
    numa(FOUR_CPUS, 4, { bochs: ["tigerlake"] }),
    guest({
      payload: "stress-memory.asm",
      cmdline: "guest=long guest.memory=8 guest.watchdog=0" +
        (placement === "adaptive" ? " numa.sample=64 numa.period=1" : ""),
      trace: "summary",
    }),
    policy({ policy: placement === "adaptive" ? "adaptive" : "first-touch", page }),
    guestEnd({ counts: { hlt: 1 } }),
  );
  return {
    ...s,
    // Single-threaded on QEMU in the suite (docs/numa.md, the open problem
    // of multi-threaded TCG, which this scenario meets too); `deno task
    // stress` runs it multi-threaded, again and again.
    machine: { ...s.machine, singleThreaded: true },
    timeoutS: 180,
    checks: [
      ...s.checks ?? [],
      everyVcpu("guest-end", { how: "hlt", failed: false }),
      everyVcpu("vmexit", { call: "report", value: "0x28", tag: "0x1" }),
    ],
  };
};

export default [
  variant("adaptive-4k", "adaptive", "4k"),
  variant("adaptive-2m", "adaptive", "2m"),
  variant("first-touch", "first-touch", "4k"),
];
