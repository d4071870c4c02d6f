#!/usr/bin/env bash
# What an option costs: the same run with A's options and with B's, ROUNDS rounds, the two alternating (A B, B A,
# ...) so that drift in the machine hits both alike; each run one repetition of STRATEGY after one warm-up. The
# MB/s of every run go into OUT/options.csv (round,name,value) and `xferbench stats` puts B against A, paired round
# by round with its interval, into OUT/options.md.
#
# Environment: A ["--interval 0"], B ["--interval 50ms"], STRATEGY [sendfile], SIZE [1.2GB], ROUNDS [15],
#              EXTRA (more `run` options for both), OUT [results/options-<host>-<kernel>-<date>],
#              XFERBENCH [target/release/xferbench]
. "$(dirname "$0")/lib/common.sh"
A=${A:---interval 0}
B=${B:---interval 50ms}
STRATEGY=${STRATEGY:-sendfile}
SIZE=${SIZE:-1.2GB}
ROUNDS=${ROUNDS:-15}
EXTRA=${EXTRA:-}
OUT=$(abs "${OUT:-results/options-$stamp}")
need_bin
mkdir -p "$OUT/runs"
csv="$OUT/options.csv"
echo "round,name,value" >"$csv"
say "$ROUNDS rounds of $STRATEGY ($SIZE) with A ($A) and B ($B), alternating, into $OUT"
one() { # name round options -> a line of options.csv
    local o="$OUT/runs/$1-$2"
    rm -rf "$o"
    # shellcheck disable=SC2086
    "$bin" run --quiet --size "$SIZE" --strategies "$STRATEGY" --repeat 1 --warmup 1 --out "$o" $3 $EXTRA \
        >/dev/null 2>"$o.err" || die "run $1 of round $2 failed: $(tail -n1 "$o.err")"
    echo "$2,$1,$("$bin" stats --mb-s "$o")" >>"$csv"
}
for round in $(seq 1 "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then one A "$round" "$A"; one B "$round" "$B"; else one B "$round" "$B"; one A "$round" "$A"; fi
done
{
    echo "# B against A: $STRATEGY, $SIZE"
    echo
    echo "A: \`$A\`; B: \`$B\`${EXTRA:+; both with \`$EXTRA\`}. MB/s of one repetition a run, $ROUNDS rounds in turning order."
    echo
    "$bin" stats "$csv" --baseline A
} >"$OUT/options.md"
cat "$OUT/options.md"
