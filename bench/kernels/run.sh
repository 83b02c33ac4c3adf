#!/usr/bin/env bash
# The Q8_0 kernels as they are against the forms they replaced, one thread. The two builds are shared
# libraries alternated call by call (gemm) or pass by pass (gemv) in one process, best of each: this VM has
# slow spells lasting seconds, which alternating whole processes spreads unevenly over the two.
#   bash bench/kernels/run.sh gemm [columns] [rounds]   # GMAC/s on SmolLM2's shapes: the blocked AVX2
#                                                       # product against the tile kernel (TALLY_Q8_TILES_ONLY)
#   bash bench/kernels/run.sh gemv [passes]             # GB/s of the one-column product from DRAM: with the
#                                                       # prefetch ahead against without (TALLY_Q8_NO_STREAM_PREFETCH)
#   BASE=<git revision> bash bench/kernels/run.sh gemm|gemv ...
#                                                       # against that revision's Sources/CKernels instead
#   bash bench/kernels/run.sh pipes                     # cycles per row x column x block: the instruction
#                                                       # sequence in registers, its variants, the kernel in L1
set -euo pipefail
cd "$(dirname "$0")/../.."
mode=${1:-gemm}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cc=${CC:-clang}
kernels="Sources/CKernels/q8_0.c Sources/CKernels/q8_0_avx2_blocked.c Sources/CKernels/q8_0_packed.c Sources/CKernels/isa.c Sources/CKernels/half.c"
build() { $cc -O3 -std=c11 -D_POSIX_C_SOURCE=200809L -ISources/CKernels/include "$@" $kernels -lm; }
if [ "$mode" = pipes ]; then
    build bench/kernels/pipes.c -o "$out/pipes"
    "$out/pipes"
    exit 0
fi
case "$mode" in
    gemm) define=TALLY_Q8_TILES_ONLY before=tiles ;;
    gemv) define=TALLY_Q8_NO_STREAM_PREFETCH before=no-prefetch ;;
    *) echo "usage: bash bench/kernels/run.sh gemm|gemv|pipes" >&2; exit 2 ;;
esac
build -shared -fPIC -o "$out/now.so"
if [ -n "${BASE:-}" ]; then  # the kernels as they were at $BASE
    before=$BASE
    mkdir -p "$out/base"
    git archive "$BASE" Sources/CKernels | tar -x -C "$out/base"
    (cd "$out/base" && build -shared -fPIC -o "$out/before.so")
else
    build "-D$define" -shared -fPIC -o "$out/before.so"
fi
source=$mode.c
[ "$mode" = gemm ] && source=q8_gemm.c
$cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L "bench/kernels/$source" -ldl -o "$out/bench"
echo "before: $before; now: the working tree"
"$out/bench" "$out/before.so" "$out/now.so" "${@:2}"
