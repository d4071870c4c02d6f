#!/usr/bin/env bash
# The crash test at length (issue 16): a small sweep is SIGKILLed at KILLS random moments, each kill followed by the
# same command with --resume, and then finished. Checked at the end: every case has exactly REPEAT ok rows, no
# (case, repetition) pair is there twice, summary.json says finished and its ok counts are those of runs.csv, no torn
# row is left in runs.csv, no temporary file of a killed summary.json replacement is left, and no sink process
# outlived the run that spawned it. Prints one summary line (after one
# line per violation) and exits 1 on any violation.
#
# The kill moments: KILLS points drawn uniformly over the sweep's expected duration (one uninterrupted run of the
# plan, timed first, noting when each row appeared), sorted. A moment is "row r, then d seconds" of that run; run k
# is SIGKILLed once the folder holds the moment's row r, d seconds later (counted from its own start if the folder
# already holds r rows). So the kills fall all along the sweep, from its first start-up to its last case: in
# start-up, in a case's calibration, mid-repetition, between cases. A run that ends before its kill is noted and
# not counted as a kill.
#
# Environment (defaults in brackets):
#   KILLS         SIGKILLs [50]
#   SIZE          test file size [1MiB]
#   STRATEGIES    strategies, space-separated [sendfile read-send]
#   CASES         cases in the plan: each strategy at CASES/strategies chunk sizes (256KiB, 512KiB, 1MiB, ...) [4]
#   REPEAT        counted repetitions per case [20]
#   MIN_TIME      --min-time: how long a repetition lasts [100ms]
#   OUT           result folder, new or empty [a temporary folder, removed when everything holds]
#   SEED          seed of the kill moments [1]
#   FIXTURES_DIR  where the test file is made [beside the temporary folder's results]
#   XFERBENCH     the binary [target/release/xferbench, built if missing]
#   EXTRA         more options for `xferbench run`
. "$(dirname "$0")/lib/common.sh"
. scripts/lib/csv.sh
[ -n "${OUT:-}" ] && OUT=$(abs "$OUT")
[ -n "${FIXTURES_DIR:-}" ] && FIXTURES_DIR=$(abs "$FIXTURES_DIR")

KILLS=${KILLS:-50}
SIZE=${SIZE:-1MiB}
STRATEGIES=${STRATEGIES:-"sendfile read-send"}
CASES=${CASES:-4}
REPEAT=${REPEAT:-20}
MIN_TIME=${MIN_TIME:-100ms}
SEED=${SEED:-1}
EXTRA=${EXTRA:-}
work=$(mktemp -d "${TMPDIR:-/tmp}/crash-resume.XXXXXX")
OUT=${OUT:-$work/out}
FIXTURES_DIR=${FIXTURES_DIR:-$work/fx}

need_bin
# jq reads summary.json for the checks at the end.
need_packages "$me" jq=jq || exit 1
if [ -s "$OUT/runs.csv" ]; then
    echo "crash-resume: $OUT already holds rows: give OUT a new folder" >&2
    exit 2
fi

# shellcheck disable=SC2086
nstrategies=$(echo $STRATEGIES | wc -w)
per=$(( (CASES + nstrategies - 1) / nstrategies ))
chunks=""
kib=256
for _ in $(seq "$per"); do
    chunks="$chunks,${kib}KiB"
    kib=$((kib * 2))
done
join() { local IFS=,; echo "$*"; }
# shellcheck disable=SC2086
strategies=$(join $STRATEGIES)
run_args=(run --quiet --size "$SIZE" --fixture-dir "$FIXTURES_DIR" --strategies "$strategies" --chunk "${chunks#,}"
    --cache warm --warmup 0 --min-time "$MIN_TIME" --repeat "$REPEAT")
# shellcheck disable=SC2206
run_args+=($EXTRA)
plan=$("$bin" "${run_args[@]}" --dry-run)
cases=$(echo "$plan" | sed -n 's/^plan: \([0-9]*\) cases.*/\1/p')

violations=0
violation() {
    echo "crash-resume: VIOLATION: $*"
    violations=$((violations + 1))
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" -v p="${2:-1}" 'BEGIN { printf "%." p "f", b - a }'; }

# A live (not zombie) process whose command line says it is a sink.
sink_alive() {
    local state
    state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ] && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q ' sink '
}

# Make the file once, outside any timed or killed run.
"$bin" fixture --size "$SIZE" --fixture-dir "$FIXTURES_DIR" >/dev/null

# Whole rows in a result folder's runs.csv (newlines after the header's).
rows_in() {
    local n
    n=$(wc -l 2>/dev/null <"$1/runs.csv") || n=0
    echo $((n > 0 ? n - 1 : 0))
}

# One uninterrupted run, timed, with the moment each row appeared.
t0=$(now)
"$bin" "${run_args[@]}" --out "$work/timed" </dev/null >/dev/null 2>"$work/timed.err" &
pid=$!
row_times=""
seen=0
while kill -0 "$pid" 2>/dev/null; do
    n=$(rows_in "$work/timed")
    while [ "$seen" -lt "$n" ]; do
        seen=$((seen + 1))
        row_times="$row_times $(elapsed "$t0" 3)"
    done
    sleep 0.005
done
wait "$pid" || {
    echo "crash-resume: the uninterrupted run failed: $(tail -1 "$work/timed.err")" >&2
    exit 1
}
duration=$(elapsed "$t0" 3)
echo "crash-resume: $cases case(s) x $REPEAT repetition(s) of $SIZE (--min-time $MIN_TIME) into $OUT; an" \
    "uninterrupted run takes $duration s; $KILLS SIGKILL(s) over it (seed $SEED)"

# The moments, each as the row of the uninterrupted run it follows and how long after that row (or the start) it
# lies: a kill waits for the sweep to have that row, then that long.
moments=$(awk -v n="$KILLS" -v d="$duration" -v seed="$SEED" \
    'BEGIN { srand(seed); for (i = 0; i < n; i++) printf "%.3f\n", rand() * d }' | sort -n |
    awk -v times="$row_times" '
        BEGIN { m = split(times, t, " ") }
        { r = 0; while (r < m && t[r + 1] <= $1) r++; printf "%d %.3f\n", r, $1 - (r > 0 ? t[r] : 0) }')

started=$(now)
k=0
kills=0
after_a_row=0
had_rows=0
ended_early=0
sinks_left=0
while read -r row delta; do
    k=$((k + 1))
    "$bin" "${run_args[@]}" --out "$OUT" --resume </dev/null >"$work/run$k.out" 2>"$work/run$k.err" &
    pid=$!
    while [ "$(rows_in "$OUT")" -lt "$row" ] && kill -0 "$pid" 2>/dev/null; do sleep 0.005; done
    sleep "$delta"
    sinks=$(cat /proc/"$pid"/task/*/children 2>/dev/null || true)
    status=0
    kill -9 "$pid" 2>/dev/null || true
    { wait "$pid"; } 2>/dev/null || status=$?
    now_rows=$(rows_in "$OUT")
    if [ "$status" -eq 137 ]; then
        kills=$((kills + 1))
        [ "$now_rows" -gt "$had_rows" ] && after_a_row=$((after_a_row + 1))
    elif [ "$status" -eq 0 ]; then
        ended_early=$((ended_early + 1))
    else
        violation "run $k exited $status before its kill: $(tail -1 "$work/run$k.err")"
    fi
    had_rows=$now_rows
    for s in $sinks; do
        for _ in $(seq 100); do sink_alive "$s" || break; sleep 0.05; done
        if sink_alive "$s"; then
            violation "sink $s outlived run $k"
            sinks_left=$((sinks_left + 1))
        fi
    done
done <<<"$moments"

# The last resume finishes the sweep.
k=$((k + 1))
status=0
"$bin" "${run_args[@]}" --out "$OUT" --resume </dev/null >"$work/run$k.out" 2>"$work/run$k.err" || status=$?
[ "$status" -eq 0 ] || violation "the last resume exited $status: $(tail -1 "$work/run$k.err")"
torn_set_aside=$(cat "$work"/run*.err | grep -c "ended in a row cut short" || true)

# runs.csv against the plan and summary.json: "bad ..." lines, then "rows N duplicates D".
check() {
    local csv=$OUT/runs.csv counted state
    if [ -s "$csv" ] && [ -n "$(tail -c 1 "$csv")" ]; then
        echo "bad runs.csv ends in a torn row ($(tail -n 1 "$csv" | wc -c) bytes)"
    fi
    awk -v repeat="$REPEAT" -v cases="$cases" "$csv_awk"'
        NR == 1 { nh = fields($0, h); for (i = 1; i <= nh; i++) at[h[i]] = i; next }
        {
            split("", f)
            n = fields($0, f)
            if (n != nh) { printf "bad runs.csv line %d has %d fields, not %d\n", NR, n, nh; next }
            rows++
            c = f[at["case_id"]]; r = f[at["repetition"]] + 0
            times[c, r]++
            if (f[at["status"]] != "ok")
                printf "bad %s repetition %d: status %s (%s)\n", c, r, f[at["status"]], f[at["error"]]
            else { ok[c]++; okrep[c, r] = 1 }
        }
        END {
            for (k in times) if (times[k] > 1) {
                split(k, p, SUBSEP)
                printf "bad %s repetition %s written %d times\n", p[1], p[2], times[k]
                dups += times[k] - 1
            }
            for (c in ok) {
                nc++
                whole = ok[c] == repeat
                for (r = 1; r <= repeat; r++) if (!((c, r) in okrep)) whole = 0
                if (!whole) printf "bad %s: %d ok row(s), not repetitions 1..%d\n", c, ok[c], repeat
                printf "counted %s %d\n", c, ok[c]
            }
            if (nc != cases) printf "bad %d case(s) with ok rows, the plan has %d\n", nc, cases
            printf "rows %d duplicates %d\n", rows, dups
        }' "$csv" >"$work/facts"
    grep -v '^counted ' "$work/facts"
    state=$(jq -r .state "$OUT/summary.json")
    [ "$state" = finished ] || echo "bad summary.json says $state"
    counted=$(jq -r '.cases[] | "counted \(.case_id) \(.ok_runs)"' "$OUT/summary.json" | sort)
    [ "$counted" = "$(grep '^counted ' "$work/facts" | sort)" ] ||
        echo "bad summary.json's ok counts are not those of runs.csv:" $counted
}
facts=$(check) || facts="bad the check of runs.csv and summary.json failed"
while IFS= read -r line; do
    case $line in bad\ *) violation "${line#bad }" ;; esac
done <<<"$facts"
rows=$(sed -n 's/^rows \([0-9]*\) .*/\1/p' <<<"$facts")
duplicates=$(sed -n 's/.* duplicates \([0-9]*\)$/\1/p' <<<"$facts")
temporary=$(find "$OUT" -maxdepth 1 -name '*.tmp-*' | wc -l)
[ "$temporary" -eq 0 ] || violation "temporary files left in $OUT: $(cd "$OUT" && echo *.tmp-*)"

verdict=ok
[ "$violations" -eq 0 ] || verdict="$violations violation(s); logs in $work"
echo "crash-resume: kills $kills of $KILLS ($after_a_row after a row of their own, $ended_early run(s) ended first), rows ${rows:-?} ($cases cases x" \
    "$REPEAT), duplicates ${duplicates:-?}, torn tails set aside $torn_set_aside, sinks left $sinks_left," \
    "temporary files left $temporary, elapsed $(elapsed "$started") s: $verdict"
if [ "$violations" -ne 0 ]; then
    exit 1
fi
rm -rf "$work"
