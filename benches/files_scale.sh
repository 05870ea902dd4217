#!/usr/bin/env bash
# File sync at scale: syncdeck against `rclone copy` (and `cp -a`) on the
# same trees, in one invocation, local to local on tmpfs (/dev/shm).
#
#   benches/files_scale.sh COUNT empty|1k     # COUNT files, folders of 1,000
#   benches/files_scale.sh cp                 # 10,000 × 4 KiB against cp -a
#
# Each case: a first copy into a fresh destination, then a rerun with no
# change, for each tool; $ROUNDS rounds (default 3), the tools' order
# alternating between rounds. Prints one Markdown table row per measure:
# median seconds of both, their ratio, and the largest peak RSS (KiB) of
# any round, from /usr/bin/time. Expects a release build
# (cargo build --release) in ${CARGO_TARGET_DIR:-target}.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-3}"
SYNCDECK="$(realpath "${CARGO_TARGET_DIR:-target}/release/syncdeck")"
[ -x "$SYNCDECK" ] || { echo "build first: cargo build --release" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is needed: apt-get install -y time" >&2; exit 2; }
case "${1:-}" in
    cp) COUNT=10000; KIND=4k; AGAINST=cp ;;
    *) COUNT="${1:?usage: $0 COUNT empty|1k, or $0 cp}"; KIND="${2:?usage: $0 COUNT empty|1k}"; AGAINST=rclone ;;
esac
[ "$AGAINST" = cp ] || command -v rclone >/dev/null || { echo "rclone is needed: apt-get install -y rclone" >&2; exit 2; }
WORK="$(mktemp -d /dev/shm/syncdeck-scale.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

echo "making $COUNT files ($KIND) in $WORK" >&2
python3 - "$WORK/in" "$COUNT" "$KIND" <<'PY'
import os, sys
root, count, kind = sys.argv[1], int(sys.argv[2]), sys.argv[3]
body = {"empty": b"", "1k": os.urandom(1024), "4k": os.urandom(4096)}[kind]
for index in range(count):
    if index % 1000 == 0:
        folder = os.path.join(root, f"d{index // 1000:04d}")
        os.makedirs(folder)
    with open(os.path.join(folder, f"f{index:07d}.dat"), "wb") as f:
        f.write(body)
PY

cat > "$WORK/syncdeck.toml" <<TOML
[engine]
state = "sqlite:$WORK/state.db"
log_dir = "$WORK/logs"
[[tasks]]
id = "scale"
type = "sync"
[tasks.properties]
source_path = "$WORK/in/"
destination_path = "$WORK/out-syncdeck/"
recursive = true
TOML

measure() { # name command… ; appends "seconds peak_kib" to $WORK/name
    local name="$1"; shift
    if ! /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" >/dev/null 2>"$WORK/stderr"; then
        echo "benchmark command failed: $*" >&2; cat "$WORK/stderr" >&2; exit 1
    fi
    cat "$WORK/time" >> "$WORK/$name"
}

run_tool() { # tool
    rm -rf "$WORK/out-$1"; sync
    case "$1" in
        syncdeck)
            measure syncdeck-first "$SYNCDECK" -c "$WORK/syncdeck.toml" run scale
            measure syncdeck-rerun "$SYNCDECK" -c "$WORK/syncdeck.toml" run scale ;;
        rclone)
            measure rclone-first rclone copy "$WORK/in" "$WORK/out-rclone"
            measure rclone-rerun rclone copy "$WORK/in" "$WORK/out-rclone" ;;
        cp)
            measure cp-first cp -a "$WORK/in" "$WORK/out-cp" ;;
    esac
}

for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then order="syncdeck $AGAINST"; else order="$AGAINST syncdeck"; fi
    for tool in $order; do
        echo "round $round: $tool" >&2
        run_tool "$tool"
    done
done
[ "$(find "$WORK/out-syncdeck" -type f | wc -l)" = "$COUNT" ] || { echo "syncdeck copied a wrong number of files" >&2; exit 1; }

row() { # label syncdeck-file reference-file
    python3 - "$1" "$WORK/$2" "$WORK/$3" "$AGAINST" <<'PY'
import statistics, sys
label, mine, theirs, against = sys.argv[1:]
def read(path):
    rows = [line.split() for line in open(path) if line.strip()]
    return statistics.median(float(r[0]) for r in rows), max(int(r[1]) for r in rows)
(ms, mk), (ts, tk) = read(mine), read(theirs)
print(f"| {label} | {ms:.2f} | {ts:.2f} | {ms / ts:.2f} | {mk / 1024:.1f} | {tk / 1024:.1f} |")
PY
}
echo "| case | syncdeck (s) | $AGAINST (s) | ratio | syncdeck peak RSS (MiB) | $AGAINST peak RSS (MiB) |"
echo "|---|---:|---:|---:|---:|---:|"
label="$(python3 -c "print(f'{$COUNT:,}')") files × ${KIND/k/ KiB}"
[ "$KIND" = empty ] && label="$(python3 -c "print(f'{$COUNT:,}')") empty files"
row "$label, first copy" syncdeck-first "$AGAINST-first"
[ "$AGAINST" = cp ] || row "$label, rerun, no change" syncdeck-rerun rclone-rerun
