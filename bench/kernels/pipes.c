// Cycles per row x column x 32-value block of the AVX2 Q8_0 product, on this CPU, one thread:
//   the instruction sequence alone, everything in registers (8 independent accumulators): as ggml and the
//   GEMV do it (sign, vpmaddubsw, vpmaddwd, convert, FMA), without the sign (what an unsigned offset would
//   save, were vpmaddubsw's int16 sums not to overflow), and as int16 products (vpmaddwd twice, vpaddd,
//   convert, FMA: what the blocked kernel does on quants widened beforehand); then tally_gemm_q8 itself on
//   data that stays in L1 (64 x 576 weights, 32 columns).
// The clock is taken from a chain of dependent adds (one cycle each). Run: bash bench/kernels/run.sh pipes
#include "CKernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

#define ITER 20000000L
// ymm4 weights, ymm5 activations, ymm6 |activations|, ymm7 ones, ymm1 scale; ymm0/2/3 temporaries
#define SEQ(acc, t) "vpsignb %%ymm5, %%ymm4, %%ymm" #t "\n\t" "vpmaddubsw %%ymm" #t ", %%ymm6, %%ymm" #t "\n\t" \
    "vpmaddwd %%ymm7, %%ymm" #t ", %%ymm" #t "\n\t" "vcvtdq2ps %%ymm" #t ", %%ymm" #t "\n\t" "vfmadd231ps %%ymm" #t ", %%ymm1, %%ymm" #acc "\n\t"
#define NOSIGN(acc, t) "vpmaddubsw %%ymm4, %%ymm6, %%ymm" #t "\n\t" "vpmaddwd %%ymm7, %%ymm" #t ", %%ymm" #t "\n\t" \
    "vcvtdq2ps %%ymm" #t ", %%ymm" #t "\n\t" "vfmadd231ps %%ymm" #t ", %%ymm1, %%ymm" #acc "\n\t"
#define INT16(acc, t) "vpmaddwd %%ymm4, %%ymm6, %%ymm" #t "\n\t" "vpmaddwd %%ymm5, %%ymm6, %%ymm1" "\n\t" \
    "vpaddd %%ymm1, %%ymm" #t ", %%ymm" #t "\n\t" "vcvtdq2ps %%ymm" #t ", %%ymm" #t "\n\t" "vfmadd231ps %%ymm" #t ", %%ymm7, %%ymm" #acc "\n\t"
#define EIGHT(M) M(8, 0) M(9, 2) M(10, 3) M(11, 0) M(12, 2) M(13, 3) M(14, 0) M(15, 2)
#define TIME(body) ({ double t0 = now(); \
    for (long i = 0; i < ITER; i++) __asm__ volatile(body ::: "xmm0", "xmm1", "xmm2", "xmm3", "xmm8", "xmm9", "xmm10", \
                                                     "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"); \
    (now() - t0) / ITER / 8; })

int main(void) {
    long x = 0;
    double t0 = now();
    for (long i = 0; i < 200000000L; i++) __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(x));
    const double ghz = 4 * 200000000.0 / (now() - t0) * 1e-9;
    __asm__ volatile("vpxor %%ymm4,%%ymm4,%%ymm4\n\tvpxor %%ymm5,%%ymm5,%%ymm5\n\tvpxor %%ymm6,%%ymm6,%%ymm6\n\t"
                     "vpxor %%ymm7,%%ymm7,%%ymm7\n\tvxorps %%ymm1,%%ymm1,%%ymm1" ::: "xmm1", "xmm4", "xmm5", "xmm6", "xmm7");
    printf("clock about %.2f GHz; cycles per row x column x block:\n", ghz);
    printf("  in registers, sign vpmaddubsw vpmaddwd convert FMA  %.2f\n", TIME(EIGHT(SEQ)) * ghz * 1e9);
    printf("  in registers, without the sign                       %.2f\n", TIME(EIGHT(NOSIGN)) * ghz * 1e9);
    printf("  in registers, int16 products (vpmaddwd twice)        %.2f\n", TIME(EIGHT(INT16)) * ghz * 1e9);

    const int rows = 64, k = 576, cols = 32, nb = k / 32, reps = 2000;
    uint8_t *w = malloc((size_t)rows * nb * 34);
    srand(1);
    for (size_t i = 0; i < (size_t)rows * nb * 34; i++) w[i] = (uint8_t)(rand() % 255);
    for (size_t i = 0; i < (size_t)rows * nb; i++) { const uint16_t h = 0x2000; memcpy(w + 34 * i, &h, 2); }
    float *xd = malloc(sizeof(float) * cols * nb), *y = malloc(sizeof(float) * rows * cols);
    int8_t *xq = malloc((size_t)cols * k);
    for (int i = 0; i < cols * nb; i++) xd[i] = 0.01f;
    for (int i = 0; i < cols * k; i++) xq[i] = (int8_t)(rand() % 255 - 127);
    double best = 1e9;
    for (int pass = 0; pass < 5; pass++) {
        const double t = now();
        for (int r = 0; r < reps; r++) tally_gemm_q8(w, k, 0, rows, xd, xq, cols, y, rows);
        if (now() - t < best) best = now() - t;
    }
    printf("  tally_gemm_q8, %dx%d weights x %d columns in L1     %.2f\n", rows, k, cols, best / ((double)rows * cols * nb * reps) * ghz * 1e9);
    return 0;
}
