#!/usr/bin/env bash
# How many usage rows per second one PostgreSQL takes, as tally writes them: one row per INSERT (a replica
# that appends one request at a time), and 16 rows per INSERT (the store's group commit when requests
# finish together). Creates a database of its own with tally's schema (`tally report` migrates it), runs
# pgbench for each shape, drops the database.
#
#     bash bench/fleet/pg_insert_rate.sh postgres://postgres@127.0.0.1:55440/postgres [.build/release/tally] [seconds]
set -euo pipefail
pg=$1; tally=${2:-.build/release/tally}; seconds=${3:-15}
db="tally_pgrate_$$"
psql "$pg" -qAtc "CREATE DATABASE $db"
url="${pg%/*}/$db"
trap 'psql "$pg" -qAtc "DROP DATABASE $db WITH (FORCE)"; rm -f "$tmp"/*.sql; rmdir "$tmp"' EXIT
tmp=$(mktemp -d)
"$tally" report --db "$url" >/dev/null
row="(gen_random_uuid()::text, (extract(epoch from now()) * 1e6)::bigint, 'SmolLM2-135M-Instruct-Q8_0', 134515008, 144811520, 30,
      576, 192, 'tenant-a', 'user-1', '', 180, 160, 16, 16, 900, 21000, 160000, 90000, 'stop', NULL, 'r0')"
cols="id, time_us, model, model_parameters, model_bytes, model_layers, model_attention_width, model_kv_width, tenant,
      end_user, tags, prompt_tokens, cached_tokens, cache_write_tokens, generated_tokens, queue_us, prefill_us, decode_us,
      busy_share_us, finish_reason, session, replica"
echo "INSERT INTO usage ($cols) VALUES $row ON CONFLICT (id) DO NOTHING;" > "$tmp/one.sql"
rows=$(for _ in $(seq 16); do printf '%s,' "$row"; done); rows=${rows%,}
echo "INSERT INTO usage ($cols) VALUES $rows ON CONFLICT (id) DO NOTHING;" > "$tmp/sixteen.sql"
for shape in one sixteen; do
    tps=$(pgbench -n -c 4 -j 2 -T "$seconds" -f "$tmp/$shape.sql" "$url" 2>/dev/null | awk '/^tps/ {print $3}')
    per=$([ "$shape" = one ] && echo 1 || echo 16)
    printf '%-8s rows per INSERT: %8.0f INSERTs/s, %8.0f rows/s\n' "$per" "$tps" "$(echo "$tps * $per" | bc -l)"
done
echo "rows stored: $(psql "$url" -Atc 'SELECT count(*) FROM usage')"
