import { guest, guestEnd, VENDOR_TARGETS } from "../harness/guests.ts";
import { defineScenario } from "../harness/scenario.ts";

// A multiboot ELF kernel as the guest (payloads/multiboot-kernel.asm): it
// checks what the loader promised, prints on COM1 (the guest's console,
// guest.log) and exits through the debug-exit port, which the hypervisor
// takes as the guest's end with its status.
export default defineScenario(
  {
    name: "multiboot-guest",
    description: "a multiboot (v1) ELF kernel boots as the guest, prints and exits with status 0",
    machine: { memoryMiB: 128 },
    guestOutput: (text) =>
      text.includes("multiboot kernel: magic, memory map and BSS as promised")
        ? []
        : ["the kernel's line is missing from COM1"],
  },
  guest({ payload: "multiboot-kernel.asm", cmdline: "guest=multiboot", targets: VENDOR_TARGETS }),
  guestEnd({ how: "debug-exit" }),
);
