import assert from "node:assert/strict";
import { bochs, bochsConfig } from "./backends/bochs.ts";
import { shellQuote } from "./backends/backend.ts";
import { kvmProblem, numaArgs, qemu, qemuArgs } from "./backends/qemu.ts";
import type { RunPlan, Scenario } from "./scenario.ts";
import { runPlan } from "./testing.ts";

const scenario: Scenario = {
  name: "demo",
  description: "d",
  groups: ["boot"],
  machine: { smp: 2, memoryMiB: 128 },
  targets: [{ backend: "qemu", cpus: ["EPYC"] }],
  timeoutS: 10,
  expect: [],
};

const plan = (over: Partial<RunPlan> = {}) => runPlan(scenario, over);

function after(args: string[], flag: string): string[] {
  return args.flatMap((a, i) => (a === flag ? [args[i + 1]!] : []));
}

Deno.test("QEMU -kernel: PVH kernel, command line, payload as initrd, exit device", () => {
  const args = qemuArgs(plan(), { kernel: "/k", payload: "/p" }, "selftest=hang");
  assert.deepEqual(after(args, "-kernel"), ["kernel.elf"]);
  assert.deepEqual(after(args, "-append"), ["selftest=hang"]);
  assert.deepEqual(after(args, "-initrd"), ["payload.bin"]);
  assert.deepEqual(after(args, "-cpu"), ["EPYC"]);
  assert.deepEqual(after(args, "-smp"), ["2"]);
  assert.deepEqual(after(args, "-m"), ["128M"]);
  assert.deepEqual(after(args, "-accel"), ["tcg"]);
  assert.ok(args.includes("-no-reboot"));
  assert.deepEqual(after(args, "-device"), ["isa-debug-exit,iobase=0xf4,iosize=0x04"]);
  assert.deepEqual(after(args, "-serial"), ["file:guest.log", "file:hypervisor.log"], "COM1, COM2");
  assert.ok(!args.includes("-drive"));
});

Deno.test("QEMU ISO under OVMF: cdrom, pflash code read-only, per-run VARS copy", () => {
  const args = qemuArgs(plan({ boot: "iso", firmware: "uefi" }), { kernel: "/k", iso: "/i" }, "", {
    code: "/nix/store/a,b/OVMF_CODE.fd",
    vars: "/v",
  });
  assert.ok(!args.includes("-kernel"));
  assert.deepEqual(after(args, "-drive"), [
    "file=boot.iso,media=cdrom,if=ide,readonly=on",
    "if=pflash,format=raw,unit=0,readonly=on,file=/nix/store/a,,b/OVMF_CODE.fd",
    "if=pflash,format=raw,unit=1,file=OVMF_VARS.fd",
  ]);
  assert.throws(() => qemuArgs(plan({ boot: "iso", firmware: "uefi" }), { kernel: "/k" }, ""));
});

Deno.test("the launch copies OVMF's VARS into the run and expects QEMU's success code", () => {
  const l = qemu.launch(plan(), { kernel: "/k" }, "");
  assert.equal(l.successExitCode, 33);
  assert.deepEqual(l.copies, {});
});

Deno.test("KVM uses the host CPU", () => {
  const args = qemuArgs(plan({ backend: "kvm", cpu: "host" }), { kernel: "/k" }, "");
  assert.deepEqual(after(args, "-accel"), ["kvm"]);
  assert.deepEqual(after(args, "-cpu"), ["host"]);
});

Deno.test("NUMA topologies become memory backends, nodes and distances", () => {
  assert.deepEqual(
    numaArgs({
      nodes: [
        { cpus: [0, 1, 2, 5], memoryMiB: 64 },
        { cpus: [3, 4], memoryMiB: 0 },
        { cpus: [], memoryMiB: 64 },
      ],
      distances: [[10, 16, 22], [16, 10, 28], [22, 28, 10]],
    }),
    [
      "-object",
      "memory-backend-ram,id=mem0,size=64M",
      "-numa",
      "node,nodeid=0,memdev=mem0,cpus=0-2,cpus=5",
      "-numa",
      "node,nodeid=1,cpus=3-4",
      "-object",
      "memory-backend-ram,id=mem2,size=64M",
      "-numa",
      "node,nodeid=2,memdev=mem2",
      ...["0,dst=1,val=16", "0,dst=2,val=22", "1,dst=0,val=16", "1,dst=2,val=28"].flatMap(
        (d) => ["-numa", `dist,src=${d}`],
      ),
      ...["2,dst=0,val=22", "2,dst=1,val=28"].flatMap((d) => ["-numa", `dist,src=${d}`]),
    ],
  );
});

Deno.test("KVM is refused on kvm_pvm, without nesting, and accepted with it", () => {
  const files = (m: Record<string, string>) => (p: string) => m[p];
  assert.match(kvmProblem(files({}), (p) => p === "/sys/module/kvm_pvm") ?? "", /kvm_pvm/);
  assert.match(kvmProblem(files({}), () => false) ?? "", /no \/dev\/kvm/);
});

Deno.test("Bochs config: model, CPU count, memory, ISO, serial file, no reset on triple fault", () => {
  const cfg = bochsConfig(plan({ backend: "bochs", cpu: "ryzen", boot: "iso" }));
  for (
    const line of [
      "megs: 128",
      "cpu: model=ryzen, count=2, reset_on_triple_fault=0",
      "ata0-master: type=cdrom, path=boot.iso, status=inserted",
      "boot: cdrom",
      "com1: enabled=1, mode=file, dev=guest.log",
      "com2: enabled=1, mode=file, dev=hypervisor.log",
      "display_library: term",
      "panic: action=fatal, cpu0=report",
    ]
  ) assert.ok(cfg.split("\n").includes(line), `missing ${line}`);
  assert.ok(!cfg.includes("time0"), "time0=local aborts Debian's Bochs");
});

Deno.test("Bochs runs a multi-node machine with its nodes faked, and refuses extra ACPI tables", () => {
  const numa = { nodes: [{ cpus: [0], memoryMiB: 64 }, { cpus: [1], memoryMiB: 64 }] };
  const p = plan({
    backend: "bochs",
    scenario: { ...scenario, machine: { smp: 2, memoryMiB: 128, numa } },
  });
  assert.equal(bochs.unsupported(p), undefined, "numa=fake:2 stands in for the SRAT");
  const tables = { ...scenario, machine: { acpiTables: [{ signature: "SRAT", body: [0] }] } };
  assert.match(bochs.unsupported(plan({ backend: "bochs", scenario: tables })) ?? "", /ACPI/);
});

Deno.test("triple faults are recognised in each emulator's log", () => {
  assert.ok(qemu.crashIn("CPU Reset (CPU 0)\nTriple fault\nCPU Reset"));
  assert.equal(qemu.crashIn("CPU Reset (CPU 0)\nEAX=00000000"), undefined);
  assert.match(
    bochs.crashIn(">>PANIC<< exception(): 3rd (13) exception with no resolution") ?? "",
    /3rd exception \(13\)/,
  );
  assert.equal(bochs.crashIn("[BIOS  ] Shutdown flag 0"), undefined);
});

Deno.test("command lines are quoted for copy and paste", () => {
  assert.equal(shellQuote("file:serial.log"), "file:serial.log");
  assert.equal(shellQuote(""), "''");
  assert.equal(shellQuote("a b'c"), "'a b'\\''c'");
});

Deno.test("an HMAT turns hmat=on, gives every node an initiator and adds hmat-lb entries", () => {
  const numa = {
    nodes: [{ cpus: [0], memoryMiB: 64 }, { cpus: [], memoryMiB: 64 }],
    hmat: [{ initiator: 0, target: 1, kind: "access-latency" as const, value: 10 }],
  };
  const s = { ...scenario, machine: { smp: 1, memoryMiB: 128, numa } };
  const args = qemuArgs(plan({ scenario: s }), { kernel: "/k" }, "");
  assert.deepEqual(after(args, "-machine"), ["q35,hmat=on"]);
  assert.deepEqual(after(args, "-numa"), [
    "node,nodeid=0,memdev=mem0,cpus=0,initiator=0",
    "node,nodeid=1,memdev=mem1,initiator=0",
    "hmat-lb,initiator=0,target=1,hierarchy=memory,data-type=access-latency,latency=10",
  ]);
});

Deno.test("extra ACPI tables become -acpitable options with their bodies as run files", () => {
  const s = {
    ...scenario,
    machine: { smp: 1, memoryMiB: 128, acpiTables: [{ signature: "SRAT", body: [1, 2, 3] }] },
  };
  const l = qemu.launch(plan({ scenario: s }), { kernel: "/k" }, "");
  assert.deepEqual(after(l.args, "-acpitable"), ["sig=SRAT,data=acpi-0.bin"]);
  assert.deepEqual(l.files["acpi-0.bin"], new Uint8Array([1, 2, 3]));
  assert.match(bochs.unsupported(plan({ backend: "bochs", scenario: s })) ?? "", /ACPI tables/);
});

Deno.test("Bochs' log says how the machine ended: the kernel's power-off, ACPI, a reset", () => {
  const end = bochs.endIn!;
  assert.equal(end("00000000000i[SYS   ] bx_pc_system_c::Reset(HARDWARE) called"), undefined);
  assert.deepEqual(end("00128056826p[UNMAP ] >>PANIC<< Shutdown port: shutdown requested"), {
    what: "the kernel's power-off (shutdown port)",
    byKernel: true,
  });
  assert.equal(end("00020000000i[ACPI  ] ACPI control: soft power off")?.byKernel, false);
  assert.deepEqual(end("00020000000i[SYS   ] bx_pc_system_c::Reset(SOFTWARE) called"), {
    what: "a software reset",
    byKernel: false,
  });
  assert.equal(qemu.endIn, undefined, "QEMU's exit status says it");
});
