import { platformRequestScenario, reportEquals } from "../harness/guests.ts";

// First an attempt to move q35's ACPI PM base (LPC 00:1f.0, register 0x40)
// through PCI configuration: both accesses are refused, the read gets no
// device. Then the ACPI power-off through PM1a control at 0x604.
export default platformRequestScenario(
  "hostile-poweroff-q35",
  "ACPI power-off at 0x604 ends the guest; host PCI configuration is not writable",
  { port: 0x604, value: 0x2000, size: 2, how: "power-off" },
  {
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
  },
);
