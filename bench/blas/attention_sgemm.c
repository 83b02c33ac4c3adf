// Does OpenBLAS's sgemm beat tally's tiled attention kernel for f32 prefill attention? (issue #5)
//
// Both compute the same thing on SmolLM2-135M's attention shape (9 query heads of 64 over 3 KV heads, KV
// blocks of 16 positions, f32 cache) for one sequence, on one thread:
//   tiled   tally_attention over the plan's tiles (8 tokens x 3 heads of one KV group), as the runtime does;
//   sgemm   per KV group and chunk of query tokens: S = scale * Q K^T (cblas_sgemm), a masked softmax
//           (the same vector exp as the kernel), O = P V (cblas_sgemm). This is the best case for BLAS:
//           the sequence's blocks are contiguous, so K and V are strided matrices and nothing is gathered.
// Shapes: pp512 (512 new tokens, causal, as llama-bench's pp512) and ttft (7 new tokens after 1,007
// cached positions, the cached-prefix TTFT request of bench/server/compare.py).
//
// Build and run: bash bench/blas/run.sh   (needs libopenblas-dev and pkg-config, which .ci/run installs)
#include "CKernels.h"
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <immintrin.h>

#include "../../Sources/CKernels/vmath.h"

enum { HEADS = 9, KV_HEADS = 3, GROUP = 3, HD = 64, BS = 16, WIDTH = KV_HEADS * HD, QW = HEADS * HD };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return ((*s >> 8) / 16777216.0f) * 2.0f - 1.0f;
}

typedef struct {
    const char *name;
    int tokens, cached;          // new tokens, positions already in the cache before them
    int chunk;                   // query tokens per sgemm
    float *q, *k, *v, *out_tiled, *out_blas;
    int32_t *table;
    const int32_t **tables;
    int32_t *ctx;
    tally_attention_tile *tiles;
    int tile_count;
    float *scratch, *s, *qg, *og, *inv;
} shape;

static void setup(shape *sh) {
    const int n = sh->cached + sh->tokens, blocks = (n + BS - 1) / BS;
    unsigned seed = 12345;
    sh->q = malloc(sizeof(float) * sh->tokens * QW);
    sh->k = malloc(sizeof(float) * blocks * BS * WIDTH);
    sh->v = malloc(sizeof(float) * blocks * BS * WIDTH);
    sh->out_tiled = malloc(sizeof(float) * sh->tokens * QW);
    sh->out_blas = malloc(sizeof(float) * sh->tokens * QW);
    for (int i = 0; i < sh->tokens * QW; i++) sh->q[i] = frand(&seed);
    for (int i = 0; i < blocks * BS * WIDTH; i++) { sh->k[i] = frand(&seed); sh->v[i] = frand(&seed); }
    sh->table = malloc(sizeof(int32_t) * blocks);
    for (int b = 0; b < blocks; b++) sh->table[b] = b;
    sh->tables = malloc(sizeof(int32_t *) * sh->tokens);
    sh->ctx = malloc(sizeof(int32_t) * sh->tokens);
    for (int t = 0; t < sh->tokens; t++) { sh->tables[t] = sh->table; sh->ctx[t] = sh->cached + t + 1; }
    // The runtime's tiles: 8 consecutive tokens x one KV group's 3 query heads.
    sh->tile_count = 0;
    sh->tiles = malloc(sizeof(tally_attention_tile) * ((sh->tokens + 7) / 8) * KV_HEADS);
    for (int t = 0; t < sh->tokens; t += 8)
        for (int g = 0; g < KV_HEADS; g++)
            sh->tiles[sh->tile_count++] = (tally_attention_tile){ t, sh->tokens - t < 8 ? sh->tokens - t : 8, g * GROUP, GROUP };
    sh->scratch = malloc(sizeof(float) * tally_attention_scratch_floats(8, GROUP, HD, BS, n));
    sh->s = malloc(sizeof(float) * GROUP * sh->chunk * (n + 8));
    sh->qg = malloc(sizeof(float) * GROUP * sh->chunk * HD);
    sh->og = malloc(sizeof(float) * GROUP * sh->chunk * HD);
    sh->inv = malloc(sizeof(float) * GROUP * sh->chunk);
}

static void run_tiled(shape *sh) {
    tally_attention_args a = {
        .q = sh->q, .k_cache = sh->k, .v_cache = sh->v, .block_tables = sh->tables, .context_lengths = sh->ctx,
        .tokens = sh->tokens, .head_count = HEADS, .kv_head_count = KV_HEADS, .head_dim = HD, .block_size = BS,
        .kv_type = TALLY_KV_F32, .scale = 0.125f, .out = sh->out_tiled,
    };
    tally_attention(&a, sh->tiles, 0, sh->tile_count, sh->scratch);
}

__attribute__((target("avx2,fma")))
static void run_blas(shape *sh) {
    for (int g = 0; g < KV_HEADS; g++)
        for (int t0 = 0; t0 < sh->tokens; t0 += sh->chunk) {
            const int c = sh->tokens - t0 < sh->chunk ? sh->tokens - t0 : sh->chunk;
            const int rows = c * GROUP, n = sh->ctx[t0 + c - 1];   // the chunk's longest context
            for (int i = 0; i < c; i++)                            // row i*GROUP+h: token t0+i, head g*GROUP+h
                memcpy(sh->qg + (size_t)i * GROUP * HD, sh->q + (size_t)(t0 + i) * QW + g * GROUP * HD, sizeof(float) * GROUP * HD);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, n, HD, 0.125f, sh->qg, HD,
                        sh->k + g * HD, WIDTH, 0.0f, sh->s, n);
            float *inv = sh->inv;
            for (int r = 0; r < rows; r++) {
                float *row = sh->s + (size_t)r * n;
                const int len = sh->ctx[t0 + r / GROUP];
                float max = -INFINITY;
                for (int j = 0; j < len; j++) if (row[j] > max) max = row[j];
                inv[r] = 1.0f / softmax_exp_avx2(row, len, max);
                for (int j = len; j < n; j++) row[j] = 0.0f;       // causal mask
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, HD, n, 1.0f, sh->s, n,
                        sh->v + g * HD, WIDTH, 0.0f, sh->og, HD);
            for (int r = 0; r < rows; r++) {
                float *o = sh->out_blas + (size_t)(t0 + r / GROUP) * QW + (g * GROUP + r % GROUP) * HD;
                for (int d = 0; d < HD; d++) o[d] = sh->og[(size_t)r * HD + d] * inv[r];
            }
        }
}

static int cmp(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

enum { MAX_ROUNDS = 64 };

/// Runs a and b `reps` times each, alternating, for `rounds` rounds; the median seconds per call of each.
static void alternate(int rounds, int reps, void (*a)(void *), void (*b)(void *), void *context, double *ma, double *mb) {
    double ta[MAX_ROUNDS], tb[MAX_ROUNDS];
    for (int r = 0; r < rounds; r++) {
        double t = now();
        for (int k = 0; k < reps; k++) a(context);
        ta[r] = (now() - t) / reps;
        t = now();
        for (int k = 0; k < reps; k++) b(context);
        tb[r] = (now() - t) / reps;
    }
    qsort(ta, rounds, sizeof(double), cmp);
    qsort(tb, rounds, sizeof(double), cmp);
    *ma = ta[rounds / 2];
    *mb = tb[rounds / 2];
}

static void tiled_job(void *sh) { run_tiled(sh); }
static void blas_job(void *sh) { run_blas(sh); }

/// f32 weights W [ROWS, K] times `cols` activation rows, as LlamaModel's matmul would call either.
enum { ROWS = 1536, K = 576 };
typedef struct { const float *w, *x; float *y_tally, *y_blas; int cols; } f32_product;
static void tally_f32_job(void *c) {
    f32_product *p = c;
    tally_gemm_f32(p->w, 0, K, 0, ROWS, p->x, p->cols, p->y_tally, ROWS);
}
static void blas_f32_job(void *c) {
    f32_product *p = c;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, p->cols, ROWS, K, 1.0f, p->x, K, p->w, K, 0.0f, p->y_blas, ROWS);
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 9;
    if (rounds < 1 || rounds > MAX_ROUNDS) rounds = 9;
    openblas_set_num_threads(1);
    printf("OpenBLAS %s, core %s, 1 thread; median of %d alternating rounds\n", openblas_get_config(), openblas_get_corename(), rounds);
    shape shapes[] = {
        { .name = "pp512, sgemm chunks of 32", .tokens = 512, .cached = 0, .chunk = 32 },
        { .name = "pp512, sgemm chunks of 64", .tokens = 512, .cached = 0, .chunk = 64 },
        { .name = "pp512, sgemm chunks of 128", .tokens = 512, .cached = 0, .chunk = 128 },
        { .name = "ttft, 7 new after 1,007 cached", .tokens = 7, .cached = 1007, .chunk = 7 },
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        shape *sh = &shapes[i];
        setup(sh);
        run_tiled(sh);
        run_blas(sh);
        float worst = 0.0f;
        for (int j = 0; j < sh->tokens * QW; j++) worst = fmaxf(worst, fabsf(sh->out_tiled[j] - sh->out_blas[j]));
        double mt, mb;
        alternate(rounds, sh->tokens > 100 ? 3 : 200, tiled_job, blas_job, sh, &mt, &mb);
        printf("%-31s tiled %8.1f us   sgemm %8.1f us   sgemm/tiled time %.2fx   max |diff| %.2g\n",
               sh->name, mt * 1e6, mb * 1e6, mb / mt, worst);
    }
    // f32 weights (a model whose matrices are F32): SmolLM2's ffn_up shape.
    unsigned seed = 7;
    float *w = malloc(sizeof(float) * ROWS * K), *x = malloc(sizeof(float) * 512 * K);
    for (int i = 0; i < ROWS * K; i++) w[i] = frand(&seed);
    for (int i = 0; i < 512 * K; i++) x[i] = frand(&seed);
    f32_product p = { w, x, malloc(sizeof(float) * 512 * ROWS), malloc(sizeof(float) * 512 * ROWS), 0 };
    const int colss[] = { 1, 4, 16, 64, 512 };
    for (size_t ci = 0; ci < sizeof colss / sizeof colss[0]; ci++) {
        p.cols = colss[ci];
        double mt, mb;
        alternate(rounds, p.cols >= 64 ? 4 : 100, tally_f32_job, blas_f32_job, &p, &mt, &mb);
        float worst = 0.0f;
        for (int j = 0; j < p.cols * ROWS; j++) worst = fmaxf(worst, fabsf(p.y_tally[j] - p.y_blas[j]));
        printf("f32 weights 1536x576, %3d cols    tally %8.1f us   sgemm %8.1f us   sgemm/tally time %.2fx   max |diff| %.2g\n",
               p.cols, mt * 1e6, mb * 1e6, mb / mt, worst);
    }
    return 0;
}
