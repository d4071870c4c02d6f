#!/usr/bin/env bash
# This build of xferbench against another (BASE: an older release binary, e.g. built from an earlier commit) on the
# same warm file, in turning order so that drift hits both alike:
#   1. the timed loop: single-stream sendfile of each build, one pass each, beside the bare C sendfile loop
#      (bench/bare.c, receiver reading into 128 KiB as both builds' sinks are told to), ROUNDS rounds; each round's
#      MB/s go into OUT/versions.csv (round,name,value: this, base, bare) and `xferbench stats` pairs them;
#   2. the main job (`run` with its defaults) of each build with --repeat 5, SPREAD_ROUNDS times: the spread of
#      every case, as each build's summary.json gives it (read with jq).
# Writes OUT/versions.md and OUT/versions.csv.
#
# Environment: BASE (required), SIZE [1.2GB], ROUNDS [9], CHUNK [10MiB], SPREAD_ROUNDS [1], SPREAD [1; 0 skips part
#              2], OUT [results/versions-<host>-<kernel>-<date>], XFERBENCH [target/release/xferbench],
#              MAIN_EXTRA (more options for part 2's runs of both builds), FIXTURES_DIR [fixtures] (folder of the
#              test file), REPORT_ONLY=1 (measure nothing: write the report of what OUT holds)
. "$(dirname "$0")/lib/common.sh"
. scripts/lib/bench.sh
[ -n "${BASE:-}" ] || { echo "$me: set BASE to the other xferbench binary"; exit 2; }
base=$(abs "$BASE")
SIZE=${SIZE:-1.2GB}
ROUNDS=${ROUNDS:-9}
CHUNK=${CHUNK:-10MiB}
OUT=$(abs "${OUT:-results/versions-$stamp}")
FIXTURES=$(abs "${FIXTURES_DIR:-fixtures}")
need_bin
mkdir -p "$OUT"
work=$(mktemp -d)
trap 'rm -rf "$work"; kill $(jobs -p) 2>/dev/null || true' EXIT
results="$OUT/versions.csv"
# A set made before `xferbench stats` (tool,round,mb_s) is read as round,name,value.
if [ "${REPORT_ONLY:-0}" = 1 ] && [ "$(head -1 "$results")" = tool,round,mb_s ]; then
    awk -F, 'NR == 1 { print "round,name,value"; next } { print $2 "," $1 "," $3 }' "$results" >"$work/versions.csv"
    results=$work/versions.csv
fi
if [ "${REPORT_ONLY:-0}" != 1 ]; then
    gcc -O2 -o "$work/bare" bench/bare.c
    file=$("$bin" fixture --size "$SIZE" --fixture-dir "$FIXTURES" | sed -n 's/^\(.*\) (\([0-9]*\) bytes.*/\1/p')
    chunk=$(size_bytes "$CHUNK")
    cat "$file" >/dev/null
    rm -f "$results"
    run_of() { # binary label extra... -> MB/s of one warm sendfile repetition
        local o="$work/$2-$RANDOM"
        "$1" run --size "$SIZE" --fixture-dir "$FIXTURES" --strategies sendfile --chunk "$CHUNK" --rx-buffer 128KiB \
            --repeat 1 --warmup 0 --out "$o" --quiet "${@:3}" >/dev/null
        mb_s "$o"
    }
    # One pass each: a build old enough to know no --passes sends the file once anyway.
    base_passes=()
    "$base" run --help | grep -q -- '--passes' && base_passes=(--passes 1)
    tools=(this base bare)
    say "$ROUNDS rounds of (${tools[*]}), sendfile, $SIZE warm, one pass"
    for round in $(seq 1 "$ROUNDS"); do
        for i in 0 1 2; do
            t=${tools[$(((i + round) % 3))]}
            case $t in
                this) v=$(run_of "$bin" this --passes 1) ;;
                base) v=$(run_of "$base" base "${base_passes[@]}") ;;
                bare) v=$(bare sendfile) ;;
            esac
            put "$results" "$round" "$t" "$v"
        done
        echo "  round $round done"
    done
    if [ "${SPREAD:-1}" = 1 ]; then
        for round in $(seq 1 "${SPREAD_ROUNDS:-1}"); do
            for t in this base; do
                b=$bin; [ $t = base ] && b=$base
                rm -rf "$OUT/main-$t-$round"
                # shellcheck disable=SC2086
                "$b" run --size "$SIZE" --fixture-dir "$FIXTURES" --repeat 5 --out "$OUT/main-$t-$round" --quiet \
                    ${MAIN_EXTRA:-} >/dev/null
            done
        done
    fi
fi
main=$(find "$OUT" -maxdepth 2 -path "$OUT/main-*-*/summary.json" | sort -V)
[ -z "$main" ] || need_packages "$me" jq=jq || exit 1
{
    echo "# This build against another"
    echo
    echo "## The timed loop: sendfile, one pass, rounds in turning order"
    echo
    echo "MB/s of each build's run and of the bare C loop's, each round; \`vs baseline\` is paired round by round"
    echo "(\`xferbench stats\`). Against the bare C loop:"
    echo
    stats_of "$results" bare this base
    echo
    echo "This build against the other:"
    echo
    stats_of "$results" base this
    if [ -n "$main" ]; then
        echo
        echo "## The main job, 5 repetitions, each build's spread (max-min)/median of each case, round by round"
        echo
        echo "Each cell: the spread of every round, with the median timed section in brackets (summary.json)."
        echo
        echo "| case | before (base) | after (this) |"
        echo "|---|--:|--:|"
        # One line per case, build and round: label, build, spread %, median wall seconds; then the cells.
        for s in $main; do
            t=$(basename "$(dirname "$s")" | cut -d- -f2)
            jq -r --arg t "$t" '.cases[] | select(.metrics.throughput_mb_s) |
                [.strategy + (if (.strategy | startswith("parallel-")) then " x\(.threads)" else "" end), $t,
                 (.metrics.throughput_mb_s | (.max - .min) / .median * 100 | round),
                 .metrics.wall_s.median] | @tsv' "$s"
        done | awk -F'\t' '
            !($1 in seen) { seen[$1] = 1; order[++n] = $1 }
            { k = $1 SUBSEP $2; at[k] = at[k] (at[k] == "" ? "" : ", ") sprintf("%d%% (%.3f s)", $3, $4) }
            END {
                for (i = 1; i <= n; i++) {
                    b = (order[i] SUBSEP "base") in at ? at[order[i], "base"] : "-"
                    a = (order[i] SUBSEP "this") in at ? at[order[i], "this"] : "-"
                    printf "| %s | %s | %s |\n", order[i], b, a
                }
            }'
    fi
} | tee "$OUT/versions.md"
