#!/usr/bin/env bash
# The cost of the daemon's metrics endpoint: one daemon with a task every
# 5 s runs for $SECONDS_PER_ROUND seconds without `--metrics-addr`, and one
# with it, scraped every second (`/metrics`, `/healthz`, `/readyz`); each
# round reads the daemon's CPU time from /proc. Rounds alternate the order;
# the medians go to the "Daemon metrics" section of BENCHMARKS.md as
# percent of a core, and their difference.
#
#   benches/metrics_overhead.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-3}"
SECONDS_PER_ROUND="${SECONDS_PER_ROUND:-30}"
command -v curl >/dev/null || { echo "curl is needed: apt-get install -y curl" >&2; exit 2; }
cargo build --release --quiet
SYNCDECK="$(realpath "${CARGO_TARGET_DIR:-target}/release/syncdeck")"
WORK="$(mktemp -d "${TMPDIR:-/dev/shm}/syncdeck-metrics.XXXXXX")"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

mkdir -p "$WORK/in"
for index in $(seq 1 50); do head -c 4096 /dev/urandom > "$WORK/in/f$index.dat"; done
cat > "$WORK/syncdeck.toml" <<TOML
[engine]
state = "sqlite:state.db"
log_dir = "logs"

[[tasks]]
id = "every_5s"
type = "sync"
schedule = "5s"
[tasks.properties]
source_path = "in/"
destination_path = "out/"
TOML

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# One round: prints the daemon's CPU use in percent of a core.
round() { # with_metrics(0|1)
    local args=() address=""
    if [ "$1" = 1 ]; then address="127.0.0.1:$(port)"; args=(--metrics-addr "$address"); fi
    (cd "$WORK" && exec "$SYNCDECK" -c syncdeck.toml daemon "${args[@]}" >/dev/null 2>&1) &
    local pid=$!
    sleep 2
    local start; start=$(cpu_ticks "$pid")
    local end_at=$((SECONDS + SECONDS_PER_ROUND))
    while [ "$SECONDS" -lt "$end_at" ]; do
        if [ -n "$address" ]; then
            for path in metrics healthz readyz; do curl -fsS "http://$address/$path" >/dev/null || true; done
        fi
        sleep 1
    done
    local end; end=$(cpu_ticks "$pid")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    python3 -c "print(f'{($end - $start) / $(getconf CLK_TCK) / $SECONDS_PER_ROUND * 100:.2f}')"
}

without=(); with=()
for index in $(seq 1 "$ROUNDS"); do
    if [ $((index % 2)) = 1 ]; then
        without+=("$(round 0)"); with+=("$(round 1)")
    else
        with+=("$(round 1)"); without+=("$(round 0)")
    fi
    echo "round $index: without ${without[-1]}%, with ${with[-1]}%" >&2
done
median() { python3 -c "import statistics,sys; print(f'{statistics.median(map(float, sys.argv[1:])):.2f}')" "$@"; }
plain=$(median "${without[@]}"); scraped=$(median "${with[@]}")
extra=$(python3 -c "print(f'{$scraped - $plain:.2f}')")

{
    echo "## Daemon metrics"
    echo
    echo "Written by \`benches/metrics_overhead.sh\` on $(date +%F); $(nproc) cores, syncdeck $(git rev-parse --short HEAD)."
    echo "A daemon with one file task every 5 s (50 files, rerun unchanged), ${SECONDS_PER_ROUND} s per round,"
    echo "median of $ROUNDS rounds in alternating order; CPU time read from /proc."
    echo
    echo "| daemon | CPU, percent of a core |"
    echo "|---|---:|"
    echo "| without \`--metrics-addr\` | $plain% |"
    echo "| with it, \`/metrics\`, \`/healthz\` and \`/readyz\` scraped every second | $scraped% |"
    echo "| difference | $extra% |"
    echo
    echo "Target: under 1% of a core more than without."
} > "$WORK/section.md"
python3 - "$WORK/section.md" <<'PY'
import re, sys
new = open(sys.argv[1]).read()
text = open("BENCHMARKS.md").read()
parts = re.split(r"(?m)^(?=## )", text)
kept = [part for part in parts if not part.startswith("## Daemon metrics")]
open("BENCHMARKS.md", "w").write("".join(kept).rstrip("\n") + "\n\n" + new)
PY
cat "$WORK/section.md"
