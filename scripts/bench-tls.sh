#!/usr/bin/env bash
# Kafka's question on this machine: what TLS costs the zero-copy path. Plain sendfile, read+send, TLS in user space
# (tls-read-send: read, encrypt, send, as Kafka's SslTransportLayer does) and kernel TLS (ktls-sendfile, which
# falls back to tls-read-send, recorded, where the kernel has no tls module), each at CHUNKS, warm, --verify off:
# one `xferbench run --repeat ROUNDS`, whose rounds run every case once in an order that turns each round; every
# repetition lasts at least MIN_TIME. Writes OUT/runs.csv and summary.json (the run's own), the charts, and
# OUT/tls.md: the run's table (`vs sf`: the per-round ratio to sendfile at the same chunk, with its interval) and
# the CPU per GB of sender and sink, user and total, medians over the rounds from summary.json. Running it again
# with the same OUT resumes.
#
# Environment: SIZE [1.2GB], ROUNDS [5], CHUNKS ["32KiB 10MiB"], MIN_TIME [0.5s],
#              STRATEGIES ["sendfile read-send tls-read-send ktls-sendfile"], OUT [results/tls-<host>-<kernel>-<date>],
#              FIXTURES_DIR [fixtures], XFERBENCH [target/release/xferbench], EXTRA (more `run` options)
. "$(dirname "$0")/lib/common.sh"
SIZE=${SIZE:-1.2GB}
ROUNDS=${ROUNDS:-5}
CHUNKS=${CHUNKS:-"32KiB 10MiB"}
MIN_TIME=${MIN_TIME:-0.5s}
STRATEGIES=${STRATEGIES:-"sendfile read-send tls-read-send ktls-sendfile"}
OUT=$(abs "${OUT:-results/tls-$stamp}")
FIXTURES=$(abs "${FIXTURES_DIR:-fixtures}")
EXTRA=${EXTRA:-}
need_bin
# jq reads the CPU medians out of summary.json.
need_packages "$me" jq=jq || exit 1
mkdir -p "$OUT"
say "$ROUNDS rounds of ($STRATEGIES) x chunks ($CHUNKS), $SIZE warm, at least $MIN_TIME each, into $OUT"
status=0
# Progress goes to stderr; the table (stdout) goes into tls.md.
# shellcheck disable=SC2086
table=$("$bin" run --size "$SIZE" --fixture-dir "$FIXTURES" --strategies "$(join $STRATEGIES)" \
    --chunk "$(join $CHUNKS)" --repeat "$ROUNDS" --warmup 1 --min-time "$MIN_TIME" --out "$OUT" --resume \
    $EXTRA) || status=$?
[ "$status" -eq 130 ] && exit 130
[ -s "$OUT/summary.json" ] || exit "$status"
"$bin" plot "$OUT" >/dev/null
{
    echo "# TLS beside sendfile"
    echo
    echo "$ROUNDS rounds in turning order (one \`xferbench run --repeat $ROUNDS\`), warm, $SIZE, each repetition at"
    echo "least $MIN_TIME. The run's table: \`vs sf\` is the median of the per-round ratios to sendfile at the same"
    echo "chunk, with its interval."
    echo
    echo '```'
    sed '/^results: /d' <<<"$table"
    echo '```'
    echo
    echo "CPU seconds per 10^9 bytes moved, medians over the rounds (summary.json): sender user and total, sink user"
    echo "and total."
    echo
    echo "| chunk | strategy | path | sender user | sender | sink user | sink |"
    echo "|--:|---|---|--:|--:|--:|--:|"
    # A fallback's path is named up to the path it fell back to; its reason is in the table's notes.
    jq -r '.cases[] | [.chunk_bytes, .strategy,
            (.paths | map(sub("^(?<p>[^(]*\\(fallback:[^:]*):.*$"; "\(.p))")) | join(" / ")),
            (.metrics | .sender_user_s_per_gb.median, .sender_cpu_s_per_gb.median,
                        .sink_user_s_per_gb.median, .sink_cpu_s_per_gb.median)] | @tsv' "$OUT/summary.json" |
        awk -F'\t' '
            function num(v) { return v == "" ? "-" : sprintf("%.3f", v) }
            {
                c = $1
                chunk = c % 1048576 == 0 ? c / 1048576 " MiB" : c % 1024 == 0 ? c / 1024 " KiB" : c " B"
                printf "| %s | %s | %s | %s | %s | %s | %s |\n", chunk, $2, $3, num($4), num($5), num($6), num($7)
            }'
    suites=$(grep -o 'TLS13_[A-Z0-9_]*' "$OUT/runs.csv" | sort -u | paste -sd' ' || true)
    [ -z "$suites" ] || printf '\nTLS suite negotiated: %s\n' "$suites"
} | tee "$OUT/tls.md"
exit "$status"
