import { guest, guestEnd, VENDOR_TARGETS } from "../harness/guests.ts";
import { defineScenario, variants } from "../harness/scenario.ts";

// Guest RAM is backed on demand: a 1 GiB guest starts as fast as a 2 MiB one
// and backs only the pages it touches. The guest writes the first page past
// its payload and the last page of its RAM, and checks both (ASSERT_EQ).
const payload = (mib: number) => ({
  asm: [
    "bits 64",
    "org 0x8000",
    '%include "assert.inc"',
    `%define LAST ${mib} * 0x100000 - 8`,
    "    mov rax, 0x600d",
    "    mov [0x10000], rax",
    "    mov [LAST], rax",
    "    mov rbx, [0x10000]",
    "    ASSERT_EQ(rbx, 0x600d)",
    "    mov rbx, [LAST]",
    "    ASSERT_EQ(rbx, 0x600d)",
    "    hlt",
    "",
  ].join("\n"),
});
const sizes = { "2mib": 2, "1gib": 1024 };
const base = defineScenario(
  {
    name: "guest-memory",
    description: "guest RAM backed on demand: only the pages the guest touches are backed",
    machine: { memoryMiB: 1280 },
  },
  guest({
    payload: payload(2),
    trace: "summary",
    targets: VENDOR_TARGETS,
  }),
  guestEnd({ counts: { hlt: 1 } }),
  {
    checks: [(events) => {
      // Loader: payload, GDT, three tables; the guest: two pages; the stack.
      const end = events.find((e) => e.ev === "guest-end");
      const backed = Number(end?.backed);
      return backed >= 6 && backed <= 12 ? [] : [`${backed} pages backed, expected 6 to 12`];
    }],
  },
);
export default variants(
  base,
  Object.fromEntries(
    Object.entries(sizes).map(([suffix, mib]) => [suffix, {
      payload: payload(mib),
      cmdline: `${base.cmdline} guest.memory=${mib}`,
    }]),
  ),
);
