#!/usr/bin/env bash
# File sync at scale: syncdeck against `rclone copy` (and `cp -a`) on the
# same trees, in one invocation, local to local on tmpfs (/dev/shm).
#
#   benches/files_scale.sh CASE…
#
# A CASE is COUNT:KIND[:SHAPE] against rclone, or `cp` (10,000 × 4 KiB
# against cp -a). KIND is empty, 1k or 4k. SHAPE is `wide` (the default:
# folders of 1,000 files, one level deep) or `deep` (folders eight levels
# deep, 16 files at the bottom of each, folder and file names with spaces,
# unicode, leading dashes and capitals, which sort differently by bytes
# than by locale). For example:
#
#   benches/files_scale.sh 1000000:1k 1000000:empty cp 100000:1k:deep
#
# Each case: a first copy into a fresh destination, then a rerun with no
# change, for each tool; $ROUNDS rounds (default 3), the tools' order
# alternating between rounds; each destination is checked (file count)
# and removed after its round, the source after its case. Prints one
# Markdown table row per measure: median seconds of both, their ratio, and
# the largest peak RSS (MiB) of any round, from /usr/bin/time. Expects a
# release build (cargo build --release) in ${CARGO_TARGET_DIR:-target}.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-3}"
SYNCDECK="$(realpath "${CARGO_TARGET_DIR:-target}/release/syncdeck")"
[ -x "$SYNCDECK" ] || { echo "build first: cargo build --release" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is needed: apt-get install -y time" >&2; exit 2; }
[ $# -gt 0 ] || { echo "usage: $0 COUNT:KIND[:SHAPE]… or cp" >&2; exit 2; }
for case in "$@"; do
    case "$case" in
        cp | [0-9]*:empty | [0-9]*:1k | [0-9]*:4k | [0-9]*:*:wide | [0-9]*:*:deep) ;;
        *) echo "$case: not a case; use COUNT:empty|1k|4k[:wide|deep], or cp" >&2; exit 2 ;;
    esac
done
command -v rclone >/dev/null || { echo "rclone is needed: apt-get install -y rclone" >&2; exit 2; }
ALL="$(mktemp -d /dev/shm/syncdeck-scale.XXXXXX)"
trap 'rm -rf "$ALL"' EXIT
echo "$(date -u +%FT%TZ) syncdeck $(git rev-parse --short HEAD), $(rclone version | head -1), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2

make_tree() { # root count kind shape
    python3 - "$@" <<'PY'
import os, sys
root, count, kind, shape = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
body = {"empty": b"", "1k": os.urandom(1024), "4k": os.urandom(4096)}[kind]
# Names whose byte order differs from a locale's: capitals before
# small letters, `-` and ` ` before letters, accents after `z`.
folders = ["a b", "-dash", "Zed", "été"]
files = [" lead", "-x", "Ärger", "a.b", "a-b", "日本", "ça", "B"]
folder = None
for index in range(count):
    if shape == "wide" and index % 1000 == 0:
        folder = os.path.join(root, f"d{index // 1000:04d}")
        os.makedirs(folder)
    if shape == "deep" and index % 16 == 0:
        leaf, parts = index // 16, []
        for _ in range(8):
            parts.append(folders[leaf % 4])
            leaf //= 4
        folder = os.path.join(root, *parts)
        os.makedirs(folder, exist_ok=True)
    name = f"f{index:07d}.dat" if shape == "wide" else f"{files[index % 8]} {index:07d}.dat"
    with open(os.path.join(folder, name), "wb") as f:
        f.write(body)
PY
}

measure() { # name command… ; appends "seconds peak_kib" to $WORK/name
    local name="$1"; shift
    if ! /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" >/dev/null 2>"$WORK/stderr"; then
        echo "benchmark command failed: $*" >&2; cat "$WORK/stderr" >&2; exit 1
    fi
    cat "$WORK/time" >> "$WORK/$name"
}

run_tool() { # tool
    local out="$WORK/out-$1"
    rm -rf "$out"; sync
    case "$1" in
        syncdeck)
            measure syncdeck-first "$SYNCDECK" -c "$WORK/syncdeck.toml" run scale
            measure syncdeck-rerun "$SYNCDECK" -c "$WORK/syncdeck.toml" run scale ;;
        rclone)
            measure rclone-first rclone copy "$WORK/in" "$out"
            measure rclone-rerun rclone copy "$WORK/in" "$out" ;;
        cp)
            measure cp-first cp -a "$WORK/in" "$out" ;;
    esac
    local copied
    copied="$(find "$out" -type f | wc -l)"
    [ "$copied" = "$COUNT" ] || { echo "$1 copied $copied files of $COUNT" >&2; exit 1; }
    rm -rf "$out"
}

row() { # label syncdeck-file reference-file
    python3 - "$1" "$WORK/$2" "$WORK/$3" <<'PY'
import statistics, sys
label, mine, theirs = sys.argv[1:]
def read(path):
    rows = [line.split() for line in open(path) if line.strip()]
    return statistics.median(float(r[0]) for r in rows), max(int(r[1]) for r in rows)
(ms, mk), (ts, tk) = read(mine), read(theirs)
print(f"| {label} | {ms:.2f} | {ts:.2f} | {ms / ts:.2f} | {mk / 1024:.1f} | {tk / 1024:.1f} |")
PY
}

for case in "$@"; do
    if [ "$case" = cp ]; then
        COUNT=10000; KIND=4k; SHAPE=wide; AGAINST=cp
    else
        IFS=: read -r COUNT KIND SHAPE <<<"$case"
        SHAPE="${SHAPE:-wide}"; AGAINST=rclone
    fi
    WORK="$ALL/$case"
    mkdir -p "$WORK"
    echo "$case: making $COUNT files ($KIND, $SHAPE) in $WORK" >&2
    make_tree "$WORK/in" "$COUNT" "$KIND" "$SHAPE"
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
    for round in $(seq "$ROUNDS"); do
        if [ $((round % 2)) = 1 ]; then order="syncdeck $AGAINST"; else order="$AGAINST syncdeck"; fi
        for tool in $order; do
            echo "$case round $round: $tool" >&2
            run_tool "$tool"
        done
    done
    label="$(python3 -c "print(f'{$COUNT:,}')") files × ${KIND/k/ KiB}"
    [ "$KIND" = empty ] && label="$(python3 -c "print(f'{$COUNT:,}')") empty files"
    [ "$SHAPE" = deep ] && label="$label, deep tree, odd names"
    if [ "$AGAINST" = cp ]; then
        row "$label, first copy" syncdeck-first cp-first | tee -a "$ALL/cp-rows"
    else
        row "$label, first copy" syncdeck-first rclone-first | tee -a "$ALL/rclone-rows"
        row "$label, rerun, no change" syncdeck-rerun rclone-rerun | tee -a "$ALL/rclone-rows"
    fi
    rm -rf "$WORK/in"
done
echo "$(date -u +%FT%TZ) done, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for against in rclone cp; do
    [ -f "$ALL/$against-rows" ] || continue
    label="$against"; [ "$against" = cp ] && label='`cp -a`'
    echo
    echo "| case | syncdeck (s) | $label (s) | syncdeck / $against | syncdeck peak RSS (MiB) | $against peak RSS (MiB) |"
    echo "|---|---:|---:|---:|---:|---:|"
    cat "$ALL/$against-rows"
done
