import { platformRequestScenario } from "../harness/guests.ts";

export default platformRequestScenario(
  "hostile-reset-kbc",
  "a keyboard-controller reset (0xfe to port 0x64) ends the guest, not the machine",
  { port: 0x64, value: 0xfe, size: 1, how: "reset" },
);
