import { platformRequestScenario } from "../harness/guests.ts";

export default platformRequestScenario(
  "hostile-reset-cf9",
  "a reset through 0xcf9 ends the guest, not the machine",
  { port: 0xcf9, value: 0x06, size: 1, how: "reset" },
);
