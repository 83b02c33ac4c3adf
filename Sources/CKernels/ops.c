// f32/f16-weight products, RMSNorm, RoPE, SwiGLU and the vector exp.
#include "CKernels.h"
#include "vmath.h"
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

/// 8 weights of row r from k-offset i as f32.
__attribute__((target("avx2,fma,f16c"), always_inline))
static inline __m256 weights8(const void *w, int w_is_f16, size_t at) {
    return w_is_f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + at)))
                    : _mm256_loadu_ps((const float *)w + at);
}

/// dot(W row r, x column c) for R rows (R <= 2) and C columns (C <= 4) at once: each weight vector loaded
/// serves C columns and each activation vector R rows. An output's bits do not depend on R or C: 8 lane
/// sums over k in order, one horizontal sum, then the tail, as for one row and one column.
__attribute__((target("avx2,fma,f16c"), always_inline))
static inline void dots(const void *w, int w_is_f16, int k, int r0, const int R, const float *x, int c0, const int C, float *y, int ldy) {
    __m256 acc[2][4];
    for (int a = 0; a < R; a++)
        for (int j = 0; j < C; j++) acc[a][j] = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= k; i += 8) {
        __m256 wv[2], xv[4];
        for (int a = 0; a < R; a++) wv[a] = weights8(w, w_is_f16, (size_t)(r0 + a) * k + i);
        for (int j = 0; j < C; j++) xv[j] = _mm256_loadu_ps(x + (size_t)(c0 + j) * k + i);
        for (int a = 0; a < R; a++)
            for (int j = 0; j < C; j++) acc[a][j] = _mm256_fmadd_ps(wv[a], xv[j], acc[a][j]);
    }
    for (int a = 0; a < R; a++)
        for (int j = 0; j < C; j++) {
            const float *xc = x + (size_t)(c0 + j) * k;
            float sum = hsum_avx2(acc[a][j]);
            for (int t = i; t < k; t++) sum += weight_at(w, w_is_f16, (size_t)(r0 + a) * k + t) * xc[t];
            y[(size_t)(c0 + j) * ldy + r0 + a] = sum;
        }
}

__attribute__((target("avx2,fma,f16c")))
static void gemm_f32_avx2(const void *w, int w_is_f16, int k, int row_begin, int row_end,
                          const float *x, int cols, float *y, int ldy) {
    // Columns in chunks of 64, so a chunk's activations stay in L2 while every row passes over them.
    for (int c0 = 0; c0 < cols; c0 += 64) {
        const int c1 = cols - c0 < 64 ? cols : c0 + 64;
        int r = row_begin;
        for (; r + 2 <= row_end; r += 2) {
            int c = c0;
            for (; c + 4 <= c1; c += 4) dots(w, w_is_f16, k, r, 2, x, c, 4, y, ldy);
            for (; c < c1; c++) dots(w, w_is_f16, k, r, 2, x, c, 1, y, ldy);
        }
        for (; r < row_end; r++) {
            int c = c0;
            for (; c + 4 <= c1; c += 4) dots(w, w_is_f16, k, r, 1, x, c, 4, y, ldy);
            for (; c < c1; c++) dots(w, w_is_f16, k, r, 1, x, c, 1, y, ldy);
        }
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

void tally_rope_table(int position, int rope_dims, float freq_base, const float *freq_factors, float *cs) {
    // theta_i = position * base^(-2i/rope_dims), built by repeated multiplication as ggml's rope cache.
    const float theta_scale = powf(freq_base, -2.0f / (float)rope_dims);
    float theta = (float)position;
    for (int i = 0; i < rope_dims; i += 2) {
        const float angle = freq_factors ? theta / freq_factors[i / 2] : theta;
        cs[i] = cosf(angle);
        cs[i + 1] = sinf(angle);
        theta *= theta_scale;
    }
}

void tally_rope_apply_halves(float *x, int head_begin, int head_end, int head_dim, int rope_dims, const float *cs) {
    const int half = rope_dims / 2;
    for (int h = head_begin; h < head_end; h++) {
        float *v = x + (size_t)h * head_dim;
        for (int i = 0; i < half; i++) {
            const float x0 = v[i], x1 = v[i + half];
            v[i] = x0 * cs[2 * i] - x1 * cs[2 * i + 1];
            v[i + half] = x0 * cs[2 * i + 1] + x1 * cs[2 * i];
        }
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
    tally_rope_table(position, rope_dims, freq_base, NULL, cs);
    tally_rope_apply(x, 0, heads * head_dim, head_dim, rope_dims, cs);
}

void tally_swiglu(const float *gate, const float *up, float *out, int n) {
#if defined(__x86_64__)
    if (tally_isa_current() >= TALLY_ISA_AVX2) { swiglu_avx2(gate, up, out, n); return; }
#endif
    for (int i = 0; i < n; i++) out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}
