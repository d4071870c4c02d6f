#!/usr/bin/env bash
# Thread-count sweep: serial and parallel sendfile (and read-send) over thread counts, chunk sizes and both cache
# states, into one result folder, plotted at the end. One `xferbench run`: REPEAT rounds, each running every case
# once in an order that turns each round, so `vs sf` pairs each case with serial sendfile round by round.
# Re-running with the same OUT resumes: finished rounds are kept, a round cut short goes on from its next case.
#
# Environment (defaults in brackets):
#   SIZE        test file size [1.2GB]
#   THREADS     thread counts, space-separated [1 2 4 8 10 12 16, less those above 2x this machine's CPUs]
#   CHUNKS      chunk sizes [1MiB 10MiB]
#   CACHES      cache states [warm cold]
#   REPEAT      rounds (counted repetitions per case), or auto (rounds until every interval is narrow, see
#               `xferbench run --help`) [3]
#   WARMUP      warm-up repetitions per case [1]
#   MIN_TIME    shortest timed section of a repetition: the file is sent as many times as that takes [0.5s]
#   STRATEGIES  serial and parallel- strategies [sendfile read-send parallel-sendfile]
#   LAYOUT      striped or contiguous [striped]
#   OUT         result folder [results/<host>-<kernel>-<UTC date>]
#   XFERBENCH   the binary [target/release/xferbench, built if missing]
#   EXTRA       more options for `xferbench run`, e.g. "--drop-caches --sender-cpus 0-7"
. "$(dirname "$0")/lib/common.sh"
cpus=$(nproc)
SIZE=${SIZE:-1.2GB}
CHUNKS=${CHUNKS:-"1MiB 10MiB"}
CACHES=${CACHES:-"warm cold"}
REPEAT=${REPEAT:-3}
WARMUP=${WARMUP:-1}
MIN_TIME=${MIN_TIME:-0.5s}
STRATEGIES=${STRATEGIES:-"sendfile read-send parallel-sendfile"}
LAYOUT=${LAYOUT:-striped}
OUT=$(abs "${OUT:-results/$stamp}")
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

need_bin

# shellcheck disable=SC2086
strategies=$(join $STRATEGIES); threads_csv=$(join $threads); chunks=$(join $CHUNKS); caches=$(join $CACHES)

run_args=(--size "$SIZE" --strategies "$strategies" --threads "$threads_csv" --chunk "$chunks" --cache "$caches"
    --layout "$LAYOUT" --repeat "$REPEAT" --warmup "$WARMUP" --min-time "$MIN_TIME")
plan=$("$bin" run "${run_args[@]}" --dry-run)
plan=${plan%%$'\n'*}
# "plan: N cases, R runs, B bytes per run" ("at least R runs" with --repeat auto); R counts warm-ups too.
cases=$(echo "$plan" | sed -n 's/^plan: \([0-9]*\) cases.*/\1/p')
runs=$(echo "$plan" | sed -n 's/.* \([0-9]*\) runs.*/\1/p')
at_least=$(echo "$plan" | grep -o 'at least ' || true)
bytes=$(echo "$plan" | sed -n 's/.* \([0-9]*\) bytes per run/\1/p')
# Rough: a repetition lasts its timed section (MIN_TIME with a quarter to spare, or one pass of the file at ~2 GB/s
# warm, ~1 GB/s cold, whichever is longer) plus putting the page cache in its state (reading the file at ~5 GB/s) and
# set-up; each case also spends about one repetition more finding its pass count.
min_ms=$(awk -v t="$MIN_TIME" 'BEGIN {
    if (!match(t, /^[0-9.]+/)) { print 500; exit }
    v = substr(t, 1, RLENGTH); u = substr(t, RLENGTH + 1); gsub(/ /, "", u)
    printf "%d\n", v * (u == "ms" ? 1 : u == "m" ? 60000 : 1000)
}')
ncaches=$(echo $CACHES | wc -w)
per_cache=$(( (runs + cases) / ncaches ))
estimate_ms=0
for c in $CACHES; do
    case $c in cold) rate=1000000;; *) rate=2000000;; esac  # bytes per ms
    pass_ms=$(( bytes / rate ))
    timed=$(( min_ms * 5 / 4 )); [ "$pass_ms" -gt "$timed" ] && timed=$pass_ms
    rep_ms=$(( timed + bytes / 5000000 + 200 ))
    estimate_ms=$(( estimate_ms + per_cache * rep_ms ))
done
estimate=$(( estimate_ms / 1000 ))

cat <<PLAN
sweep: $cases case(s), $WARMUP warm-up(s) each, then $REPEAT round(s) in turning order = ${at_least}$runs runs of $SIZE
  strategies: $STRATEGIES
  threads:    $threads (parallel strategies only; layout $LAYOUT)
  chunks:     $CHUNKS
  caches:     $CACHES
  into:       $OUT (resumes: finished rounds are kept)
  timed:      each repetition at least $MIN_TIME (the file sent as many times as that takes)
  roughly:    ${at_least}$((estimate / 60)) min $((estimate % 60)) s, if nothing is already done (assuming ~2 GB/s warm, ~1 GB/s cold)
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
