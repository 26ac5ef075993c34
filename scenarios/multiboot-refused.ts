import { refusedImage, VENDOR_TARGETS } from "../harness/guests.ts";
import { defineScenario } from "../harness/scenario.ts";

// A broken multiboot image is refused with the reason, before any guest runs.
export default defineScenario(
  {
    name: "multiboot-refused",
    description: "a multiboot header with a wrong checksum is refused, naming it",
    groups: ["guest"],
    cmdline: "guest=multiboot",
    payload: { asm: "dd 0x1badb002, 0, 0 ; a header whose checksum is wrong\n" },
    machine: { memoryMiB: 128 },
    targets: VENDOR_TARGETS,
    timeoutS: 60,
  },
  refusedImage("multiboot image: the multiboot header's checksum is wrong"),
);
