#!/usr/bin/env bash
# How big should the sink's receive buffer be, and what does --verify cost at each size? Serial sendfile of a warm
# file over loopback, the sink receiving with each buffer size in turn, without and with --verify (checked in the
# receiving thread), rounds interleaved so that drift hits every size alike. The default of `--rx-buffer` is chosen
# from this, not by habit.
#
# A run has one receive buffer, so each size (and each size with --verify) is a result folder of its own,
# OUT/<size>[-verify]/, to which every round of this script adds REPEAT of `run`'s rounds (--resume keeps the pass
# count of the first). The folders' rounds then line up by number: round r of every folder ran in the same round
# of this script, seconds apart. Each row's MB/s and sink CPU per GB go into OUT/rx-buffer.csv and
# OUT/rx-buffer-cpu.csv (round,name,value), and `xferbench stats` pairs them round by round: OUT/rx-buffer.md.
#
# Environment: SIZE [1.2GB], ROUNDS [4], REPEAT [3 per size per round], SIZES ["64KiB 128KiB 256KiB 512KiB 1MiB"],
#              BASELINE [256KiB, the default, where SIZES has it; else the first size], VERIFY ["off on"],
#              OUT [results/rx-buffer-<host>-<kernel>-<UTC date>], XFERBENCH [target/release/xferbench],
#              EXTRA (more `xferbench run` options, e.g. "--fixture-dir DIR").
. "$(dirname "$0")/lib/common.sh"
. scripts/lib/bench.sh
SIZE=${SIZE:-1.2GB}
ROUNDS=${ROUNDS:-4}
REPEAT=${REPEAT:-3}
SIZES=${SIZES:-"64KiB 128KiB 256KiB 512KiB 1MiB"}
VERIFY=${VERIFY:-"off on"}
EXTRA=${EXTRA:-}
OUT=$(abs "${OUT:-results/rx-buffer-$stamp}")
read -r -a sizes <<<"$SIZES"
baseline=${BASELINE:-}
if [ -z "$baseline" ]; then
    baseline=${sizes[0]}
    for s in "${sizes[@]}"; do [ "$s" = 256KiB ] && baseline=$s; done
fi
need_bin
say "$ROUNDS rounds x ($SIZES) x verify ($VERIFY) x $REPEAT of sendfile, $SIZE warm, into $OUT"
folders=()
for rx in "${sizes[@]}"; do
    for v in $VERIFY; do
        case $v in
            off) folders+=("$rx") ;;
            on) folders+=("$rx-verify") ;;
            *) die "VERIFY takes off and on, not '$v'" ;;
        esac
    done
done
for round in $(seq 1 "$ROUNDS"); do
    for dir in "${folders[@]}"; do
        extra=()
        case $dir in *-verify) extra=(--verify --verify-on receiver) ;; esac
        # shellcheck disable=SC2086
        "$bin" run --size "$SIZE" --strategies sendfile --repeat $((round * REPEAT)) --warmup 0 \
            --rx-buffer "${dir%-verify}" "${extra[@]}" --out "$OUT/$dir" --resume --quiet $EXTRA >/dev/null
    done
    echo "  round $round done"
done
# Every ok row: its folder's name, the round it ran in, its MB/s and its sink's CPU per 10^9 bytes moved.
mbs="$OUT/rx-buffer.csv"
cpu="$OUT/rx-buffer-cpu.csv"
rm -f "$mbs" "$cpu"
for dir in "${folders[@]}"; do
    columns "$OUT/$dir/runs.csv" round status throughput_mb_s file_bytes passes sink_user_s sink_sys_s |
        while IFS=, read -r r status mb bytes passes user sys; do
            [ "$status" = ok ] || continue
            put "$mbs" "$r" "$dir" "$mb"
            [ -n "$user" ] && [ -n "$sys" ] || continue
            put "$cpu" "$r" "$dir" \
                "$(awk -v u="$user" -v s="$sys" -v gb="$((bytes * (passes > 0 ? passes : 1)))" \
                    'BEGIN { printf "%.6f\n", (u + s) / (gb / 1e9) }')"
        done
done
{
    echo "# The sink's receive buffer"
    echo
    echo "Serial sendfile of a $SIZE file, warm, over loopback; $ROUNDS rounds, each running $REPEAT repetition(s)"
    echo "of every size ($SIZES) in turn, without --verify and with it (checked in the receiving thread: the"
    echo "\`-verify\` names), as VERIFY asked ($VERIFY). Each folder's round r ran in the same round of this script as"
    echo "every other folder's, so \`vs baseline\` pairs them by round (\`xferbench stats\`)."
    for v in $VERIFY; do
        suffix=; [ "$v" = on ] && suffix=-verify
        names=()
        for rx in "${sizes[@]}"; do names+=("$rx$suffix"); done
        echo
        echo "## MB/s of each size against $baseline$suffix"
        echo
        stats_of "$mbs" "$baseline$suffix" "${names[@]}"
        echo
        echo "## Sink CPU seconds per 10^9 bytes of each size against $baseline$suffix"
        echo
        stats_of "$cpu" "$baseline$suffix" "${names[@]}"
    done
    if [[ " $VERIFY " == *" on "* && " $VERIFY " == *" off "* ]]; then
        echo
        echo "## What --verify costs: MB/s with it against without, at each size"
        for rx in "${sizes[@]}"; do
            printf '\n### %s\n\n' "$rx"
            stats_of "$mbs" "$rx" "$rx-verify"
        done
    fi
} | tee "$OUT/rx-buffer.md"
