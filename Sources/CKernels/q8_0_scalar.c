// Scalar reference of the Q8_0 x int8 dot product; the vector kernels are tested against it.
#include "CKernels.h"
#include <string.h>

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) {
        if (mant == 0) { bits = sign; }
        else {  // subnormal: normalise
            exp = 127 - 15 + 1;
            while ((mant & 0x400) == 0) { mant <<= 1; exp--; }
            bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000 | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

float tally_q8_0_dot_scalar(const void *row, const float *xs, const int8_t *xq, int n) {
    const uint8_t *p = (const uint8_t *)row;
    float sum = 0.0f;
    for (int b = 0; b < n / 32; b++) {
        uint16_t dbits;
        memcpy(&dbits, p + 34 * b, 2);
        const int8_t *q = (const int8_t *)(p + 34 * b + 2);
        int32_t acc = 0;
        for (int j = 0; j < 32; j++) acc += (int32_t)q[j] * (int32_t)xq[32 * b + j];
        sum += half_to_float(dbits) * xs[b] * (float)acc;
    }
    return sum;
}
