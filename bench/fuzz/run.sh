#!/usr/bin/env bash
# Fuzz one of tally's parsers of untrusted input with libFuzzer and AddressSanitizer.
#
#     bash bench/fuzz/run.sh TARGET [RUNS]      # TARGET: gguf wire tokenize chat detokenize stop schema; RUNS default 1000000
#
# Builds `tally-fuzz` instrumented (TALLY_FUZZ=1, in .build/fuzz so the normal build is untouched), then runs
# TARGET for RUNS inputs starting from the committed seeds in bench/fuzz/corpus/TARGET; new interesting
# inputs go to .build/fuzz/corpus/TARGET, a crash to .build/fuzz/crash-*. Replay a crash (or the seeds)
# through the normal build with `swift run tally-fuzz TARGET FILE`; every crash found becomes a test.
set -euo pipefail
cd "$(dirname "$0")/../.."
target=${1:?usage: bench/fuzz/run.sh gguf|wire|tokenize|chat|detokenize|stop|schema [runs]}
runs=${2:-1000000}
# Release: the instrumented parsers run 10-100x faster than at -Onone (the first build takes minutes).
TALLY_FUZZ=1 swift build -c release --scratch-path .build/fuzz --product tally-fuzz >&2
mkdir -p ".build/fuzz/corpus/$target"
start=$(date +%s)
# SWIFT_BACKTRACE=enable=no: on a crash, libFuzzer reports and writes the input itself; the Swift
# runtime's backtracer would otherwise be started too and can hang holding the output pipe.
SWIFT_BACKTRACE=enable=no TALLY_FUZZ_TARGET="$target" .build/fuzz/release/tally-fuzz -runs="$runs" -max_len=4096 -timeout=10 -rss_limit_mb=4096 \
    -artifact_prefix=.build/fuzz/ ".build/fuzz/corpus/$target" "bench/fuzz/corpus/$target" 2>&1 | tail -n 4
echo "$target: $runs runs in $(( $(date +%s) - start )) s, no crash, hang or sanitizer report"
