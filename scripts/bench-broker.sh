#!/usr/bin/env bash
# A broker's shape, measured in two steps, each one `xferbench run` with rounds in turning order:
#   shape  broker-sendfile, broker-read-send and broker-tls-read-send serving CONSUMERS consumers from 3 network
#          threads, warm, under each congestion control of CCS, ROUNDS rounds (OUT/shape: the table with every
#          ratio to broker-sendfile paired by round, consumers.csv, the charts), and OUT/shape/cpu.md: each case's
#          CPU per GB (sender, sink and softirq) over broker-sendfile's with the same consumers and congestion
#          control, paired by round by `xferbench stats` (STEPS=cpu writes it again from OUT/shape/runs.csv);
#   jvm    the broker sent from a JVM, as Kafka's processors send (Selectors over non-blocking SocketChannels):
#          broker-jvm-transferto and broker-jvm-tls (SSLEngine) beside broker-sendfile and broker-tls-read-send,
#          CONSUMERS x CCS, 3 network threads, ROUNDS rounds (OUT/jvm), OUT/jvm/cpu.md as for shape, and
#          OUT/jvm/tls.md: broker-jvm-tls against broker-tls-read-send (Java's TLS engine against rustls), MB/s and
#          CPU per GB paired by round; needs a JDK and strace (the default STEPS leave it out, saying so, where
#          javac is not on PATH);
#   loop   what the broker's loop itself costs: broker-sendfile with one consumer and one network thread against
#          plain sendfile, 1 MiB fetches against 1 MiB chunks, LOOP_ROUNDS rounds under cubic (OUT/loop), and
#          `xferbench stats` of the per-round MB/s, broker-sendfile over sendfile paired by round (OUT/loop/loop.md).
#
# Environment: SIZE [128MB], CONSUMERS [1,4,16,64], CCS [cubic,bbr], ROUNDS [10], LOOP_ROUNDS [20],
#              STEPS ["shape jvm loop"], EXTRA (more `run` options for both), OUT [results/broker-<host>-<kernel>-<date>],
#              XFERBENCH [target/release/xferbench]
. "$(dirname "$0")/lib/common.sh"
. scripts/lib/csv.sh
SIZE=${SIZE:-128MB}
CONSUMERS=${CONSUMERS:-1,4,16,64}
CCS=${CCS:-cubic,bbr}
ROUNDS=${ROUNDS:-10}
LOOP_ROUNDS=${LOOP_ROUNDS:-20}
EXTRA=${EXTRA:-}
OUT=$(abs "${OUT:-results/broker-$stamp}")
need_bin
mkdir -p "$OUT"
# The (congestion control, consumers) groups of the ok rows of RUNS, one "cc,k" a line.
groups_of() {   # RUNS
    columns "$1" congestion_control consumers status | awk -F, '$3 == "ok" { print $1 "," $2 }' | sort -u -t, -k1,1 -k2,2n
}
# A CSV of round,name,value for `xferbench stats`: each ok row of RUNS under congestion control CC with K consumers,
# its WHAT: mb_s (its MB/s) or cpu_s_per_gb (sender, sink and softirq CPU seconds per 10^9 bytes moved, every
# consumer's); NAMES, where given, the |-separated strategies to keep.
per_round() {   # RUNS CC K WHAT [NAMES]
    echo "round,name,value"
    columns "$1" round strategy consumers congestion_control status throughput_mb_s sender_user_s sender_sys_s \
        sink_user_s sink_sys_s softirq_s file_bytes passes |
        awk -F, -v cc="$2" -v k="$3" -v what="$4" -v names="${5:-}" '$5 == "ok" && $4 == cc && $3 == k &&
            (names == "" || index("|" names "|", "|" $2 "|")) {
            v = what == "mb_s" ? $6 : ($7 + $8 + $9 + $10 + $11) / ($12 * $13 * $3 / 1e9)
            print $1 "," $2 "," v }'
}
# Each (congestion control, consumers) group's CPU seconds per GB moved, one CSV of round,name,value each, and
# `xferbench stats` of it against broker-sendfile (above 1: more CPU per GB than broker-sendfile).
cpu_report() {   # STEP: the step folder under OUT whose runs.csv is read
    local runs="$OUT/$1/runs.csv" md="$OUT/$1/cpu.md"
    {
        echo "# CPU per GB: each broker case over broker-sendfile with the same consumers and congestion control"
        echo
        echo "Sender, sink and softirq CPU seconds per 10^9 bytes moved (every consumer's), paired by round; above 1:"
        echo "more CPU per GB than broker-sendfile."
        for g in $(groups_of "$runs"); do
            local cc=${g%,*} k=${g#*,}
            local csv="$OUT/$1/cpu-$cc-$k.csv"
            per_round "$runs" "$cc" "$k" cpu_s_per_gb >"$csv"
            echo
            echo "## $k consumer(s), $cc"
            echo
            "$bin" stats "$csv" --baseline broker-sendfile
        done
    } >"$md"
    cat "$md"
}
default_steps="shape jvm loop"
if [ -z "${STEPS:-}" ] && ! command -v javac >/dev/null; then
    say "no javac on PATH: the jvm step is left out (apt-get install openjdk-17-jdk-headless strace)"
    default_steps="shape loop"
fi
# OUT/STEP/tls.md: broker-jvm-tls against broker-tls-read-send with the same consumers and congestion control,
# MB/s and CPU seconds per GB, each paired by round by `xferbench stats`.
tls_report() {   # STEP
    local runs="$OUT/$1/runs.csv" md="$OUT/$1/tls.md"
    {
        echo "# Java's TLS engine against rustls: broker-jvm-tls over broker-tls-read-send"
        echo
        echo "The same calls (32 KiB reads, records of at most 16 KiB, written as the socket takes them), sealed by"
        echo "SSLEngine in a JVM or by rustls in xferbench; paired by round, per consumers and congestion control."
        for g in $(groups_of "$runs"); do
            local cc=${g%,*} k=${g#*,}
            for what in mb_s cpu_s_per_gb; do
                local csv="$OUT/$1/tls-$what-$cc-$k.csv"
                per_round "$runs" "$cc" "$k" "$what" "broker-tls-read-send|broker-jvm-tls" >"$csv"
                echo
                echo "## $k consumer(s), $cc: $what"
                echo
                "$bin" stats "$csv" --baseline broker-tls-read-send
            done
        done
    } >"$md"
    cat "$md"
}
for step in ${STEPS:-$default_steps}; do
    case $step in
        shape)
            say "shape: 3 broker strategies x consumers $CONSUMERS x $CCS, $ROUNDS rounds, into $OUT/shape"
            # shellcheck disable=SC2086
            "$bin" run --size "$SIZE" --strategies broker-sendfile,broker-read-send,broker-tls-read-send \
                --consumers "$CONSUMERS" --network-threads 3 --cc "$CCS" --cache warm --repeat "$ROUNDS" \
                --plot --out "$OUT/shape" $EXTRA | tee "$OUT/shape.txt"
            cpu_report shape
            ;;
        cpu) cpu_report shape ;;
        jvm)
            say "jvm: broker-jvm-transferto and broker-jvm-tls beside their native twins x consumers $CONSUMERS x $CCS, $ROUNDS rounds, into $OUT/jvm"
            # shellcheck disable=SC2086
            "$bin" run --size "$SIZE" \
                --strategies broker-sendfile,broker-jvm-transferto,broker-tls-read-send,broker-jvm-tls \
                --consumers "$CONSUMERS" --network-threads 3 --cc "$CCS" --cache warm --repeat "$ROUNDS" \
                --plot --out "$OUT/jvm" $EXTRA | tee "$OUT/jvm.txt"
            cpu_report jvm
            tls_report jvm
            ;;
        loop)
            say "loop: broker-sendfile (1 consumer, 1 network thread) against sendfile, $LOOP_ROUNDS rounds, into $OUT/loop"
            # shellcheck disable=SC2086
            "$bin" run --size "$SIZE" --strategies sendfile,broker-sendfile --consumers 1 --network-threads 1 \
                --chunk 1MiB --fetch-size 1MiB --cc cubic --cache warm --repeat "$LOOP_ROUNDS" --out "$OUT/loop" \
                $EXTRA | tee "$OUT/loop.txt"
            csv="$OUT/loop/loop.csv"
            echo "round,name,value" >"$csv"
            columns "$OUT/loop/runs.csv" round strategy throughput_mb_s status |
                awk -F, '$4 == "ok" { print $1 "," $2 "," $3 }' >>"$csv"
            {
                echo "# The broker's loop against plain sendfile"
                echo
                echo "broker-sendfile with 1 consumer and 1 network thread (1 MiB fetches) against sendfile (1 MiB" \
                    "chunks), $SIZE, warm, cubic, $LOOP_ROUNDS rounds in turning order; MB/s per round."
                echo
                "$bin" stats "$csv" --baseline sendfile
            } >"$OUT/loop/loop.md"
            cat "$OUT/loop/loop.md"
            ;;
        *) die "unknown step $step" ;;
    esac
done
