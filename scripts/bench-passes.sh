#!/usr/bin/env bash
# What passes cost: one repetition that sends a SIZE file K times over the same connections (--passes K) against
# one that sends a K x SIZE file once (--passes 1), warm, in alternating rounds (the order turns each round), so
# that drift in the machine hits both alike. The goal is a ratio of 1.00 within 2%: a pass is as good as more
# bytes. Two files cannot be one `xferbench run`, so each round's MB/s go into OUT/passes-<strategy>.csv
# (round,name,value) and `xferbench stats` pairs them round by round: OUT/passes.md. xferbench's rows stay in
# OUT/runs/.
#
# Environment: SIZE [1.2GB], K [4], ROUNDS [7], STRATEGIES ["sendfile parallel-sendfile"], THREADS [10],
#              CHUNK [10MiB], OUT [results/passes-<host>-<kernel>-<date>], XFERBENCH [target/release/xferbench],
#              FIXTURES_DIR [fixtures] (needs (K + 1) x SIZE of free disk, and as much free memory to keep both warm)
. "$(dirname "$0")/lib/common.sh"
. scripts/lib/bench.sh
SIZE=${SIZE:-1.2GB}
K=${K:-4}
ROUNDS=${ROUNDS:-7}
STRATEGIES=${STRATEGIES:-"sendfile parallel-sendfile"}
THREADS=${THREADS:-10}
CHUNK=${CHUNK:-10MiB}
OUT=$(abs "${OUT:-results/passes-$stamp}")
FIXTURES=$(abs "${FIXTURES_DIR:-fixtures}")
need_bin
bytes=$(size_bytes "$SIZE")
big=$((bytes * K))
mkdir -p "$OUT/runs"
say "$SIZE x $K passes against $big bytes x 1 pass, $ROUNDS rounds of ($STRATEGIES), warm, into $OUT"
# Both fixtures made (or reused) before any round, so no round waits on the disk.
"$bin" fixture --size "$bytes" --fixture-dir "$FIXTURES" >/dev/null
"$bin" fixture --size "$big" --fixture-dir "$FIXTURES" >/dev/null
passes_name="passes-$K"
big_name="one-file-x$K"
rm -f "$OUT"/passes-*.csv
one() { # strategy form round -> appends the run's MB/s to the strategy's CSV
    local s=$1 form=$2 r=$3 size passes o
    case $form in
        "$passes_name") size=$bytes; passes=$K ;;
        "$big_name") size=$big; passes=1 ;;
    esac
    o="$OUT/runs/$s-$form-$r"
    rm -rf "$o"
    "$bin" run --size "$size" --fixture-dir "$FIXTURES" --strategies "$s" --threads "$THREADS" --chunk "$CHUNK" \
        --repeat 1 --warmup 1 --passes "$passes" --out "$o" --quiet >/dev/null
    put "$OUT/passes-$s.csv" "$r" "$form" "$(mb_s "$o")"
}
for r in $(seq 1 "$ROUNDS"); do
    for s in $STRATEGIES; do
        if [ $((r % 2)) = 1 ]; then
            one "$s" "$passes_name" "$r"; one "$s" "$big_name" "$r"
        else
            one "$s" "$big_name" "$r"; one "$s" "$passes_name" "$r"
        fi
    done
    echo "  round $r done"
done
{
    echo "# What passes cost"
    echo
    echo "$SIZE sent $K times over the same connections (\`$passes_name\`: --passes $K) against a $big-byte file sent"
    echo "once (\`$big_name\`), warm, $ROUNDS rounds in turning order; $CHUNK chunks, $THREADS threads for parallel"
    echo "strategies. MB/s of each run; \`vs baseline\` is the ratio to the big file, paired round by round"
    echo "(\`xferbench stats\`)."
    for s in $STRATEGIES; do
        echo
        echo "## $s"
        echo
        stats_of "$OUT/passes-$s.csv" "$big_name" "$passes_name"
    done
} | tee "$OUT/passes.md"
