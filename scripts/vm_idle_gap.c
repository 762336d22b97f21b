/*
 * What a unit of work costs in CPU time when it follows an idle gap, against the same
 * unit done back to back: the probe behind "the floor at the live keyframe rate" in
 * docs/performance.md. Three kinds of unit:
 *
 *   compute      1e6 floating-point additions (registers only)
 *   memory       two 2 MiB memcpy (4 MiB read, 4 MiB written), 4 KiB pages
 *   memory-huge  the same on 2 MiB-aligned buffers with madvise(MADV_HUGEPAGE)
 *
 *   gcc -O2 -o /tmp/vm_idle_gap scripts/vm_idle_gap.c
 *   for gap in 0 20 100; do for kind in compute memory memory-huge; do
 *       /tmp/vm_idle_gap $gap 40 $kind; done; done
 *
 * Prints the mean CPU time (CLOCK_PROCESS_CPUTIME_ID) of one unit after `gap` ms asleep.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double cpu_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s GAP_MS ITERATIONS compute|memory|memory-huge\n", argv[0]);
        return 64;
    }
    int gap_ms = atoi(argv[1]), n = atoi(argv[2]);
    const char *kind = argv[3];
    int memory = strncmp(kind, "memory", 6) == 0, huge = strcmp(kind, "memory-huge") == 0;
    size_t size = 2u << 20;
    char *a = aligned_alloc(2u << 20, size), *b = aligned_alloc(2u << 20, size);
    if (!a || !b || n <= 0) {
        fprintf(stderr, "cannot allocate, or no iterations\n");
        return 1;
    }
    if (huge) {
        madvise(a, size, MADV_HUGEPAGE);
        madvise(b, size, MADV_HUGEPAGE);
    }
    memset(a, 1, size);
    memset(b, 2, size);
    volatile double x = 0;
    double total = 0;
    for (int i = 0; i < n; i++) {
        if (gap_ms) usleep(gap_ms * 1000);
        double start = cpu_ms();
        if (memory) {
            memcpy(b, a, size);
            memcpy(a, b, size);
        } else {
            for (int k = 0; k < 1000000; k++) x += k * 0.5;
        }
        total += cpu_ms() - start;
    }
    printf("gap %4d ms  %-11s  %.3f ms CPU per unit\n", gap_ms, kind, total / n);
    return 0;
}
