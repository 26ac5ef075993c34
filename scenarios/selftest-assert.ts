import { defineScenario } from "../harness/scenario.ts";
import { GUEST_TARGETS } from "../harness/guests.ts";

// A payload whose ASSERT_LT fails on line 9: the run fails and the verdict
// quotes the payload's source line, on every guest target.
export default defineScenario({
  name: "selftest-assert",
  description: "harness selftest: a failed guest ASSERT fails the run, quoting its source line",
  groups: ["selftest", "guest"],
  payload: { file: "assert-fail.asm" },
  cmdline: "guest=long",
  machine: { memoryMiB: 128 },
  targets: GUEST_TARGETS,
  timeoutS: 60,
  expectStatus: "fail",
  expectReason:
    /^guest assert failed at payloads\/assert-fail\.asm:9: ASSERT_LT\(rax, 3\) \(left 0x5, right 0x3\)$/,
  expect: [
    { ev: "vmexit", fields: { reason: "hypercall", call: "assert", line: 9 } },
    { ev: "guest-end", fields: { how: "assert", failed: true } },
    { ev: "exit", fields: { status: "fail" } },
  ],
});
