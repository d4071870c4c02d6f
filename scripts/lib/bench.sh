# shellcheck shell=bash
# Shared by the benches whose rounds cannot be one `xferbench run` (they put different files, builds, tools or sink
# settings side by side): each round's values go into a CSV of round,name,value lines, and `xferbench stats` makes
# the medians, ranges and paired ratios with their intervals, as `run` does for its own rounds. No statistics here.
# Source it after common.sh; it defines:
#   size_bytes SIZE          bytes of a size such as 10MiB or 1.2GB, as xferbench reads it
#   mb_s DIR                 the median MB/s of a result folder's ok rows (one number)
#   put CSV ROUND NAME VALUE appends a value to CSV (round,name,value; the header is written when CSV is missing)
#   stats_of CSV BASE NAME...
#                            `xferbench stats` of the names' values in CSV against BASE's, paired round by round
#                            (names without spaces)
#   columns CSV NAME...      from csv.sh: the named columns of every row of a CSV file such as runs.csv
#   bare MODE                MB/s of one bare C transfer of "$file" in "$chunk"-byte calls (MODE: sendfile or read),
#                            from the sender's first call to the receiver's last byte; the receiver reads into
#                            128 KiB. Needs "$work/bare" built from bench/bare.c.
# shellcheck source=scripts/lib/csv.sh
. scripts/lib/csv.sh

size_bytes() {
    "$bin" run --size "$1" --strategies sendfile --dry-run | sed -n '1s/.* \([0-9]*\) bytes per run$/\1/p'
}

mb_s() {
    "$bin" stats --mb-s "$1"
}

put() {
    [ -f "$1" ] || echo "round,name,value" >"$1"
    echo "$2,$3,$4" >>"$1"
}

stats_of() {
    local csv=$1 base=$2 picked
    shift 2
    picked=$(mktemp)
    awk -F, -v names="$base $*" '
        BEGIN { n = split(names, w, " "); for (i = 1; i <= n; i++) want[w[i]] = 1 }
        NR == 1 || ($2 in want)' "$csv" >"$picked"
    "$bin" stats "$picked" --baseline "$base" || { rm -f "$picked"; return 1; }
    rm -f "$picked"
}

bare() {
    local port r s
    # The receiver listens on a port the kernel picks (a port picked here could be in use) and says which.
    coproc RECV { "$work/bare" recv 0 131072; }
    read -r _ port <&"${RECV[0]}"
    s=$("$work/bare" send "$port" "$file" "$1" "$chunk")
    read -r r <&"${RECV[0]}"
    wait "$RECV_PID" 2>/dev/null || true
    # "send BYTES START_NS END_NS" and "recv BYTES FIRST_NS LAST_NS": bytes over the nanoseconds from the send's
    # start to the last byte (subtracted here in 64-bit integers, divided in awk).
    read -r _ _ s_start _ <<<"$s"
    read -r _ r_bytes _ r_last <<<"$r"
    awk -v b="$r_bytes" -v ns=$((r_last - s_start)) 'BEGIN { printf "%.0f\n", b / 1e6 / (ns / 1e9) }'
}
