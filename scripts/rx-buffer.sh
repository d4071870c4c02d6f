#!/usr/bin/env bash
# How big should the sink's receive buffer be? Serial sendfile of a warm file over loopback, the sink receiving
# with each buffer size in turn, rounds interleaved so that drift hits every size alike. The default of
# `--rx-buffer` is chosen from this, not by habit.
#
# Environment: SIZE [1.2GB], ROUNDS [4], REPEAT [3 per size per round], SIZES ["64KiB 128KiB 256KiB 512KiB 1MiB"],
#              OUT [results/rx-buffer-<host>-<kernel>-<UTC date>], XFERBENCH [target/release/xferbench].
set -euo pipefail
start_dir=$PWD
cd "$(dirname "$0")/.."
abs() { case $1 in /*) p=$1;; *) p=$start_dir/$1;; esac; realpath -m --relative-base="$PWD" "$p"; }
SIZE=${SIZE:-1.2GB}
ROUNDS=${ROUNDS:-4}
REPEAT=${REPEAT:-3}
SIZES=${SIZES:-"64KiB 128KiB 256KiB 512KiB 1MiB"}
OUT=$(abs "${OUT:-results/rx-buffer-$(hostname -s 2>/dev/null || hostname)-$(uname -r)-$(date -u +%Y%m%d)}")
bin=target/release/xferbench
[ -n "${XFERBENCH:-}" ] && bin=$(abs "$XFERBENCH")
[ -x "$bin" ] || cargo build --release --quiet
echo "rx-buffer: $ROUNDS rounds x ($SIZES) x $REPEAT of sendfile, $SIZE warm, into $OUT"
for round in $(seq 1 "$ROUNDS"); do
    for rx in $SIZES; do
        "$bin" run --size "$SIZE" --strategies sendfile --repeat "$REPEAT" --warmup 0 --rx-buffer "$rx" \
            --out "$OUT/$rx" --quiet >/dev/null
    done
    echo "  round $round done"
done
python3 - "$OUT" $SIZES <<'PY' | tee "$OUT/rx-buffer.md"
import csv, statistics, sys
out, sizes = sys.argv[1], sys.argv[2:]
print("| rx buffer | median MB/s | min | max | n |\n|---|---|---|---|---|")
for s in sizes:
    v = [float(r["throughput_mb_s"]) for r in csv.DictReader(open(f"{out}/{s}/runs.csv")) if r["status"] == "ok"]
    print(f"| {s} | {statistics.median(v):.0f} | {min(v):.0f} | {max(v):.0f} | {len(v)} |")
PY
