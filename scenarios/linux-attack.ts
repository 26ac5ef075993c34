import { defineLinuxAttack } from "../harness/linux_scenario.ts";

// A root process inside Linux (its /init, with payloads/linux/sv-attack.asm
// and busybox's devmem) tries each way it has to take the machine from the
// hypervisor. Each variant passes only when the hypervisor's own events show
// the attack refused (or the guest ended), and the run ends with the
// hypervisor's `exit`, its image intact. Remove the protection and the
// variant fails: the refusal is missing, or the host resets or powers off
// under the hypervisor (no `exit`), or its image changes.

const io = (port: number, action: string, more: Record<string, unknown> = {}) => ({
  ev: "vmexit",
  fields: { reason: "io", port: `0x${port.toString(16)}`, action, ...more },
});
const device = (name: string, action: string, more: Record<string, string> = {}) => ({
  ev: "vmexit",
  fields: { reason: "device-write", name, action, ...more },
});
/** q35's ECAM window (the MCFG's): where the kernel's own configuration writes go. */
const ECAM = 0xb000_0000;
/** A store to function `bdf`'s register `reg` through ECAM, refused with `action`. */
const ecam = (bdf: number, reg: number, action: string, value: string) =>
  device("pci-config", action, { gpa: `0x${(ECAM + (bdf << 12) + reg).toString(16)}`, value });

/** The FACS's address, from the FADT (offset 36), in the shell's `$facs`. */
const FACS = "facs=0x$(dd if=/sys/firmware/acpi/tables/FACP bs=1 skip=36 count=4 2>/dev/null" +
  " | od -An -tx4 | tr -d ' ')";

/**
 * QEMU's `edu` device as the attacker's DMA engine, behind the AMD IOMMU,
 * which the hypervisor gives the guest's table (`dma`: remapped): found
 * on the bus, memory and bus mastering on, `dma SRC DST COUNT CMD` runs one
 * transfer (command 1: memory to its 4 KiB buffer at 0x40000, 3: back). A
 * VGA's frame buffer is the bytes it moves (`$src`): memory the guest
 * reaches with devmem and devices with DMA, at the same address.
 */
const EDU = [
  "bar() {",
  "  for d in /sys/bus/pci/devices/*; do",
  "    if [ $(cat $d/vendor) = 0x1234 ] && [ $(cat $d/device) = $1 ]; then",
  "      echo 1 > $d/enable",
  "      printf '\\007' | dd of=$d/config bs=1 seek=4 conv=notrunc 2>/dev/null",
  "      echo $(($(head -n 1 $d/resource | cut -d' ' -f1)))",
  "    fi",
  "  done",
  "}",
  "edu=$(bar 0x11e8)",
  "src=$(bar 0x1111)",
  "dma() {",
  "  devmem $((edu + 0x80)) 32 $1; devmem $((edu + 0x88)) 32 $2",
  "  devmem $((edu + 0x90)) 32 $3; devmem $((edu + 0x98)) 32 $4",
  "  sleep 1",
  "}",
].join("\n");
const EDU_ARGS = [
  "-device",
  "amd-iommu",
  "-device",
  "edu,dma_mask=0xffffffff",
  "-device",
  "VGA",
];
const REMAPPED = [
  { ev: "iommu", fields: { vendor: "amd", mode: "blocking" } },
  { ev: "dma", fields: { mode: "remapped", ioapics_remapped: 1 } },
];

export default [
  defineLinuxAttack({
    name: "kbc-output",
    description: "the KBC's output port with the reset line low ends the guest, not the machine",
    run: "sv-attack kbc",
    refused: [io(0x64, "emulated", { value: "0xd1" }), io(0x60, "reset", { value: "0xfe" })],
    ends: "reset",
  }),
  defineLinuxAttack({
    name: "pm-base",
    description: "moving the ACPI PM base (PCI configuration, ECAM and 0xcf8) is refused; " +
      "SLP_EN at the moved base reaches nothing",
    run: [
      // ECAM, through /dev/mem: 00:1f.0's PMBASE (0x40) at 0xb0000000 + 0xf8000.
      "devmem 0xb00f8040 16 0x0901",
      // The kernel's sysfs file (through ECAM too), then mechanism #1, the program's own.
      "printf '\\001\\011' | dd of=/sys/bus/pci/devices/0000:00:1f.0/config bs=1 seek=64" +
      " conv=notrunc 2>/dev/null",
      "sv-attack pm-base",
    ].join("\n"),
    refused: [
      ecam(0xf8, 0x40, "dropped", "0x901"),
      // The sysfs write is bytewise: 0x01 at 0x40 changes nothing, 0x09 at 0x41 is refused.
      ecam(0xf8, 0x41, "dropped", "0x9"),
      io(0xcfc, "blocked", { dir: "out", value: "0x901" }),
    ],
  }),
  defineLinuxAttack({
    name: "straddle",
    description: "a word and a dword that cover COM2 from the port below are refused whole",
    run: "sv-attack straddle",
    refused: [io(0x2f7, "blocked", { size: 2 }), io(0x2f5, "blocked", { size: 4 })],
  }),
  defineLinuxAttack({
    name: "outs-com2",
    description: "REP OUTSB to COM2 (the hypervisor's channel) faults in the guest (#GP)",
    run: 'sv-attack outs; echo "SV-ATTACK outs status=$?"',
    refused: [io(0x2f8, "gp")],
  }),
  defineLinuxAttack({
    name: "fw-cfg-dma",
    description: "QEMU's fw_cfg DMA, aimed at the hypervisor's image, is refused",
    run: [
      FACS,
      // The descriptor in the FACS's spare bytes: reserved memory the guest
      // may write, mapped 1:1.
      "d=$((facs + 40))",
      "sv-attack fw-cfg $(printf '%x' $d)",
    ].join("\n"),
    refused: [io(0x514, "blocked"), io(0x518, "blocked")],
  }),
  defineLinuxAttack({
    name: "reserved-ram",
    description: "host-reserved memory (the firmware's, past the FACS) reads, and a write " +
      "ends the guest",
    run: [
      FACS,
      "sv-attack memory $(printf '%x' $((facs + 0x1000)))",
    ].join("\n"),
    refused: [{
      ev: "vmexit",
      fields: { reason: "ept-violation", access: "write", mapped: true },
    }],
    ends: "ept-violation",
  }),
  defineLinuxAttack({
    name: "hpet-msi",
    description: "the HPET's FSB delivery (a message to any address: INIT to a CPU) is refused",
    run: [
      "devmem 0xfed00150 32 0x500", // timer 2's FSB message: INIT
      "devmem 0xfed00154 32 0xfee00000", // to the local APICs
      "devmem 0xfed00140 32 0x4004", // FSB_EN, interrupts on
    ].join("\n"),
    refused: [device("hpet", "filtered")],
  }),
  defineLinuxAttack({
    name: "ioapic-delivery",
    description: "IOAPIC entries asking for INIT, SMI or NMI delivery are refused (masked)",
    run: [
      "devmem 0xfec00000 32 0x3e", // redirection entry 23, low dword
      "devmem 0xfec00010 32 0x500", // INIT
      "devmem 0xfec00010 32 0x200", // SMI
      "devmem 0xfec00010 32 0x400", // NMI
      "devmem 0xfec00010 32 0x10000", // masked again
    ].join("\n"),
    refused: [
      device("ioapic", "filtered"),
      device("ioapic", "filtered"),
      device("ioapic", "filtered"),
    ],
  }),
  defineLinuxAttack({
    name: "iommu",
    description: "the IOMMU is the hypervisor's: taken at boot (every device blocked, then given " +
      "the guest's table), its ACPI table hidden, its registers unmapped",
    qemuArgs: ["-device", "amd-iommu"],
    boot: [
      { ev: "iommu", fields: { base: "0xfed80000", vendor: "amd", mode: "blocking" } },
      { ev: "chipset", fields: { iommus: ["0xfed80000"], dma: false } },
      { ev: "dma", fields: { mode: "remapped" } },
    ],
    run: [
      // The table the guest got: no IVRS.
      'ls /sys/firmware/acpi/tables | grep -q IVRS && echo "SV-ATTACK iommu sees-ivrs"',
      "sv-attack memory fed80000",
    ].join("\n"),
    refused: [{
      ev: "vmexit",
      fields: { reason: "ept-violation", gpa: "0xfed80000", access: "read", mapped: false },
    }],
    ends: "ept-violation",
  }),
  defineLinuxAttack({
    name: "iommu-intel",
    description: "an Intel IOMMU (VT-d) on q35 is found, its DMAR hidden, its registers unmapped " +
      "(not driven yet)",
    qemuArgs: ["-device", "intel-iommu"],
    boot: [
      { ev: "iommu", fields: { base: "0xfed90000", vendor: "intel", mode: "not-driven" } },
      { ev: "chipset", fields: { iommus: ["0xfed90000"] } },
    ],
    run: [
      'ls /sys/firmware/acpi/tables | grep -q DMAR && echo "SV-ATTACK iommu-intel sees-dmar"',
      "sv-attack memory fed90000",
    ].join("\n"),
    refused: [{
      ev: "vmexit",
      fields: { reason: "ept-violation", gpa: "0xfed90000", access: "read", mapped: false },
    }],
    ends: "ept-violation",
  }),
  defineLinuxAttack({
    name: "dma-image",
    description: "a device's DMA aimed at the hypervisor's image (host-physical 0x200000) lands " +
      "in the guest's own page at guest-physical 0x200000",
    qemuArgs: EDU_ARGS,
    boot: REMAPPED,
    run: [
      EDU,
      "devmem $src 32 0x41445653", // "SVDA"
      "dma $src 0x40000 4 1",
      "dma 0x40000 0x200000 4 3",
      // Read back through the device: the bytes are in the guest's page.
      "devmem $((src + 4)) 32 0",
      "dma 0x200000 0x40004 4 1",
      "dma 0x40004 $((src + 4)) 4 3",
      'echo "SV-ATTACK dma-image landed=$(devmem $((src + 4)) 32)"',
    ].join("\n"),
    refused: [],
    shows: /landed=0x41445653/,
  }),
  defineLinuxAttack({
    name: "dma-msi",
    description: "a device's DMA of INIT, SMI and NMI messages to the interrupt range reaches no " +
      "CPU (QEMU takes it for the IOAPIC's message: remapped, and refused)",
    qemuArgs: EDU_ARGS,
    boot: REMAPPED,
    run: [
      EDU,
      "devmem $src 32 0x500; devmem $((src + 4)) 32 0x200; devmem $((src + 8)) 32 0x400",
      "dma $src 0x40000 12 1",
      "dma 0x40000 0xfee00000 12 3",
      // The device still works: its DMA to the guest's memory goes on.
      "devmem $((src + 12)) 32 0",
      "dma 0x40000 $((src + 12)) 4 3",
      'echo "SV-ATTACK dma-msi after=$(devmem $((src + 12)) 32)"',
    ].join("\n"),
    refused: [],
    shows: /after=0x00000500/,
  }),
  defineLinuxAttack({
    name: "msi-enable",
    description: "no PCI function may turn MSI on: a message's delivery mode is not checked " +
      "without interrupt remapping",
    // The AHCI's MSI capability is at 0x80 on q35: its enable bit, byte 0x82.
    run: "printf '\\001' | dd of=/sys/bus/pci/devices/0000:00:1f.2/config bs=1 seek=130" +
      " conv=notrunc 2>/dev/null",
    refused: [ecam(0xfa, 0x82, "filtered", "0x1")],
  }),
  defineLinuxAttack({
    name: "bus-master",
    description: "no PCI function may master the bus (DMA, MSIs) without an IOMMU",
    boot: [{ ev: "dma", fields: { mode: "off", why: "no IOMMU the hypervisor drives" } }],
    run: "printf '\\007' | dd of=/sys/bus/pci/devices/0000:00:1f.2/config bs=1 seek=4" +
      " conv=notrunc 2>/dev/null",
    refused: [ecam(0xfa, 0x04, "filtered", "0x7")],
  }),
];
