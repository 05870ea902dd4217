#!/usr/bin/env bash
# table_sync of 100,000 rows from one PostgreSQL table to another, five
# target columns computed by jq from the source row against the same five
# columns copied from source columns (plus the key, copied in both). Both
# runs are first loads into an emptied target (COPY), alternating which
# goes first each round. Prints the median of each and their ratio: what
# jq adds to a real table sync (building each row as a jq object,
# running five expressions, reading every source column), not jaq's speed
# alone. Needs PostgreSQL ($SYNCDECK_TEST_POSTGRES or the local server).
#
#   flock /tmp/syncdeck-cargo.lock benches/table_jq_columns.sh   (ROUNDS=5, ROWS=100000 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-5}"
ROWS="${ROWS:-100000}"
BASE="${SYNCDECK_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432}"
cargo build --release --quiet
SYNCDECK="${CARGO_TARGET_DIR:-target}/release/syncdeck"
DB="syncdeck_bench_table_jq_$$"
WORK="$(mktemp -d /dev/shm/syncdeck-bench.XXXXXX)"
cleanup() {
    psql -q "$BASE/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

psql -q "$BASE/postgres" -c "CREATE DATABASE $DB"
psql -q "$BASE/$DB" <<SQL
CREATE SCHEMA src; CREATE SCHEMA dst;
CREATE TABLE src.people (
    id int PRIMARY KEY, first_name text, last_name text, email text,
    active boolean, amount numeric(10,2), profile jsonb);
INSERT INTO src.people
SELECT g, 'First' || g, 'Last' || g, 'Person' || g || '@Example.ORG', g % 3 <> 0,
    g * 1.25, jsonb_build_object('address', jsonb_build_object('city', 'City ' || (g % 500)))
FROM generate_series(1, $ROWS) g;
CREATE TABLE dst.people (id int PRIMARY KEY, email text, name text, status text, cents text, city text);
SQL

config() {
    cat <<TOML
[engine]
state = "sqlite:$WORK/state-$1.db"
log_dir = "$WORK/logs"
[[tasks]]
id = "people"
type = "table_sync"
[tasks.properties]
source = "$BASE/$DB?sslmode=disable"
target = "$BASE/$DB?sslmode=disable"
source_table = "src.people"
target_table = "dst.people"
primary_key = ["id"]
[tasks.properties.columns]
id = {}
TOML
    if [ "$1" = jq ]; then
        cat <<'TOML'
email = { jq = ".email | ascii_downcase" }
name = { jq = '.first_name + " " + .last_name' }
status = { jq = 'if .active then "active" else "inactive" end' }
cents = { jq = ".amount * 100 | round" }
city = { jq = ".profile.address.city" }
TOML
    else
        cat <<'TOML'
email = { source = "email" }
name = { source = "first_name" }
status = { source = "active" }
cents = { source = "amount" }
city = { source = "profile" }
TOML
    fi
}
config jq > "$WORK/jq.toml"
config plain > "$WORK/plain.toml"

seconds() {
    local start end
    start=$(date +%s.%N)
    if ! "$@" >/dev/null 2>&1; then echo "benchmark command failed: $*" >&2; exit 1; fi
    end=$(date +%s.%N)
    python3 -c "print(f'{$end - $start:.3f}')"
}
median() { python3 -c "import statistics,sys; print(f'{statistics.median(map(float, sys.argv[1:])):.3f}')" "$@"; }
fresh() { psql -q "$BASE/$DB" -c "TRUNCATE dst.people" >/dev/null; rm -f "$WORK"/state-*.db*; }
check() {
    local rows
    rows=$(psql -qAt "$BASE/$DB" -c "SELECT count(*) FROM dst.people")
    [ "$rows" = "$ROWS" ] || { echo "target has $rows rows after the $1 run" >&2; exit 1; }
    if [ "$1" = jq ]; then
        local name
        name=$(psql -qAt "$BASE/$DB" -c "SELECT concat_ws('|', email, name, status, cents, city) FROM dst.people WHERE id = 3")
        [ "$name" = "person3@example.org|First3 Last3|inactive|375|City 3" ] || { echo "unexpected jq row: $name" >&2; exit 1; }
    fi
}
run_plain() { fresh; plain_runs+=("$(seconds "$SYNCDECK" -c "$WORK/plain.toml" run)"); check plain; }
run_jq() { fresh; jq_runs+=("$(seconds "$SYNCDECK" -c "$WORK/jq.toml" run)"); check jq; }

jq_runs=(); plain_runs=()
for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then run_plain; run_jq; else run_jq; run_plain; fi
    echo "round $round: plain ${plain_runs[-1]}s, jq ${jq_runs[-1]}s" >&2
done
plain=$(median "${plain_runs[@]}")
jq=$(median "${jq_runs[@]}")
ratio=$(python3 -c "print(f'{$jq / $plain:.2f}')")
echo "$ROWS rows, 5 columns: plain ${plain}s, jq ${jq}s (median of $ROUNDS): jq/plain = ${ratio}x"
