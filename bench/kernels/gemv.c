// One-column Q8_0 products (batch-1 decode) over 160 matrices of SmolLM2's ffn_up shape (141 MB, more than
// any cache), one thread: prints the weight bytes streamed per second in GB/s (best of 5 passes).
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

int main(void) {
    const int rows = 1536, k = 576, nb = k / 32, matrices = 160;
    const size_t bytes = (size_t)rows * nb * 34;
    uint8_t *w = malloc(bytes * matrices);
    srand(1);
    for (size_t i = 0; i < bytes * matrices; i++) w[i] = (uint8_t)(rand() % 255);
    for (size_t i = 0; i < (size_t)rows * nb * matrices; i++) {
        const uint16_t h = 0x2000;
        memcpy(w + 34 * i, &h, 2);
    }
    float xd[576 / 32], *y = malloc(sizeof(float) * rows);
    int8_t xq[576];
    for (int i = 0; i < nb; i++) xd[i] = 0.01f;
    for (int i = 0; i < k; i++) xq[i] = (int8_t)(rand() % 255 - 127);
    double best = 1e9;
    for (int pass = 0; pass < 5; pass++) {
        const double t0 = now();
        for (int m = 0; m < matrices; m++) tally_gemm_q8(w + bytes * m, k, 0, rows, xd, xq, 1, y, rows);
        const double t = now() - t0;
        if (t < best) best = t;
    }
    printf("%.2f\n", bytes * matrices / best * 1e-9);
    return 0;
}
