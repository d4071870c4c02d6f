#!/usr/bin/env bash
# Links as users have them (docs/links.md), measured on this machine in two runs of `xferbench run --repeat ROUNDS`,
# whose rounds run every case once in an order that turns, so that the cases below pair round by round:
#   1. path: STRATEGIES over loopback and over LINK (a veth path, 1,500-byte MTU, nothing shaped) under CC: what the
#      veth path and its MTU cost. For each strategy, its MB/s and its sender CPU per GB over the path against its
#      own over loopback, paired by round (`xferbench stats`).
#   2. rate: STRATEGIES over RATED (a rate every strategy here can fill) under each of CCS: the cases that fill it
#      are flagged link-bound, and the run's notes give each one's sender CPU per GB against sendfile's at the same
#      rate, with its interval (the answer where the link, not the sender, sets the MB/s).
# Writes OUT/path/ and OUT/rate/ (each a run's runs.csv, summary.json and charts) and OUT/links.md (both tables and
# the path's ratios). Needs root and iproute2: the paths are network namespaces of the runs' own. Running it again
# with the same OUT resumes both runs.
#
# Environment: SIZE [1.2GB], ROUNDS [10], STRATEGIES [read-send mmap-send sendfile parallel-sendfile],
#              THREADS [10], CC [cubic], CCS ["cubic bbr"], LINK [veth:mtu=1500], RATED [veth:mtu=1500,rate=2gbit],
#              MIN_TIME [0.5s], OUT [results/links-<host>-<kernel>-<date>], FIXTURES_DIR [fixtures],
#              XFERBENCH [target/release/xferbench], EXTRA (more `run` options for both runs)
. "$(dirname "$0")/lib/common.sh"
. scripts/lib/bench.sh
SIZE=${SIZE:-1.2GB}
ROUNDS=${ROUNDS:-10}
STRATEGIES=${STRATEGIES:-"read-send mmap-send sendfile parallel-sendfile"}
THREADS=${THREADS:-10}
CC=${CC:-cubic}
CCS=${CCS:-"cubic bbr"}
LINK=${LINK:-veth:mtu=1500}
RATED=${RATED:-veth:mtu=1500,rate=2gbit}
MIN_TIME=${MIN_TIME:-0.5s}
OUT=$(abs "${OUT:-results/links-$stamp}")
FIXTURES=$(abs "${FIXTURES_DIR:-fixtures}")
EXTRA=${EXTRA:-}
[ "$(id -u)" -eq 0 ] || die "the paths are network namespaces of the run's own: run it as root"
need_packages "$me" ip=iproute2 tc=iproute2 || exit 1
need_bin
mkdir -p "$OUT"

# One run into OUT/$1 with the options after it; its table (stdout) into OUT/$1.table. Progress goes to stderr.
run_into() {
    local name=$1 status=0
    shift
    # shellcheck disable=SC2086
    "$bin" run --size "$SIZE" --fixture-dir "$FIXTURES" --strategies "$(join $STRATEGIES)" --threads "$THREADS" \
        --repeat "$ROUNDS" --warmup 1 --min-time "$MIN_TIME" --out "$OUT/$name" --resume "$@" $EXTRA \
        >"$OUT/$name.table" || status=$?
    [ "$status" -eq 130 ] && exit 130
    [ -s "$OUT/$name/summary.json" ] || die "the $name run failed (exit $status): see above"
    "$bin" plot "$OUT/$name" >/dev/null
    return 0
}

say "1/2: $STRATEGIES over loopback and $LINK under $CC, $ROUNDS rounds of $SIZE, into $OUT/path"
run_into path --cc "$CC" --link loopback --link "$LINK"
say "2/2: $STRATEGIES over $RATED under $CCS, $ROUNDS rounds of $SIZE, into $OUT/rate"
# shellcheck disable=SC2086
run_into rate --cc "$(join $CCS)" --link "$RATED"

# Per strategy and round, from the path run's ok rows: MB/s, and the sender's CPU seconds per 10^9 bytes moved,
# named by the link (loopback or veth). Arithmetic on each row only: the statistics are `xferbench stats`'.
values() { # STRATEGY FIELD(mb_s|cpu) -> round,name,value lines
    columns "$OUT/path/runs.csv" round strategy link status throughput_mb_s sender_user_s sender_sys_s file_bytes \
        passes | awk -F, -v s="$1" -v f="$2" '
        $2 == s && $4 == "ok" {
            name = $3 == "loopback" ? "loopback" : "veth"
            v = f == "mb_s" ? $5 : ($6 + $7) / ($8 * $9 / 1e9)
            printf "%s,%s,%.6f\n", $1, name, v
        }'
}
{
    echo "# Links: loopback against a veth path, and a link-bound rate"
    echo
    echo "$SIZE, warm, $ROUNDS rounds in turning order per run, each repetition at least $MIN_TIME."
    echo
    echo "## 1. What the path costs: loopback against $LINK ($CC)"
    echo
    echo '```'
    sed '/^results: /d' "$OUT/path.table"
    echo '```'
    for s in $STRATEGIES; do
        for f in mb_s cpu; do
            csv=$OUT/path-$s-$f.csv
            echo "round,name,value" >"$csv"
            values "$s" "$f" >>"$csv"
            echo
            if [ "$f" = mb_s ]; then
                echo "### $s: MB/s over the path against loopback"
                echo
                "$bin" stats "$csv" --baseline loopback
            else
                echo "### $s: sender CPU s/GB over the path against loopback (above 1: the path costs less)"
                echo
                "$bin" stats "$csv" --baseline loopback --lower-is-better
            fi
        done
    done
    echo
    echo "## 2. A rate this machine fills: $RATED ($CCS)"
    echo
    echo "Cases flagged link-bound moved at least 90% of the rate; their notes give the sender CPU per GB against"
    echo "sendfile's at the same rate, paired by round, with its interval."
    echo
    echo '```'
    sed '/^results: /d' "$OUT/rate.table"
    echo '```'
} >"$OUT/links.md"
cat "$OUT/links.md"
