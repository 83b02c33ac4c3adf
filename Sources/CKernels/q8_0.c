// Q8_0 kernels: activation quantization and the Q8_0 x int8 matrix product, scalar and vector forms.
#include "CKernels.h"
#include <math.h>
#include <string.h>

void tally_quantize_rows_q8_scalar(const float *x, int rows, int k, float *xd, int8_t *xq) {
    for (int r = 0; r < rows; r++) {
        for (int b = 0; b < k / 32; b++) {
            const float *v = x + (size_t)r * k + 32 * b;
            float amax = 0.0f;
            for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(v[j]));
            xd[(size_t)r * (k / 32) + b] = tally_f16_to_f32(tally_f32_to_f16(amax / 127.0f));
            const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
            for (int j = 0; j < 32; j++) xq[(size_t)r * k + 32 * b + j] = (int8_t)rintf(v[j] * id);
        }
    }
}

void tally_gemm_q8_scalar(const void *w, int k, int row_begin, int row_end,
                          const float *xd, const int8_t *xq, int cols, float *y, int ldy) {
    const uint8_t *wb = (const uint8_t *)w;
    const size_t row_bytes = (size_t)(k / 32) * 34;
    for (int r = row_begin; r < row_end; r++) {
        for (int c = 0; c < cols; c++) {
            float sum = 0.0f;
            for (int b = 0; b < k / 32; b++) {
                const uint8_t *blk = wb + (size_t)r * row_bytes + 34 * (size_t)b;
                uint16_t dbits;
                memcpy(&dbits, blk, 2);
                const int8_t *qw = (const int8_t *)(blk + 2);
                const int8_t *qx = xq + (size_t)c * k + 32 * b;
                int32_t isum = 0;
                for (int j = 0; j < 32; j++) isum += (int32_t)qw[j] * (int32_t)qx[j];
                sum += tally_f16_to_f32(dbits) * xd[(size_t)c * (k / 32) + b] * (float)isum;
            }
            y[(size_t)c * ldy + r] = sum;
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

#define SIMD(name) name##_vnni
#define STREAM_PREFETCH(p) ((void)0)
#define TARGET "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c"
#define DOT(ax, sw) _mm256_dpbusd_epi32(_mm256_setzero_si256(), ax, sw)
#define COLS 4
#ifndef SMALL_COLS
#define SMALL_COLS 8
#endif
#include "q8_0_simd.inc"
#undef SIMD
#undef TARGET
#undef DOT
#undef COLS
#undef STREAM_PREFETCH

#define SIMD(name) name##_avx2
// The GEMV's weight stream, 2 KiB ahead: the hardware prefetcher alone kept one thread at 9-10 GB/s from
// DRAM here, this at about 12 (`bash bench/kernels/run.sh gemv`).
#ifndef TALLY_Q8_NO_STREAM_PREFETCH  // bench/kernels builds it both ways to compare the two
#define STREAM_PREFETCH(p) _mm_prefetch((const char *)(p) + 2048, _MM_HINT_T0)
#else
#define STREAM_PREFETCH(p) ((void)0)
#endif
#define TARGET "avx2,fma,f16c"
#define DOT(ax, sw) _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sw), _mm256_set1_epi16(1))
#define COLS 2
#include "q8_0_simd.inc"
#undef SIMD
#undef TARGET
#undef DOT
#undef COLS
#undef STREAM_PREFETCH
#endif

void tally_quantize_rows_q8(const float *x, int rows, int k, float *xd, int8_t *xq) {
#if defined(__x86_64__)
    switch (tally_isa_current()) {
    case TALLY_ISA_AVX512_VNNI: quantize_rows_vnni(x, rows, k, xd, xq); return;
    case TALLY_ISA_AVX2: quantize_rows_avx2(x, rows, k, xd, xq); return;
    default: break;
    }
#endif
    tally_quantize_rows_q8_scalar(x, rows, k, xd, xq);
}

void tally_gemm_q8(const void *w, int k, int row_begin, int row_end,
                   const float *xd, const int8_t *xq, int cols, float *y, int ldy) {
#if defined(__x86_64__)
    switch (tally_isa_current()) {
    case TALLY_ISA_AVX512_VNNI: gemm_vnni(w, k, row_begin, row_end, xd, xq, cols, y, ldy); return;
    case TALLY_ISA_AVX2:
#ifndef TALLY_Q8_TILES_ONLY  // bench/kernels builds it both ways to compare the two
        if (cols > SMALL_COLS) { tally_gemm_q8_avx2_blocked(w, k, row_begin, row_end, xd, xq, cols, y, ldy); return; }
#endif
        gemm_avx2(w, k, row_begin, row_end, xd, xq, cols, y, ldy);
        return;
    default: break;
    }
#endif
    tally_gemm_q8_scalar(w, k, row_begin, row_end, xd, xq, cols, y, ldy);
}
