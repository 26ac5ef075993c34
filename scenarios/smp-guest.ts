import { guest, guestEnd, VENDOR_TARGETS } from "../harness/guests.ts";
import { defineScenario } from "../harness/scenario.ts";
import type { SvEvent } from "../harness/events.ts";

// One vCPU on every CPU, all in the guest at once: each reports its index
// and APIC id, meets the others at the barrier hypercall, then checks that
// all four counted themselves in before it (its own ASSERT_EQ).
const VCPUS = 4;
const report = (events: SvEvent[], vcpu: number, tag: number) =>
  events.find((e) =>
    e.ev === "vmexit" && e.call === "report" && e.vcpu === vcpu && e.tag === `0x${tag}`
  )?.value;

export default defineScenario(
  {
    name: "smp-guest",
    description: "a vCPU on each of 4 CPUs reports its index and APIC id and meets the others",
    groups: ["smp"],
    machine: { smp: VCPUS, memoryMiB: 128 },
  },
  guest({
    payload: "smp-guest.asm",
    trace: "summary",
    targets: VENDOR_TARGETS,
  }),
  guestEnd({ counts: { hypercall: 4, hlt: 1, cpuid: 1 } }),
  {
    checks: [(events) => {
      const problems: string[] = [];
      const apicIds = new Set<unknown>();
      for (let i = 0; i < VCPUS; i++) {
        if (report(events, i, 1) !== `0x${i}`) problems.push(`vCPU ${i} did not report its index`);
        const id = report(events, i, 2);
        if (id === undefined) problems.push(`vCPU ${i} did not report its APIC id`);
        apicIds.add(id);
        if (report(events, i, 3) !== `0x${VCPUS}`) {
          problems.push(`vCPU ${i} did not see ${VCPUS} vCPUs arrive`);
        }
        const end = events.find((e) => e.ev === "guest-end" && e.vcpu === i);
        if (!end) problems.push(`vCPU ${i} has no guest-end`);
        else if (end.how !== "hlt" || end.failed) problems.push(`vCPU ${i} ended ${end.how}`);
      }
      if (apicIds.size !== VCPUS) problems.push(`APIC ids not distinct: ${[...apicIds]}`);
      return problems;
    }],
  },
);
