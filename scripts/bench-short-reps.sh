#!/usr/bin/env bash
# What keeping short repetitions does to `vs sf`. The main job (`xferbench run`, its defaults, plus EXTRA) with this
# build, which keeps and counts a counted repetition that came out under 0.2 s (a faster mode than the warm-ups saw),
# and with BASE, a build from before that, which measured such a repetition again in its round and dropped it; RUNS
# runs of each, alternating (base, this, this, base, ...) so that drift in the machine hits both alike. Then, for
# each build, `xferbench compare` of its runs (every run's `vs sf` with its interval, the pooled median of all runs'
# per-round ratios, the spread of the runs' medians, how many runs' intervals hold the pooled median), and how many
# repetitions were short: this build's rows flagged short-run, and the repetitions BASE said it measured again.
# Writes OUT/base.md, OUT/this.md and OUT/short-reps.md.
#
# Environment: BASE (required: the other xferbench binary), RUNS [6], EXTRA ["--cc bbr"] (more `run` options for
#              both builds), OUT [results/short-reps-<host>-<kernel>-<date>], XFERBENCH [target/release/xferbench]
. "$(dirname "$0")/lib/common.sh"
# shellcheck source=scripts/lib/csv.sh
. scripts/lib/csv.sh
[ -n "${BASE:-}" ] || { echo "$me: set BASE to the other xferbench binary"; exit 2; }
base=$(abs "$BASE")
RUNS=${RUNS:-6}
EXTRA=${EXTRA:---cc bbr}
OUT=$(abs "${OUT:-results/short-reps-$stamp}")
need_bin
[ -x "$base" ] || die "BASE: $base is missing or not executable"
mkdir -p "$OUT"
say "$RUNS runs of the main job ($EXTRA) with $base and with $bin, alternating, into $OUT"
one() { # build run -> one run of the main job into OUT/build/run; its progress lines in OUT/build/run.err
    local build=$1 n=$2 b=$bin
    [ "$build" = base ] && b=$base
    [ -s "$OUT/$build/$n/summary.json" ] && return 0
    rm -rf "${OUT:?}/$build/$n"
    mkdir -p "$OUT/$build"
    # shellcheck disable=SC2086
    "$b" run --out "$OUT/$build/$n" $EXTRA >"$OUT/$build/$n.table" 2>"$OUT/$build/$n.err" ||
        die "$build run $n failed: $(tail -n1 "$OUT/$build/$n.err")"
    say "$build run $n done"
}
for n in $(seq 1 "$RUNS"); do
    if [ $((n % 2)) = 1 ]; then one base "$n"; one this "$n"; else one this "$n"; one base "$n"; fi
done
dirs() { for n in $(seq 1 "$RUNS"); do echo "$OUT/$1/$n"; done; }
# shellcheck disable=SC2046
"$bin" compare $(dirs base) >"$OUT/base.md"
# shellcheck disable=SC2046
"$bin" compare $(dirs this) >"$OUT/this.md"
# compare's table of every set's vs sf (its heading and paragraph left out: said once above).
section() { sed -n '/^## Ratios to sendfile, set by set/,/^MB\/s: median/p' "$1" | sed '$d' | sed -n '/^|/p'; }
# Counts, per case, of this build's rows flagged short-run and of BASE's "not counted: measured again" lines.
kept() {
    for n in $(seq 1 "$RUNS"); do
        columns "$OUT/this/$n/runs.csv" strategy threads flags | awk -F, '$3 ~ /short-run/ { print $1 " x" $2 }'
    done | sort | uniq -c
}
dropped() {
    cat "$OUT"/base/*.err | sed -n 's/^\[[0-9]*\/[0-9]*\] \(.*\): too short to time.*not counted.*/\1/p' | sort | uniq -c
}
{
    echo "# Short repetitions kept (this build) against measured again and dropped (BASE)"
    echo
    echo "$RUNS runs of the main job with each build, alternating, each with \`$EXTRA\`. Per case: every run's"
    echo "\`vs sf\` (the median of its per-round ratios to serial sendfile, with its interval), the median of all runs'"
    echo "per-round ratios pooled, the spread of the runs' medians ((max-min)/median), and how many runs' intervals hold"
    echo "the pooled median. The congestion control of each run is in base.md and this.md."
    echo
    echo "## BASE: short repetitions measured again and dropped"
    echo
    section "$OUT/base.md"
    echo
    echo "Repetitions dropped (case, count over all runs):"
    echo
    dropped | sed 's/^ *\([0-9]*\) \(.*\)/- \2: \1/'
    echo
    echo "## This build: short repetitions kept, flagged and counted"
    echo
    section "$OUT/this.md"
    echo
    echo "Repetitions kept under 0.2 s (strategy x threads, count over all runs):"
    echo
    kept | sed 's/^ *\([0-9]*\) \(.*\)/- \2: \1/'
} >"$OUT/short-reps.md"
cat "$OUT/short-reps.md"
