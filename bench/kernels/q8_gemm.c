// Times two builds of tally_gemm_q8 (the kernel chosen at run time), each a shared library, on SmolLM2-135M's
// matrix shapes at N columns, one thread, alternating the two call by call within one process: this VM has
// slow spells lasting seconds, which alternating whole processes spreads unevenly over the two. Prints, per
// shape and in total, the best GMAC/s of each over `rounds` calls and the ratio. run.sh builds the libraries.
//   q8_gemm BEFORE.so NOW.so [columns] [rounds]
#include "bench_libs.h"
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: q8_gemm BEFORE.so NOW.so [columns] [rounds]\n");
        return 2;
    }
    const gemm_fn fn[2] = {load_gemm(argv[1]), load_gemm(argv[2])};
    const int cols = argc > 3 ? atoi(argv[3]) : 512, rounds = argc > 4 ? atoi(argv[4]) : 15;
    // q,k,v (960 rows), attn_output, ffn_gate+ffn_up, ffn_down: rows x k
    const int shapes[][2] = {{960, 576}, {576, 576}, {3072, 576}, {576, 1536}};
    double best[2][4], total[2] = {0, 0}, macs = 0;
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
        float *y[2] = {malloc(sizeof(float) * rows * cols), malloc(sizeof(float) * rows * cols)};
        best[0][s] = best[1][s] = 1e9;
        for (int r = 0; r < rounds; r++)
            for (int v = 0; v < 2; v++) {
                const double t0 = now();
                fn[v](w, k, 0, rows, xd, xq, cols, y[v], rows);
                const double t = now() - t0;
                if (t < best[v][s]) best[v][s] = t;
            }
        if (memcmp(y[0], y[1], sizeof(float) * rows * cols)) printf("shape %dx%d: the two builds' outputs differ\n", rows, k);
        const double m = (double)rows * k * cols;
        printf("%4d x %4d: %6.1f and %6.1f GMAC/s, ratio %.3f\n", rows, k, m / best[0][s] * 1e-9, m / best[1][s] * 1e-9, best[0][s] / best[1][s]);
        total[0] += best[0][s], total[1] += best[1][s], macs += m;
        free(w), free(xd), free(xq), free(y[0]), free(y[1]);
    }
    printf("total: %.1f and %.1f GMAC/s, ratio %.3f\n", macs / total[0] * 1e-9, macs / total[1] * 1e-9, total[0] / total[1]);
    return 0;
}
