#!/usr/bin/env bash
# Table sync at one size ($ROWS rows, default 1,000,000), database to
# database, over two tables:
#   - accounts: pgbench_accounts plus an `updated_at timestamptz`
#     watermark column with an index on (updated_at, aid);
#   - items: a composite key (tenant int, id bigint) and bigint,
#     timestamptz, numeric, text, jsonb, uuid and bool columns with NULLs,
#     an index on (updated_at, tenant, id).
# For each: syncdeck's full load into an empty target (with the default
# parallel_reads, one connection, and with two key ranges), its incremental
# first load into an empty target, an incremental run after 1% of the rows
# changed, and a rerun with no change; against a `COPY … TO STDOUT | COPY
# … FROM STDIN` pipe and 1,000-row `INSERT … ON CONFLICT DO UPDATE`
# batches on the same data, and the run after 1% changed against another 1%
# of changed rows through the pipe into a staging table and one `INSERT …
# SELECT … ON CONFLICT DO UPDATE` (PostgreSQL's own floor for that run). Median of $ROUNDS rounds (order alternating
# each round), syncdeck's peak RSS; the results replace this size's
# section of BENCHMARKS.md. Hold the shared build lock while it runs:
#
#   flock /tmp/syncdeck-cargo.lock env ROWS=100000 benches/table_sync_scale.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-3}"
ROWS="${ROWS:-1000000}"
BASE="${SYNCDECK_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432}"
if [ -z "${SYNCDECK:-}" ]; then
    cargo build --release --quiet
    SYNCDECK="${CARGO_TARGET_DIR:-target}/release/syncdeck"
fi
SRC="syncdeck_scale_src_$$"
DST="syncdeck_scale_dst_$$"
WORK="$(mktemp -d /dev/shm/syncdeck-scale.XXXXXX)"
cleanup() {
    psql -q "$BASE/postgres" -c "DROP DATABASE IF EXISTS $SRC WITH (FORCE)" -c "DROP DATABASE IF EXISTS $DST WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
src() { psql -qAt -v ON_ERROR_STOP=1 "$BASE/$SRC" "$@"; }
dst() { psql -qAt -v ON_ERROR_STOP=1 "$BASE/$DST" "$@"; }

psql -q "$BASE/postgres" -c "CREATE DATABASE $SRC" -c "CREATE DATABASE $DST"
echo "making $ROWS rows of each table …" >&2
SCALE=$(( (ROWS + 99999) / 100000 ))
pgbench -q -i -I dtg -s "$SCALE" "$BASE/$SRC" >/dev/null 2>&1
src -c "
  DELETE FROM pgbench_accounts WHERE aid > $ROWS;
  ALTER TABLE pgbench_accounts ADD COLUMN updated_at timestamptz;
  UPDATE pgbench_accounts SET updated_at = timestamptz '2026-01-01 00:00:00+00' + (aid / 50) * interval '1 second';
  ALTER TABLE pgbench_accounts ALTER COLUMN updated_at SET NOT NULL, ADD PRIMARY KEY (aid);
  CREATE INDEX ON pgbench_accounts (updated_at, aid);
  CREATE TABLE items (
      tenant int NOT NULL, id bigint NOT NULL, big bigint, updated_at timestamptz NOT NULL,
      amount numeric(14,2), name text, doc jsonb, ref uuid, active bool,
      PRIMARY KEY (tenant, id));
  INSERT INTO items
  SELECT g % 97, g, CASE WHEN g % 11 = 0 THEN NULL ELSE g::bigint * 7919 END,
         timestamptz '2026-01-01 00:00:00+00' + (g / 50) * interval '1 second',
         CASE WHEN g % 13 = 0 THEN NULL ELSE (g % 100000) * 1.25 END,
         CASE WHEN g % 17 = 0 THEN NULL ELSE 'item ' || g || ' ünï' END,
         CASE WHEN g % 19 = 0 THEN NULL ELSE jsonb_build_object('g', g, 'tags', jsonb_build_array('a', g % 7)) END,
         CASE WHEN g % 23 = 0 THEN NULL ELSE md5(g::text)::uuid END,
         CASE WHEN g % 29 = 0 THEN NULL ELSE g % 2 = 0 END
  FROM generate_series(1, $ROWS) g;
  CREATE INDEX ON items (updated_at, tenant, id);"
src -c "VACUUM (FREEZE, ANALYZE) pgbench_accounts, items"
pg_dump -s -t pgbench_accounts -t items "$BASE/$SRC" | dst >/dev/null

config() {
    cat <<TOML
[engine]
state = "sqlite:$WORK/state.db"
log_dir = "$WORK/logs"
TOML
    for table in accounts items; do
        local name=$table keys='["aid"]'
        [ $table = accounts ] && name=pgbench_accounts
        [ $table = items ] && keys='["tenant", "id"]'
        for mode in full incremental ranges; do
            cat <<TOML
[[tasks]]
id = "${table}_$mode"
type = "table_sync"
[tasks.properties]
source = "$BASE/$SRC?sslmode=disable"
target = "$BASE/$DST?sslmode=disable"
source_table = "public.$name"
target_table = "public.$name"
primary_key = $keys
mode = "${mode/ranges/full}"
TOML
            if [ $mode = ranges ]; then
                printf 'parallel_reads = 2\n'
            fi
            if [ $mode = incremental ]; then
                printf 'watermark_column = "updated_at"\nwatermark_lookback = "0s"\n'
            fi
        done
    done
}
config > "$WORK/syncdeck.toml"

# The INSERT reference's statements, made once, outside the timings.
inserts() {
    local table=$1 keys=$2 columns set
    columns=$(src -c "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute WHERE attrelid = '$table'::regclass AND attnum > 0 AND NOT attisdropped")
    set=$(src -c "SELECT string_agg(format('%1\$I = EXCLUDED.%1\$I', attname), ', ' ORDER BY attnum) FROM pg_attribute WHERE attrelid = '$table'::regclass AND attnum > 0 AND NOT attisdropped AND attname NOT IN ($(sed "s/[^,]*/'&'/g; s/ //g" <<<"$keys"))")
    src -c "
      SELECT 'INSERT INTO $table ($columns) SELECT (r).* FROM (VALUES '
             || string_agg(format('(%L::$table)', s.r::text), ', ')
             || ') v(r) ON CONFLICT ($keys) DO UPDATE SET $set;'
      FROM (SELECT r, (row_number() OVER (ORDER BY $keys) - 1) / 1000 AS batch FROM $table r) s
      GROUP BY batch ORDER BY batch" > "$WORK/inserts_$table.sql"
    echo "INSERT INTO $table SELECT * FROM staging ON CONFLICT ($keys) DO UPDATE SET $set" > "$WORK/upsert_$table.sql"
}
inserts pgbench_accounts aid
inserts items "tenant,id"

# Seconds and peak RSS (KiB) of one command, as "seconds rss". Each
# starts after a checkpoint, so none pays for the WAL and dirty pages the
# one before it left (the first change of a page after a checkpoint writes
# the whole page into the WAL; without this, the run after a first load
# paid for the load's checkpoint and the reference after it did not).
measure() {
    psql -q "$BASE/postgres" -c CHECKPOINT
    /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" >"$WORK/out" 2>&1 || {
        echo "benchmark command failed: $*" >&2; tail -5 "$WORK/out" >&2; exit 1; }
    cat "$WORK/time"
}
syncdeck() { measure "$SYNCDECK" -c "$WORK/syncdeck.toml" run --no-deps "$1"; }
empty() { dst -c "TRUNCATE $1"; rm -f "$WORK"/state.db*; }
check() {
    local different
    different=$(src -c "SELECT count(*) FROM $1" )
    [ "$(dst -c "SELECT count(*) FROM $1")" = "$different" ] || { echo "target of $1 has other rows after $2" >&2; exit 1; }
}
# 1% of the rows get a watermark after every other one: round N's in
# 2027 for syncdeck's run, the pipe's in 2026-06, below every later round's.
change() {
    local table=$1 round=$2 key=$3 base=${4:-2027-01-01}
    src -c "UPDATE $table SET updated_at = timestamptz '$base 00:00:00+00' + ($round % 100) * interval '1 day' + $key * interval '1 microsecond'
            WHERE $key % 100 = $round % 100" >/dev/null
}
copy_pipe() { measure bash -o pipefail -c "psql -q '$BASE/$SRC' -c 'COPY (SELECT * FROM $1) TO STDOUT' | psql -q '$BASE/$DST' -c 'COPY $1 FROM STDIN'"; }
insert_batches() { measure psql -q -v ON_ERROR_STOP=1 "$BASE/$DST" -f "$WORK/inserts_$1.sql"; }
# The rows of the pipe's change $2 through the pipe into a staging table,
# then one upsert.
changed_pipe() {
    measure bash -o pipefail -c "psql -q '$BASE/$SRC' -c \"COPY (SELECT * FROM $1 WHERE updated_at >= timestamptz '2026-06-01 00:00:00+00' + $2 * interval '1 day' AND updated_at < timestamptz '2026-06-01 00:00:00+00' + ($2 + 1) * interval '1 day') TO STDOUT\" \
        | psql -q -v ON_ERROR_STOP=1 '$BASE/$DST' -c 'CREATE TEMP TABLE staging (LIKE $1)' -c 'COPY staging FROM STDIN' -f '$WORK/upsert_$1.sql'"
}

declare -A times rss
record() { times[$1]+=" ${2% *}"; local kib=${2#* }; [ "${rss[$1]:-0}" -ge "$kib" ] || rss[$1]=$kib; }
for round in $(seq "$ROUNDS"); do
    for table in accounts items; do
        name=$table key=aid
        [ $table = accounts ] && name=pgbench_accounts
        [ $table = items ] && key=id
        references() {
            empty $name; record "$table pipe" "$(copy_pipe $name)"; check $name "the COPY pipe"
            empty $name; record "$table insert" "$(insert_batches $name)"; check $name "the INSERT batches"
        }
        # Alternate which runs first.
        if [ $((round % 2)) = 0 ]; then references; fi
        empty $name; record "$table full" "$(syncdeck ${table}_full)"; check $name "a full load"
        empty $name; record "$table ranges" "$(syncdeck ${table}_ranges)"; check $name "a full load over two key ranges"
        empty $name; record "$table first" "$(syncdeck ${table}_incremental)"; check $name "an incremental first load"
        change $name "$round" $key
        record "$table changed" "$(syncdeck ${table}_incremental)"; check $name "an incremental run"
        record "$table rerun" "$(syncdeck ${table}_incremental)"
        change $name $((round + 50)) $key 2026-06-01
        record "$table changed_pipe" "$(changed_pipe $name $((round + 50)))"; check $name "the changed rows' pipe"
        if [ $((round % 2)) = 1 ]; then references; fi
        echo "round $round $table: $(for k in full ranges first changed rerun pipe insert changed_pipe; do printf '%s %ss  ' $k "${times[$table $k]##* }"; done)" >&2
    done
done

median() { python3 -c "import statistics,sys; print(f'{statistics.median(map(float, sys.argv[1:])):.3f}')" "$@"; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
rows=""
share=""
for table in accounts items; do
    P=$(median ${times[$table pipe]}); I=$(median ${times[$table insert]})
    for k in full ranges first changed rerun; do
        label=$(case $k in full) echo "full load, empty target";; ranges) echo "full load, empty target, parallel_reads = 2";; first) echo "incremental first load, empty target";;
            changed) echo "incremental run after 1% changed";; rerun) echo "incremental rerun, no change";; esac)
        T=$(median ${times[$table $k]})
        rows+="| $table | $label | $T | $(ratio "$T" "$P")x | $(ratio "$I" "$T")x faster | $(( ${rss[$table $k]} / 1024 )) MiB |"$'\n'
    done
    rows+="| $table | COPY pipe (the floor) | $P | 1.00x | | |"$'\n'
    C=$(median ${times[$table changed_pipe]})
    rows+="| $table | another 1% changed: pipe into a staging table, one upsert | $C | $(ratio "$C" "$P")x | | |"$'\n'
    share+="- $table: the run after 1% changed took $(python3 -c "print(f'{100 * $(median ${times[$table changed]}) / $(median ${times[$table first]}):.0f}')")% of the incremental first load's time, and $(ratio "$(median ${times[$table changed]})" "$C")x the time of another 1% through the pipe and one upsert."$'\n'
    rows+="| $table | 1,000-row INSERT … ON CONFLICT batches | $I | $(ratio "$I" "$P")x | 1.00x | |"$'\n'
done

section=$(cat <<MD
## Table sync at scale: $ROWS rows

Written by \`ROWS=$ROWS benches/table_sync_scale.sh\` on $(date -u +%Y-%m-%d); $(nproc) cores,
PostgreSQL $(psql -qAt "$BASE/postgres" -c "SHOW server_version"), the machine's shared server, one for both databases; syncdeck at commit $(git rev-parse --short HEAD). Median of
$ROUNDS rounds each, same invocation, syncdeck with its defaults (batches of 1,000 rows, one reading connection,
2 loading connections; one row reads over 2 key ranges; a first load of a table of 8 MiB or more
stored out of key order reads it in its physical order) and \`watermark_lookback = "0s"\`. The server has its default
\`shared_buffers\` (128 MB) and \`max_wal_size\` (1 GB); every timed run starts after a \`CHECKPOINT\`. \`accounts\` is pgbench_accounts plus an
\`updated_at\` column (50 rows per value) indexed with \`aid\`; \`items\` has a composite key and
bigint, timestamptz, numeric, text, jsonb, uuid and bool columns, a tenth of them NULL.

| table | run | seconds | against the COPY pipe | against INSERT batches | syncdeck peak RSS |
|---|---|---:|---:|---:|---:|
$rows
$share
MD
)
python3 - "$section" "## Table sync at scale: $ROWS rows" <<'PY'
import re, sys
section, title = sys.argv[1], sys.argv[2]
try:
    old = open("BENCHMARKS.md").read()
except FileNotFoundError:
    old = "# Benchmarks\n"
parts = re.split(r"(?m)^(?=## )", old)
head, rest = parts[0], [p for p in parts[1:] if p.splitlines()[0].strip() != title]
open("BENCHMARKS.md", "w").write(head.rstrip() + "\n\n" + "".join(p.rstrip() + "\n\n" for p in rest) + section.rstrip() + "\n")
PY
echo "$section"
