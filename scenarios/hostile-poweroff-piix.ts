import { platformRequestScenario } from "../harness/guests.ts";

export default platformRequestScenario(
  "hostile-poweroff-piix",
  "ACPI power-off at 0xb004 (i440fx/PIIX4 PM1a control) ends the guest, not the machine",
  { port: 0xb004, value: 0x2000, size: 2, how: "power-off" },
);
