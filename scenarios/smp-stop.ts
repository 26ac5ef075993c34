import { guest, guestEnd } from "../harness/guests.ts";
import { defineScenario } from "../harness/scenario.ts";

// When one vCPU fails, the others stop at once: vCPU 1 fails its own assert
// while the other three spin in the guest with no exit and no watchdog
// (guest.watchdog=0); only the hypervisor brings them out: its kick IPI,
// or on Intel the preemption timer's 10 ms slices where the kick cannot
// (Bochs 2.7 keeps host interrupts masked in a guest entered with IF=0).
// Not on Bochs ryzen: the same Bochs masking stops both the kick and the
// APIC timer there, and nothing else ends a guest that never exits.
const VCPUS = 4;
export default defineScenario(
  {
    name: "smp-stop",
    description: "one vCPU fails; the three others, spinning in the guest, are kicked out",
    groups: ["smp"],
    machine: { smp: VCPUS, memoryMiB: 128 },
  },
  guest({
    payload: {
      asm: [
        "bits 64",
        "org 0x8000",
        '%include "assert.inc"',
        "    cmp rdi, 1",
        "    jne spin",
        "    ASSERT_EQ(rdi, 2)            ; fails: this is vCPU 1",
        "spin:",
        "    jmp spin",
        "",
      ].join("\n"),
    },
    cmdline: "guest=long guest.watchdog=0",
    trace: "summary",
    targets: [
      { backend: "bochs", cpus: ["tigerlake"] },
      { backend: "qemu", boot: "kernel", cpus: ["EPYC"] },
    ],
  }),
  guestEnd({ how: "assert", failed: true }),
  {
    checks: [(events) =>
      Array.from({ length: VCPUS }, (_, i) => {
        const end = events.find((e) => e.ev === "guest-end" && e.vcpu === i);
        const want = i === 1 ? "assert" : "stopped";
        return end?.how === want ? [] : [`vCPU ${i} ended ${end?.how ?? "never"}, not ${want}`];
      }).flat()],
  },
);
