#!/usr/bin/env bash
# tally serve against llama.cpp's llama-server with `tally bench` alone: the same workload and sweep against
# each server in turn (never both at once: they would share the cores), results as JSON, then the
# side-by-side table. Both servers run on loopback with 2 threads and 16 parallel sequences.
#
#   swift build -c release --product tally
#   bash bench/side-by-side.sh /path/to/llama-server [workload] [concurrency] [out-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
LLAMA_SERVER=${1:?usage: side-by-side.sh /path/to/llama-server [workload] [concurrency] [out-dir]}
WORKLOAD=${2:-bench/workloads/shared-prefix.json}
SWEEP=${3:-1,4,16}
OUT=${4:-/tmp/tally-side-by-side}
MODEL=models/SmolLM2-135M-Instruct-Q8_0.gguf
TALLY=.build/release/tally
mkdir -p "$OUT"

wait_ready() {   # $1 = base URL; up to 60 s
    for _ in $(seq 1 120); do
        if curl -fs "$1/health" >/dev/null 2>&1; then return 0; fi
        sleep 0.5
    done
    echo "server at $1 did not become ready" >&2; return 1
}

run() {   # $1 = name, $2 = base URL, $3... = server command
    local name=$1 url=$2; shift 2
    "$@" >"$OUT/$name-server.log" 2>&1 &
    local pid=$!
    trap 'kill $pid 2>/dev/null || true' EXIT
    wait_ready "$url"
    "$TALLY" bench --workload "$WORKLOAD" --url "$url" --concurrency "$SWEEP" --slo ttft=1000,tpot=100 \
        --json "$OUT/$name.json" --html "$OUT/$name.html" | tee "$OUT/$name.txt"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    trap - EXIT
}

# Metering stays on (it is part of serving); its records go to a file of this run, not the user's store.
run tally http://127.0.0.1:8094 "$TALLY" serve --model "$MODEL" --port 8094 --threads 2 --max-seqs 16 --db "$OUT/tally-usage.db"
run llama-server http://127.0.0.1:8091 "$LLAMA_SERVER" -m "$MODEL" --host 127.0.0.1 --port 8091 -t 2 -np 16 -c 16384
"$TALLY" bench compare "$OUT/llama-server.json" "$OUT/tally.json" | tee "$OUT/compare.txt"
