#!/usr/bin/env bash
# Table sync of pgbench_accounts at scale 10 (1,000,000 rows) from one
# database to another, in one invocation: syncdeck's full load and its
# rerun with no change, against two references on the same tables:
#   - the floor: psql `COPY (SELECT …) TO STDOUT` piped into `COPY … FROM STDIN`;
#   - what the source documents describe: batches of 1,000 rows as
#     multi-row `INSERT … ON CONFLICT DO UPDATE`, one transaction each.
# Median of $ROUNDS runs; results go to the "Table sync" section of
# BENCHMARKS.md. Needs PostgreSQL ($SYNCDECK_TEST_POSTGRES or the local
# server) and pgbench.
#
#   benches/table_sync.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-3}"
BASE="${SYNCDECK_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432}"
cargo build --release --quiet
SYNCDECK="${CARGO_TARGET_DIR:-target}/release/syncdeck"
SRC="syncdeck_bench_src_$$"
DST="syncdeck_bench_dst_$$"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/syncdeck-bench.XXXXXX")"
cleanup() {
    psql -q "$BASE/postgres" -c "DROP DATABASE IF EXISTS $SRC WITH (FORCE)" -c "DROP DATABASE IF EXISTS $DST WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

psql -q "$BASE/postgres" -c "CREATE DATABASE $SRC" -c "CREATE DATABASE $DST"
echo "pgbench -i -s 10 …" >&2
pgbench -q -i -s 10 "$BASE/$SRC" >/dev/null 2>&1
pg_dump -s -t pgbench_accounts "$BASE/$SRC" | psql -q "$BASE/$DST" >/dev/null

cat > "$WORK/syncdeck.toml" <<TOML
[engine]
state = "sqlite:$WORK/state.db"
log_dir = "$WORK/logs"
[[tasks]]
id = "accounts"
type = "table_sync"
[tasks.properties]
source = "$BASE/$SRC?sslmode=disable"
target = "$BASE/$DST?sslmode=disable"
source_table = "public.pgbench_accounts"
target_table = "public.pgbench_accounts"
primary_key = ["aid"]
TOML

# The INSERT reference's statements, made once, outside the timings.
psql -qAt "$BASE/$SRC" -c "
  SELECT 'INSERT INTO pgbench_accounts (aid, bid, abalance, filler) VALUES '
         || string_agg(format('(%s, %s, %s, %L)', aid, bid, abalance, filler), ', ' ORDER BY aid)
         || ' ON CONFLICT (aid) DO UPDATE SET bid = EXCLUDED.bid, abalance = EXCLUDED.abalance, filler = EXCLUDED.filler;'
  FROM pgbench_accounts GROUP BY (aid - 1) / 1000 ORDER BY min(aid)" > "$WORK/inserts.sql"

seconds() {
    local start end
    start=$(date +%s.%N)
    if ! "$@" >/dev/null 2>&1; then echo "benchmark command failed: $*" >&2; echo FAILED; return; fi
    end=$(date +%s.%N)
    python3 -c "print(f'{$end - $start:.3f}')"
}
median() { python3 -c "import statistics,sys; print(f'{statistics.median(map(float, sys.argv[1:])):.3f}')" "$@"; }
truncate_target() { psql -q "$BASE/$DST" -c "TRUNCATE pgbench_accounts" >/dev/null; }
copy_pipe() { psql -q "$BASE/$SRC" -c "COPY (SELECT * FROM pgbench_accounts) TO STDOUT" | psql -q "$BASE/$DST" -c "COPY pgbench_accounts FROM STDIN"; }
insert_batches() { psql -q -v ON_ERROR_STOP=1 "$BASE/$DST" -f "$WORK/inserts.sql"; }
check_target() {
    local different
    different=$(psql -qAt "$BASE/$DST" -c "SELECT count(*) FROM pgbench_accounts")
    [ "$different" = 1000000 ] || { echo "target has $different rows after $1" >&2; exit 1; }
}

full=(); rerun=(); pipe=(); inserts=()
for round in $(seq "$ROUNDS"); do
    truncate_target; rm -f "$WORK"/state.db*
    full+=("$(seconds "$SYNCDECK" -c "$WORK/syncdeck.toml" run)"); check_target syncdeck
    rerun+=("$(seconds "$SYNCDECK" -c "$WORK/syncdeck.toml" run)")
    truncate_target; pipe+=("$(seconds copy_pipe)"); check_target "the COPY pipe"
    truncate_target; inserts+=("$(seconds insert_batches)"); check_target "the INSERT batches"
    echo "round $round: syncdeck ${full[-1]}s (rerun ${rerun[-1]}s), COPY pipe ${pipe[-1]}s, INSERT batches ${inserts[-1]}s" >&2
done
F=$(median "${full[@]}"); R=$(median "${rerun[@]}"); P=$(median "${pipe[@]}"); I=$(median "${inserts[@]}")
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }

section=$(cat <<MD
## Table sync: pgbench_accounts, 1,000,000 rows, database to database

Written by \`benches/table_sync.sh\` on $(date -u +%Y-%m-%d); $(nproc) cores, $(psql -qAt "$BASE/postgres" -c "SHOW server_version"),
one server for both databases. Median of $ROUNDS runs each, same invocation. syncdeck runs with its
defaults (batches of 1,000 rows, each its own transaction).

| run | seconds | against the COPY pipe | against 1,000-row INSERT batches |
|---|---:|---:|---:|
| syncdeck full load | $F | $(ratio "$F" "$P")x | $(ratio "$I" "$F")x faster |
| syncdeck rerun, no change | $R | $(ratio "$R" "$P")x | $(ratio "$I" "$R")x faster |
| COPY pipe (the floor) | $P | 1.00x | |
| 1,000-row multi-row INSERT … ON CONFLICT batches | $I | $(ratio "$I" "$P")x | 1.00x |

Targets: full load within 2x of the COPY pipe, and at least 3x faster than the INSERT batches.

How the load method was chosen (same machine, same table, one round each unless said, so rough): a
temp staging table filled by \`COPY\` then one \`INSERT … SELECT … ON CONFLICT\` took 7.5–9.0 s; one
prepared upsert of \`unnest\`ed text arrays, 6.5 s; the same on 2 target connections, 5.3 s; plus a
plain \`COPY\` for batches of a first load (target empty at the start), 3.4–4.3 s. Profiles (\`perf\`)
then showed where the rest went, and each fix was measured against the one before (1–3 rounds):
commits without waiting for the disk (\`synchronous_commit = off\`; the run still waits until the
target reports its WAL flushed past every batch, and loads unflushed batches again after a lost
connection), 4.1 → 3.2 s; one text buffer per batch instead of a \`String\` per value, syncdeck's CPU
30% → 21% of a core; \`COPY\` row by row instead of its 1,000-row buffer (on PostgreSQL 15 the
buffer pins the table's descriptor once per row in a resource owner that hashes every pin to one
slot: a third of the target's time), 3.7 → 3.1 s; integers, booleans and strings read in binary
instead of cast to text by the source, 3.1 → 2.7 s. Reading the source through one portal instead of
keyset queries gained nothing. This machine's timings drift by up to 30% between invocations, which
is why only ratios within one invocation are reported above.
MD
)
python3 - "$section" <<'PY'
import re, sys
section = sys.argv[1]
try:
    old = open("BENCHMARKS.md").read()
except FileNotFoundError:
    old = "# Benchmarks\n"
parts = re.split(r"(?m)^(?=## )", old)
head, rest = parts[0], [p for p in parts[1:] if not p.startswith("## Table sync:")]
open("BENCHMARKS.md", "w").write(head.rstrip() + "\n\n" + "".join(p.rstrip() + "\n\n" for p in rest) + section + "\n")
PY
echo "$section"
