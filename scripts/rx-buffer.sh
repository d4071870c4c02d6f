#!/usr/bin/env bash
# How big should the sink's receive buffer be, and what does --verify cost at each size? Serial sendfile of a warm
# file over loopback, the sink receiving with each buffer size in turn, without and with --verify (checked in the
# receiving thread), rounds interleaved so that drift hits every size alike. The default of `--rx-buffer` is chosen
# from this, not by habit.
#
# Environment: SIZE [1.2GB], ROUNDS [4], REPEAT [3 per size per round], SIZES ["64KiB 128KiB 256KiB 512KiB 1MiB"],
#              VERIFY ["off on"], OUT [results/rx-buffer-<host>-<kernel>-<UTC date>],
#              XFERBENCH [target/release/xferbench], EXTRA (more `xferbench run` options, e.g. "--fixture-dir DIR").
set -euo pipefail
start_dir=$PWD
cd "$(dirname "$0")/.."
abs() { case $1 in /*) p=$1;; *) p=$start_dir/$1;; esac; realpath -m --relative-base="$PWD" "$p"; }
SIZE=${SIZE:-1.2GB}
ROUNDS=${ROUNDS:-4}
REPEAT=${REPEAT:-3}
SIZES=${SIZES:-"64KiB 128KiB 256KiB 512KiB 1MiB"}
VERIFY=${VERIFY:-"off on"}
EXTRA=${EXTRA:-}
OUT=$(abs "${OUT:-results/rx-buffer-$(hostname -s 2>/dev/null || hostname)-$(uname -r)-$(date -u +%Y%m%d)}")
bin=target/release/xferbench
[ -n "${XFERBENCH:-}" ] && bin=$(abs "$XFERBENCH")
[ -x "$bin" ] || cargo build --release --quiet
echo "rx-buffer: $ROUNDS rounds x ($SIZES) x verify ($VERIFY) x $REPEAT of sendfile, $SIZE warm, into $OUT"
for round in $(seq 1 "$ROUNDS"); do
    for rx in $SIZES; do
        for v in $VERIFY; do
            case $v in
                off) dir=$rx; extra=() ;;
                on) dir=$rx-verify; extra=(--verify --verify-on receiver) ;;
                *) echo "rx-buffer: VERIFY takes off and on, not '$v'"; exit 2 ;;
            esac
            # Each round adds REPEAT repetitions to the same folder (--resume keeps the pass count of the first).
            "$bin" run --size "$SIZE" --strategies sendfile --repeat $((round * REPEAT)) --warmup 0 --rx-buffer "$rx" \
                "${extra[@]}" --out "$OUT/$dir" --resume --quiet $EXTRA >/dev/null
        done
    done
    echo "  round $round done"
done
python3 - "$OUT" "$VERIFY" "$REPEAT" $SIZES <<'PY' | tee "$OUT/rx-buffer.md"
import csv, os, statistics, sys
out, verify, repeat, sizes = sys.argv[1], sys.argv[2].split(), int(sys.argv[3]), sys.argv[4:]
def runs(d):
    """Throughput and sink CPU s/GB of each ok row, grouped by round: each round appended REPEAT rows, in order."""
    path = f"{out}/{d}/runs.csv"
    groups = {}
    for i, r in enumerate(csv.DictReader(open(path)) if os.path.exists(path) else []):
        if r["status"] == "ok":
            cpu = (float(r["sink_user_s"] or 0) + float(r["sink_sys_s"] or 0)) / (float(r["file_bytes"]) / 1e9)
            groups.setdefault(i // repeat, []).append((float(r["throughput_mb_s"]), cpu))
    return groups
med = statistics.median
print("Serial sendfile, warm; medians of every run, and sink CPU seconds per 10^9 bytes.\n")
head = "| rx buffer | median MB/s | min | max | n | sink CPU s/GB |"
rule = "|---|---|---|---|---|---|"
if "on" in verify and "off" in verify:
    head += " with --verify MB/s | sink CPU s/GB | --verify / without, per round: median [min-max] |"
    rule += "---|---|---|"
print(head + "\n" + rule)
for s in sizes:
    off, on = runs(s), runs(f"{s}-verify")
    base = off or on
    if not base:
        continue
    v = [t for g in base.values() for t, _ in g]
    cpu = med([c for g in base.values() for _, c in g])
    line = f"| {s} | {med(v):.0f} | {min(v):.0f} | {max(v):.0f} | {len(v)} | {cpu:.3f} |"
    if "on" in verify and "off" in verify and off and on:
        w = [t for g in on.values() for t, _ in g]
        mb = lambda g: med([t for t, _ in g])
        per_round = sorted(mb(on[k]) / mb(off[k]) for k in off if k in on)
        line += (f" {med(w):.0f} | {med([c for g in on.values() for _, c in g]):.3f} |"
                 f" {med(per_round):.2f}x [{per_round[0]:.2f}-{per_round[-1]:.2f}] |")
    print(line)
PY
