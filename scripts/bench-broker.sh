#!/usr/bin/env bash
# A broker's shape, measured in two steps, each one `xferbench run` with rounds in turning order:
#   shape  broker-sendfile, broker-read-send and broker-tls-read-send serving CONSUMERS consumers from 3 network
#          threads, warm, under each congestion control of CCS, ROUNDS rounds (OUT/shape: the table with every
#          ratio to broker-sendfile paired by round, consumers.csv, the charts);
#   loop   what the broker's loop itself costs: broker-sendfile with one consumer and one network thread against
#          plain sendfile, 1 MiB fetches against 1 MiB chunks, LOOP_ROUNDS rounds under cubic (OUT/loop), and
#          `xferbench stats` of the per-round MB/s, broker-sendfile over sendfile paired by round (OUT/loop/loop.md).
#
# Environment: SIZE [128MB], CONSUMERS [1,4,16,64], CCS [cubic,bbr], ROUNDS [10], LOOP_ROUNDS [20],
#              STEPS ["shape loop"], EXTRA (more `run` options for both), OUT [results/broker-<host>-<kernel>-<date>],
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
for step in ${STEPS:-shape loop}; do
    case $step in
        shape)
            say "shape: 3 broker strategies x consumers $CONSUMERS x $CCS, $ROUNDS rounds, into $OUT/shape"
            # shellcheck disable=SC2086
            "$bin" run --size "$SIZE" --strategies broker-sendfile,broker-read-send,broker-tls-read-send \
                --consumers "$CONSUMERS" --network-threads 3 --cc "$CCS" --cache warm --repeat "$ROUNDS" \
                --plot --out "$OUT/shape" $EXTRA | tee "$OUT/shape.txt"
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
