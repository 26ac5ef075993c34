/*
 * sv-window: opens or closes the locality meter's window (harness/meter/
 * meter.c) on every online CPU, for a program that gives no marks of its
 * own (a Debian binary): /init runs `sv-window open`, the program, then
 * `sv-window close`, and the meter counts apart what every CPU did in
 * between. It moves itself to each CPU in turn and runs the mark there
 * (`xchg r14, r14` opens, `xchg r13, r13` closes: instructions no compiler
 * emits, which do nothing). Prints, in /init's marker format, the guest's
 * monotonic clock in milliseconds at that moment (`window-open=MS`,
 * `window-close=MS`): the program's time is the difference.
 * Usage: sv-window open|close
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int open = argc == 2 && strcmp(argv[1], "open") == 0;
    if (argc != 2 || (!open && strcmp(argv[1], "close") != 0)) {
        fprintf(stderr, "usage: sv-window open|close\n");
        return 2;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    for (long cpu = 0; cpu < n; cpu++) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0 || sched_getcpu() != cpu) {
            fprintf(stderr, "sv-window: cannot run on CPU %ld\n", cpu);
            return 1;
        }
        if (open)
            __asm__ volatile("xchg %%r14, %%r14" ::: "memory");
        else
            __asm__ volatile("xchg %%r13, %%r13" ::: "memory");
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    printf("SV-LINUX window-%s=%.0f\n", argv[1], (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6);
    return 0;
}
