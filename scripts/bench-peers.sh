#!/usr/bin/env bash
# xferbench against its peers, side by side in one run, on loopback with the same warm file:
#   xferbench sendfile and read-send  vs  a bare C sender/receiver (bench/bare.c: only the syscall loop, the
#   receiver reading into 128 KiB)  vs  iperf3 -Z -F FILE and iperf3 -F FILE.
# Runs alternate (A B C ... B C A ...) so that drift in the machine hits every tool alike; medians, spreads and
# ratios are printed and written to OUT/peers.md. Also measures the cost of --verify on single-stream sendfile (checked
# where the sink chooses, and in the receiving thread), in throughput and in CPU per byte, and the fixture's creation
# rate against dd.
#
# Environment: SIZE [1.2GB], ROUNDS [5], FIXTURE_ROUNDS [3], FIXTURE_SIZE [SIZE], CHUNK [10MiB], OUT [results/peers-<host>-<kernel>-<date>],
#              XFERBENCH [target/release/xferbench, built if missing], FIXTURES_DIR [fixtures] (folder of the test file),
#              NO_IPERF=1 to skip iperf3.
set -euo pipefail
start_dir=$PWD
cd "$(dirname "$0")/.."
. scripts/lib/bench.sh
# Paths given relative to where the script was started; inside the repository they are passed on relative to it,
# so that no result file records a path of this machine.
abs() { case $1 in /*) p=$1;; *) p=$start_dir/$1;; esac; realpath -m --relative-base="$PWD" "$p"; }
SIZE=${SIZE:-1.2GB}
ROUNDS=${ROUNDS:-5}
FIXTURE_ROUNDS=${FIXTURE_ROUNDS:-3}
FIXTURE_SIZE=${FIXTURE_SIZE:-$SIZE}
CHUNK=${CHUNK:-10MiB}
OUT=$(abs "${OUT:-results/peers-$(hostname -s 2>/dev/null || hostname)-$(uname -r)-$(date -u +%Y%m%d)}")
bin=target/release/xferbench
[ -n "${XFERBENCH:-}" ] && bin=$(abs "$XFERBENCH")
[ -x "$bin" ] || cargo build --release --quiet
mkdir -p "$OUT"
work=$(mktemp -d)
trap 'rm -rf "$work"; kill $(jobs -p) 2>/dev/null || true' EXIT

if [ "${NO_IPERF:-0}" != 1 ] && ! command -v iperf3 >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "peers: installing iperf3"
        if ! (apt-get install -y -qq iperf3 >/dev/null 2>&1 ||
            { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq iperf3 >/dev/null 2>&1; }); then
            echo "peers: iperf3 could not be installed (no network?); skipping it" && NO_IPERF=1
        fi
    else
        echo "peers: iperf3 missing and cannot be installed here; skipping it" && NO_IPERF=1
    fi
fi
gcc -O2 -o "$work/bare" bench/bare.c
FIXTURES=fixtures
[ -n "${FIXTURES_DIR:-}" ] && FIXTURES=$(abs "$FIXTURES_DIR")
# (relative to the repository root, where this script runs)
file=$("$bin" fixture --size "$SIZE" --fixture-dir "$FIXTURES" | sed -n 's/^\(.*\) (\([0-9]*\) bytes.*/\1/p')
chunk=$(size_bytes "$CHUNK")
cat "$file" >/dev/null
results="$OUT/peers.csv"
echo "tool,round,mb_s" >"$results"
rows="$OUT/xferbench-runs.csv" # xferbench's own row of every run it made here, for the CPU table
rm -f "$rows"
record() {
    echo "$1,$2,$3" >>"$results"
    printf '  %-26s %8s MB/s\n' "$1" "$3"
    if [ -f "$work/xb-last.csv" ]; then # left by xb: its run's row, labelled with this tool and round
        [ -f "$rows" ] || sed -n '1s/^/tool,round,/p' "$work/xb-last.csv" >"$rows"
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
    python3 -c "import csv;print(round(float(next(csv.DictReader(open('$o/runs.csv')))['throughput_mb_s'])))"
}
iperf() { # extra client options -> MB/s as iperf3 reports it (receiver side)
    local port=$((20000 + RANDOM % 20000))
    iperf3 -s -1 -p "$port" >/dev/null 2>&1 &
    local pid=$!
    sleep 0.3
    iperf3 -c 127.0.0.1 -p "$port" -F "$file" -J "$@" >"$work/iperf.json" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    python3 -c "import json;d=json.load(open('$work/iperf.json'));print(round(d['end']['sum_received']['bits_per_second']/8e6))"
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
echo "peers: $ROUNDS alternating rounds over $file ($CHUNK chunks), into $OUT"
for round in $(seq 1 "$ROUNDS"); do
    echo "round $round"
    for i in "${!tools[@]}"; do
        tool=${tools[$(((i + round - 1) % ${#tools[@]}))]}
        record "$tool" "$round" "$(measure "$tool")"
    done
done

echo "fixture creation against dd ($FIXTURE_SIZE each, both synced to disk)"
for round in $(seq 1 "$FIXTURE_ROUNDS"); do
    rm -f "$work/f.bin" "$work/f.bin.meta.json" "$work/dd.bin"
    t0=$(date +%s.%N); "$bin" fixture --size "$FIXTURE_SIZE" --seed 99 --path "$work/f.bin" >/dev/null; t1=$(date +%s.%N)
    bytes=$(stat -c %s "$work/f.bin"); rm -f "$work/f.bin" "$work/f.bin.meta.json"
    t2=$(date +%s.%N); dd if=/dev/zero of="$work/dd.bin" bs=1M count=$((bytes / 1048576)) conv=fdatasync status=none; t3=$(date +%s.%N)
    record fixture "$round" "$(python3 -c "print(round($bytes / 1e6 / ($t1 - $t0)))")"
    record dd-zero "$round" "$(python3 -c "print(round($bytes / 1e6 / ($t3 - $t2)))")"
done

python3 - "$results" "$OUT/peers.md" "$(uname -r)" "$(hostname)" "$(nproc)" "$rows" <<'PY'
import csv, os, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
by, rounds = {}, {}
for r in rows:
    by.setdefault(r["tool"], []).append(float(r["mb_s"]))
    rounds.setdefault(r["tool"], {})[r["round"]] = float(r["mb_s"])
med = {k: statistics.median(v) for k, v in by.items()}
def spread(v): return (max(v) - min(v)) / statistics.median(v) * 100
lines = [f"## Peers on {sys.argv[4]} (kernel {sys.argv[3]}, {sys.argv[5]} CPUs), medians of alternating rounds", "",
         "| tool | median MB/s | spread | n |", "|---|---|---|---|"]
lines += [f"| {k} | {med[k]:.0f} | {spread(v):.0f}% | {len(v)} |" for k, v in by.items()]
lines += ["", "Ratio of medians, and the median of the per-round ratios with its interquartile range (the two runs of a",
          "round are seconds apart, so the per-round ratio cancels most of this machine's drift).", "",
          "| ratio | of medians | per round: median [IQR] | rounds |", "|---|---|---|---|"]
def ratio(a, b, label):
    if a in med and b in med:
        pairs = sorted(rounds[a][k] / rounds[b][k] for k in rounds[a] if k in rounds[b])
        q = statistics.quantiles(pairs, n=4) if len(pairs) >= 2 else [pairs[0]] * 3
        lines.append(f"| {label} | {med[a] / med[b]:.2f}x | {q[1]:.2f}x [{q[0]:.2f}-{q[2]:.2f}] | {len(pairs)} |")
ratio("xferbench-sendfile", "bare-sendfile", "xferbench sendfile / bare sendfile (goal >= 1.0)")
ratio("xferbench-read-send", "bare-read-send", "xferbench read-send / bare read-send")
ratio("xferbench-sendfile", "iperf3-Z-F", "xferbench sendfile / iperf3 -Z -F (goal >= 1.5)")
ratio("xferbench-read-send", "iperf3-F", "xferbench read-send / iperf3 -F")
ratio("xferbench-sendfile-verify", "xferbench-sendfile", "with --verify / without (goal >= 0.85; --verify-on auto)")
ratio("xferbench-sendfile-verify-receiver", "xferbench-sendfile", "with --verify --verify-on receiver / without")
ratio("fixture", "dd-zero", "fixture creation / dd of zeros")
# CPU per 10^9 bytes of xferbench's runs: unlike throughput, the time a CPU spends on a byte hardly drifts with the
# machine, so the check's own cost shows here even where the throughput ratios are lost in noise.
if os.path.exists(sys.argv[6]):
    cpu = {}
    for r in csv.DictReader(open(sys.argv[6])):
        gb = float(r["file_bytes"]) / 1e9
        num = lambda c: float(r[c] or 0)
        cpu.setdefault(r["tool"], []).append((
            (num("sender_user_s") + num("sender_sys_s")) / gb, (num("sink_user_s") + num("sink_sys_s")) / gb,
            num("sink_user_s") / gb, num("sink_checker_cpu_s") / gb, num("softirq_s") / gb,
            num("sender_voluntary_ctxsw") / gb, num("sink_voluntary_ctxsw") / gb))
    m = {k: [statistics.median(c) for c in zip(*v)] for k, v in cpu.items()}
    lines += ["", "CPU seconds per 10^9 bytes, medians over the rounds (sink: its stream threads and any checking thread;",
              "user: the part in user space, where the content check runs; softirq: the whole machine's). The kernel",
              "splits a thread's CPU into user and system by sampling at its timer tick, and counts softirq in ticks:",
              "with runs under about a second, read these columns over many rounds, not one. The waits are voluntary",
              "context switches per 10^9 bytes: the sender waiting for room in the socket, the sink waiting for data;",
              "the side that waits less is the one that limits the stream.", "",
              "| run | sender | sink | sink user | checking thread | softirq | sender waits | sink waits |",
              "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {k} | {v[0]:.3f} | {v[1]:.3f} | {v[2]:.3f} | {v[3]:.3f} | {v[4]:.3f} | {v[5]:.0f} | {v[6]:.0f} |"
              for k, v in m.items()]
    base = m.get("xferbench-sendfile")
    for k, label in [("xferbench-sendfile-verify-receiver", "in the receiving thread"),
                     ("xferbench-sendfile-verify", "where --verify-on auto put it")]:
        if base and k in m and base[1] > 0:
            extra = m[k][2] - base[2]
            lines.append(f"- the check {label} adds {extra:.3f} sink user CPU s per 10^9 bytes, "
                         f"{extra / base[1] * 100:.0f}% of the sink's CPU without it")
text = "\n".join(lines) + "\n"
open(sys.argv[2], "w").write(text)
print(text)
PY
