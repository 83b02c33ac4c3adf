// Times tally_gemm_q8 (the kernel chosen at run time) on SmolLM2-135M's matrix shapes at N columns, one
// thread: prints the total GMAC/s over the four shapes (best of `reps` calls each). run.sh builds it twice,
// with and without TALLY_Q8_TILES_ONLY, and alternates the two.
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

int main(int argc, char **argv) {
    const int cols = argc > 1 ? atoi(argv[1]) : 512, reps = argc > 2 ? atoi(argv[2]) : 5;
    // q,k,v (960 rows), attn_output, ffn_gate+ffn_up, ffn_down: rows x k
    const int shapes[][2] = {{960, 576}, {576, 576}, {3072, 576}, {576, 1536}};
    double seconds = 0, macs = 0;
    srand(1);
    for (int s = 0; s < 4; s++) {
        const int rows = shapes[s][0], k = shapes[s][1], nb = k / 32;
        uint8_t *w = malloc((size_t)rows * nb * 34);
        for (size_t i = 0; i < (size_t)rows * nb; i++) {
            const uint16_t h = 0x2000 + (rand() & 0x3ff);  // f16 scales around 0.008
            memcpy(w + 34 * i, &h, 2);
            for (int j = 0; j < 32; j++) w[34 * i + 2 + j] = (uint8_t)(rand() % 255 - 127);
        }
        float *xd = malloc(sizeof(float) * cols * nb);
        int8_t *xq = malloc((size_t)cols * k);
        for (int i = 0; i < cols * nb; i++) xd[i] = 0.01f + (rand() % 100) * 1e-4f;
        for (size_t i = 0; i < (size_t)cols * k; i++) xq[i] = (int8_t)(rand() % 255 - 127);
        float *y = malloc(sizeof(float) * rows * cols);
        double best = 1e9;
        for (int r = 0; r < reps; r++) {
            const double t0 = now();
            tally_gemm_q8(w, k, 0, rows, xd, xq, cols, y, rows);
            const double t = now() - t0;
            if (t < best) best = t;
        }
        seconds += best;
        macs += (double)rows * k * cols;
        free(w), free(xd), free(xq), free(y);
    }
    printf("%.2f\n", macs / seconds * 1e-9);
    return 0;
}
