// The AVX2 Q8_0 matrix product for many columns (prompt processing), blocked so that the vector pipes do
// only the work each product must do.
//
// On Zen 3 the per-block work of ggml's AVX2 dot product (sign, vpmaddubsw, vpmaddwd, convert, scale
// multiply, FMA) runs on two pipe pairs, and the naive 4x2 tile also spilled its accumulators (18 live
// registers for AVX2's 16). Here, per 4-row strip x 2-column tile, the 8 scale products d_w * d_x of each
// block are made by one vmulps before the block loop and read back as broadcast loads (load ports, not
// vector pipes); the weight scales are converted once per strip, |x| once per column block; the inner
// loop is sign, vpmaddubsw, vpmaddwd, convert and FMA per row and column, in 14 registers.
// `bash bench/kernels/run.sh gemm`: 1.32-1.37x the tile kernel (gemm_avx2) on SmolLM2's shapes at 512 columns.
//
// Arithmetic: each output is the same chain of roundings as gemm_avx2's (and ggml's): lane j of an
// 8-lane accumulator takes, block by block, the exact integer sum of quants 4j..4j+3 times the float
// product d_w * d_x by FMA, and the lanes are summed as hsum does. So outputs are bit-identical to the
// GEMV and to the packed kernels whatever the column count.
#include "CKernels.h"
#include "vmath.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define TARGET "avx2,fma,f16c"
/// Columns per column block: their |x| and scales stay in L2 while every row strip passes over them.
#define COLUMN_BLOCK 32

/// Rows `rows[0..3]` times columns x0 (and x1 when ncols is 2) over nb blocks, into acc[row][col].
/// a0/a1 are |x| of the columns, dd[8b + 4c + i] the scale product of block b, column c, row i.
__attribute__((target(TARGET), always_inline))
static inline void tile4(const uint8_t *const rows[4], int nb, const int8_t *x0, const int8_t *x1,
                         const uint8_t *a0, const uint8_t *a1, const float *dd, const int ncols, __m256 acc[4][2]) {
    const __m256i ones = _mm256_set1_epi16(1);
    for (int b = 0; b < nb; b++) {
        const __m256i ax0 = _mm256_load_si256((const __m256i *)(a0 + 32 * b));
        const __m256i ax1 = ncols > 1 ? _mm256_load_si256((const __m256i *)(a1 + 32 * b)) : ax0;
        const __m256i s0 = _mm256_loadu_si256((const __m256i *)(x0 + 32 * b));
        const __m256i s1 = ncols > 1 ? _mm256_loadu_si256((const __m256i *)(x1 + 32 * b)) : s0;
        for (int i = 0; i < 4; i++) {
            const __m256i wq = _mm256_loadu_si256((const __m256i *)(rows[i] + 34 * (size_t)b + 2));
            // sum(w * x) = sum(|x| * sign(w, x)): vpmaddubsw multiplies unsigned by signed bytes.
            __m256i t = _mm256_madd_epi16(_mm256_maddubs_epi16(ax0, _mm256_sign_epi8(wq, s0)), ones);
            acc[i][0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(t), _mm256_broadcast_ss(dd + 8 * b + i), acc[i][0]);
            if (ncols > 1) {
                __m256i u = _mm256_madd_epi16(_mm256_maddubs_epi16(ax1, _mm256_sign_epi8(wq, s1)), ones);
                acc[i][1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(u), _mm256_broadcast_ss(dd + 8 * b + 4 + i), acc[i][1]);
            }
        }
    }
}

/// One thread's scratch, kept between calls (a pool thread runs a product per matrix per step) and freed
/// when the thread ends (a pool's workers end with it).
typedef struct { size_t bytes; uint8_t *data; } scratch_buffer;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p) {
    scratch_buffer *s = p;
    free(s->data);
    free(s);
}

static void scratch_key_create(void) { pthread_key_create(&scratch_key, scratch_free); }

/// This thread's scratch of at least `bytes` (64-byte aligned), or NULL if memory is short.
static uint8_t *thread_scratch(size_t bytes) {
    pthread_once(&scratch_once, scratch_key_create);
    scratch_buffer *s = pthread_getspecific(scratch_key);
    if (!s) {
        if (!(s = calloc(1, sizeof *s))) return NULL;
        pthread_setspecific(scratch_key, s);
    }
    if (s->bytes < bytes) {
        free(s->data);
        s->bytes = (bytes + 63) / 64 * 64;
        if (!(s->data = aligned_alloc(64, s->bytes))) s->bytes = 0;
    }
    return s->data;
}

__attribute__((target(TARGET)))
void tally_gemm_q8_avx2_blocked(const void *w, int k, int row_begin, int row_end,
                                const float *xd, const int8_t *xq, int cols, float *y, int ldy) {
    const uint8_t *wb = (const uint8_t *)w;
    const int nb = k / 32;
    const size_t row_bytes = (size_t)nb * 34;
    // |x| [COLUMN_BLOCK, k]; per column pair and block [d_x(c) x4, d_x(c+1) x4]; the tile's scale
    // products [nb, 8]; the strip's weight scales [nb, 4].
    const size_t abs_bytes = (size_t)COLUMN_BLOCK * k, pair_bytes = (size_t)(COLUMN_BLOCK / 2) * nb * 32;
    const size_t need = abs_bytes + pair_bytes + (size_t)nb * 16 + (size_t)nb * 32;
    uint8_t *scratch = thread_scratch(need);
    if (!scratch) {  // column by column through the GEMV: slower, same bits
        for (int c = 0; c < cols; c++) tally_gemm_q8(w, k, row_begin, row_end, xd + (size_t)c * nb, xq + (size_t)c * k, 1, y + (size_t)c * ldy, ldy);
        return;
    }
    uint8_t *ax = scratch;
    float *dxp = (float *)(scratch + abs_bytes);
    float *dd = (float *)(scratch + abs_bytes + pair_bytes);  // 32-byte aligned, as dxp and ax
    float *dwf = dd + (size_t)nb * 8;

    for (int c0 = 0; c0 < cols; c0 += COLUMN_BLOCK) {
        const int nc = cols - c0 < COLUMN_BLOCK ? cols - c0 : COLUMN_BLOCK;
        for (int c = 0; c < nc; c++) {
            const int8_t *q = xq + (size_t)(c0 + c) * k;
            for (int b = 0; b < nb; b++) {
                const __m256i v = _mm256_loadu_si256((const __m256i *)(q + 32 * b));
                _mm256_store_si256((__m256i *)(ax + (size_t)c * k + 32 * b), _mm256_abs_epi8(v));
                const __m128 d = _mm_set1_ps(xd[(size_t)(c0 + c) * nb + b]);
                float *o = dxp + ((size_t)(c / 2) * nb + b) * 8;
                _mm_store_ps(o + (c % 2) * 4, d);
                if (c % 2 == 0) _mm_store_ps(o + 4, d);  // a last odd column pairs with itself
            }
        }
        for (int r = row_begin; r < row_end; r += 4) {
            const int nrows = row_end - r < 4 ? row_end - r : 4;
            const uint8_t *rows[4];
            for (int i = 0; i < 4; i++) rows[i] = wb + (size_t)(r + (i < nrows ? i : 0)) * row_bytes;
            for (int b = 0; b < nb; b++)
                for (int i = 0; i < 4; i++) {
                    uint16_t h;
                    memcpy(&h, rows[i] + 34 * (size_t)b, 2);
                    dwf[4 * b + i] = _cvtsh_ss(h);
                }
            // The next strip, while this one is computed (rows are read 4 at a time, not one stream).
            if (r + 4 < row_end)
                for (size_t o = 0; o < 4 * row_bytes; o += 64) _mm_prefetch((const char *)(rows[0] + 4 * row_bytes + o), _MM_HINT_T0);
            for (int c = 0; c < nc; c += 2) {
                const float *dp = dxp + (size_t)(c / 2) * nb * 8;
                for (int b = 0; b < nb; b++)
                    _mm256_store_ps(dd + 8 * b, _mm256_mul_ps(_mm256_broadcast_ps((const __m128 *)(dwf + 4 * b)), _mm256_load_ps(dp + 8 * b)));
                const int8_t *x0 = xq + (size_t)(c0 + c) * k;
                const uint8_t *a0 = ax + (size_t)c * k;
                __m256 acc[4][2];
                for (int i = 0; i < 4; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
                const int two = nc - c >= 2;
                if (two) tile4(rows, nb, x0, x0 + k, a0, a0 + k, dd, 2, acc);
                else tile4(rows, nb, x0, x0, a0, a0, dd, 1, acc);
                float *out = y + (size_t)(c0 + c) * ldy + r;
                for (int i = 0; i < nrows; i++) {
                    out[i] = hsum_avx2(acc[i][0]);
                    if (two) out[ldy + i] = hsum_avx2(acc[i][1]);
                }
            }
        }
    }
}
#endif
