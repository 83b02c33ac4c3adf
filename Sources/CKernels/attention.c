// Attention over the paged KV store (f32, f16 or Q8_0), in tiles (see tally_attention_tile in CKernels.h).
// For each token t and query head h: s_j = scale * q . k_j over positions j < context_length(t), read
// through the token's block table (position j lives in block table[j / block_size], slot
// j % block_size); p = softmax(s); out = sum_j p_j v_j. Query head h reads KV head h / (heads / kv heads).
//
// A query's arithmetic depends only on its own context length and the block size, never on its tile, its
// neighbours or the thread that runs it: scores come 8 positions at a time within a block (one transposed
// reduction) and the rest of a block one position at a time, the exp is the same vector code everywhere,
// and sums run in a fixed order. So a sequence gets the same bits alone or batched, in one prefill or in
// chunks, on any thread count.
#include "CKernels.h"
#include "vmath.h"
#include <math.h>
#include <string.h>

static inline int round8(int n) { return (n + 7) & ~7; }

/// Element `index` of a cache of f32, f16 or Q8_0 values (Q8_0: rows are whole 32-value blocks, so
/// element i is in block i / 32, wherever rows start).
static inline float kv_at(const void *cache, int type, size_t index) {
    switch (type) {
    case TALLY_KV_F16: return tally_f16_to_f32(((const uint16_t *)cache)[index]);
    case TALLY_KV_Q8_0: {
        const uint8_t *block = (const uint8_t *)cache + index / 32 * 34;
        uint16_t d;
        memcpy(&d, block, 2);
        return tally_f16_to_f32(d) * (float)((const int8_t *)(block + 2))[index % 32];
    }
    default: return ((const float *)cache)[index];
    }
}

size_t tally_attention_scratch_floats(int tile_tokens, int tile_heads, int head_dim, int block_size, int max_context) {
    const size_t queries = (size_t)tile_tokens * tile_heads;
    // scores [queries, round8(context)], sums [queries, head_dim], 1/sum [queries], one block as f32
    return queries * (size_t)round8(max_context) + queries * (size_t)head_dim + queries + (size_t)block_size * head_dim + 16;
}

void tally_attention_scalar(const tally_attention_args *a, const tally_attention_tile *tiles, int begin, int end, float *scratch) {
    const int hd = a->head_dim, bs = a->block_size, width = a->kv_head_count * hd, group = a->head_count / a->kv_head_count;
    for (int i = begin; i < end; i++) {
        const tally_attention_tile *tile = &tiles[i];
        for (int t = tile->token_begin; t < tile->token_begin + tile->token_count; t++)
            for (int h = tile->head_begin; h < tile->head_begin + tile->head_count; h++) {
                const int kvh = h / group, n = a->context_lengths[t];
                const int32_t *table = a->block_tables[t];
                const float *q = a->q + ((size_t)t * a->head_count + h) * hd;
                float max = -INFINITY;
                for (int j = 0; j < n; j++) {
                    const size_t k = ((size_t)table[j / bs] * bs + j % bs) * width + (size_t)kvh * hd;
                    float dot = 0.0f;
                    for (int d = 0; d < hd; d++) dot += q[d] * kv_at(a->k_cache, a->kv_type, k + d);
                    scratch[j] = dot * a->scale;
                    if (scratch[j] > max) max = scratch[j];
                }
                float sum = 0.0f;
                for (int j = 0; j < n; j++) { scratch[j] = expf(scratch[j] - max); sum += scratch[j]; }
                float *out = a->out + ((size_t)t * a->head_count + h) * hd;
                for (int d = 0; d < hd; d++) out[d] = 0.0f;
                for (int j = 0; j < n; j++) {
                    const size_t v = ((size_t)table[j / bs] * bs + j % bs) * width + (size_t)kvh * hd;
                    for (int d = 0; d < hd; d++) out[d] += scratch[j] / sum * kv_at(a->v_cache, a->kv_type, v + d);
                }
            }
    }
}

#if defined(__x86_64__)
// AVX-512VL's 32 vector registers hold the sums of 3 query heads (a KV head's group in SmolLM2) at once.
#define SIMD(name) name##_avx512
#define TARGET "avx512f,avx512vl,avx2,fma,f16c"
#define MAXG 3
#include "attention_simd.inc"
#undef SIMD
#undef TARGET
#undef MAXG
// AVX2 has 16: one head at a time, the same arithmetic per head.
#define SIMD(name) name##_avx2
#define TARGET "avx2,fma,f16c"
#define MAXG 1
#include "attention_simd.inc"

__attribute__((target("avx2,fma,f16c")))
static void f16_row_f16c(const float *x, uint16_t *y, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; i++) y[i] = tally_f32_to_f16(x[i]);
}

__attribute__((target("avx2,fma,f16c")))
static void f16_round_f16c(float *x, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
    for (; i < n; i++) x[i] = tally_f16_to_f32(tally_f32_to_f16(x[i]));
}
#endif

void tally_attention(const tally_attention_args *a, const tally_attention_tile *tiles, int begin, int end, float *scratch) {
#if defined(__x86_64__)
    if (a->head_dim % 8 == 0) {
        if (tally_isa_current() >= TALLY_ISA_AVX512_VNNI) { for (int i = begin; i < end; i++) tile_avx512(a, &tiles[i], scratch); return; }
        if (tally_isa_current() >= TALLY_ISA_AVX2) { for (int i = begin; i < end; i++) tile_avx2(a, &tiles[i], scratch); return; }
    }
#endif
    tally_attention_scalar(a, tiles, begin, end, scratch);
}

void tally_f32_to_f16_row(const float *x, uint16_t *y, int n) {
#if defined(__x86_64__)
    if (tally_isa_current() >= TALLY_ISA_AVX2) { f16_row_f16c(x, y, n); return; }
#endif
    for (int i = 0; i < n; i++) y[i] = tally_f32_to_f16(x[i]);
}

void tally_f32_to_q8_0_row(const float *x, void *y, int n) {
    uint8_t *out = (uint8_t *)y;
    for (int b = 0; b < n / 32; b++) {
        float d;
        tally_quantize_rows_q8(x + 32 * b, 1, 32, &d, (int8_t *)(out + 34 * b + 2));
        const uint16_t bits = tally_f32_to_f16(d);  // d is already an f16 value: exact
        memcpy(out + 34 * b, &bits, 2);
    }
}

void tally_f16_round_row(float *x, int n) {
#if defined(__x86_64__)
    if (tally_isa_current() >= TALLY_ISA_AVX2) { f16_round_f16c(x, n); return; }
#endif
    for (int i = 0; i < n; i++) x[i] = tally_f16_to_f32(tally_f32_to_f16(x[i]));
}
