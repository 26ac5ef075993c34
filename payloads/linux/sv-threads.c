/*
 * sv-threads: a program the Linux guest runs (built static on the host,
 * harness/build.ts): one thread per online CPU, each pinned to its CPU,
 * each adding 1 to every word of its own MIB MiB PASSES times. PATTERN says
 * who touches them first: `private`, the thread itself; `master-init`, the
 * main thread, pinned to CPU 0, before it starts the others (so that a
 * placement by first touch puts them all on CPU 0's node). The PASSES
 * passes are the steady phase: each thread opens the locality meter's
 * window on its CPU before them and closes it after (harness/meter/meter.c;
 * the marks are instructions no compiler emits, and do nothing). Before
 * them, passes run unmeasured for WARMUP_MS milliseconds of the guest's
 * clock (none if not given): a placement that adapts at run time is
 * measured once it had time to, whatever the emulator's speed. Prints, in
 * /init's marker format, the threads, and per thread the CPU it ran on, the
 * passes it made (warm-up ones too) and the sum of its words, which must be
 * the passes times the words (the scenario checks them).
 * Usage: sv-threads PATTERN MIB PASSES [WARMUP_MS]
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_THREADS 64

struct thread {
    pthread_t id;
    int cpu, ran_on;
    size_t words;
    long passes, warmup_ms, done;
    uint64_t sum;
    uint64_t *data; /* master-init: allocated and touched by the main thread */
};

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static void *work(void *arg) {
    struct thread *t = arg;
    pin(t->cpu);
    t->ran_on = sched_getcpu();
    /* Private: allocated and first touched on the thread's own CPU. */
    uint64_t *data = t->data ? t->data : calloc(t->words, sizeof *data);
    if (!data) return NULL;
    for (double start = now_ms(); now_ms() - start < (double)t->warmup_ms; t->done++)
        for (size_t i = 0; i < t->words; i++) data[i] += 1;
    __asm__ volatile("xchg %%r14, %%r14" ::: "memory"); /* the meter's window opens */
    for (long p = 0; p < t->passes; p++, t->done++)
        for (size_t i = 0; i < t->words; i++) data[i] += 1;
    __asm__ volatile("xchg %%r13, %%r13" ::: "memory"); /* and closes */
    for (size_t i = 0; i < t->words; i++) t->sum += data[i];
    t->ran_on = t->ran_on == sched_getcpu() ? t->ran_on : -1; /* it stayed there */
    free(data);
    return NULL;
}

int main(int argc, char **argv) {
    int master = argc >= 4 && strcmp(argv[1], "master-init") == 0;
    if (argc < 4 || argc > 5 || (!master && strcmp(argv[1], "private") != 0)) {
        fprintf(stderr, "usage: sv-threads private|master-init MIB PASSES [WARMUP_MS]\n");
        return 2;
    }
    size_t words = (size_t)atol(argv[2]) << 20 >> 3;
    long passes = atol(argv[3]), warmup_ms = argc == 5 ? atol(argv[4]) : 0;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1 || n > MAX_THREADS || words == 0 || passes < 1 || warmup_ms < 0)
        return 2;
    static struct thread threads[MAX_THREADS];
    pin(0);
    for (long i = 0; i < n; i++) {
        threads[i] = (struct thread){.cpu = (int)i, .ran_on = -1, .words = words, .passes = passes,
                                    .warmup_ms = warmup_ms};
        if (master) {
            /* Every page written once here, on CPU 0, before any thread runs. */
            threads[i].data = calloc(words, sizeof(uint64_t));
            if (!threads[i].data) return 1;
            memset(threads[i].data, 0, words * sizeof(uint64_t));
        }
    }
    for (long i = 0; i < n; i++) {
        if (pthread_create(&threads[i].id, NULL, work, &threads[i]) != 0) return 1;
    }
    for (long i = 0; i < n; i++) pthread_join(threads[i].id, NULL);
    printf("SV-LINUX threads=%ld\n", n);
    for (long i = 0; i < n; i++)
        printf("SV-LINUX thread%ld=cpu %d passes %ld sum %llu\n", i, threads[i].ran_on,
               threads[i].done, (unsigned long long)threads[i].sum);
    return 0;
}
