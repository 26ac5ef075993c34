import { defineScenario } from "../harness/scenario.ts";
import { GUEST_TARGETS, lifecycle } from "../harness/guests.ts";

export default defineScenario({
  name: "selftest-entry-failure",
  description: "a VM entry the CPU refuses is reported with its reason and the guest state",
  groups: ["selftest", "guest"],
  payload: { file: "vmlaunch-basic.asm" },
  // The guest starts with a state entry must refuse: RFLAGS bit 1 clear
  // for VMX, EFER.SVME clear for SVM.
  cmdline: "guest=long guest.selftest=entry-failure",
  machine: { memoryMiB: 128 },
  targets: GUEST_TARGETS,
  timeoutS: 60,
  expectStatus: "fail",
  exits: [],
  expect: (run) => [
    ...lifecycle(run).start,
    {
      ev: "entry-failure",
      fields: run.vendor === "intel"
        ? { instruction: "vmlaunch", reason: "entry-failure-guest-state", code: "0x21" }
        : { instruction: "vmrun", reason: "invalid-vmcb", code: "0xffffffffffffffff" },
      // The dump shows the broken state (after a refused VMRUN, QEMU's RIP means nothing).
      check: (e) => {
        const guest = e.guest as Record<string, string>;
        const shown = run.vendor === "intel"
          ? guest.rflags === "0x0" && guest.rip === "0x8000"
          : (BigInt(guest.efer ?? "0x1000") & 0x1000n) === 0n;
        return shown ? [] : [`guest ${JSON.stringify(guest)}`];
      },
    },
    { ev: "guest-end", fields: { how: "entry-failure", failed: true, exits: 0 } },
    ...lifecycle(run).end,
    { ev: "exit", fields: { status: "fail" } },
  ],
});
