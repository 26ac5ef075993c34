/*
 * sv-lines: a fixed input for the Debian programs the guest runs
 * (harness/linux_workloads.ts): LINES lines, each a pseudo-random number
 * below 10^9 (a 64-bit LCG from seed 1) and the line's number, the same on
 * every run. busybox awk makes the same in minutes of emulated time.
 * Usage: sv-lines LINES
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    long lines = argc == 2 ? atol(argv[1]) : -1;
    if (lines < 0) {
        fprintf(stderr, "usage: sv-lines LINES\n");
        return 2;
    }
    uint64_t x = 1;
    for (long i = 0; i < lines; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        printf("%llu %ld\n", (unsigned long long)((x >> 33) % 1000000000), i);
    }
    return 0;
}
