// What q8_gemm.c and gemv.c share: a clock, and tally_gemm_q8 taken from one of two builds of the kernels,
// each a shared library loaded with its own symbols, so the two run alternately in one process.
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef void (*gemm_fn)(const void *w, int k, int row_begin, int row_end, const float *xd, const int8_t *xq, int cols, float *y, int ldy);

static inline double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static inline gemm_fn load_gemm(const char *path) {
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    gemm_fn f = lib ? (gemm_fn)dlsym(lib, "tally_gemm_q8") : NULL;
    if (!f) {
        fprintf(stderr, "%s: %s\n", path, dlerror());
        exit(1);
    }
    return f;
}
