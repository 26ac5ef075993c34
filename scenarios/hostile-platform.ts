import { platformRequestScenario, reportEquals } from "../harness/guests.ts";

// A guest asking the platform to power off or reset, one variant per way:
// each ends the guest, not the machine. poweroff-q35 first tries to move
// q35's ACPI PM base (LPC 00:1f.0, register 0x40) through PCI configuration:
// both accesses are refused and the read gets no device.
const movePmBase = {
  asm: [
    "    mov dx, 0xcf8",
    "    mov eax, 0x8000f840",
    "    out dx, eax",
    "    mov dx, 0xcfc",
    "    mov eax, 0x701",
    "    out dx, eax",
    "    in eax, dx",
    "    REPORT eax, 1",
  ].join("\n"),
  exits: ["io", "io", "io", "hypercall"],
  expect: [
    { ev: "vmexit", fields: { reason: "io", port: "0xcf8", action: "blocked" } },
    { ev: "vmexit", fields: { reason: "io", port: "0xcfc", dir: "out", action: "blocked" } },
    { ev: "vmexit", fields: { reason: "io", port: "0xcfc", dir: "in", action: "blocked" } },
    reportEquals(1, 0xffffffffn),
  ],
};

export default [
  platformRequestScenario(
    "hostile-platform/poweroff-q35",
    "ACPI power-off at 0x604 ends the guest; host PCI configuration is not writable",
    { port: 0x604, value: 0x2000, size: 2, how: "power-off" },
    movePmBase,
  ),
  platformRequestScenario(
    "hostile-platform/poweroff-piix",
    "ACPI power-off at 0xb004 (i440fx/PIIX4 PM1a control) ends the guest, not the machine",
    { port: 0xb004, value: 0x2000, size: 2, how: "power-off" },
  ),
  platformRequestScenario(
    "hostile-platform/reset-cf9",
    "a reset through 0xcf9 ends the guest, not the machine",
    { port: 0xcf9, value: 0x06, size: 1, how: "reset" },
  ),
  platformRequestScenario(
    "hostile-platform/reset-kbc",
    "a keyboard-controller reset (0xfe to port 0x64) ends the guest, not the machine",
    { port: 0x64, value: 0xfe, size: 1, how: "reset" },
  ),
];
