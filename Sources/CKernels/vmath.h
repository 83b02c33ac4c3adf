// Vector math shared by the C kernels (internal header): horizontal sum, exp, softmax's exp-and-sum.
// Each keeps a value's bits independent of where a loop or a thread's range ends.
#ifndef TALLY_VMATH_H
#define TALLY_VMATH_H
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>

__attribute__((target("avx2,fma,f16c")))
static inline float hsum_avx2(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

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

/// scores[j] = e^(scores[j] - max) for j < n, and their sum: 8 lane sums (positions j = lane mod 8, the
/// last partial group with zeros in its unused lanes), then one horizontal sum. A serial sum was a chain
/// of dependent adds, a tenth of attention's time over long contexts.
__attribute__((target("avx2,fma")))
static inline float softmax_exp_avx2(float *scores, int n, float max) {
    const __m256 m = _mm256_set1_ps(max);
    __m256 sum = _mm256_setzero_ps();
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        const __m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(scores + j), m));
        _mm256_storeu_ps(scores + j, e);
        sum = _mm256_add_ps(sum, e);
    }
    if (j < n) {
        float tail[8] = {0};
        for (int i = j; i < n; i++) tail[i - j] = scores[i] - max;
        exp_tail_avx2(tail, tail, n - j);
        for (int i = j; i < n; i++) scores[i] = tail[i - j];
        for (int i = n - j; i < 8; i++) tail[i] = 0.0f;
        sum = _mm256_add_ps(sum, _mm256_loadu_ps(tail));
    }
    return hsum_avx2(sum);
}

#endif
#endif
