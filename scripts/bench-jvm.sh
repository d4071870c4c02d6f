#!/usr/bin/env bash
# What the JVM adds: the study's Java paths, each sent by a JVM of its own, against the native paths that make the
# same calls, received and timed by the same sink. One `xferbench run` of every case under each congestion control,
# in rounds whose order turns: jvm-transferto against sendfile, parallel-jvm-transferto against parallel-sendfile
# (at each THREADS count, striped as the study's code did), jvm-read-write and jvm-nio against read-send. Then
# OUT/jvm.md: per congestion control and cache state, each Java path's MB/s over its native twin's and its sender
# CPU per GB over the native's (the whole JVM process, and its sending threads apart), paired round by round with
# their intervals (`xferbench stats`: no statistics here), and where each JVM case's first counted repetition
# ranks among its rounds (JVM start, class loading and the first compilations must not make it the slowest).
#
# Needs a JDK and strace on PATH (apt-get install openjdk-17-jdk-headless strace).
#
# Environment (defaults in brackets):
#   SIZE [1.2GB]   CHUNK [10MiB]   THREADS [2,10]   CCS [cubic,bbr]   CACHES [warm]   REPEAT [12 rounds]
#   MIN_TIME [0.5s]   OUT [results/jvm-<host>-<kernel>-<UTC date>]   EXTRA (more `xferbench run` options)
#   XFERBENCH  the binary [target/release/xferbench, built if missing]
. "$(dirname "$0")/lib/common.sh"
# shellcheck source=scripts/lib/bench.sh
. scripts/lib/bench.sh

SIZE=${SIZE:-1.2GB}
CHUNK=${CHUNK:-10MiB}
THREADS=${THREADS:-2,10}
CCS=${CCS:-cubic,bbr}
CACHES=${CACHES:-warm}
REPEAT=${REPEAT:-12}
MIN_TIME=${MIN_TIME:-0.5s}
OUT=$(abs "${OUT:-results/jvm-$stamp}")
EXTRA=${EXTRA:-}
need_bin
for tool in java javac strace; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not on PATH: apt-get install openjdk-17-jdk-headless strace"
done

say "$SIZE, $CHUNK chunks, threads $THREADS, congestion control $CCS, cache $CACHES, $REPEAT rounds, into $OUT"
status=0
# shellcheck disable=SC2086
"$bin" run --size "$SIZE" --chunk "$CHUNK" --threads "$THREADS" --layout striped --cache "$CACHES" --cc "$CCS" \
    --strategies sendfile,jvm-transferto,parallel-sendfile,parallel-jvm-transferto,read-send,jvm-read-write,jvm-nio \
    --repeat "$REPEAT" --warmup 1 --min-time "$MIN_TIME" --out "$OUT" --resume $EXTRA || status=$?
[ "$status" -eq 130 ] && exit 130
[ -s "$OUT/runs.csv" ] || exit "$status"

# Each ok counted row as round,name,value lines: MB/s, and sender CPU seconds per 10^9 bytes (the JVM's whole
# process for a jvm-* row, with its sending threads apart as NAME:threads), one file per cache state and algorithm.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
columns "$OUT/runs.csv" status round cache congestion_control strategy threads throughput_mb_s sender_user_s \
    sender_sys_s bytes_sent jvm_send_cpu_s | awk -F, -v dir="$work" '
    $1 == "ok" && $2 > 0 {
        name = $5 ($6 > 1 ? "-x" $6 : "")
        key = $3 "-" $4
        if (!(key in keys)) {
            keys[key] = 1
            print "round,name,value" > (dir "/mb_s-" key ".csv")
            print "round,name,value" > (dir "/cpu-" key ".csv")
            print key > (dir "/keys")
        }
        print $2 "," name "," $7 >> (dir "/mb_s-" key ".csv")
        gb = $10 / 1e9
        print $2 "," name "," ($8 + $9) / gb >> (dir "/cpu-" key ".csv")
        if ($11 != "") print $2 "," name ":threads," $11 / gb >> (dir "/cpu-" key ".csv")
    }'

# The values of BASE and NAMES in CSV, into a file of their own (stats pairs every name of its file with BASE).
pick() {
    local csv=$1 out=$2
    shift 2
    awk -F, -v names="$*" 'BEGIN { n = split(names, w, " "); for (i = 1; i <= n; i++) want[w[i]] = 1 }
        NR == 1 || ($2 in want)' "$csv" >"$out"
}

# Java path, native twin: the pairs compared.
pairs=("jvm-transferto sendfile")
IFS=, read -r -a counts <<<"$THREADS"
for n in "${counts[@]}"; do
    pairs+=("parallel-jvm-transferto-x$n parallel-sendfile-x$n")
done
pairs+=("jvm-read-write read-send" "jvm-nio read-send")

{
    echo "# What the JVM adds: $SIZE, $CHUNK chunks"
    echo
    echo "One \`xferbench run\` ($OUT), $REPEAT rounds in turning order, congestion control $CCS, cache $CACHES."
    echo "Each ratio is the Java path over its native twin, paired round by round; MB/s above 1: the JVM is faster;"
    echo "sender CPU per GB above 1 (lower is better, turned around): the JVM costs less."
    while read -r key; do
        echo
        echo "## $key"
        for pair in "${pairs[@]}"; do
            read -r java native <<<"$pair"
            echo
            echo "### $java against $native"
            echo
            echo "MB/s:"
            echo
            pick "$work/mb_s-$key.csv" "$work/one.csv" "$native" "$java"
            "$bin" stats "$work/one.csv" --baseline "$native" || echo "(no pair of rounds)"
            echo
            echo "Sender CPU per GB (the JVM's process; its sending threads as $java:threads):"
            echo
            pick "$work/cpu-$key.csv" "$work/one.csv" "$native" "$java" "$java:threads"
            "$bin" stats "$work/one.csv" --baseline "$native" --lower-is-better || echo "(no pair of rounds)"
        done
    done <"$work/keys"
    echo
    echo "## The first counted repetition of each JVM case, ranked among its rounds by MB/s (1 = fastest)"
    echo
    columns "$OUT/runs.csv" status round cache congestion_control strategy threads throughput_mb_s |
        awk -F, '$1 == "ok" && $2 > 0 && $5 ~ /jvm-/ {
            k = $5 ($6 > 1 ? " x" $6 : "") ", " $3 ", " $4
            n[k]++
            v[k, $2] = $7
            if (!(k in first) || $2 < first[k]) first[k] = $2
        }
        END {
            for (k in n) {
                rank = 1
                for (key in v) {
                    split(key, part, SUBSEP)
                    if (part[1] == k && v[key] > v[k, first[k]]) rank++
                }
                printf "- %s: round %d, %.0f MB/s, rank %d of %d\n", k, first[k], v[k, first[k]], rank, n[k]
            }
        }' | sort
} >"$OUT/jvm.md"
cat "$OUT/jvm.md"
exit "$status"
