#!/usr/bin/env bash
# The Q8_0 kernels as they are against the forms they replaced, one thread. gemm alternates the two call by
# call in one process and takes the best of each; gemv alternates whole runs (medians, the median of the
# pairwise ratios, and the best of each).
#   bash bench/kernels/run.sh gemm [columns] [rounds]   # GMAC/s on SmolLM2's shapes: the blocked AVX2
#                                                       # product against the tile kernel (TALLY_Q8_TILES_ONLY),
#                                                       # the two alternated call by call in one process; best of each
#   BASE=<git revision> bash bench/kernels/run.sh gemm|gemv ...
#                                                       # against that revision's Sources/CKernels instead
#   bash bench/kernels/run.sh gemv [rounds]             # GB/s of the one-column product from DRAM: with the
#                                                       # prefetch ahead against without (TALLY_Q8_NO_STREAM_PREFETCH)
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
# The kernels as they were at $BASE, extracted once into $out/base.
base_tree() { [ -d "$out/base" ] || { mkdir -p "$out/base" && git archive "$BASE" Sources/CKernels | tar -x -C "$out/base"; }; }
# The "before" build: with the define that turns the newer path off ($1), or from $BASE's kernels.
build_before() {
    local define=$1; shift
    if [ -n "${BASE:-}" ]; then
        base_tree
        (cd "$out/base" && build "$@")
    else
        build "-D$define" "$@"
    fi
}
if [ "$mode" = pipes ]; then
    build bench/kernels/pipes.c -o "$out/pipes"
    "$out/pipes"
    exit 0
fi
if [ "$mode" = gemm ]; then
    # Both builds as shared libraries in one process (q8_gemm.c says why).
    build -shared -fPIC -o "$out/now.so"
    build_before TALLY_Q8_TILES_ONLY -shared -fPIC -o "$out/before.so"
    $cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L bench/kernels/q8_gemm.c -ldl -o "$out/q8_gemm"
    echo "before: ${BASE:-tiles (TALLY_Q8_TILES_ONLY)}; now: the working tree"
    "$out/q8_gemm" "$out/before.so" "$out/now.so" "${2:-512}" "${3:-15}"
    exit 0
fi
args=() rounds=${2:-9} unit=GB/s before=${BASE:-no-prefetch}
build bench/kernels/gemv.c -o "$out/now"
build_before TALLY_Q8_NO_STREAM_PREFETCH "$PWD/bench/kernels/gemv.c" -o "$out/before"
now=() old=()
for i in $(seq "$rounds"); do
    old+=("$("$out/before" "${args[@]}")")
    now+=("$("$out/now" "${args[@]}")")
done
python3 - "$mode ${args[*]}" "$unit" "$before" "${old[*]}" "${now[*]}" <<'PY'
import statistics, sys
what, unit, before = sys.argv[1:4]
old, now = [float(v) for v in sys.argv[4].split()], [float(v) for v in sys.argv[5].split()]
ratios = [n / o for n, o in zip(now, old)]
print(f"{what}: {len(now)} alternating rounds, {unit} medians: {before} {statistics.median(old):.1f}, "
      f"now {statistics.median(now):.1f}; ratio now/{before} median {statistics.median(ratios):.3f} "
      f"(range {min(ratios):.3f}-{max(ratios):.3f}); best of each {max(old):.1f} and {max(now):.1f}, "
      f"ratio {max(now) / max(old):.3f} (this VM has slow spells of seconds that the best of each avoids)")
PY
