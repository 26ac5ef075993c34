import assert from "node:assert/strict";
import {
  cpio,
  findMagic,
  INIT_SCRIPT,
  initramfs,
  lddLibraries,
  linuxMarkers,
  loadOrder,
  MARKER,
  moduleDepends,
  moduleName,
} from "./linux.ts";
import { markerProblems } from "./linux_scenario.ts";

const text = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("cpio writes newc entries padded to 4 bytes, then the trailer", () => {
  const archive = cpio([{ path: "init", mode: 0o100755, data: new TextEncoder().encode("hi") }]);
  assert.equal(archive.length % 4, 0);
  assert.equal(text(archive.subarray(0, 6)), "070701");
  // Header fields: ino 1, mode, ..., filesize 2, ..., namesize 5 ("init\0").
  assert.equal(text(archive.subarray(14, 22)), (0o100755).toString(16).padStart(8, "0"));
  assert.equal(text(archive.subarray(54, 62)), "00000002");
  assert.equal(text(archive.subarray(94, 102)), "00000005");
  assert.equal(text(archive.subarray(110, 114)), "init");
  assert.equal(text(archive.subarray(116, 118)), "hi", "the name padded to 4 with the header");
  assert.match(text(archive), /TRAILER!!!/);
});

Deno.test("the initramfs holds busybox, sh and the marker-printing init", () => {
  const archive = text(initramfs(new TextEncoder().encode("BUSYBOX")));
  for (const name of ["bin/busybox", "bin/sh", "init", "proc", "sys"]) {
    assert.ok(archive.includes(`${name}\0`), name);
  }
  assert.ok(archive.includes(INIT_SCRIPT));
  assert.match(INIT_SCRIPT, /poweroff -f/);
});

Deno.test("modules load after what they need, each once, read from their modinfo", () => {
  const ko = (info: string) =>
    new TextEncoder().encode(`\x7fELF...\0license=GPL\0${info}\0name=x\0`);
  assert.deepEqual(moduleDepends(ko("depends=virtio_ring,virtio")), ["virtio_ring", "virtio"]);
  assert.deepEqual(moduleDepends(ko("depends=")), []);
  assert.deepEqual(moduleDepends(ko("vermagic=6.1")), []);
  assert.equal(moduleName("/lib/modules/6.1/kernel/drivers/net/net-failover.ko"), "net_failover");
  const needs: Record<string, string[]> = {
    virtio_blk: ["virtio", "virtio_ring"],
    virtio: ["virtio_ring"],
    virtio_pci: ["virtio_ring", "virtio_pci_modern_dev", "virtio"],
  };
  const order = loadOrder(["virtio_pci", "virtio_blk"], (n) => needs[n] ?? []);
  assert.deepEqual(order, [
    "virtio_ring",
    "virtio_pci_modern_dev",
    "virtio",
    "virtio_pci",
    "virtio_blk",
  ]);
  assert.throws(() => loadOrder(["a"], (n) => (n === "a" ? ["b"] : ["a"])), /depend on each other/);
});

Deno.test("the initramfs puts modules in /lib/modules", () => {
  const enc = new TextEncoder();
  const archive = text(
    initramfs(enc.encode("BB"), INIT_SCRIPT, [], [{ name: "virtio", data: enc.encode("KO") }]),
  );
  for (const name of ["lib\0", "lib/modules\0", "lib/modules/virtio.ko\0", "tmp\0"]) {
    assert.ok(archive.includes(name), name);
  }
});

Deno.test("files at their own paths come with every directory above them, once", () => {
  const enc = new TextEncoder();
  const archive = text(
    initramfs(enc.encode("BB"), INIT_SCRIPT, [], [], [
      { path: "/usr/bin/pigz", data: enc.encode("PIGZ") },
      { path: "/lib/x86_64-linux-gnu/libz.so.1", data: enc.encode("LIBZ") },
      { path: "/lib64/ld-linux-x86-64.so.2", data: enc.encode("LD") },
    ]),
  );
  for (
    const name of ["usr", "usr/bin", "usr/bin/pigz", "lib/x86_64-linux-gnu/libz.so.1", "lib64"]
  ) {
    assert.ok(archive.includes(`${name}\0`), name);
  }
  assert.equal(archive.split("usr/bin\0").length, 2, "usr/bin once");
  assert.ok(archive.indexOf("usr\0") < archive.indexOf("usr/bin\0"), "parents first");
});

Deno.test("ldd's libraries and loader are read; a library the host lacks is named", () => {
  const out = [
    "\tlinux-vdso.so.1 (0x00007f468f3fc000)",
    "\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x00007f468f2a1000)",
    "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f468f0bf000)",
    "\t/lib64/ld-linux-x86-64.so.2 (0x00007f468f3fe000)",
  ].join("\n");
  assert.deepEqual(lddLibraries(out, "/usr/bin/pigz"), [
    "/lib/x86_64-linux-gnu/libz.so.1",
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/lib64/ld-linux-x86-64.so.2",
  ]);
  assert.throws(
    () => lddLibraries(`${out}\n\tlibjudy.so.1 => not found`, "/usr/bin/stress-ng"),
    /stress-ng needs libjudy\.so\.1, which this host lacks/,
  );
});

Deno.test("findMagic finds the xz stream of a bzImage", () => {
  const b = new Uint8Array([1, 2, 0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 9]);
  assert.equal(findMagic(b, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), 2);
  assert.equal(findMagic(b.subarray(3), [0xfd, 0x37]), -1);
});

const console = (nodes: string, memKiB: number) =>
  [
    "[    2.65] Run /init as init process",
    `${MARKER} init`,
    `${MARKER} nodes=${nodes}`,
    `${MARKER} distance node0=10 20`,
    `${MARKER} distance node1=20 10`,
    `${MARKER} nproc=4`,
    `${MARKER} online=0-3`,
    `${MARKER} memtotal-kib=${memKiB}`,
    `${MARKER} done`,
  ].join("\r\n");

Deno.test("the guest's markers are read by name", () => {
  const m = linuxMarkers(console("1", 210100));
  assert.equal(m.get("nodes"), "1");
  assert.equal(m.get("distance node1"), "20 10");
  assert.equal(m.get("init"), "");
});

Deno.test("a kernel message spliced into a marker line is not part of it", () => {
  const m = linuxMarkers(
    `${MARKER} init[   11.630001] hrtimer: interrupt took 15605670 ns\r\n` +
      `${MARKER} nproc=4[   12.1] random: crng init done`,
  );
  assert.equal(m.get("init"), "");
  assert.equal(m.get("nproc"), "4");
});

Deno.test("marker checks fail on a wrong node count, CPUs, RAM or distances", () => {
  const want = { nodes: 1, cpus: 4, guestMiB: 256 };
  assert.deepEqual(markerProblems(console("1", 210100), want), []);
  assert.match(markerProblems(console("2", 210100), want).join(), /nodes is "2", expected "1"/);
  assert.match(markerProblems(console("1", 210100), { ...want, cpus: 2 }).join(), /nproc/);
  assert.match(markerProblems(console("1", 400000), want).join(), /MemTotal/);
  assert.deepEqual(
    markerProblems(console("2", 210100), { ...want, nodes: 2, distances: [[10, 20], [20, 10]] }),
    [],
  );
  assert.match(
    markerProblems(console("2", 210100), { ...want, nodes: 2, distances: [[10, 21], [21, 10]] })
      .join(),
    /distance node0/,
  );
  assert.match(markerProblems("no markers", want).join(), /never reached its \/init/);
});
