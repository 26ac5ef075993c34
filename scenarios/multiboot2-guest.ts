import { guest, guestEnd, VENDOR_TARGETS } from "../harness/guests.ts";
import { defineScenario } from "../harness/scenario.ts";

// A multiboot2 ELF kernel as the guest (payloads/multiboot2-kernel.asm):
// its header requires the memory map and names its entry; it finds the
// memory map and its command line among the tags, prints on COM1 and exits
// through the debug-exit port with status 0.
export default defineScenario(
  {
    name: "multiboot2-guest",
    description: "a multiboot2 ELF kernel boots as the guest, finds its tags and exits with 0",
    machine: { memoryMiB: 128 },
    guestOutput: (text) =>
      text.includes("multiboot2 kernel: magic, memory map and command line as promised")
        ? []
        : ["the kernel's line is missing from COM1"],
  },
  guest({ payload: "multiboot2-kernel.asm", cmdline: "guest=multiboot2", targets: VENDOR_TARGETS }),
  guestEnd({ how: "debug-exit" }),
);
