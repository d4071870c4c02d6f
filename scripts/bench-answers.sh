#!/usr/bin/env bash
# Do the main job's answers hold from one run to the next? The main job (`xferbench run`, the article's four paths)
# RUNS times back to back in two forms, the runs of the two forms alternating (before, after, after, before, ...) so
# that drift in the machine hits both alike:
#   before: BEFORE ["--order grouped --repeat 3 --min-time 0.5s"]: every repetition of a case, then the next case
#           (the order, repetition count and repetition length of the main job before rounds);
#   after:  AFTER [""]: the main job's defaults (rounds in turning order, --repeat auto).
# Then `xferbench compare` of each form's RUNS result folders: per case, every run's `vs sf` with its interval, the
# pooled median of all runs' per-round ratios, the spread of the runs' medians and how many runs' intervals hold the
# pooled median. Writes OUT/before.md, OUT/after.md and OUT/answers.md (both tables and the time each run took).
#
# Environment: RUNS [5], BEFORE, AFTER, EXTRA (more `run` options for both forms, e.g. --cc cubic),
#              OUT [results/answers-<host>-<kernel>-<date>], XFERBENCH [target/release/xferbench]
. "$(dirname "$0")/lib/common.sh"
RUNS=${RUNS:-5}
BEFORE=${BEFORE:---order grouped --repeat 3 --min-time 0.5s}
AFTER=${AFTER:-}
EXTRA=${EXTRA:-}
OUT=$(abs "${OUT:-results/answers-$stamp}")
need_bin
mkdir -p "$OUT"
times="$OUT/times.csv"
[ -s "$times" ] || echo "round,name,value" >"$times"
say "$RUNS runs of the main job before ($BEFORE) and after (${AFTER:-the defaults}), alternating, into $OUT"
one() { # form run -> one run of the main job into OUT/form/run, its duration in times.csv
    local form=$1 n=$2 args t0 t1
    [ -s "$OUT/$form/$n/summary.json" ] && return 0
    if [ "$form" = before ]; then args=$BEFORE; else args=$AFTER; fi
    rm -rf "${OUT:?}/$form/$n"
    mkdir -p "$OUT/$form"
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    "$bin" run --quiet --out "$OUT/$form/$n" $args $EXTRA >"$OUT/$form/$n.table" 2>"$OUT/$form/$n.err" ||
        die "$form run $n failed: $(tail -n1 "$OUT/$form/$n.err")"
    t1=$(date +%s.%N)
    echo "$n,$form,$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')" >>"$times"
    say "$form run $n: $(awk -F, -v n="$n" -v f="$form" '$1 == n && $2 == f { print $3 }' "$times" | tail -n1) s"
}
for n in $(seq 1 "$RUNS"); do
    if [ $((n % 2)) = 1 ]; then one before "$n"; one after "$n"; else one after "$n"; one before "$n"; fi
done
dirs() { for n in $(seq 1 "$RUNS"); do echo "$OUT/$1/$n"; done; }
# shellcheck disable=SC2046
"$bin" compare $(dirs before) >"$OUT/before.md"
# shellcheck disable=SC2046
"$bin" compare $(dirs after) >"$OUT/after.md"
# compare's table of every set's vs sf (its heading and paragraph left out: said once above).
section() { sed -n '/^## Ratios to sendfile, set by set/,/^MB\/s: median/p' "$1" | sed '$d' | sed -n '/^|/p'; }
{
    echo "# Do the main job's answers hold?"
    echo
    echo "$RUNS runs of each form, alternating. Before: \`$BEFORE\`. After: \`${AFTER:-the defaults}\`. ${EXTRA:+Both with \`$EXTRA\`.}"
    echo "Per case: every run's \`vs sf\` (the median of its per-round ratios to serial sendfile, with its interval),"
    echo "the median of all runs' per-round ratios pooled, the spread of the runs' medians ((max-min)/median), and how"
    echo "many runs' intervals hold the pooled median. The congestion control of each run is in before.md and after.md."
    echo
    echo "## Before"
    echo
    section "$OUT/before.md"
    echo
    echo "## After"
    echo
    section "$OUT/after.md"
    echo
    echo "## How long each run took (seconds)"
    echo
    "$bin" stats "$times" --baseline before --lower-is-better
} >"$OUT/answers.md"
cat "$OUT/answers.md"
