#!/usr/bin/env bash
# What passes cost: one repetition that sends a SIZE file K times over the same connections (--passes K) against
# one that sends a K x SIZE file once (--passes 1), warm, in alternating rounds (the order turns each round), so
# that drift in the machine hits both alike. The goal is a ratio of 1.00 within 2%: a pass is as good as more
# bytes. Writes OUT/passes.md and OUT/passes.csv, and keeps xferbench's rows (OUT/runs/).
#
# Environment: SIZE [1.2GB], K [4], ROUNDS [7], STRATEGIES ["sendfile parallel-sendfile"], THREADS [10],
#              CHUNK [10MiB], OUT [results/passes-<host>-<kernel>-<date>], XFERBENCH [target/release/xferbench],
#              FIXTURES_DIR [fixtures] (needs (K + 1) x SIZE of free disk, and as much free memory to keep both warm)
set -euo pipefail
start_dir=$PWD
cd "$(dirname "$0")/.."
abs() { case $1 in /*) p=$1;; *) p=$start_dir/$1;; esac; realpath -m --relative-base="$PWD" "$p"; }
SIZE=${SIZE:-1.2GB}
K=${K:-4}
ROUNDS=${ROUNDS:-7}
STRATEGIES=${STRATEGIES:-"sendfile parallel-sendfile"}
THREADS=${THREADS:-10}
CHUNK=${CHUNK:-10MiB}
OUT=$(abs "${OUT:-results/passes-$(hostname -s 2>/dev/null || hostname)-$(uname -r)-$(date -u +%Y%m%d)}")
bin=target/release/xferbench
[ -n "${XFERBENCH:-}" ] && bin=$(abs "$XFERBENCH")
[ -x "$bin" ] || cargo build --release --quiet
FIXTURES=fixtures
[ -n "${FIXTURES_DIR:-}" ] && FIXTURES=$(abs "$FIXTURES_DIR")
bytes=$("$bin" run --size "$SIZE" --strategies sendfile --dry-run | sed -n 's/.* \([0-9]*\) bytes per run/\1/p')
big=$((bytes * K))
mkdir -p "$OUT/runs"
echo "passes: $SIZE x $K passes against $big bytes x 1 pass, $ROUNDS rounds of ($STRATEGIES), warm, into $OUT"
# Both fixtures made (or reused) before any round, so no round waits on the disk.
"$bin" fixture --size "$bytes" --fixture-dir "$FIXTURES" >/dev/null
"$bin" fixture --size "$big" --fixture-dir "$FIXTURES" >/dev/null
results="$OUT/passes.csv"
echo "strategy,round,form,mb_s,wall_s" >"$results"
one() { # strategy form round -> appends a line
    local s=$1 form=$2 r=$3 size passes o
    case $form in
        passes) size=$bytes; passes=$K ;;
        big) size=$big; passes=1 ;;
    esac
    o="$OUT/runs/$s-$form-$r"
    rm -rf "$o"
    "$bin" run --size "$size" --fixture-dir "$FIXTURES" --strategies "$s" --threads "$THREADS" --chunk "$CHUNK" \
        --repeat 1 --warmup 1 --passes "$passes" --out "$o" --quiet >/dev/null
    python3 - "$o/runs.csv" "$s" "$r" "$form" >>"$results" <<'PY'
import csv, sys
row = next(csv.DictReader(open(sys.argv[1])))
assert row["status"] == "ok", row["error"]
print(f"{sys.argv[2]},{sys.argv[3]},{sys.argv[4]},{float(row['throughput_mb_s']):.1f},{float(row['wall_s']):.4f}")
PY
}
for r in $(seq 1 "$ROUNDS"); do
    for s in $STRATEGIES; do
        if [ $((r % 2)) = 1 ]; then one "$s" passes "$r"; one "$s" big "$r"; else one "$s" big "$r"; one "$s" passes "$r"; fi
    done
    echo "  round $r done"
done
python3 - "$results" "$SIZE" "$K" "$big" <<'PY' | tee "$OUT/passes.md"
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
size, k, big = sys.argv[2], sys.argv[3], sys.argv[4]
def q(v, f):
    v = sorted(v); i = (len(v) - 1) * f; lo = int(i); hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (i - lo)
print(f"# What passes cost\n\n{size} sent {k} times over the same connections (--passes {k}) against a {big}-byte file "
      f"sent once, warm, {len(rows) // 2 // len({r['strategy'] for r in rows})} rounds in turning order.\n")
print("| strategy | --passes K, MB/s (median) | one big file, MB/s | ratio of medians | per round: median [IQR] |")
print("|---|--:|--:|--:|---|")
for s in dict.fromkeys(r["strategy"] for r in rows):
    a = {r["round"]: float(r["mb_s"]) for r in rows if r["strategy"] == s and r["form"] == "passes"}
    b = {r["round"]: float(r["mb_s"]) for r in rows if r["strategy"] == s and r["form"] == "big"}
    ratios = [a[x] / b[x] for x in a if x in b]
    ma, mb = statistics.median(a.values()), statistics.median(b.values())
    print(f"| {s} | {ma:.0f} | {mb:.0f} | {ma / mb:.3f} | {statistics.median(ratios):.3f} [{q(ratios, .25):.3f}-{q(ratios, .75):.3f}] |")
PY
