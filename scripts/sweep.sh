#!/usr/bin/env bash
# Thread-count sweep: serial and parallel sendfile (and read-send) over thread counts, chunk sizes and both cache
# states, into one result folder, plotted at the end. Re-running with the same OUT resumes: cases already in its
# runs.csv are skipped.
#
# Environment (defaults in brackets):
#   SIZE        test file size [1.2GB]
#   THREADS     thread counts, space-separated [1 2 4 8 10 12 16, less those above 2x this machine's CPUs]
#   CHUNKS      chunk sizes [1MiB 10MiB]
#   CACHES      cache states [warm cold]
#   REPEAT      counted repetitions per case [3]
#   WARMUP      warm-up repetitions per case [1]
#   MIN_TIME    shortest timed section of a repetition: the file is sent as many times as that takes [0.5s]
#   STRATEGIES  serial and parallel- strategies [sendfile read-send parallel-sendfile]
#   LAYOUT      striped or contiguous [striped]
#   OUT         result folder [results/<host>-<kernel>-<UTC date>]
#   XFERBENCH   the binary [target/release/xferbench, built if missing]
#   EXTRA       more options for `xferbench run`, e.g. "--drop-caches --sender-cpus 0-7"
set -euo pipefail
# OUT and XFERBENCH may be given relative to where the script was started.
start_dir=$PWD
cd "$(dirname "$0")/.."
# Paths given relative to where the script was started; inside the repository they are passed on relative to it,
# so that no result file records a path of this machine.
abs() { case $1 in /*) p=$1;; *) p=$start_dir/$1;; esac; realpath -m --relative-base="$PWD" "$p"; }
[ -n "${OUT:-}" ] && OUT=$(abs "$OUT")
[ -n "${XFERBENCH:-}" ] && XFERBENCH=$(abs "$XFERBENCH")

cpus=$(nproc)
SIZE=${SIZE:-1.2GB}
CHUNKS=${CHUNKS:-"1MiB 10MiB"}
CACHES=${CACHES:-"warm cold"}
REPEAT=${REPEAT:-3}
WARMUP=${WARMUP:-1}
MIN_TIME=${MIN_TIME:-0.5s}
STRATEGIES=${STRATEGIES:-"sendfile read-send parallel-sendfile"}
LAYOUT=${LAYOUT:-striped}
OUT=${OUT:-results/$(hostname -s 2>/dev/null || hostname)-$(uname -r)-$(date -u +%Y%m%d)}
EXTRA=${EXTRA:-}
if [ -n "${THREADS:-}" ]; then
    threads=$THREADS
else
    # More sender threads than twice the CPUs only measures the scheduler; ask with THREADS to go beyond.
    threads=""
    for t in 1 2 4 8 10 12 16; do
        if [ "$t" -le $((2 * cpus)) ]; then threads="$threads $t"; else dropped="${dropped:-} $t"; fi
    done
    threads=${threads# }
    [ -n "${dropped:-}" ] && echo "sweep: $cpus CPUs here: leaving out thread counts${dropped} (set THREADS to force)"
fi

bin=${XFERBENCH:-target/release/xferbench}
if [ ! -x "$bin" ]; then
    echo "sweep: building $bin"
    cargo build --release --quiet
fi

join() { local IFS=,; echo "$*"; }
# shellcheck disable=SC2086
strategies=$(join $STRATEGIES); threads_csv=$(join $threads); chunks=$(join $CHUNKS); caches=$(join $CACHES)

run_args=(--size "$SIZE" --strategies "$strategies" --threads "$threads_csv" --chunk "$chunks" --cache "$caches"
    --layout "$LAYOUT" --repeat "$REPEAT" --warmup "$WARMUP" --min-time "$MIN_TIME")
plan=$("$bin" run "${run_args[@]}" --dry-run)
plan=${plan%%$'\n'*}
cases=$(echo "$plan" | sed -n 's/^plan: \([0-9]*\) cases.*/\1/p')
runs=$(echo "$plan" | sed -n 's/.* \([0-9]*\) runs.*/\1/p')
bytes=$(echo "$plan" | sed -n 's/.* \([0-9]*\) bytes per run/\1/p')
# Rough: a repetition lasts its timed section (MIN_TIME with a quarter to spare, or one pass of the file at ~2 GB/s
# warm, ~1 GB/s cold, whichever is longer) plus putting the page cache in its state (reading the file at ~5 GB/s) and
# set-up; each case also spends about one repetition more finding its pass count.
min_ms=$(python3 -c "
import re,sys
t='$MIN_TIME'.strip(); m=re.fullmatch(r'([0-9.]+)\s*(ms|s|m)?', t)
print(int(float(m[1]) * {'ms': 1, 's': 1000, 'm': 60000, None: 1000}[m[2]]) if m else 500)")
ncaches=$(echo $CACHES | wc -w)
per_cache=$(( cases / ncaches ))
estimate_ms=0
for c in $CACHES; do
    case $c in cold) rate=1000000;; *) rate=2000000;; esac  # bytes per ms
    pass_ms=$(( bytes / rate ))
    timed=$(( min_ms * 5 / 4 )); [ "$pass_ms" -gt "$timed" ] && timed=$pass_ms
    rep_ms=$(( timed + bytes / 5000000 + 200 ))
    estimate_ms=$(( estimate_ms + per_cache * (WARMUP + 1 + REPEAT) * rep_ms ))
done
estimate=$(( estimate_ms / 1000 ))

cat <<PLAN
sweep: $cases case(s) x ($WARMUP warm-up + $REPEAT counted) = $runs runs of $SIZE
  strategies: $STRATEGIES
  threads:    $threads (parallel strategies only; layout $LAYOUT)
  chunks:     $CHUNKS
  caches:     $CACHES
  into:       $OUT (resumes: finished cases are skipped)
  timed:      each repetition at least $MIN_TIME (the file sent as many times as that takes)
  roughly:    $((estimate / 60)) min $((estimate % 60)) s, if nothing is already done (assuming ~2 GB/s warm, ~1 GB/s cold)
PLAN

mkdir -p "$OUT"
status=0
# shellcheck disable=SC2086
"$bin" run "${run_args[@]}" --out "$OUT" --resume $EXTRA || status=$?
if [ "$status" -eq 130 ]; then
    echo "sweep: interrupted; run again with OUT=$OUT to resume"
    exit 130
fi
"$bin" plot "$OUT" >/dev/null && echo "sweep: charts in $OUT"
exit "$status"
