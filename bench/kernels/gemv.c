// One-column Q8_0 products (batch-1 decode) over 160 matrices of SmolLM2's ffn_up shape (141 MB, more than
// any cache), one thread, by two builds of tally_gemm_q8 (shared libraries, see q8_gemm.c), alternating
// pass by pass: prints the best weight bytes streamed per second of each in GB/s, and the ratio.
//   gemv BEFORE.so NOW.so [passes]
#include "bench_libs.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: gemv BEFORE.so NOW.so [passes]\n");
        return 2;
    }
    const gemm_fn fn[2] = {load_gemm(argv[1]), load_gemm(argv[2])};
    const int passes = argc > 3 ? atoi(argv[3]) : 9;
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
    double best[2] = {1e9, 1e9};
    for (int pass = 0; pass < passes; pass++)
        for (int v = 0; v < 2; v++) {
            const double t0 = now();
            for (int m = 0; m < matrices; m++) fn[v](w + bytes * m, k, 0, rows, xd, xq, 1, y, rows);
            const double t = now() - t0;
            if (t < best[v]) best[v] = t;
        }
    printf("gemv: %.2f and %.2f GB/s, ratio %.3f\n", bytes * matrices / best[0] * 1e-9, bytes * matrices / best[1] * 1e-9, best[0] / best[1]);
    return 0;
}
