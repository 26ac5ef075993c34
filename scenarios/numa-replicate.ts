import { everyVcpu, guest, guestEnd } from "../harness/guests.ts";
import type { SvEvent } from "../harness/events.ts";
import { cpuNodes, placementMap } from "../harness/numa.ts";
import { numa, policy, TWO_NODES } from "../harness/numa_scenario.ts";
import { defineScenario, type RunCheck } from "../harness/scenario.ts";

// Replication of read-mostly pages and its collapse on a write, under
// adaptive placement on two nodes of one CPU each (each node's vCPU walks
// its own copy of the second-level table). vCPU 0 writes a table of 64
// pages; both vCPUs then read all of it, PASSES times: the sampler sees
// the pages read by both nodes and written by none, and gives node 1 its
// own copy of each. Then vCPU 1 writes every page (each write collapses
// the copies) and vCPU 0 reads them back: it must see vCPU 1's values, not
// its own stale copy's. The hypervisor must count the pages replicated and
// collapsed; the map must show every page back on node 0, once; on QEMU the
// meter must find the reads local: with the copies, node 1's reads stay on
// node 1 (first-touch alone would make them all remote).
const PAGES = 64;
const MEMORY_MIB = 4;

const payload = (passes: number) => ({
  asm: `
bits 64
org 0x8000
%include "hypercall.inc"
%include "assert.inc"
%define TABLE 0x200000
%define PAGES ${PAGES}
%define PASSES ${passes}
    mov r12, rdi                    ; this vCPU
    test r12, r12
    jnz .read
    xor ecx, ecx                    ; vCPU 0 fills the table: page i holds i
.fill:
    mov rax, rcx
    shl rax, 12
    mov [TABLE + rax], rcx
    inc ecx
    cmp ecx, PAGES
    jb .fill
.read:
    BARRIER
    mov r13, PASSES                 ; both read it all, again and again
.pass:
    xor ecx, ecx
    xor r14, r14
.page:
    mov rax, rcx
    shl rax, 12
    add r14, [TABLE + rax]
    add r14, [TABLE + rax + 2048]
    inc ecx
    cmp ecx, PAGES
    jb .page
    dec r13
    jnz .pass
    ASSERT_EQ(r14, PAGES * (PAGES - 1) / 2)   ; 0 + 1 + ... + 63: the copies hold the table
    BARRIER
    test r12, r12
    jz .check
    xor ecx, ecx                    ; vCPU 1 writes every page: i + 1000
.write:
    mov rax, rcx
    shl rax, 12
    lea rdx, [rcx + 1000]
    mov [TABLE + rax], rdx
    inc ecx
    cmp ecx, PAGES
    jb .write
    BARRIER
    REPORT 1, 1
    hlt
.check:
    BARRIER                         ; vCPU 0 reads vCPU 1's values back
    xor ecx, ecx
.again:
    mov rax, rcx
    shl rax, 12
    mov rdx, [TABLE + rax]
    lea rbx, [rcx + 1000]
    ASSERT_EQ(rdx, rbx)
    inc ecx
    cmp ecx, PAGES
    jb .again
    REPORT 1, 1
    hlt
`,
});

const ON = {
  qemu: { passes: 200000, window: 256, periodMs: 2 },
  bochs: { passes: 30000, window: 256, periodMs: 10 },
};

const check: RunCheck = (events: SvEvent[], run) => {
  const problems: string[] = [];
  const e = events.find((e) => e.ev === "placement");
  const stats = e?.adaptive as { replicated: number; collapsed: number; table_copies: number };
  if (!stats) return ["no adaptive figures in placement"];
  if (stats.table_copies !== 2) problems.push(`${stats.table_copies} copies of the table, not 2`);
  if (stats.replicated < PAGES || stats.collapsed < PAGES) {
    problems.push(
      `${stats.replicated} pages replicated, ${stats.collapsed} collapsed; ${PAGES} at least each`,
    );
  }
  const map = placementMap(events), node0 = cpuNodes(events).get(0);
  const table = map?.slice(0x200, 0x200 + PAGES) ?? [];
  if (table.length !== PAGES || table.some((n) => n !== node0)) {
    problems.push(`the table is not back on vCPU 0's node, once: ${JSON.stringify(table)}`);
  }
  // The counts hold the copies still there (pages replicated, not collapsed).
  const counted = (e!.nodes as { pages: number }[]).reduce((a, n) => a + n.pages, 0);
  const mapped = (map?.filter((n) => n !== null).length ?? 0) + stats.replicated -
    stats.collapsed;
  if (counted !== mapped) {
    problems.push(`${counted} pages counted, ${mapped} in the map and copies`);
  }
  if (run.meter && run.meter.localFraction < 0.9) {
    problems.push(`meter ${(run.meter.localFraction * 100).toFixed(1)} % local; 90 % at least`);
  }
  return problems;
};

const scenario = (on: keyof typeof ON) => {
  const { passes, window, periodMs } = ON[on];
  const s = defineScenario(
    {
      name: `numa-replicate/${on}`,
      description: "read-shared pages replicated on each node, collapsed by a write",
    },
    numa(TWO_NODES, 2, { bochs: ["tigerlake"] }),
    guest({
      payload: payload(passes),
      cmdline: `guest=long guest.memory=${MEMORY_MIB} guest.watchdog=0 ` +
        `numa.sample=${window} numa.period=${periodMs}`,
      trace: "summary",
    }),
    policy({ policy: "adaptive" }),
    guestEnd({ counts: { hlt: 1 } }),
  );
  return {
    ...s,
    targets: s.targets.filter((t) => t.backend === on),
    // Single-threaded TCG, busy machines: room to spare (the runs take 3-20 s here).
    timeoutS: 180,
    checks: [...s.checks ?? [], everyVcpu("guest-end", { how: "hlt", failed: false }), check],
  };
};

export default [scenario("qemu"), scenario("bochs")];
