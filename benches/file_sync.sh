#!/usr/bin/env bash
# Local-to-local file sync: syncdeck against `rclone copy` on the same trees,
# in one invocation. Four cases: 10,000 files of 4 KiB and 8 files of
# 256 MiB, each as a first copy and as a rerun with nothing changed.
# Each timing is the median of $ROUNDS runs; results go to BENCHMARKS.md as
# ratios (syncdeck time / rclone time: below 1 means syncdeck is faster).
#
#   benches/file_sync.sh            # needs rclone (apt-get install rclone)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-3}"
command -v rclone >/dev/null || { echo "rclone is needed: apt-get install -y rclone" >&2; exit 2; }
cargo build --release --quiet
SYNCDECK="${CARGO_TARGET_DIR:-target}/release/syncdeck"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/syncdeck-bench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

echo "making trees in $WORK" >&2
python3 - "$WORK" <<'PY'
import os, sys
work = sys.argv[1]
small = os.path.join(work, "small")
for index in range(10_000):
    folder = os.path.join(small, f"d{index // 500:02d}")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"f{index:05d}.dat"), "wb") as f:
        f.write(os.urandom(4096))
large = os.path.join(work, "large")
os.makedirs(large, exist_ok=True)
block = os.urandom(1 << 20)
for index in range(8):
    with open(os.path.join(large, f"big{index}.bin"), "wb") as f:
        for part in range(256):
            f.write(block[part:] + block[:part])
PY

config() { # name source destination
    cat > "$WORK/$1.toml" <<TOML
[engine]
state = "sqlite:$WORK/state-$1.db"
log_dir = "$WORK/logs"
[[tasks]]
id = "$1"
type = "sync"
[tasks.properties]
source_path = "$2/"
destination_path = "$3/"
recursive = true
TOML
}

seconds() { # command… ; prints elapsed seconds
    local start end
    start=$(date +%s.%N)
    if ! "$@" >/dev/null 2>&1; then
        echo "benchmark command failed: $*" >&2
        echo "FAILED"
        return
    fi
    end=$(date +%s.%N)
    python3 -c "print(f'{$end - $start:.3f}')"
}

median() { # fails on a FAILED timing, which stops the script
    python3 -c "import statistics,sys; print(f'{statistics.median(map(float, sys.argv[1:])):.3f}')" "$@"
}

declare -A RESULT
for tree in small large; do
    config "$tree" "$WORK/$tree" "$WORK/out-syncdeck-$tree"
    cat "$WORK/$tree"/*/* "$WORK/$tree"/*.bin >/dev/null 2>&1 || true   # same warm page cache for both
    for tool in syncdeck rclone; do
        first=(); rerun=()
        for _ in $(seq "$ROUNDS"); do
            rm -rf "$WORK/out-$tool-$tree"; sync
            if [ "$tool" = syncdeck ]; then
                first+=("$(seconds "$SYNCDECK" -c "$WORK/$tree.toml" run)")
                rerun+=("$(seconds "$SYNCDECK" -c "$WORK/$tree.toml" run)")
            else
                first+=("$(seconds rclone copy "$WORK/$tree" "$WORK/out-$tool-$tree")")
                rerun+=("$(seconds rclone copy "$WORK/$tree" "$WORK/out-$tool-$tree")")
            fi
        done
        RESULT[$tool-$tree-first]=$(median "${first[@]}")
        RESULT[$tool-$tree-rerun]=$(median "${rerun[@]}")
        echo "$tool $tree: first ${RESULT[$tool-$tree-first]}s, rerun ${RESULT[$tool-$tree-rerun]}s" >&2
    done
    # Both tools must have produced the same tree.
    diff -r "$WORK/$tree" "$WORK/out-syncdeck-$tree" >/dev/null || { echo "syncdeck's copy of $tree differs" >&2; exit 1; }
done

ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
{
    echo "# Benchmarks"
    echo
    echo "Written by \`benches/file_sync.sh\` on $(date -u +%Y-%m-%d); $(nproc) cores,"
    echo "$(rclone version | head -1), syncdeck $(git rev-parse --short HEAD 2>/dev/null || echo '?')."
    echo "Median of $ROUNDS runs each, same machine, same invocation, warm page cache."
    echo
    echo "## Local to local file sync against \`rclone copy\` (defaults)"
    echo
    echo "| case | syncdeck (s) | rclone (s) | syncdeck / rclone |"
    echo "|---|---:|---:|---:|"
    for tree in small large; do
        label=$([ "$tree" = small ] && echo "10,000 files × 4 KiB" || echo "8 files × 256 MiB")
        for phase in first rerun; do
            name=$([ "$phase" = first ] && echo "first copy" || echo "rerun, no change")
            s=${RESULT[syncdeck-$tree-$phase]}; r=${RESULT[rclone-$tree-$phase]}
            echo "| $label, $name | $s | $r | $(ratio "$s" "$r") |"
        done
    done
    echo
    echo "Target: no slower than rclone in any case (ratio ≤ 1.00)."
    echo "syncdeck's times include opening its SQLite state store and writing"
    echo "the run's row and log lines. Local-to-local copies use"
    echo "\`copy_file_range\` through \`std::fs::copy\`; rclone streams the bytes."
} > BENCHMARKS.md.tmp
if [ -f BENCHMARKS.md ]; then
    # Keep other sections (written by other benchmarks) after this one.
    python3 - <<'PY'
import re
new = open("BENCHMARKS.md.tmp").read()
old = open("BENCHMARKS.md").read()
rest = re.split(r"^## ", old, flags=re.M)[1:]
others = "".join("## " + part for part in rest if not part.startswith("Local to local file sync"))
open("BENCHMARKS.md", "w").write(new + ("\n" + others if others else ""))
PY
    rm BENCHMARKS.md.tmp
else
    mv BENCHMARKS.md.tmp BENCHMARKS.md
fi
cat BENCHMARKS.md
