/* Instruction-count harness for the popcount micro-kernels (cross-compiled for aarch64 and run
 * under qemu by benchmarks/arm64_icount.py, which links it with kws/csrc/bgemm_neon.c and
 * bgemm_scalar.c).
 *
 *   icount_main bench ISA M N K REPS   call ISA's micro-kernel REPS times on random M x K and N x K
 *                                      packed operands (rows of ceil(K/64) words, no padding)
 *   icount_main check M N K            NEON vs scalar on the same operands; exit 1 on mismatch
 *
 * Count with  icount.sh -x -f popcnt_<isa> icount_main bench <isa> M N K REPS : only instructions
 * inside the micro-kernel are counted (operand set-up is outside it), so count / REPS is the
 * exact cost of one call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels.h"

#include "rng.h"

static const kws_isa *get(const char *name) {
    if (!strcmp(name, "neon")) return kws_isa_neon();
    if (!strcmp(name, "scalar")) return kws_isa_scalar();
    return NULL;
}

int main(int argc, char **argv) {
    const int bench = argc == 7 && !strcmp(argv[1], "bench");
    const int check = argc == 5 && !strcmp(argv[1], "check");
    if (!bench && !check) {
        fprintf(stderr, "usage: %s bench neon|scalar M N K REPS | check M N K\n", argv[0]);
        return 2;
    }
    const int o = bench ? 3 : 2;
    const size_t m = strtoull(argv[o], 0, 10), n = strtoull(argv[o + 1], 0, 10),
                 k = strtoull(argv[o + 2], 0, 10), kw = KWS_WORDS(k);
    const long reps = bench ? strtol(argv[6], 0, 10) : 1;
    uint64_t *a = malloc(m * kw * sizeof *a), *w = malloc(n * kw * sizeof *w);
    int32_t *out = malloc(m * n * sizeof *out), *ref = malloc(m * n * sizeof *ref);
    if (!a || !w || !out || !ref || !m || !n || !k) return 2;
    for (size_t i = 0; i < m * kw; i++) a[i] = next();
    for (size_t i = 0; i < n * kw; i++) w[i] = next();

    if (check) {
        const kws_isa *neon = get("neon"), *scalar = get("scalar");
        if (!neon) { fprintf(stderr, "no NEON kernel in this build\n"); return 1; }
        neon->popcnt(a, kw, w, kw, m, n, k, out, n);
        scalar->popcnt(a, kw, w, kw, m, n, k, ref, n);
        if (memcmp(out, ref, m * n * sizeof *out)) { fprintf(stderr, "NEON != scalar\n"); return 1; }
        printf("check ok: m=%zu n=%zu k=%zu\n", m, n, k);
        return 0;
    }
    const kws_isa *isa = get(argv[2]);
    if (!isa) { fprintf(stderr, "ISA %s not in this build\n", argv[2]); return 1; }
    long long sum = 0;
    for (long r = 0; r < reps; r++) {
        isa->popcnt(a, kw, w, kw, m, n, k, out, n);
        sum += out[(size_t)r % (m * n)];
    }
    printf("%s m=%zu n=%zu k=%zu reps=%ld (checksum %lld)\n", isa->name, m, n, k, reps, sum);
    return 0;
}
