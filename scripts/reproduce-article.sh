#!/usr/bin/env bash
# The article's experiment on this machine: a 1.2 GB file over loopback, serial sendfile against 10 threads
# sending 10 MiB chunks striped (as the original Java code did), read+send as the "traditional" path, cold and warm
# page cache, 8 trials each (6 is the fewest whose interval reaches 95%; 8 leave room for a failed one); then the
# 2017 medians beside this machine's (xferbench article). The trials are rounds of one `xferbench run`: each round
# runs every case once, in an order that turns each round. Each trial sends the file as many times as it takes to
# last MIN_TIME (passes; cold passes each start cold), and the table states times per 1.2 GB. The TCP congestion
# control is named (CC, cubic unless given): it decides single-stream numbers more than anything else, and bbr
# paces even loopback.
#
# The study sent from Java. Where a JDK and strace are on PATH, the run also has the study's own four Java paths
# (jvm-transferto, parallel-jvm-transferto, jvm-nio, jvm-read-write, each sent by a JVM of its own) beside the native
# ones, and the article table fills each 2017 row from the Java path that matches it, with the native one under it;
# without them, every row comes from the native paths and the script says so.
#
# Environment (defaults in brackets):
#   SIZE       [1.2GB]   REPEAT [8 rounds]   THREADS [10]   CHUNK [10MiB]   MIN_TIME [0.5s]   CC [cubic]
#   OUT        result folder [results/article-<host>-<kernel>-<UTC date>]
#   DROP_CACHES=1  also drop the whole page cache before cold cases (root), as the original study did
#   XFERBENCH  the binary [target/release/xferbench, built if missing]
#   EXTRA      more options for `xferbench run`
#   JVM        auto (the Java paths where java, javac and strace are on PATH), 1 (always: a missing JDK is an
#              error), 0 (never) [auto]
. "$(dirname "$0")/lib/common.sh"

SIZE=${SIZE:-1.2GB}
REPEAT=${REPEAT:-8}
CC=${CC:-cubic}
THREADS=${THREADS:-10}
CHUNK=${CHUNK:-10MiB}
MIN_TIME=${MIN_TIME:-0.5s}
OUT=$(abs "${OUT:-results/article-$stamp}")
EXTRA=${EXTRA:-}
JVM=${JVM:-auto}
need_bin
strategies=sendfile,parallel-sendfile,read-send
jvm_words=
case $JVM in
    1) use_jvm=1 ;;
    0) use_jvm=0 ;;
    auto)
        use_jvm=1
        for tool in java javac strace; do command -v "$tool" >/dev/null 2>&1 || use_jvm=0; done
        [ "$use_jvm" = 1 ] || say "no JDK or strace on PATH: the 2017 rows come from the native paths alone" \
            "(apt-get install openjdk-17-jdk-headless strace for the study's own Java paths)"
        ;;
    *) die "JVM must be auto, 0 or 1, not '$JVM'" ;;
esac
if [ "$use_jvm" = 1 ]; then
    strategies=$strategies,jvm-transferto,parallel-jvm-transferto,jvm-nio,jvm-read-write
    jvm_words=", and the study's own Java paths (jvm-*)"
fi
drop=()
[ "${DROP_CACHES:-0}" = 1 ] && drop=(--drop-caches)

echo "reproduce: $SIZE, sendfile vs parallel-sendfile x$THREADS ($CHUNK chunks, striped) vs read-send$jvm_words,"
echo "           cold and warm, $REPEAT rounds of at least $MIN_TIME a trial, congestion control $CC, into $OUT"
status=0
# shellcheck disable=SC2086
"$bin" run --size "$SIZE" --strategies "$strategies" --threads "$THREADS" \
    --chunk "$CHUNK" --layout striped --cache cold,warm --repeat "$REPEAT" --warmup 1 --min-time "$MIN_TIME" --cc "$CC" \
    --out "$OUT" --resume \
    "${drop[@]}" $EXTRA || status=$?
[ "$status" -eq 130 ] && exit 130
[ -s "$OUT/runs.csv" ] || exit "$status"
"$bin" plot "$OUT" >/dev/null || true
echo
"$bin" article "$OUT" --original fixtures/article/original-runs.csv
exit "$status"
