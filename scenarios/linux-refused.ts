import { refusedImage, VENDOR_TARGETS } from "../harness/guests.ts";
import { defineScenario, variants } from "../harness/scenario.ts";

// Bad OS kernel images are refused with the reason, before any guest runs:
// no vCPU starts, nothing of the image is left running.
const refused = (message: string) => refusedImage(`linux image: ${message}`, ["vmrun", "vmlaunch"]);

const elf64 = (machine: number, phnum: number) =>
  [
    "db 0x7f, 'ELF', 2, 1, 1, 0",
    "times 8 db 0",
    `dw 2, ${machine}`, // executable, machine
    "dd 1",
    "dq 0x1000000, 64, 0", // entry, phoff, shoff
    `dd 0
     dw 64, 56, ${phnum}, 0, 0, 0`,
  ].join("\n") + "\n";

export default variants(
  defineScenario({
    name: "linux-refused",
    description: "a kernel image that is not a PVH ELF64 is refused, naming why",
    groups: ["guest", "linux"],
    cmdline: "guest=linux guest.memory=64",
    payload: { asm: "dd 0x1badb002, 0, 0\n" },
    machine: { memoryMiB: 128 },
    targets: VENDOR_TARGETS,
    timeoutS: 60,
  }),
  {
    "not-elf": refused("the image is not a 64-bit little-endian x86 ELF"),
    // A program header table that lies past the end of the image.
    "truncated": { payload: { asm: elf64(62, 4) }, ...refused("the ELF image is truncated") },
    "not-x86": {
      payload: { asm: elf64(183, 0) },
      ...refused("the image is not a 64-bit little-endian x86 ELF"),
    },
  },
);
