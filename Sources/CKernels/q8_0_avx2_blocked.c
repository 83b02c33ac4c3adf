// The AVX2 Q8_0 matrix product for many columns (prompt processing), blocked so that the vector pipes do
// only the work each product must do.
//
// ggml's AVX2 dot product takes sign, vpmaddubsw, vpmaddwd, convert and FMA per row, column and 32-value
// block. Here the quants are widened to int16 once (a 4-row strip's weights per strip, a column block's
// activations per column block) and each product is two vpmaddwd and a vpaddd: one fewer vector op than
// the sign trick, and aligned loads where the 34-byte Q8_0 rows split cache lines. Per 4-row strip x
// 2-column tile, the 8 scale products d_w * d_x of a block are made by one vmulps (for the next tile, inside
// this tile's block loop) and read back as broadcast loads, which take load ports, not vector pipes; the
// weight scales are converted once per strip. The inner loop holds 16 registers without spills.
// `bash bench/kernels/run.sh gemm`: the blocked kernel against the 4x2 tile (gemm_avx2) on SmolLM2's shapes.
//
// Arithmetic: each output is the same chain of roundings as gemm_avx2's (and ggml's): lane j of an
// 8-lane accumulator takes, block by block, the exact integer sum of quants 4j..4j+3 times the float
// product d_w * d_x by FMA, and the lanes are summed as hsum does. So outputs are bit-identical to the
// GEMV and to the packed kernels whatever the column count. In the int16 layout, words 2j and 2j+1 of a
// block's "lo" vector hold quants 4j and 4j+1, those of "hi" 4j+2 and 4j+3, so vpmaddwd(lo) + vpmaddwd(hi)
// in lane j is that same exact sum.
#include "CKernels.h"
#include "vmath.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define TARGET "avx2,fma,f16c"
/// Columns per column block: their widened quants (2 bytes each, 196 KB at k = 1536) and scales stay in L2
/// while every row strip passes over them. 64 ran faster than 32 (the strip's widening is shared by more
/// tiles) and as fast as 128.
#define COLUMN_BLOCK 64

/// A 4-row strip times columns x0 (and x1 when ncols is 2) over nb blocks, into acc[row][col]. w16 is the
/// strip widened, [nb][row][lo, hi][16]; x0/x1 the columns widened, [nb][lo, hi][16]; dd[8b + 4c + i] the
/// scale product of block b, column c, row i. Meanwhile the next tile's scale products go to next_dd:
/// dwf[4b + i] times next_dx[8b..8b+7] (its two columns' d_x, four times each).
__attribute__((target(TARGET), always_inline))
static inline void tile4(const int16_t *w16, int nb, const int16_t *x0, const int16_t *x1, const float *dd,
                         const int ncols, __m256 acc[4][2], const float *dwf, const float *next_dx, float *next_dd) {
    for (int b = 0; b < nb; b++) {
        const __m256i x0l = _mm256_load_si256((const __m256i *)(x0 + 32 * b));
        const __m256i x0h = _mm256_load_si256((const __m256i *)(x0 + 32 * b + 16));
        const __m256i x1l = ncols > 1 ? _mm256_load_si256((const __m256i *)(x1 + 32 * b)) : x0l;
        const __m256i x1h = ncols > 1 ? _mm256_load_si256((const __m256i *)(x1 + 32 * b + 16)) : x0h;
        // Here rather than in a loop of its own before each tile, which ran slower.
        _mm256_store_ps(next_dd + 8 * b, _mm256_mul_ps(_mm256_broadcast_ps((const __m128 *)(dwf + 4 * b)),
                                                       _mm256_load_ps(next_dx + 8 * b)));
        for (int i = 0; i < 4; i++) {
            const __m256i wl = _mm256_load_si256((const __m256i *)(w16 + 128 * b + 32 * i));
            const __m256i wh = _mm256_load_si256((const __m256i *)(w16 + 128 * b + 32 * i + 16));
            const __m256i t = _mm256_add_epi32(_mm256_madd_epi16(wl, x0l), _mm256_madd_epi16(wh, x0h));
            acc[i][0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(t), _mm256_broadcast_ss(dd + 8 * b + i), acc[i][0]);
            if (ncols > 1) {
                const __m256i u = _mm256_add_epi32(_mm256_madd_epi16(wl, x1l), _mm256_madd_epi16(wh, x1h));
                acc[i][1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(u), _mm256_broadcast_ss(dd + 8 * b + 4 + i), acc[i][1]);
            }
        }
    }
}

/// One block's 32 quants to the int16 layout: out[0..15] "lo" (quants 4j, 4j+1 at words 2j, 2j+1),
/// out[16..31] "hi" (quants 4j+2, 4j+3).
__attribute__((target(TARGET), always_inline))
static inline void widen(const int8_t *q, int16_t *out) {
    const __m256i v = _mm256_loadu_si256((const __m256i *)q);
    // In each 128-bit half: the lo byte pairs, then the hi ones; then the halves' lo pairs together.
    const __m256i pairs = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15,
                                           0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
    const __m256i p = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(v, pairs), 0xD8);
    _mm256_store_si256((__m256i *)out, _mm256_cvtepi8_epi16(_mm256_castsi256_si128(p)));
    _mm256_store_si256((__m256i *)(out + 16), _mm256_cvtepi8_epi16(_mm256_extracti128_si256(p, 1)));
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
    // The column block widened [COLUMN_BLOCK][k]; the strip widened [nb][4][32]; per column pair and block
    // [d_x(c) x4, d_x(c+1) x4]; two tiles' scale products [2][nb][8]; the strip's weight scales [nb][4].
    const size_t x16_bytes = (size_t)COLUMN_BLOCK * k * 2, w16_bytes = (size_t)k * 8;
    const size_t pair_bytes = (size_t)(COLUMN_BLOCK / 2) * nb * 32;
    const size_t need = x16_bytes + w16_bytes + pair_bytes + (size_t)nb * 64 + (size_t)nb * 16;
    uint8_t *scratch = thread_scratch(need);
    if (!scratch) {  // column by column through the GEMV: slower, same bits
        for (int c = 0; c < cols; c++) tally_gemm_q8(w, k, row_begin, row_end, xd + (size_t)c * nb, xq + (size_t)c * k, 1, y + (size_t)c * ldy, ldy);
        return;
    }
    // All 32-byte aligned: k is a multiple of 32.
    int16_t *x16 = (int16_t *)scratch;
    int16_t *w16 = (int16_t *)(scratch + x16_bytes);
    float *dxp = (float *)(scratch + x16_bytes + w16_bytes);
    float *dd = (float *)(scratch + x16_bytes + w16_bytes + pair_bytes);
    float *dwf = dd + (size_t)nb * 16;

    for (int c0 = 0; c0 < cols; c0 += COLUMN_BLOCK) {
        const int nc = cols - c0 < COLUMN_BLOCK ? cols - c0 : COLUMN_BLOCK;
        for (int c = 0; c < nc; c++) {
            const int8_t *q = xq + (size_t)(c0 + c) * k;
            for (int b = 0; b < nb; b++) {
                widen(q + 32 * b, x16 + (size_t)c * k + 32 * b);
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
                    widen((const int8_t *)rows[i] + 34 * (size_t)b + 2, w16 + 128 * b + 32 * i);
                }
            // The next strip, while this one is computed (rows are read 4 at a time, not one stream).
            if (r + 4 < row_end)
                for (size_t o = 0; o < 4 * row_bytes; o += 64) _mm_prefetch((const char *)(rows[0] + 4 * row_bytes + o), _MM_HINT_T0);
            // The first tile's scale products; each tile makes the next one's (the last makes an unused set).
            for (int b = 0; b < nb; b++)
                _mm256_store_ps(dd + 8 * b, _mm256_mul_ps(_mm256_broadcast_ps((const __m128 *)(dwf + 4 * b)), _mm256_load_ps(dxp + 8 * b)));
            for (int c = 0; c < nc; c += 2) {
                const int pair = c / 2;
                const float *this_dd = dd + (size_t)(pair & 1) * nb * 8;
                float *next_dd = dd + (size_t)((pair + 1) & 1) * nb * 8;
                const float *next_dx = dxp + (size_t)(c + 2 < nc ? pair + 1 : 0) * nb * 8;
                const int16_t *x0 = x16 + (size_t)c * k;
                __m256 acc[4][2];
                for (int i = 0; i < 4; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
                const int two = nc - c >= 2;
                if (two) tile4(w16, nb, x0, x0 + k, this_dd, 2, acc, dwf, next_dx, next_dd);
                else tile4(w16, nb, x0, x0, this_dd, 1, acc, dwf, next_dx, next_dd);
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
