import { defineGuestScenario, reportEquals, VENDOR_TARGETS } from "../harness/guests.ts";

// What faults, and only that, is the same on every target; which exits come
// is not: a CPU may raise #GP for a reserved CR4 bit itself (Bochs' ryzen
// for VMXE) before the hypervisor's intercept, so exits are not listed.
// Remove a check from `vcpu/checks.rs` and the guest's handler misses a
// report, or VM entry fails (`entry-failure` is never allowed).
const gp = [reportEquals(101, 0n), reportEquals(100, 13n)]; // the #GP handler's reports
const efer = (value: string) => [
  { ev: "vmexit", fields: { reason: "msr", msr: "0xc0000080", dir: "write", value, action: "gp" } },
  ...gp,
];

export default defineGuestScenario({
  name: "hostile-registers",
  description:
    "bad EFER, CR4 and XCR0 values get #GP, XSETBV without OSXSAVE and prefixed VMCALLs #UD, as on hardware",
  payload: "hostile-registers.asm",
  groups: ["hostile"],
  targets: VENDOR_TARGETS,
  // CR4 writes exit once (Bochs' ryzen faults VMXE itself) or twice; XSETBV
  // exits where the emulator honours its intercept (not QEMU 7.2's TCG).
  counts: { msr: 3, "cr-write": [1, 2], hypercall: 15 }, // 6 #GP (2 reports each), 3 #UD
  expect: () => [
    ...efer("0x1d00"), // SVME
    ...efer("0x400"), // LME cleared in long mode
    ...efer("0x10000000d00"), // a reserved bit
    ...gp, // CR4.VMXE
    reportEquals(100, 6n), // XSETBV without CR4.OSXSAVE
    ...gp, // XCR0 without x87
    ...gp, // XCR1
    // INVD exits where the emulator honours its intercept (QEMU 7.2's TCG
    // checks WBINVD's instead) and is a no-op either way.
    reportEquals(100, 6n), // LOCK VMCALL
    reportEquals(100, 6n), // 66 VMCALL
  ],
});
