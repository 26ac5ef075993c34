import { guest, GUEST_TARGETS, guestEnd } from "../harness/guests.ts";
import { defineScenario } from "../harness/scenario.ts";

// A payload whose ASSERT_LT fails on line 9: the guest ends failed, and the
// verdict quotes the payload's source line, on every guest target.
export default defineScenario(
  {
    name: "selftest-assert",
    description: "harness selftest: a failed guest ASSERT fails the run, quoting its source line",
    groups: ["selftest"],
    machine: { memoryMiB: 128 },
    expectReason:
      /^guest assert failed at payloads\/assert-fail\.asm:9: ASSERT_LT\(rax, 3\) \(left 0x5, right 0x3\)$/,
  },
  guest({ payload: "assert-fail.asm", targets: GUEST_TARGETS }),
  { expect: [{ ev: "vmexit", fields: { reason: "hypercall", call: "assert", line: 9 } }] },
  guestEnd({ how: "assert", failed: true }),
);
