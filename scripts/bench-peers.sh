#!/usr/bin/env bash
# xferbench against its peers, side by side in one run, on loopback with the same warm file:
#   xferbench sendfile and read-send  vs  a bare C sender/receiver (bench/bare.c: only the syscall loop, the
#   receiver reading into 128 KiB)  vs  iperf3 -Z -F FILE and iperf3 -F FILE.
# Runs alternate (A B C ... B C A ...) so that drift in the machine hits every tool alike. Tools outside xferbench
# cannot be cases of one `xferbench run`, so each run's MB/s goes into OUT/peers.csv (round,name,value) and
# `xferbench stats` pairs them round by round: OUT/peers.md. Also measures the cost of --verify on single-stream
# sendfile (checked where the sink chooses, and in the receiving thread), in throughput and in CPU per byte (from
# xferbench's own rows, kept in OUT/xferbench-runs.csv), and the fixture's creation rate against dd.
#
# Environment: SIZE [1.2GB], ROUNDS [5], FIXTURE_ROUNDS [3], FIXTURE_SIZE [SIZE], CHUNK [10MiB], OUT [results/peers-<host>-<kernel>-<date>],
#              XFERBENCH [target/release/xferbench, built if missing], FIXTURES_DIR [fixtures] (folder of the test file),
#              NO_IPERF=1 to skip iperf3 (installed with jq, which reads its JSON, where it is missing and root can).
. "$(dirname "$0")/lib/common.sh"
. scripts/lib/bench.sh
SIZE=${SIZE:-1.2GB}
ROUNDS=${ROUNDS:-5}
FIXTURE_ROUNDS=${FIXTURE_ROUNDS:-3}
FIXTURE_SIZE=${FIXTURE_SIZE:-$SIZE}
CHUNK=${CHUNK:-10MiB}
OUT=$(abs "${OUT:-results/peers-$stamp}")
FIXTURES=$(abs "${FIXTURES_DIR:-fixtures}")
need_bin
mkdir -p "$OUT"
work=$(mktemp -d)
trap 'rm -rf "$work"; kill $(jobs -p) 2>/dev/null || true' EXIT

# iperf3 and jq (which reads iperf3's JSON) are installed where they can be; else iperf3 is left out.
if [ "${NO_IPERF:-0}" != 1 ] && ! need_packages "$me" iperf3=iperf3 jq=jq; then
    say "iperf3 left out"
    NO_IPERF=1
fi
gcc -O2 -o "$work/bare" bench/bare.c
file=$("$bin" fixture --size "$SIZE" --fixture-dir "$FIXTURES" | sed -n 's/^\(.*\) (\([0-9]*\) bytes.*/\1/p')
chunk=$(size_bytes "$CHUNK")
cat "$file" >/dev/null
results="$OUT/peers.csv" # round,name,value: MB/s of every tool in every round
rm -f "$results"
# xferbench's own row of every run it made here, labelled with the tool and the round, for the CPU tables.
rows="$OUT/xferbench-runs.csv"
rm -f "$rows"
record() { # tool round MB/s
    put "$results" "$2" "$1" "$3"
    printf '  %-26s %8s MB/s\n' "$1" "$3"
    if [ -f "$work/xb-last.csv" ]; then # left by xb: its run's row, labelled with this tool and round
        [ -f "$rows" ] || sed -n '1s/^/tool,peers_round,/p' "$work/xb-last.csv" >"$rows"
        sed -n "2s/^/$1,$2,/p" "$work/xb-last.csv" >>"$rows"
        rm -f "$work/xb-last.csv"
    fi
}

xb() { # strategy, extra options -> MB/s of one warm repetition (the fixture is reused, not remade)
    local o="$work/xb-$RANDOM"
    # One pass: the same bytes as the bare loop and iperf3 send.
    "$bin" run --size "$SIZE" --strategies "$1" --chunk "$CHUNK" --rx-buffer 128KiB --repeat 1 --warmup 0 --passes 1 \
        --out "$o" --quiet \
        --fixture-dir "$FIXTURES" "${@:2}" >/dev/null
    cp "$o/runs.csv" "$work/xb-last.csv"
    mb_s "$o"
}
iperf() { # extra client options -> MB/s as iperf3 reports it (receiver side)
    local port=$((20000 + RANDOM % 20000))
    iperf3 -s -1 -p "$port" >/dev/null 2>&1 &
    local pid=$!
    sleep 0.3
    iperf3 -c 127.0.0.1 -p "$port" -F "$file" -J "$@" >"$work/iperf.json" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    jq '.end.sum_received.bits_per_second / 8e6 * 10 | round / 10' "$work/iperf.json"
}

# Every tool once a round; the order turns by one each round, so that no tool always follows the same one (a run
# just after read-send, say, would always meet the caches read-send left).
tools=(xferbench-sendfile bare-sendfile xferbench-read-send bare-read-send xferbench-sendfile-verify
    xferbench-sendfile-verify-receiver)
[ "${NO_IPERF:-0}" != 1 ] && tools+=(iperf3-Z-F iperf3-F)
measure() { # tool -> MB/s
    case $1 in
        xferbench-sendfile) xb sendfile ;;
        bare-sendfile) bare sendfile ;;
        xferbench-read-send) xb read-send ;;
        bare-read-send) bare read ;;
        xferbench-sendfile-verify) xb sendfile --verify ;;
        xferbench-sendfile-verify-receiver) xb sendfile --verify --verify-on receiver ;;
        iperf3-Z-F) iperf -Z ;;
        iperf3-F) iperf ;;
    esac
}
say "$ROUNDS alternating rounds over $file ($CHUNK chunks), into $OUT"
for round in $(seq 1 "$ROUNDS"); do
    echo "round $round"
    for i in "${!tools[@]}"; do
        tool=${tools[$(((i + round - 1) % ${#tools[@]}))]}
        record "$tool" "$round" "$(measure "$tool")"
    done
done

say "fixture creation against dd ($FIXTURE_SIZE each, both synced to disk)"
for round in $(seq 1 "$FIXTURE_ROUNDS"); do
    rm -f "$work/f.bin" "$work/f.bin.meta.json" "$work/dd.bin"
    t0=$(date +%s.%N); "$bin" fixture --size "$FIXTURE_SIZE" --seed 99 --path "$work/f.bin" >/dev/null; t1=$(date +%s.%N)
    bytes=$(stat -c %s "$work/f.bin"); rm -f "$work/f.bin" "$work/f.bin.meta.json"
    t2=$(date +%s.%N); dd if=/dev/zero of="$work/dd.bin" bs=1M count=$((bytes / 1048576)) conv=fdatasync status=none; t3=$(date +%s.%N)
    record fixture "$round" "$(awk -v b="$bytes" -v s="$t0" -v e="$t1" 'BEGIN { printf "%.1f\n", b / 1e6 / (e - s) }')"
    record dd-zero "$round" "$(awk -v b="$bytes" -v s="$t2" -v e="$t3" 'BEGIN { printf "%.1f\n", b / 1e6 / (e - s) }')"
done

# Each tool's CPU per 10^9 bytes moved in every round, from xferbench's own rows: one CSV per measure.
cpu_measures=(sender sink sink-user softirq sender-waits sink-waits)
declare -A cpu_heading=([sender]="sender CPU s" [sink]="sink CPU s" [sink-user]="sink user CPU s"
    [softirq]="softirq CPU s" [sender-waits]="sender waits" [sink-waits]="sink waits")
columns "$rows" peers_round tool status file_bytes passes sender_user_s sender_sys_s sink_user_s sink_sys_s softirq_s \
    sender_voluntary_ctxsw sink_voluntary_ctxsw | awk -F, -v dir="$work" '
    $3 == "ok" && $6 != "" && $8 != "" {
        gb = $4 * ($5 > 0 ? $5 : 1) / 1e9
        printf "%s,%s,%.6f\n", $1, $2, ($6 + $7) / gb > (dir "/cpu-sender.csv")
        printf "%s,%s,%.6f\n", $1, $2, ($8 + $9) / gb > (dir "/cpu-sink.csv")
        printf "%s,%s,%.6f\n", $1, $2, $8 / gb > (dir "/cpu-sink-user.csv")
        printf "%s,%s,%.6f\n", $1, $2, $10 / gb > (dir "/cpu-softirq.csv")
        printf "%s,%s,%.1f\n", $1, $2, $11 / gb > (dir "/cpu-sender-waits.csv")
        printf "%s,%s,%.1f\n", $1, $2, $12 / gb > (dir "/cpu-sink-waits.csv")
    }'
for m in "${cpu_measures[@]}"; do
    if [ -f "$work/cpu-$m.csv" ]; then sed -i '1i round,name,value' "$work/cpu-$m.csv"; fi
done

# A comparison: `xferbench stats` of NAMEs against BASE, under a heading; left out when a side never ran.
pair() { # heading CSV BASE NAME...
    local heading=$1 csv=$2 name
    for name in "${@:3}"; do
        awk -F, -v n="$name" '$2 == n { found = 1 } END { exit !found }' "$csv" || return 0
    done
    printf '\n### %s\n\n' "$heading"
    stats_of "$csv" "${@:3}"
}
{
    echo "# Peers on $host (kernel $(uname -r), $(nproc) CPUs)"
    echo
    echo "$ROUNDS rounds over a $SIZE file in $CHUNK calls; each round runs every tool once, in an order that turns by"
    echo "one each round. MB/s of each run (xferbench: one pass, the sink reading into 128 KiB as bare C's receiver"
    echo "does). \`vs baseline\` is the ratio paired round by round (two runs of a round are seconds apart, so it"
    echo "cancels most of the machine's drift), with its interval, from \`xferbench stats\`."
    echo
    echo "## Throughput"
    pair "xferbench sendfile / bare sendfile (goal >= 1.0)" "$results" bare-sendfile xferbench-sendfile
    pair "xferbench read-send / bare read-send" "$results" bare-read-send xferbench-read-send
    pair "xferbench sendfile / iperf3 -Z -F (goal >= 1.5)" "$results" iperf3-Z-F xferbench-sendfile
    pair "xferbench read-send / iperf3 -F" "$results" iperf3-F xferbench-read-send
    pair "with --verify / without (goal >= 0.85; verify-receiver: checked in the receiving thread)" "$results" \
        xferbench-sendfile xferbench-sendfile-verify xferbench-sendfile-verify-receiver
    pair "fixture creation / dd of zeros ($FIXTURE_SIZE, both synced, $FIXTURE_ROUNDS round(s))" "$results" \
        dd-zero fixture
    echo
    echo "## CPU per 10^9 bytes of xferbench's runs"
    echo
    echo "Unlike throughput, the time a CPU spends on a byte hardly drifts with the machine, so the check's own cost"
    echo "shows here even where the throughput ratios are lost in noise. Each run's value is its row's (sender: the"
    echo "process; sink: its stream threads and any checking thread; user: the part in user space, where the content"
    echo "check runs; softirq: the whole machine's); \`vs baseline\` is each run's over plain sendfile's of the same"
    echo "round. The kernel splits a thread's CPU into user and system by sampling at its timer tick, and counts"
    echo "softirq in ticks: with runs under about a second, read these over many rounds, not one. The waits are"
    echo "voluntary context switches per 10^9 bytes: the sender waiting for room in the socket, the sink waiting for"
    echo "data; the side that waits less is the one that limits the stream."
    for m in "${cpu_measures[@]}"; do
        [ -f "$work/cpu-$m.csv" ] || continue
        pair "${cpu_heading[$m]} per 10^9 bytes" "$work/cpu-$m.csv" xferbench-sendfile xferbench-read-send \
            xferbench-sendfile-verify xferbench-sendfile-verify-receiver
    done
} >"$OUT/peers.md"
cat "$OUT/peers.md"
