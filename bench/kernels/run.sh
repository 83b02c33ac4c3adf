#!/usr/bin/env bash
# The Q8_0 matrix product on SmolLM2's shapes, one thread: the kernel tally_gemm_q8 runs now against the
# AVX2 tile kernel it replaced for more than 8 columns (built with TALLY_Q8_TILES_ONLY), alternated
# round by round, medians and their ratio. Usage: bash bench/kernels/run.sh [columns] [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
cols=${1:-512} rounds=${2:-9}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cc=${CC:-clang}
srcs="bench/kernels/q8_gemm.c Sources/CKernels/q8_0.c Sources/CKernels/q8_0_avx2_blocked.c Sources/CKernels/q8_0_packed.c Sources/CKernels/isa.c Sources/CKernels/half.c"
$cc -O3 -std=c11 -D_POSIX_C_SOURCE=200809L -ISources/CKernels/include $srcs -lm -o "$out/now"
$cc -O3 -std=c11 -D_POSIX_C_SOURCE=200809L -DTALLY_Q8_TILES_ONLY -ISources/CKernels/include $srcs -lm -o "$out/tiles"
now=() tiles=()
for i in $(seq "$rounds"); do
    tiles+=("$("$out/tiles" "$cols")")
    now+=("$("$out/now" "$cols")")
done
python3 - "$cols" "${tiles[*]}" "${now[*]}" <<'PY'
import statistics, sys
cols, tiles, now = sys.argv[1], [float(v) for v in sys.argv[2].split()], [float(v) for v in sys.argv[3].split()]
ratios = [n / t for n, t in zip(now, tiles)]
print(f"{cols} columns, {len(now)} alternating rounds, GMAC/s medians: tiles {statistics.median(tiles):.1f}, "
      f"now {statistics.median(now):.1f}; ratio now/tiles median {statistics.median(ratios):.3f} "
      f"(range {min(ratios):.3f}-{max(ratios):.3f})")
PY
