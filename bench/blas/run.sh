#!/usr/bin/env bash
# Builds and runs bench/blas/attention_sgemm.c against tally's C kernels and the system OpenBLAS.
# Usage: bash bench/blas/run.sh [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cc=${CC:-clang}
$cc -O3 -std=c11 -D_POSIX_C_SOURCE=200809L -ISources/CKernels/include $(pkg-config --cflags openblas) \
    bench/blas/attention_sgemm.c Sources/CKernels/attention.c Sources/CKernels/half.c Sources/CKernels/isa.c Sources/CKernels/ops.c Sources/CKernels/q8_0.c Sources/CKernels/q8_0_avx2_blocked.c \
    $(pkg-config --libs openblas) -lm -lpthread -o "$out/attention_sgemm"
"$out/attention_sgemm" "${1:-9}"
