#!/usr/bin/env bash
# Kafka's question on this machine: what TLS costs the zero-copy path. Plain sendfile, read+send, TLS in user space
# (tls-read-send: read, encrypt, send, as Kafka's SslTransportLayer does) and kernel TLS (ktls-sendfile, which
# falls back to tls-read-send, recorded, where the kernel has no tls module), each at CHUNKS, warm, --verify off,
# in ROUNDS rounds whose order turns by one each round; every repetition lasts at least MIN_TIME. Writes the rows
# of every round into OUT/runs.csv (for `xferbench plot`), OUT/tls.md (throughput ratios against sendfile and CPU
# per GB of sender and sink, medians of rounds) and the charts.
#
# Environment: SIZE [1.2GB], ROUNDS [5], CHUNKS ["32KiB 10MiB"], MIN_TIME [0.5s],
#              STRATEGIES ["sendfile read-send tls-read-send ktls-sendfile"], OUT [results/tls-<host>-<kernel>-<date>],
#              XFERBENCH [target/release/xferbench], EXTRA (more `run` options)
set -euo pipefail
start_dir=$PWD
cd "$(dirname "$0")/.."
abs() { case $1 in /*) p=$1;; *) p=$start_dir/$1;; esac; realpath -m --relative-base="$PWD" "$p"; }
SIZE=${SIZE:-1.2GB}
ROUNDS=${ROUNDS:-5}
CHUNKS=${CHUNKS:-"32KiB 10MiB"}
MIN_TIME=${MIN_TIME:-0.5s}
STRATEGIES=${STRATEGIES:-"sendfile read-send tls-read-send ktls-sendfile"}
OUT=$(abs "${OUT:-results/tls-$(hostname -s 2>/dev/null || hostname)-$(uname -r)-$(date -u +%Y%m%d)}")
EXTRA=${EXTRA:-}
bin=target/release/xferbench
[ -n "${XFERBENCH:-}" ] && bin=$(abs "$XFERBENCH")
[ -x "$bin" ] || cargo build --release --quiet
mkdir -p "$OUT/rounds"
join() { local IFS=,; echo "$*"; }
read -r -a strategies <<<"$STRATEGIES"
n=${#strategies[@]}
echo "tls: $ROUNDS rounds of (${strategies[*]}) x chunks ($CHUNKS), $SIZE warm, at least $MIN_TIME each, into $OUT"
for round in $(seq 1 "$ROUNDS"); do
    # This round's order: the list turned by one more each round.
    order=()
    for i in $(seq 0 $((n - 1))); do order+=("${strategies[$(((i + round) % n))]}"); done
    o="$OUT/rounds/$round"
    rm -rf "$o"
    # shellcheck disable=SC2086
    "$bin" run --size "$SIZE" --strategies "$(join "${order[@]}")" --chunk "$(join $CHUNKS)" --repeat 1 --warmup 1 \
        --min-time "$MIN_TIME" --out "$o" --quiet $EXTRA >/dev/null
    echo "  round $round done (${order[*]})"
done
# Every round's rows in one runs.csv, for the charts.
first=1
for f in "$OUT"/rounds/*/runs.csv; do
    if [ $first = 1 ]; then cat "$f" >"$OUT/runs.csv"; first=0; else tail -n +2 "$f" >>"$OUT/runs.csv"; fi
done
"$bin" plot "$OUT" >/dev/null
python3 - "$OUT/runs.csv" <<'PY' | tee "$OUT/tls.md"
import csv, statistics, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["status"] == "ok"]
def q(v, f):
    v = sorted(v); i = (len(v) - 1) * f; lo = int(i); hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (i - lo)
def per_gb(r, v):
    return float(v) / (int(r["file_bytes"]) * int(r["passes"]) / 1e9)
rounds = sorted({r["run_id"] for r in rows})
print(f"# TLS beside sendfile\n\n{len(rounds)} rounds in turning order, warm, one repetition of each case a round; "
      "medians over the rounds. CPU seconds per GB (10^9 bytes moved): sender user and total, sink user and total.\n")
print("| chunk | strategy | path | MB/s | vs sendfile (per round: median [IQR]) | sender user | sender | sink user | sink | suite |")
print("|--:|---|---|--:|---|--:|--:|--:|--:|---|")
chunks = sorted({int(r["chunk_bytes"]) for r in rows})
for chunk in chunks:
    base = {r["run_id"]: float(r["throughput_mb_s"]) for r in rows
            if r["strategy"] == "sendfile" and int(r["chunk_bytes"]) == chunk}
    for s in dict.fromkeys(r["strategy"] for r in rows):
        mine = [r for r in rows if r["strategy"] == s and int(r["chunk_bytes"]) == chunk]
        if not mine:
            continue
        mb = statistics.median(float(r["throughput_mb_s"]) for r in mine)
        ratios = [float(r["throughput_mb_s"]) / base[r["run_id"]] for r in mine if r["run_id"] in base]
        med = lambda f: statistics.median(f(r) for r in mine)
        su = med(lambda r: per_gb(r, r["sender_user_s"]))
        st = med(lambda r: per_gb(r, float(r["sender_user_s"]) + float(r["sender_sys_s"])))
        ku = med(lambda r: per_gb(r, r["sink_user_s"]))
        kt = med(lambda r: per_gb(r, float(r["sink_user_s"]) + float(r["sink_sys_s"])))
        paths = sorted({r["path"].split(":")[0] + (")" if ":" in r["path"] else "") for r in mine})
        ratio = f"{statistics.median(ratios):.2f}x [{q(ratios, .25):.2f}-{q(ratios, .75):.2f}]" if ratios else "-"
        chunk_text = f"{chunk // 1024} KiB" if chunk < 1 << 20 else f"{chunk >> 20} MiB"
        print(f"| {chunk_text} | {s} | {' / '.join(paths)} | {mb:.0f} | {ratio} | {su:.3f} | {st:.3f} | {ku:.3f} | "
              f"{kt:.3f} | {mine[0]['tls_cipher'] or '-'} |")
PY
