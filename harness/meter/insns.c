/*
 * The instruction counter: a QEMU TCG plugin (API version 1, QEMU 7.2) that
 * counts the instructions the emulated CPUs execute from the machine's start,
 * and writes the count when one first executes the mark, `xchg r15, r15`
 * (4D 87 FF: no compiler emits it; `payloads/linux/sv-mark.asm` does). What
 * it counts comes from QEMU's translator: nothing the guest or the hypervisor
 * says. Exact under single-threaded TCG (one counter, added to as each
 * translated block runs); under multi-threaded TCG the adds race.
 * Arguments: out=FILE. Output: `mark N` (the instructions executed up to the
 * mark's block), then `total N` at exit.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "plugin_api.h"

PLUGIN_EXPORT int qemu_plugin_version = 1;

static const unsigned char MARK[] = {0x4d, 0x87, 0xff};
static uint64_t executed;
static bool marked;
static const char *out_path = "insns.txt";
static FILE *out;

static void on_mark(unsigned int cpu, void *u) {
    (void)cpu;
    (void)u;
    if (marked || !out) return;
    marked = true;
    fprintf(out, "mark %" PRIu64 "\n", executed);
    fflush(out);
}

static void on_tb(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &executed, n);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        if (qemu_plugin_insn_size(insn) == sizeof MARK &&
            !memcmp(qemu_plugin_insn_data(insn), MARK, sizeof MARK)) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
    }
}

static void on_plugin_exit(qemu_plugin_id_t id, void *u) {
    (void)id;
    (void)u;
    if (!out) return;
    fprintf(out, "total %" PRIu64 "\n", executed);
    fclose(out);
}

PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                      char **argv) {
    if (!info->system_emulation) return -1;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "out=", 4)) return -1;
        out_path = argv[i] + 4;
    }
    out = fopen(out_path, "w");
    if (!out) return -1;
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb);
    qemu_plugin_register_atexit_cb(id, on_plugin_exit, NULL);
    return 0;
}
