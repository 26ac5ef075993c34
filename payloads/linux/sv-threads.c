/*
 * sv-threads: the reference NUMA workloads (harness/workloads.ts) as a
 * program the Linux guest runs (built static on the host, harness/build.ts):
 * one thread per online CPU, each pinned to its CPU, over MIB MiB of data
 * per thread, one pass after another. PATTERN is the access pattern:
 *   private           each thread updates its own data, which it touched first
 *   master-init       the same, every page first written by the main thread
 *                     on CPU 0 before the threads start (a placement by first
 *                     touch puts it all on CPU 0's node)
 *   shared-read       every thread reads all the data, written by the main thread
 *   shared-write-hot  every thread updates its words of one 64 KiB hot region
 *                     (word i is thread i mod N's), as often as a pass of
 *                     private updates words
 *   random            every thread updates its words of all the data (word i
 *                     is thread i mod N's) at random, as many a pass as private
 *   stream            each thread copies the first half of its data into the
 *                     second (b[i] += a[i], a being ones)
 *   phase-change      each thread updates its own data for the first half of
 *                     the measured passes, then (all met) the next thread's
 * The PASSES measured passes are the steady phase: each thread opens the
 * locality meter's window on its CPU before them and closes it after
 * (harness/meter/meter.c; the marks are instructions no compiler emits, and
 * do nothing). Before them, passes run unmeasured for WARMUP_MS milliseconds
 * of the guest's clock (none if not given): a placement that adapts at run
 * time is measured once it had time to, whatever the emulator's speed.
 * Prints, in /init's marker format, the threads, and per thread the CPU it
 * ran on, the passes it made (warm-up ones too), the sum of its words (or
 * of what it read) and the milliseconds of its measured passes; the sum is
 * the passes times the words a pass gives the thread (the harness checks
 * it: svThreadsProblems).
 * Usage: sv-threads PATTERN MIB PASSES [WARMUP_MS]
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64
/* The hot region of shared-write-hot: 16 pages of words. */
#define HOT_WORDS (16 * 4096 / 8)

enum pattern { PRIVATE, MASTER_INIT, SHARED_READ, SHARED_WRITE_HOT, RANDOM, STREAM, PHASE_CHANGE };
static const char *const NAMES[] = {"private", "master-init", "shared-read", "shared-write-hot",
                                    "random",  "stream",      "phase-change"};

static enum pattern pattern;
static long n_threads, passes, warmup_ms;
static size_t words;       /* per thread */
static uint64_t *shared;   /* shared-read, random, shared-write-hot */
static pthread_barrier_t changed;

struct thread {
    pthread_t id;
    int cpu, ran_on;
    long done;
    double ms;
    uint64_t read;  /* shared-read: the sum of what it read */
    uint64_t *data; /* its own data, where the pattern gives it some */
};
static struct thread threads[MAX_THREADS];

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

/* Writes a word of every page of `data`, here: its first touch. Through a
 * volatile pointer, as the compiler drops a memset of zeros after calloc. */
static void touch(uint64_t *data, size_t n) {
    for (size_t i = 0; i < n; i += 4096 / sizeof *data) ((volatile uint64_t *)data)[i] = 0;
}

static void update(uint64_t *data, size_t n) {
    for (size_t i = 0; i < n; i++) data[i] += 1;
}

/* One pass of thread `t`; `second`: phase-change's second phase. */
static void pass(struct thread *t, int second, uint64_t *lcg) {
    size_t n = (size_t)n_threads, me = (size_t)t->cpu;
    switch (pattern) {
    case PRIVATE:
    case MASTER_INIT:
        update(t->data, words);
        break;
    case PHASE_CHANGE:
        update(second ? threads[(me + 1) % n].data : t->data, words);
        break;
    case SHARED_READ: {
        uint64_t s = 0;
        for (size_t i = 0; i < words * n; i++) s += shared[i];
        t->read += s;
        break;
    }
    case SHARED_WRITE_HOT:
        for (size_t r = 0; r < words / (HOT_WORDS / n); r++)
            for (size_t i = me; i < HOT_WORDS; i += n) shared[i] += 1;
        break;
    case RANDOM:
        for (size_t k = 0; k < words; k++) {
            *lcg = *lcg * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t i = (size_t)(*lcg >> 33) % (words * n);
            shared[i - i % n + me] += 1;
        }
        break;
    case STREAM:
        for (size_t i = 0; i < words / 2; i++) t->data[words / 2 + i] += t->data[i];
        break;
    }
}

static void *work(void *arg) {
    struct thread *t = arg;
    pin(t->cpu);
    t->ran_on = sched_getcpu();
    uint64_t lcg = 2 * (uint64_t)t->cpu + 1;
    if (!t->data && pattern != SHARED_READ && pattern != SHARED_WRITE_HOT && pattern != RANDOM) {
        /* Its own data, first touched here, on its CPU. */
        t->data = calloc(words, sizeof *t->data);
        if (!t->data) return NULL;
        if (pattern == STREAM)
            for (size_t i = 0; i < words / 2; i++) t->data[i] = 1;
    }
    for (double start = now_ms(); now_ms() - start < (double)warmup_ms; t->done++)
        pass(t, 0, &lcg);
    double start = now_ms();
    __asm__ volatile("xchg %%r14, %%r14" ::: "memory"); /* the meter's window opens */
    for (long p = 0; p < passes; p++, t->done++) {
        if (pattern == PHASE_CHANGE && p == passes / 2) pthread_barrier_wait(&changed);
        pass(t, pattern == PHASE_CHANGE && p >= passes / 2, &lcg);
    }
    __asm__ volatile("xchg %%r13, %%r13" ::: "memory"); /* and closes */
    t->ms = now_ms() - start;
    t->ran_on = t->ran_on == sched_getcpu() ? t->ran_on : -1; /* it stayed there */
    return NULL;
}

/* What thread `i`'s words hold, or what it read. */
static uint64_t sum(long i) {
    struct thread *t = &threads[i];
    uint64_t s = 0;
    size_t n = (size_t)n_threads;
    switch (pattern) {
    case SHARED_READ:
        return t->read;
    case SHARED_WRITE_HOT:
        for (size_t k = (size_t)i; k < HOT_WORDS; k += n) s += shared[k];
        return s;
    case RANDOM:
        for (size_t k = (size_t)i; k < words * n; k += n) s += shared[k];
        return s;
    case STREAM:
        for (size_t k = words / 2; k < words; k++) s += t->data[k];
        return s;
    default:
        for (size_t k = 0; k < words; k++) s += t->data[k];
        return s;
    }
}

static int usage(void) {
    fprintf(stderr, "usage: sv-threads private|master-init|shared-read|shared-write-hot|random|"
                    "stream|phase-change MIB PASSES [WARMUP_MS]\n");
    return 2;
}

int main(int argc, char **argv) {
    if (argc < 4 || argc > 5) return usage();
    size_t p = 0;
    while (p < sizeof NAMES / sizeof *NAMES && strcmp(argv[1], NAMES[p]) != 0) p++;
    if (p == sizeof NAMES / sizeof *NAMES) return usage();
    pattern = (enum pattern)p;
    words = (size_t)atol(argv[2]) << 20 >> 3;
    passes = atol(argv[3]);
    warmup_ms = argc == 5 ? atol(argv[4]) : 0;
    n_threads = sysconf(_SC_NPROCESSORS_ONLN);
    if (n_threads < 1 || n_threads > MAX_THREADS || words == 0 || passes < 1 || warmup_ms < 0)
        return usage();
    /* Phase-change's warm-up runs each thread's own passes: the measured ones
     * cross over together. */
    if (pthread_barrier_init(&changed, NULL, (unsigned)n_threads) != 0) return 1;
    pin(0);
    size_t n = (size_t)n_threads;
    if (pattern == SHARED_READ || pattern == RANDOM || pattern == SHARED_WRITE_HOT) {
        size_t len = pattern == SHARED_WRITE_HOT ? HOT_WORDS : words * n;
        shared = calloc(len, sizeof *shared);
        if (!shared) return 1;
        /* Written here, on CPU 0, but random's: its first touches are the threads'. */
        if (pattern == SHARED_READ)
            for (size_t i = 0; i < len; i++) shared[i] = 1;
        else if (pattern == SHARED_WRITE_HOT)
            touch(shared, len);
    }
    for (long i = 0; i < n_threads; i++) {
        threads[i] = (struct thread){.cpu = (int)i, .ran_on = -1};
        if (pattern == MASTER_INIT) {
            /* Every page written once here, on CPU 0, before any thread runs. */
            threads[i].data = calloc(words, sizeof(uint64_t));
            if (!threads[i].data) return 1;
            touch(threads[i].data, words);
        }
    }
    for (long i = 0; i < n_threads; i++)
        if (pthread_create(&threads[i].id, NULL, work, &threads[i]) != 0) return 1;
    for (long i = 0; i < n_threads; i++) pthread_join(threads[i].id, NULL);
    printf("SV-LINUX threads=%ld\n", n_threads);
    for (long i = 0; i < n_threads; i++)
        printf("SV-LINUX thread%ld=cpu %d passes %ld sum %llu ms %.0f\n", i, threads[i].ran_on,
               threads[i].done, (unsigned long long)sum(i), threads[i].ms);
    return 0;
}
