#!/usr/bin/env bash
# http_sync of 100,000 items from the local paginated fake API
# (tests/support/fake_api.py, pages of 1,000) into PostgreSQL, twice per
# round: five columns as jq expressions (seed 002's transform) against
# the same five columns as plain dotted paths. Prints the median of each
# and their ratio (target: jq at most 1.5x the paths). Both runs pay the
# same API and PostgreSQL costs, so the ratio is what jq adds to a real
# sync, not jaq's speed alone. Needs PostgreSQL ($SYNCDECK_TEST_POSTGRES
# or the local server) and python3.
#
#   benches/jq_columns.sh            (ROUNDS=3 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-3}"
ITEMS="${ITEMS:-100000}"
BASE="${SYNCDECK_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432}"
flock /tmp/syncdeck-cargo.lock cargo build --release --quiet
SYNCDECK="${CARGO_TARGET_DIR:-target}/release/syncdeck"
DB="syncdeck_bench_jq_$$"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/syncdeck-bench.XXXXXX")"
API_PID=""
cleanup() {
    [ -n "$API_PID" ] && kill "$API_PID" 2>/dev/null || true
    psql -q "$BASE/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

FAKE_API_USERS="$ITEMS" python3 tests/support/fake_api.py 0 > "$WORK/api.port" &
API_PID=$!
for _ in $(seq 100); do [ -s "$WORK/api.port" ] && break; sleep 0.1; done
API="http://127.0.0.1:$(head -1 "$WORK/api.port")"
psql -q "$BASE/postgres" -c "CREATE DATABASE $DB"
psql -q "$BASE/$DB" -c "CREATE TABLE users (external_id bigint PRIMARY KEY, email text, name text, status text, metadata text)"

config() {
    cat <<TOML
[engine]
state = "sqlite:$WORK/state-$1.db"
log_dir = "$WORK/logs"
[[tasks]]
id = "users"
type = "http_sync"
[tasks.properties]
base_url = "$API"
path = "/users"
token = "api-token-for-tests-77"
page_size = 1000
items_path = "data"
total_path = "total"
target = "$BASE/$DB?sslmode=disable"
target_table = "public.users"
primary_key = ["external_id"]
[tasks.properties.columns]
TOML
    if [ "$1" = jq ]; then
        cat <<'TOML'
external_id = { jq = ".id" }
email = { jq = ".email | ascii_downcase" }
name = { jq = '.first_name + " " + .last_name' }
status = { jq = 'if .active then "active" else "inactive" end' }
metadata = { jq = '{source: "external-system", original_id: .id, synced_at: (now | todate)} | tojson' }
TOML
    else
        cat <<'TOML'
external_id = "id"
email = "email"
name = "first_name"
status = "active"
metadata = "profile"
TOML
    fi
}
config jq > "$WORK/jq.toml"
config paths > "$WORK/paths.toml"

seconds() {
    local start end
    start=$(date +%s.%N)
    if ! "$@" >/dev/null 2>&1; then echo "benchmark command failed: $*" >&2; exit 1; fi
    end=$(date +%s.%N)
    python3 -c "print(f'{$end - $start:.3f}')"
}
median() { python3 -c "import statistics,sys; print(f'{statistics.median(map(float, sys.argv[1:])):.3f}')" "$@"; }
fresh() { psql -q "$BASE/$DB" -c "TRUNCATE users" >/dev/null; rm -f "$WORK"/state-*.db*; }
check() {
    local rows
    rows=$(psql -qAt "$BASE/$DB" -c "SELECT count(*) FROM users")
    [ "$rows" = "$ITEMS" ] || { echo "target has $rows rows after the $1 run" >&2; exit 1; }
}

jq_runs=(); path_runs=()
for round in $(seq "$ROUNDS"); do
    fresh; path_runs+=("$(seconds "$SYNCDECK" -c "$WORK/paths.toml" run)"); check paths
    fresh; jq_runs+=("$(seconds "$SYNCDECK" -c "$WORK/jq.toml" run)"); check jq
    echo "round $round: paths ${path_runs[-1]}s, jq ${jq_runs[-1]}s" >&2
done
paths=$(median "${path_runs[@]}")
jq=$(median "${jq_runs[@]}")
ratio=$(python3 -c "print(f'{$jq / $paths:.2f}')")
echo "$ITEMS items, 5 columns: paths ${paths}s, jq ${jq}s (median of $ROUNDS): jq/paths = ${ratio}x (target <= 1.5x)"
