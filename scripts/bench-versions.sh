#!/usr/bin/env bash
# This build of xferbench against another (BASE: an older release binary, e.g. built from an earlier commit) on the
# same warm file, in turning order so that drift hits both alike:
#   1. the timed loop: single-stream sendfile of each build, one pass each, beside the bare C sendfile loop
#      (bench/bare.c, receiver reading into 128 KiB as both builds' sinks are told to), ROUNDS rounds;
#   2. the main job (`run` with its defaults) of each build with --repeat 5: the spread of every case.
# Writes OUT/versions.md and OUT/versions.csv.
#
# Environment: BASE (required), SIZE [1.2GB], ROUNDS [9], CHUNK [10MiB], SPREAD_ROUNDS [1], SPREAD [1; 0 skips part
#              2], OUT [results/versions-<host>-<kernel>-<date>], XFERBENCH [target/release/xferbench],
#              MAIN_EXTRA (more options for part 2's runs of both builds), FIXTURES_DIR [fixtures] (folder of the
#              test file), REPORT_ONLY=1 (measure nothing: write the report of what OUT holds)
set -euo pipefail
start_dir=$PWD
cd "$(dirname "$0")/.."
. scripts/lib/bench.sh
abs() { case $1 in /*) p=$1;; *) p=$start_dir/$1;; esac; realpath -m --relative-base="$PWD" "$p"; }
[ -n "${BASE:-}" ] || { echo "versions: set BASE to the other xferbench binary"; exit 2; }
base=$(abs "$BASE")
SIZE=${SIZE:-1.2GB}
ROUNDS=${ROUNDS:-9}
CHUNK=${CHUNK:-10MiB}
OUT=$(abs "${OUT:-results/versions-$(hostname -s 2>/dev/null || hostname)-$(uname -r)-$(date -u +%Y%m%d)}")
bin=target/release/xferbench
[ -n "${XFERBENCH:-}" ] && bin=$(abs "$XFERBENCH")
[ -x "$bin" ] || cargo build --release --quiet
mkdir -p "$OUT"
work=$(mktemp -d)
trap 'rm -rf "$work"; kill $(jobs -p) 2>/dev/null || true' EXIT
gcc -O2 -o "$work/bare" bench/bare.c
FIXTURES=fixtures
[ -n "${FIXTURES_DIR:-}" ] && FIXTURES=$(abs "$FIXTURES_DIR")
file=$("$bin" fixture --size "$SIZE" --fixture-dir "$FIXTURES" | sed -n 's/^\(.*\) (\([0-9]*\) bytes.*/\1/p')
chunk=$(size_bytes "$CHUNK")
cat "$file" >/dev/null
results="$OUT/versions.csv"
if [ "${REPORT_ONLY:-0}" != 1 ]; then
echo "tool,round,mb_s" >"$results"
mb_s() { python3 -c "import csv,sys;r=next(csv.DictReader(open(sys.argv[1])));print(round(float(r['throughput_mb_s'])))" "$1"; }
run_of() { # binary label extra... -> MB/s of one warm sendfile repetition
    local o="$work/$2-$RANDOM"
    "$1" run --size "$SIZE" --fixture-dir "$FIXTURES" --strategies sendfile --chunk "$CHUNK" --rx-buffer 128KiB \
        --repeat 1 --warmup 0 --out "$o" --quiet "${@:3}" >/dev/null
    mb_s "$o/runs.csv"
}
tools=(this base bare)
echo "versions: $ROUNDS rounds of (${tools[*]}), sendfile, $SIZE warm, one pass"
for round in $(seq 1 "$ROUNDS"); do
    for i in 0 1 2; do
        t=${tools[$(((i + round) % 3))]}
        case $t in
            this) v=$(run_of "$bin" this --passes 1) ;;
            base) v=$(run_of "$base" base) ;;
            bare) v=$(bare sendfile) ;;
        esac
        echo "$t,$round,$v" >>"$results"
    done
    echo "  round $round done"
done
if [ "${SPREAD:-1}" = 1 ]; then
    for round in $(seq 1 "${SPREAD_ROUNDS:-1}"); do
        for t in this base; do
            b=$bin; [ $t = base ] && b=$base
            rm -rf "$OUT/main-$t-$round"
            "$b" run --size "$SIZE" --fixture-dir "$FIXTURES" --repeat 5 --out "$OUT/main-$t-$round" --quiet \
                ${MAIN_EXTRA:-} >/dev/null
        done
    done
fi
fi
python3 - "$results" "$OUT" <<'PY' | tee "$OUT/versions.md"
import csv, glob, json, os, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
by = {}
for r in rows:
    by.setdefault(r["tool"], {})[r["round"]] = float(r["mb_s"])
def q(v, f):
    v = sorted(v); i = (len(v) - 1) * f; lo = int(i); hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (i - lo)
print(f"# This build against another\n\n## The timed loop: sendfile, one pass, {len(by['this'])} rounds in turning order\n")
print("| comparison | ratio of medians | per round: median [IQR] |\n|---|--:|---|")
for a, b in [("this", "bare"), ("base", "bare"), ("this", "base")]:
    ratios = [by[a][k] / by[b][k] for k in by[a] if k in by[b]]
    ma, mb = statistics.median(by[a].values()), statistics.median(by[b].values())
    print(f"| {a} / {b} | {ma / mb:.3f} ({ma:.0f} vs {mb:.0f} MB/s) | {statistics.median(ratios):.3f} "
          f"[{q(ratios, .25):.3f}-{q(ratios, .75):.3f}] |")
runs = sorted(glob.glob(os.path.join(sys.argv[2], "main-*")))
if runs:
    n = len({os.path.basename(d).split("-")[2] for d in runs})
    print(f"\n## The main job, 5 repetitions, {n} round(s) of each build: spread (max-min)/median of each case\n")
    table = {}
    for d in runs:
        tool = os.path.basename(d).split("-")[1]
        s = json.load(open(os.path.join(d, "summary.json")))
        for c in s["cases"]:
            t = c["metrics"].get("throughput_mb_s")
            w = c["metrics"].get("wall_s")
            if not t:
                continue
            label = c["strategy"] + (f" x{c['threads']}" if c["strategy"].startswith("parallel-") else "")
            table.setdefault(label, {}).setdefault(tool, []).append(((t["max"] - t["min"]) / t["median"], w["median"]))
    print("| case | spread before, each round (median timed section) | spread after, each round (median timed section) |")
    print("|---|--:|--:|")
    for label, v in table.items():
        def cell(k):
            if k not in v:
                return "-"
            spreads = ", ".join(f"{x[0] * 100:.0f}%" for x in v[k])
            return f"{spreads} ({statistics.median(x[1] for x in v[k]):.3f} s)"
        print(f"| {label} | {cell('base')} | {cell('this')} |")
PY
