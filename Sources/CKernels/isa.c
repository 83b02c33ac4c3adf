// Run-time choice of the instruction-set level, from the CPU's features.
#include "CKernels.h"

// Forcing is per thread: a kernel test forces a level on its own thread, while a model running in a
// concurrent test (or the pool workers of any model) keeps the detected level. A process-wide switch let
// a kernel test flip a real-model golden's near-tie mid-run.
static _Thread_local int forced = -1;

int tally_isa_detect(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
        __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        return TALLY_ISA_AVX512_VNNI;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        return TALLY_ISA_AVX2;
#endif
    return TALLY_ISA_SCALAR;
}

int tally_isa_current(void) {
    static int detected = -1;
    if (detected < 0) detected = tally_isa_detect();
    return forced >= 0 && forced < detected ? forced : detected;
}

int tally_isa_force(int level) {
    forced = level;
    return tally_isa_current();
}

const char *tally_isa_name(int level) {
    switch (level) {
    case TALLY_ISA_AVX512_VNNI: return "avx512-vnni";
    case TALLY_ISA_AVX2: return "avx2";
    default: return "scalar";
    }
}
