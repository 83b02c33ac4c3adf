// f32/f16-weight products, RMSNorm, RoPE, SwiGLU and attention over the paged KV store.
#include "CKernels.h"
#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

// ---- f32 / f16 weights -------------------------------------------------------------------------------

static inline float weight_at(const void *w, int is_f16, size_t i) {
    return is_f16 ? tally_f16_to_f32(((const uint16_t *)w)[i]) : ((const float *)w)[i];
}

void tally_gemm_f32_scalar(const void *w, int w_is_f16, int k, int row_begin, int row_end,
                           const float *x, int cols, float *y, int ldy) {
    for (int r = row_begin; r < row_end; r++)
        for (int c = 0; c < cols; c++) {
            float sum = 0.0f;
            for (int i = 0; i < k; i++) sum += weight_at(w, w_is_f16, (size_t)r * k + i) * x[(size_t)c * k + i];
            y[(size_t)c * ldy + r] = sum;
        }
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma,f16c")))
static inline float hsum_avx2(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#endif

#if defined(__x86_64__)
/// e^x for 8 floats: x = n ln2 + r with |r| <= ln2/2 (ln2 in two parts, so r is exact), e^r by Cephes'
/// degree-7 polynomial (relative error under 2e-7, within 2 ulp of libm's expf), times 2^n from the
/// exponent bits. Below -87.3 the result is 0 and above 88.7 infinity, as expf. libm's scalar expf was
/// the largest part of attention over long contexts (one call per position and head).
__attribute__((target("avx2,fma")))
static inline __m256 exp_avx2(__m256 x) {
    const __m256 underflow = _mm256_cmp_ps(x, _mm256_set1_ps(-87.33654f), _CMP_LT_OQ);
    x = _mm256_min_ps(x, _mm256_set1_ps(88.72283f));
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.33654f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    const __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_blendv_ps(_mm256_mul_ps(y, _mm256_castsi256_ps(bits)), _mm256_setzero_ps(), underflow);
}

/// e^x of the last `n` (< 8) floats, through the same vector code, so a value's bits never depend on
/// where a thread's range happens to end.
__attribute__((target("avx2,fma")))
static inline void exp_tail_avx2(const float *x, float *y, int n) {
    float buffer[8] = {0};
    for (int i = 0; i < n; i++) buffer[i] = x[i];
    _mm256_storeu_ps(buffer, exp_avx2(_mm256_loadu_ps(buffer)));
    for (int i = 0; i < n; i++) y[i] = buffer[i];
}

/// scores[j] = e^(scores[j] - max) for j < n, and their sum, added in index order as the scalar loop does.
__attribute__((target("avx2,fma")))
static inline float softmax_exp_avx2(float *scores, int n, float max) {
    const __m256 m = _mm256_set1_ps(max);
    int j = 0;
    for (; j + 8 <= n; j += 8) _mm256_storeu_ps(scores + j, exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(scores + j), m)));
    for (int i = j; i < n; i++) scores[i] -= max;
    exp_tail_avx2(scores + j, scores + j, n - j);
    float sum = 0.0f;
    for (int i = 0; i < n; i++) sum += scores[i];
    return sum;
}

__attribute__((target("avx2,fma")))
static void swiglu_avx2(const float *gate, const float *up, float *out, int n) {
    const __m256 one = _mm256_set1_ps(1.0f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 g = _mm256_loadu_ps(gate + i);
        const __m256 e = exp_avx2(_mm256_sub_ps(_mm256_setzero_ps(), g));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), _mm256_loadu_ps(up + i)));
    }
    float e[8];
    for (int k = i; k < n; k++) e[k - i] = -gate[k];
    exp_tail_avx2(e, e, n - i);
    for (int k = i; k < n; k++) out[k] = gate[k] / (1.0f + e[k - i]) * up[k];
}

__attribute__((target("avx2,fma")))
static void vexp_avx2(const float *x, float *y, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp_avx2(_mm256_loadu_ps(x + i)));
    exp_tail_avx2(x + i, y + i, n - i);
}
#endif

void tally_vexp(const float *x, float *y, int n) {
#if defined(__x86_64__)
    if (tally_isa_current() >= TALLY_ISA_AVX2) { vexp_avx2(x, y, n); return; }
#endif
    for (int i = 0; i < n; i++) y[i] = expf(x[i]);
}

#if defined(__x86_64__)

__attribute__((target("avx2,fma,f16c")))
static void gemm_f32_avx2(const void *w, int w_is_f16, int k, int row_begin, int row_end,
                          const float *x, int cols, float *y, int ldy) {
    for (int r = row_begin; r < row_end; r++)
        for (int c = 0; c < cols; c++) {
            const float *xc = x + (size_t)c * k;
            __m256 acc = _mm256_setzero_ps();
            int i = 0;
            for (; i + 8 <= k; i += 8) {
                __m256 wv = w_is_f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + (size_t)r * k + i)))
                                     : _mm256_loadu_ps((const float *)w + (size_t)r * k + i);
                acc = _mm256_fmadd_ps(wv, _mm256_loadu_ps(xc + i), acc);
            }
            float sum = hsum_avx2(acc);
            for (; i < k; i++) sum += weight_at(w, w_is_f16, (size_t)r * k + i) * xc[i];
            y[(size_t)c * ldy + r] = sum;
        }
}
#endif

void tally_gemm_f32(const void *w, int w_is_f16, int k, int row_begin, int row_end,
                    const float *x, int cols, float *y, int ldy) {
#if defined(__x86_64__)
    if (tally_isa_current() >= TALLY_ISA_AVX2) { gemm_f32_avx2(w, w_is_f16, k, row_begin, row_end, x, cols, y, ldy); return; }
#endif
    tally_gemm_f32_scalar(w, w_is_f16, k, row_begin, row_end, x, cols, y, ldy);
}

// ---- Element-wise ------------------------------------------------------------------------------------

void tally_rmsnorm(const float *x, const float *weight, float *y, int n, float eps) {
    double sum = 0.0;  // ggml sums squares in double (ggml_float)
    for (int i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    const float scale = 1.0f / sqrtf((float)(sum / n) + eps);
    for (int i = 0; i < n; i++) y[i] = (x[i] * scale) * weight[i];
}

void tally_rope_table(int position, int rope_dims, float freq_base, float *cs) {
    // theta_i = position * base^(-2i/rope_dims), built by repeated multiplication as ggml's rope cache.
    const float theta_scale = powf(freq_base, -2.0f / (float)rope_dims);
    float theta = (float)position;
    for (int i = 0; i < rope_dims; i += 2) {
        cs[i] = cosf(theta);
        cs[i + 1] = sinf(theta);
        theta *= theta_scale;
    }
}

void tally_rope_apply(float *x, int begin, int end, int head_dim, int rope_dims, const float *cs) {
    for (int j = begin; j < end; j += 2) {
        const int i = j % head_dim;
        if (i >= rope_dims) continue;
        const float x0 = x[j], x1 = x[j + 1];
        x[j] = x0 * cs[i] - x1 * cs[i + 1];
        x[j + 1] = x0 * cs[i + 1] + x1 * cs[i];
    }
}

void tally_rope(float *x, int heads, int head_dim, int rope_dims, int position, float freq_base) {
    float cs[512];  // cos/sin pairs; head_dim <= 512 is checked when the model loads
    tally_rope_table(position, rope_dims, freq_base, cs);
    tally_rope_apply(x, 0, heads * head_dim, head_dim, rope_dims, cs);
}

void tally_swiglu(const float *gate, const float *up, float *out, int n) {
#if defined(__x86_64__)
    if (tally_isa_current() >= TALLY_ISA_AVX2) { swiglu_avx2(gate, up, out, n); return; }
#endif
    for (int i = 0; i < n; i++) out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

// ---- Attention ---------------------------------------------------------------------------------------
// For each (token, head): scores s_j = scale * q . k_j over positions j < context_length, read through the
// token's block table (position j lives in block table[j / block_size], slot j % block_size; the loops walk
// block by block, since a division per position cost 8% of a decode step);
// p = softmax(s); out = sum_j p_j v_j. Query head h reads KV head h / (head_count / kv_head_count).


void tally_attention_scalar(const tally_attention_args *a, int item_begin, int item_end, float *scratch) {
    const int width = a->kv_head_count * a->head_dim, group = a->head_count / a->kv_head_count, bs = a->block_size;
    for (int item = item_begin; item < item_end; item++) {
        const int t = item / a->head_count, h = item % a->head_count, kvh = h / group;
        const float *q = a->q + ((size_t)t * a->head_count + h) * a->head_dim;
        const int n = a->context_lengths[t];
        const int32_t *table = a->block_tables[t];
        float max = -INFINITY;
        for (int j0 = 0, bi = 0; j0 < n; j0 += bs, bi++) {
            const float *base = a->k_cache + (size_t)table[bi] * bs * width + (size_t)kvh * a->head_dim;
            for (int s = 0; s < bs && j0 + s < n; s++) {
                const float *k = base + (size_t)s * width;
                float dot = 0.0f;
                for (int d = 0; d < a->head_dim; d++) dot += q[d] * k[d];
                scratch[j0 + s] = dot * a->scale;
                if (scratch[j0 + s] > max) max = scratch[j0 + s];
            }
        }
        float sum = 0.0f;
        for (int j = 0; j < n; j++) { scratch[j] = expf(scratch[j] - max); sum += scratch[j]; }
        float *out = a->out + ((size_t)t * a->head_count + h) * a->head_dim;
        for (int d = 0; d < a->head_dim; d++) out[d] = 0.0f;
        for (int j0 = 0, bi = 0; j0 < n; j0 += bs, bi++) {
            const float *base = a->v_cache + (size_t)table[bi] * bs * width + (size_t)kvh * a->head_dim;
            for (int s = 0; s < bs && j0 + s < n; s++) {
                const float *v = base + (size_t)s * width;
                const float p = scratch[j0 + s] / sum;
                for (int d = 0; d < a->head_dim; d++) out[d] += p * v[d];
            }
        }
    }
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma,f16c")))
static void attention_avx2(const tally_attention_args *a, int item_begin, int item_end, float *scratch) {
    const int width = a->kv_head_count * a->head_dim, group = a->head_count / a->kv_head_count, bs = a->block_size;
    const int hd = a->head_dim;
    for (int item = item_begin; item < item_end; item++) {
        const int t = item / a->head_count, h = item % a->head_count, kvh = h / group;
        const float *q = a->q + ((size_t)t * a->head_count + h) * hd;
        const int n = a->context_lengths[t];
        const int32_t *table = a->block_tables[t];
        float max = -INFINITY;
        // Scores 8 positions at a time: 8 dot products in 8 registers, then one transpose-and-add
        // instead of a horizontal sum per position.
        __m256 vmax = _mm256_set1_ps(-INFINITY);
        for (int j0 = 0, bi = 0; j0 < n; j0 += bs, bi++) {
            const float *base = a->k_cache + (size_t)table[bi] * bs * width + (size_t)kvh * hd;
            const int m = n - j0 < bs ? n - j0 : bs;
            int s = 0;
            for (; s + 8 <= m; s += 8) {
                __m256 acc[8];
                for (int u = 0; u < 8; u++) acc[u] = _mm256_setzero_ps();
                for (int d = 0; d < hd; d += 8) {
                    const __m256 qv = _mm256_loadu_ps(q + d);
                    for (int u = 0; u < 8; u++) acc[u] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(base + (size_t)(s + u) * width + d), acc[u]);
                }
                const __m256 t0 = _mm256_hadd_ps(_mm256_hadd_ps(acc[0], acc[1]), _mm256_hadd_ps(acc[2], acc[3]));
                const __m256 t1 = _mm256_hadd_ps(_mm256_hadd_ps(acc[4], acc[5]), _mm256_hadd_ps(acc[6], acc[7]));
                const __m256 sc = _mm256_mul_ps(_mm256_add_ps(_mm256_permute2f128_ps(t0, t1, 0x20), _mm256_permute2f128_ps(t0, t1, 0x31)),
                                                _mm256_set1_ps(a->scale));
                _mm256_storeu_ps(scratch + j0 + s, sc);
                vmax = _mm256_max_ps(vmax, sc);
            }
            for (; s < m; s++) {
                const float *k = base + (size_t)s * width;
                __m256 acc = _mm256_setzero_ps();
                for (int d = 0; d < hd; d += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), _mm256_loadu_ps(k + d), acc);
                const float score = hsum_avx2(acc) * a->scale;
                scratch[j0 + s] = score;
                if (score > max) max = score;
            }
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        if (_mm_cvtss_f32(m4) > max) max = _mm_cvtss_f32(m4);
        const float inv = 1.0f / softmax_exp_avx2(scratch, n, max);
        float *out = a->out + ((size_t)t * a->head_count + h) * hd;
        // Positions outer, up to 64 output values in 8 registers: each V row is read once.
        for (int d0 = 0; d0 < hd; d0 += 64) {
            const int lanes = (hd - d0) < 64 ? (hd - d0) / 8 : 8;
            __m256 acc[8];
            for (int u = 0; u < 8; u++) acc[u] = _mm256_setzero_ps();
            for (int j0 = 0, bi = 0; j0 < n; j0 += bs, bi++) {
                const float *base = a->v_cache + (size_t)table[bi] * bs * width + (size_t)kvh * hd + d0;
                for (int s = 0; s < bs && j0 + s < n; s++) {
                    const float *v = base + (size_t)s * width;
                    const __m256 p = _mm256_set1_ps(scratch[j0 + s]);
                    for (int u = 0; u < lanes; u++) acc[u] = _mm256_fmadd_ps(p, _mm256_loadu_ps(v + 8 * u), acc[u]);
                }
            }
            for (int u = 0; u < lanes; u++) _mm256_storeu_ps(out + d0 + 8 * u, _mm256_mul_ps(acc[u], _mm256_set1_ps(inv)));
        }
    }
}
/// out = sum_j p_j v_j for values [d0, d0 + 8 * lanes) of the G heads: attention_avx2's loop, V rows shared.
__attribute__((target("avx512f,avx512vl,avx2,fma,f16c"), always_inline))
static inline void attention_group_pv(const tally_attention_args *a, int t, int h0, int kvh, const int G, float *const *sc,
                                      const float *inv, int d0, const int lanes) {
    const int width = a->kv_head_count * a->head_dim, bs = a->block_size, hd = a->head_dim;
    const int n = a->context_lengths[t];
    const int32_t *table = a->block_tables[t];
    __m256 acc[3][8];
    for (int g = 0; g < G; g++)
        for (int u = 0; u < lanes; u++) acc[g][u] = _mm256_setzero_ps();
    for (int j0 = 0, bi = 0; j0 < n; j0 += bs, bi++) {
        const float *base = a->v_cache + (size_t)table[bi] * bs * width + (size_t)kvh * hd + d0;
        for (int s = 0; s < bs && j0 + s < n; s++) {
            const float *v = base + (size_t)s * width;
            __m256 p[3];
            for (int g = 0; g < G; g++) p[g] = _mm256_set1_ps(sc[g][j0 + s]);
            for (int u = 0; u < lanes; u++) {
                const __m256 vv = _mm256_loadu_ps(v + 8 * u);
                for (int g = 0; g < G; g++) acc[g][u] = _mm256_fmadd_ps(p[g], vv, acc[g][u]);
            }
        }
    }
    for (int g = 0; g < G; g++) {
        float *out = a->out + ((size_t)t * a->head_count + h0 + g) * hd;
        for (int u = 0; u < lanes; u++) _mm256_storeu_ps(out + d0 + 8 * u, _mm256_mul_ps(acc[g][u], _mm256_set1_ps(inv[g])));
    }
}

/// Grouped-query form: the G query heads that share a KV head, for one token, in one pass, so each K and
/// V row is loaded once for the G heads. Per head the arithmetic is attention_avx2's, operation for
/// operation (same lanes, same order), so results are bit-identical to it. Compiled for AVX-512VL to have
/// 32 vector registers: G x 8 accumulators stay in registers for G <= 3.
__attribute__((target("avx512f,avx512vl,avx2,fma,f16c"), always_inline))
static inline void attention_group(const tally_attention_args *a, int t, int h0, int kvh, const int G, float *scratch) {
    const int width = a->kv_head_count * a->head_dim, bs = a->block_size, hd = a->head_dim;
    const int n = a->context_lengths[t];
    const int32_t *table = a->block_tables[t];
    const float *q[3];
    float *sc[3];
    float max[3];
    __m256 vmax[3];
    for (int g = 0; g < G; g++) {
        q[g] = a->q + ((size_t)t * a->head_count + h0 + g) * hd;
        sc[g] = scratch + (size_t)g * n;
        max[g] = -INFINITY;
        vmax[g] = _mm256_set1_ps(-INFINITY);
    }
    for (int j0 = 0, bi = 0; j0 < n; j0 += bs, bi++) {
        const float *base = a->k_cache + (size_t)table[bi] * bs * width + (size_t)kvh * hd;
        const int m = n - j0 < bs ? n - j0 : bs;
        int s = 0;
        for (; s + 8 <= m; s += 8) {
            __m256 acc[3][8];
            for (int g = 0; g < G; g++)
                for (int u = 0; u < 8; u++) acc[g][u] = _mm256_setzero_ps();
            for (int d = 0; d < hd; d += 8) {
                __m256 qv[3];
                for (int g = 0; g < G; g++) qv[g] = _mm256_loadu_ps(q[g] + d);
                for (int u = 0; u < 8; u++) {
                    const __m256 kv = _mm256_loadu_ps(base + (size_t)(s + u) * width + d);
                    for (int g = 0; g < G; g++) acc[g][u] = _mm256_fmadd_ps(qv[g], kv, acc[g][u]);
                }
            }
            for (int g = 0; g < G; g++) {
                const __m256 t0 = _mm256_hadd_ps(_mm256_hadd_ps(acc[g][0], acc[g][1]), _mm256_hadd_ps(acc[g][2], acc[g][3]));
                const __m256 t1 = _mm256_hadd_ps(_mm256_hadd_ps(acc[g][4], acc[g][5]), _mm256_hadd_ps(acc[g][6], acc[g][7]));
                const __m256 v = _mm256_mul_ps(_mm256_add_ps(_mm256_permute2f128_ps(t0, t1, 0x20), _mm256_permute2f128_ps(t0, t1, 0x31)),
                                               _mm256_set1_ps(a->scale));
                _mm256_storeu_ps(sc[g] + j0 + s, v);
                vmax[g] = _mm256_max_ps(vmax[g], v);
            }
        }
        for (; s < m; s++) {
            const float *k = base + (size_t)s * width;
            for (int g = 0; g < G; g++) {
                __m256 acc = _mm256_setzero_ps();
                for (int d = 0; d < hd; d += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q[g] + d), _mm256_loadu_ps(k + d), acc);
                const float score = hsum_avx2(acc) * a->scale;
                sc[g][j0 + s] = score;
                if (score > max[g]) max[g] = score;
            }
        }
    }
    float inv[3];
    for (int g = 0; g < G; g++) {
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vmax[g]), _mm256_extractf128_ps(vmax[g], 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        if (_mm_cvtss_f32(m4) > max[g]) max[g] = _mm_cvtss_f32(m4);
        inv[g] = 1.0f / softmax_exp_avx2(sc[g], n, max[g]);
    }
    for (int d0 = 0; d0 < hd; d0 += 64) {
        // A constant lane count keeps the accumulators in registers (a variable one spilled them).
        if (hd - d0 >= 64) attention_group_pv(a, t, h0, kvh, G, sc, inv, d0, 8);
        else attention_group_pv(a, t, h0, kvh, G, sc, inv, d0, (hd - d0) / 8);
    }
}

__attribute__((target("avx512f,avx512vl,avx2,fma,f16c")))
static void attention_grouped(const tally_attention_args *a, int item_begin, int item_end, float *scratch) {
    const int G = a->head_count / a->kv_head_count;
    for (int item = item_begin; item < item_end;) {
        const int t = item / a->head_count, h = item % a->head_count;
        if (h % G == 0 && item + G <= item_end) {
            switch (G) {
            case 3: attention_group(a, t, h, h / G, 3, scratch); break;
            case 2: attention_group(a, t, h, h / G, 2, scratch); break;
            default: attention_group(a, t, h, h / G, 1, scratch); break;
            }
            item += G;
        } else {
            attention_group(a, t, h, h / G, 1, scratch);  // a head whose group the range splits
            item++;
        }
    }
}
#endif

void tally_attention(const tally_attention_args *a, int item_begin, int item_end, float *scratch) {
#if defined(__x86_64__)
    const int group = a->head_count / a->kv_head_count;
    if (tally_isa_current() >= TALLY_ISA_AVX512_VNNI && a->head_dim % 8 == 0 && group <= 3) { attention_grouped(a, item_begin, item_end, scratch); return; }
    if (tally_isa_current() >= TALLY_ISA_AVX2 && a->head_dim % 8 == 0) { attention_avx2(a, item_begin, item_end, scratch); return; }
#endif
    tally_attention_scalar(a, item_begin, item_end, scratch);
}
