// Packed Q8_0 ("16 rows interleaved"): the layout the VNNI matrix kernel reads, made once at load time.
//
// Rows are taken 16 at a time. Per group of 16 rows and per 32-block of columns, 544 bytes (16 x 34, the
// size Q8_0 has): the 16 rows' f16 scales, then for each 4 columns j..j+3 of the block the 16 rows' 4
// quants each (64 bytes), stored as w + 128 (unsigned). One 64-byte load is then 16 rows x 4 columns:
// vpdpbusd multiplies it by 4 activation bytes broadcast to every lane and adds each row's 4 products
// into that row's lane, so the 16 lanes end as the 16 rows' block sums with no horizontal reduction.
// The +128 is taken back out by starting each lane at -128 * (the block's activation sum).
//
// Arithmetic: each output is summed as ggml's Q8_0 dot product sums it (ggml_vec_dot_q8_0_q8_0 and
// llamafile's tinyBLAS on x86), so greedy outputs follow llama.cpp's even at near-ties. That dot keeps 8
// float lanes; lane j takes, per block, the exact integer sum over the block's 4 quants 4j..4j+3, times
// d = d_w * d_x, by fma; the lanes are added at the end as ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)).
// Here lane j of every row is accumulator j (a zmm whose 16 lanes are the 16 rows), so the same chain of
// roundings happens for 16 rows at once. It is the same chain whatever the kernel, column count or row
// split, so logits are bit-identical across ISA levels, batch sizes and threads.
#include "CKernels.h"
#include <math.h>
#include <string.h>

#define GROUP 16
#define GROUP_BLOCK_BYTES (GROUP * 34)

void tally_q8p_pack(const void *w, int rows, int k, void *out) {
    const uint8_t *src = (const uint8_t *)w;
    uint8_t *dst = (uint8_t *)out;
    const int nb = k / 32;
    const size_t row_bytes = (size_t)nb * 34;
    for (int g = 0; g < rows / GROUP; g++)
        for (int b = 0; b < nb; b++) {
            uint8_t *o = dst + ((size_t)g * nb + b) * GROUP_BLOCK_BYTES;
            for (int i = 0; i < GROUP; i++) {
                const uint8_t *blk = src + (size_t)(g * GROUP + i) * row_bytes + 34 * (size_t)b;
                memcpy(o + 2 * i, blk, 2);
                for (int q = 0; q < 8; q++)
                    for (int j = 0; j < 4; j++) o[32 + 64 * q + 4 * i + j] = blk[2 + 4 * q + j] ^ 0x80;
            }
        }
}

void tally_q8p_row(const void *packed, int k, int r, float *out) {
    const int nb = k / 32, g = r / GROUP, i = r % GROUP;
    for (int b = 0; b < nb; b++) {
        const uint8_t *o = (const uint8_t *)packed + ((size_t)g * nb + b) * GROUP_BLOCK_BYTES;
        uint16_t h;
        memcpy(&h, o + 2 * i, 2);
        const float d = tally_f16_to_f32(h);
        for (int q = 0; q < 8; q++)
            for (int j = 0; j < 4; j++) out[32 * b + 4 * q + j] = d * (float)(int8_t)(o[32 + 64 * q + 4 * i + j] ^ 0x80);
    }
}

void tally_q8_block_sums(const int8_t *xq, int rows, int k, int32_t *xs) {
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < k / 4; j++) {
            const int8_t *q = xq + (size_t)r * k + 4 * j;
            xs[(size_t)r * (k / 4) + j] = -128 * (q[0] + q[1] + q[2] + q[3]);
        }
}

/// The 8 lanes' final sum, in the order of ggml's hsum_float_8.
static inline float lanes_sum(const float *l) {
    return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

void tally_gemm_q8p_scalar(const void *w, int k, int row_begin, int row_end, const float *xd, const int8_t *xq,
                           const int32_t *xs, int cols, float *y, int ldy) {
    const int nb = k / 32;
    for (int r = row_begin; r < row_end; r++) {
        const int g = r / GROUP, i = r % GROUP;
        for (int c = 0; c < cols; c++) {
            float lane[8] = {0};
            for (int b = 0; b < nb; b++) {
                const uint8_t *o = (const uint8_t *)w + ((size_t)g * nb + b) * GROUP_BLOCK_BYTES;
                uint16_t h;
                memcpy(&h, o + 2 * i, 2);
                const float d = tally_f16_to_f32(h) * xd[(size_t)c * nb + b];
                for (int q = 0; q < 8; q++) {
                    int32_t isum = xs[(size_t)c * (k / 4) + 8 * b + q];
                    for (int j = 0; j < 4; j++) isum += (int32_t)o[32 + 64 * q + 4 * i + j] * xq[(size_t)c * k + 32 * b + 4 * q + j];
                    lane[q] = fmaf((float)isum, d, lane[q]);
                }
            }
            y[(size_t)c * ldy + r] = lanes_sum(lane);
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>
#define VNNI_TARGET "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c"

#ifndef Q8P_COLS
#define Q8P_COLS 2
#endif

/// 4 activation bytes as an int32, for a broadcast operand.
static inline int32_t quad(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/// One group of 16 rows times columns [c0, c0 + nc): 8 accumulators (the lanes, see above) per column.
/// Always inlined with a constant nc so the accumulators stay in registers. `pf` (or NULL) is the next
/// group, prefetched.
__attribute__((target(VNNI_TARGET), always_inline))
static inline void q8p_tile_vnni(const uint8_t *grp, int nb, int k, const float *xd, const int8_t *xq, const int32_t *xs,
                                 int c0, const int nc, float *y, int ldy, const uint8_t *pf) {
    __m512 acc[Q8P_COLS][8];
    for (int c = 0; c < nc; c++)
        for (int q = 0; q < 8; q++) acc[c][q] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *o = grp + (size_t)b * GROUP_BLOCK_BYTES;
        if (pf) {
            for (int l = 0; l < GROUP_BLOCK_BYTES; l += 64) _mm_prefetch((const char *)(pf + (size_t)b * GROUP_BLOCK_BYTES + l), _MM_HINT_T0);
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)o));
        __m512i wq[8];
        for (int q = 0; q < 8; q++) wq[q] = _mm512_loadu_si512((const void *)(o + 32 + 64 * q));
        for (int c = 0; c < nc; c++) {
            const int8_t *x = xq + (size_t)(c0 + c) * k + 32 * b;
            const int32_t *s = xs + (size_t)(c0 + c) * (k / 4) + 8 * b;
            const __m512 d = _mm512_mul_ps(dw, _mm512_set1_ps(xd[(size_t)(c0 + c) * nb + b]));
            for (int q = 0; q < 8; q++) {
                const __m512i p = _mm512_dpbusd_epi32(_mm512_set1_epi32(s[q]), wq[q], _mm512_set1_epi32(quad(x + 4 * q)));
                acc[c][q] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), d, acc[c][q]);
            }
        }
    }
    for (int c = 0; c < nc; c++) {
        const __m512 *l = acc[c];
        const __m512 sum = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(l[0], l[4]), _mm512_add_ps(l[2], l[6])),
                                         _mm512_add_ps(_mm512_add_ps(l[1], l[5]), _mm512_add_ps(l[3], l[7])));
        _mm512_storeu_ps(y + (size_t)(c0 + c) * ldy, sum);
    }
}


__attribute__((target(VNNI_TARGET)))
static void gemm_q8p_vnni(const void *w, int k, int row_begin, int row_end, const float *xd, const int8_t *xq,
                          const int32_t *xs, int cols, float *y, int ldy) {
    const int nb = k / 32;
    const size_t group_bytes = (size_t)nb * GROUP_BLOCK_BYTES;
    // Groups outermost: a group (16 rows, at most 27 KB for k = 1536) stays in L1 while every column tile
    // uses it; with several tiles the next group is prefetched during the first.
    for (int r = row_begin; r < row_end; r += GROUP) {
        const uint8_t *grp = (const uint8_t *)w + (size_t)(r / GROUP) * group_bytes;
        const uint8_t *next = cols > Q8P_COLS && r + GROUP < row_end ? grp + group_bytes : NULL;
        float *yr = y + r;
        int c = 0;
        for (; c + Q8P_COLS <= cols; c += Q8P_COLS) q8p_tile_vnni(grp, nb, k, xd, xq, xs, c, Q8P_COLS, yr, ldy, c == 0 ? next : NULL);
        for (; c < cols; c++) q8p_tile_vnni(grp, nb, k, xd, xq, xs, c, 1, yr, ldy, NULL);
    }
}
#endif

void tally_gemm_q8p(const void *w, int k, int row_begin, int row_end, const float *xd, const int8_t *xq,
                    const int32_t *xs, int cols, float *y, int ldy) {
#if defined(__x86_64__)
    if (tally_isa_current() == TALLY_ISA_AVX512_VNNI) { gemm_q8p_vnni(w, k, row_begin, row_end, xd, xq, xs, cols, y, ldy); return; }
#endif
    tally_gemm_q8p_scalar(w, k, row_begin, row_end, xd, xq, xs, cols, y, ldy);
}
