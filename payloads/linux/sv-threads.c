/*
 * sv-threads: a program the Linux guest runs (built static on the host,
 * harness/build.ts): one thread per online CPU, each pinned to its CPU,
 * each first-touching its own MIB MiB and then adding 1 to every word of
 * them PASSES times (the `private` pattern). Prints, in /init's marker
 * format, the threads, and per thread the CPU it ran on and the sum of its
 * words, which must be PASSES times the words (the scenario checks both).
 * The passes are the steady phase: each thread opens the locality meter's
 * window on its CPU before them and closes it after (harness/meter/meter.c;
 * the marks are instructions no compiler emits, and do nothing).
 * Usage: sv-threads MIB PASSES
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_THREADS 64

struct thread {
    pthread_t id;
    int cpu, ran_on;
    size_t words;
    long passes;
    uint64_t sum;
};

static void *work(void *arg) {
    struct thread *t = arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(t->cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) return NULL;
    t->ran_on = sched_getcpu();
    /* Allocated and first touched on the thread's own CPU. */
    uint64_t *data = calloc(t->words, sizeof *data);
    if (!data) return NULL;
    __asm__ volatile("xchg %%r14, %%r14" ::: "memory"); /* the meter's window opens */
    for (long p = 0; p < t->passes; p++)
        for (size_t i = 0; i < t->words; i++) data[i] += 1;
    __asm__ volatile("xchg %%r13, %%r13" ::: "memory"); /* and closes */
    for (size_t i = 0; i < t->words; i++) t->sum += data[i];
    t->ran_on = t->ran_on == sched_getcpu() ? t->ran_on : -1; /* it stayed there */
    free(data);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: sv-threads MIB PASSES\n");
        return 2;
    }
    size_t words = (size_t)atol(argv[1]) << 20 >> 3;
    long passes = atol(argv[2]);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1 || n > MAX_THREADS || words == 0 || passes < 1) return 2;
    static struct thread threads[MAX_THREADS];
    for (long i = 0; i < n; i++) {
        threads[i] = (struct thread){.cpu = (int)i, .ran_on = -1, .words = words, .passes = passes};
        if (pthread_create(&threads[i].id, NULL, work, &threads[i]) != 0) return 1;
    }
    for (long i = 0; i < n; i++) pthread_join(threads[i].id, NULL);
    printf("SV-LINUX threads=%ld\n", n);
    for (long i = 0; i < n; i++)
        printf("SV-LINUX thread%ld=cpu %d sum %llu\n", i, threads[i].ran_on,
               (unsigned long long)threads[i].sum);
    return 0;
}
