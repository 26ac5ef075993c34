/*
 * The locality meter: a QEMU TCG plugin (API version 1, QEMU 7.2) that
 * counts, for each emulated CPU, the guest's memory accesses by the NUMA
 * node that owns their physical address. It trusts nothing the hypervisor
 * says: the nodes come from the topology the harness gave QEMU, the
 * addresses from QEMU's own softmmu.
 *
 * Which accesses are the guest's: those of instructions outside the
 * hypervisor's image (`skip=START-END`), once that CPU has run the
 * hypervisor and then left it: from the guest's first instruction on that
 * CPU, whatever kind of guest and wherever it starts (a payload at its
 * entry, Linux's boot CPU at its PVH entry and the others at its start-up
 * code), so that firmware and boot are not counted.
 * Arguments (each `-plugin meter.so,KEY=VALUE,...`):
 *   out=FILE            where the counts go, at exit
 *   mem=NODE:BASE-END   a node's physical memory (repeatable)
 *   cpu=INDEX:NODE      a CPU's node (repeatable)
 *   skip=START-END      the hypervisor's code: its accesses are not counted;
 *                       without it (a guest on the bare machine) every CPU
 *                       counts from its first instruction
 * Output: one line per CPU, `cpu I node N: C0 C1 ...`, the accesses of CPU
 * I (on node N) to each node's memory, then `other: C` for accesses to no
 * node's memory (devices).
 *
 * A phase of the run: a guest program opens a window on its CPU with the
 * mark `xchg r14, r14` and closes it with `xchg r13, r13` (no compiler
 * emits either); the accesses a CPU makes inside its windows are counted
 * again apart, and written as `window cpu I node N: ...` lines when any
 * window opened.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin_api.h"

PLUGIN_EXPORT int qemu_plugin_version = 1;

#define MAX_NODES 16
#define MAX_CPUS 64
#define MAX_RANGES 64

static struct {
    uint64_t base, end;
    int node;
} ranges[MAX_RANGES];
static int n_ranges, n_nodes = 1, n_cpus;
static int cpu_node[MAX_CPUS];
static uint64_t skip_start, skip_end;
static const char *out_path = "meter.txt";
/* Per CPU: ran the hypervisor yet, counting yet, and accesses per node (the
 * last slot: no node). */
static volatile bool in_hypervisor[MAX_CPUS], counting[MAX_CPUS];
static uint64_t counts[MAX_CPUS][MAX_NODES + 1];
/* The same inside each CPU's window, and whether any window opened. */
static volatile bool in_window[MAX_CPUS], windowed;
static uint64_t window_counts[MAX_CPUS][MAX_NODES + 1];
static const unsigned char OPEN[] = {0x4d, 0x87, 0xf6}, CLOSE[] = {0x4d, 0x87, 0xed};

static int node_of(uint64_t pa) {
    for (int i = 0; i < n_ranges; i++) {
        if (pa >= ranges[i].base && pa < ranges[i].end) return ranges[i].node;
    }
    return MAX_NODES;
}

static void on_mem(unsigned int cpu, qemu_plugin_meminfo_t info, uint64_t vaddr, void *u) {
    (void)u;
    if (cpu >= MAX_CPUS || !counting[cpu]) return;
    struct qemu_plugin_hwaddr *hw = qemu_plugin_get_hwaddr(info, vaddr);
    int node = !hw || qemu_plugin_hwaddr_is_io(hw)
                   ? MAX_NODES
                   : node_of(qemu_plugin_hwaddr_phys_addr(hw));
    __atomic_fetch_add(&counts[cpu][node], 1, __ATOMIC_RELAXED);
    if (in_window[cpu]) __atomic_fetch_add(&window_counts[cpu][node], 1, __ATOMIC_RELAXED);
}

/* A window mark ran on `cpu`: `u` is non-null to open it. */
static void on_window(unsigned int cpu, void *u) {
    if (cpu >= MAX_CPUS || !counting[cpu]) return;
    in_window[cpu] = u != NULL;
    if (u) windowed = true;
}

/* A block of the hypervisor's ran on `cpu`. */
static void on_hypervisor(unsigned int cpu, void *u) {
    (void)u;
    if (cpu < MAX_CPUS) in_hypervisor[cpu] = true;
}

/* A block outside it ran: the guest's, once the hypervisor has run. */
static void on_outside(unsigned int cpu, void *u) {
    (void)u;
    if (cpu < MAX_CPUS && in_hypervisor[cpu]) counting[cpu] = true;
}

static void on_tb(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    if (n == 0) return;
    uint64_t first = qemu_plugin_insn_vaddr(qemu_plugin_tb_get_insn(tb, 0));
    if (first >= skip_start && first < skip_end) {
        qemu_plugin_register_vcpu_tb_exec_cb(tb, on_hypervisor, QEMU_PLUGIN_CB_NO_REGS, NULL);
        return; /* the hypervisor's own accesses */
    }
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_outside, QEMU_PLUGIN_CB_NO_REGS, NULL);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t va = qemu_plugin_insn_vaddr(insn);
        if (va >= skip_start && va < skip_end) continue;
        qemu_plugin_register_vcpu_mem_cb(insn, on_mem, QEMU_PLUGIN_CB_NO_REGS,
                                         QEMU_PLUGIN_MEM_RW, NULL);
        if (qemu_plugin_insn_size(insn) != sizeof OPEN) continue;
        const void *bytes = qemu_plugin_insn_data(insn);
        if (!memcmp(bytes, OPEN, sizeof OPEN) || !memcmp(bytes, CLOSE, sizeof CLOSE)) {
            void *open = memcmp(bytes, OPEN, sizeof OPEN) ? NULL : (void *)1;
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_window, QEMU_PLUGIN_CB_NO_REGS, open);
        }
    }
}

static void on_plugin_exit(qemu_plugin_id_t id, void *u) {
    (void)id;
    (void)u;
    FILE *f = fopen(out_path, "w");
    if (!f) return;
    for (int w = 0; w < (windowed ? 2 : 1); w++) {
        for (int c = 0; c < n_cpus; c++) {
            uint64_t *of = w ? window_counts[c] : counts[c];
            fprintf(f, "%scpu %d node %d:", w ? "window " : "", c, cpu_node[c]);
            for (int n = 0; n < n_nodes; n++) fprintf(f, " %" PRIu64, of[n]);
            fprintf(f, " other: %" PRIu64 "\n", of[MAX_NODES]);
        }
    }
    fclose(f);
}

static bool parse_range(const char *s, uint64_t *a, uint64_t *b) {
    char *end;
    *a = strtoull(s, &end, 0);
    if (*end != '-') return false;
    *b = strtoull(end + 1, &end, 0);
    return *end == '\0' && *b > *a;
}

PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                      char **argv) {
    if (!info->system_emulation) return -1;
    n_cpus = info->system.smp_vcpus < MAX_CPUS ? info->system.smp_vcpus : MAX_CPUS;
    for (int i = 0; i < argc; i++) {
        char *v = strchr(argv[i], '=');
        if (!v) return -1;
        *v++ = '\0';
        if (!strcmp(argv[i], "out")) {
            out_path = v;
        } else if (!strcmp(argv[i], "mem") && n_ranges < MAX_RANGES) {
            char *colon = strchr(v, ':');
            if (!colon) return -1;
            int node = atoi(v);
            if (node < 0 || node >= MAX_NODES) return -1;
            if (!parse_range(colon + 1, &ranges[n_ranges].base, &ranges[n_ranges].end)) return -1;
            ranges[n_ranges++].node = node;
            if (node + 1 > n_nodes) n_nodes = node + 1;
        } else if (!strcmp(argv[i], "cpu")) {
            int cpu = atoi(v);
            char *colon = strchr(v, ':');
            if (!colon || cpu < 0 || cpu >= MAX_CPUS) return -1;
            cpu_node[cpu] = atoi(colon + 1);
        } else if (!strcmp(argv[i], "skip")) {
            if (!parse_range(v, &skip_start, &skip_end)) return -1;
        } else {
            return -1;
        }
    }
    if (skip_end == 0)
        for (int c = 0; c < MAX_CPUS; c++) counting[c] = true;
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb);
    qemu_plugin_register_atexit_cb(id, on_plugin_exit, NULL);
    return 0;
}
