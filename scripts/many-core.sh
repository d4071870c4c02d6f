#!/usr/bin/env bash
# The article's experiment, the thread sweep and the peer comparison on a many-core machine, with a release binary
# (target/release/xferbench; built elsewhere if the machine has no Rust toolchain: it needs glibc 2.36 or newer).
# Run it from the repository root and bring back the tarball it prints. The article and sweep steps resume: if
# something cuts one short, run this again with the same TAG and finished rounds are kept (peers, a few minutes,
# starts over); on another machine, unpack the last tarball at the repository root first.
#
# The article's 1.2 GB file, sent as many times per repetition as it takes to last MIN_TIME (on 16 cores one pass
# moves in tens of milliseconds): every repetition is long enough to time, and the set lines up with any other
# machine's in `xferbench compare`. REPEAT rounds of each (6 is the fewest whose interval reaches 95%), under the
# congestion control CC. Needs SIZE of free disk (the fixture, plus 2 GB for the peers' dd comparison).
#
# Environment: SIZE [1.2GB], MIN_TIME [0.5s], THREADS [1 2 4 8 10 12 16], CHUNKS [10MiB], REPEAT [6], CC [cubic],
#              TAG [<CPUs>cpu-<host>-linux-<kernel>], RESULTS [results], TARBALL [results-<TAG>.tar.gz],
#              STEPS ["article sweep peers"], PEER_ROUNDS [7], PEER_FIXTURE_SIZE [2GB, fixture against dd],
#              NO_IPERF [1 unless iperf3 and jq are installed], XFERBENCH [target/release/xferbench],
#              EXTRA (more `xferbench run` options, for the article and sweep steps)
. "$(dirname "$0")/lib/common.sh"
SIZE=${SIZE:-1.2GB}
MIN_TIME=${MIN_TIME:-0.5s}
tag_given=${TAG:+1}
TAG=${TAG:-$(nproc)cpu-$host-linux-$(uname -r | cut -d- -f1)}
RESULTS=$( [ -n "${RESULTS:-}" ] && abs "$RESULTS" || echo results)
TARBALL=$( [ -n "${TARBALL:-}" ] && abs "$TARBALL" || echo "results-${TAG//\//-}.tar.gz")
# A default TAG that names a committed result set (this repository's own machine has the same CPUs, host and kernel
# as one) would resume into it and rewrite its charts: refused. A TAG given on purpose (to make a set again) is not.
if [ -z "$tag_given" ] && git ls-files --error-unmatch "$RESULTS/$TAG" >/dev/null 2>&1; then
    die "$RESULTS/$TAG is a committed result set: give another TAG (e.g. TAG=$TAG-$(date -u +%Y%m%d))"
fi
# The steps get the binary as this script found it (relative to the repository root, where they start too).
export XFERBENCH=$bin
[ -x "$XFERBENCH" ] || die "$XFERBENCH is missing: build it first (cargo build --release)"
# Packed on every exit, finished or not (a `timeout` that stops this mid-sweep still leaves every finished row in
# the tarball; running this again resumes).
started=$SECONDS
pack() {
    echo "many-core: $((SECONDS - started)) s since the start of this call"
    [ -d "$RESULTS/$TAG" ] || return 0
    tar czf "$TARBALL" -C "$(dirname "$RESULTS")" "$(basename "$RESULTS")/$TAG" && echo "many-core: results in $TARBALL"
}
trap pack EXIT
echo "many-core: TAG=$TAG (give the same TAG to resume from an unpacked tarball on another machine)"
for step in ${STEPS:-article sweep peers}; do
    case $step in
        article) OUT=$RESULTS/$TAG/article SIZE=$SIZE MIN_TIME=$MIN_TIME THREADS=10 REPEAT=${REPEAT:-6} CC=${CC:-cubic} \
            bash scripts/reproduce-article.sh ;;
        sweep) OUT=$RESULTS/$TAG/sweep SIZE=$SIZE MIN_TIME=$MIN_TIME THREADS=${THREADS:-"1 2 4 8 10 12 16"} CHUNKS=${CHUNKS:-10MiB} \
            REPEAT=${REPEAT:-6} EXTRA="--cc ${CC:-cubic} ${EXTRA:-}" bash scripts/sweep.sh ;;
        # xferbench against the bare C loop (and iperf3 where installed), and the cost of --verify, single stream.
        # Without iperf3 (and jq, which reads its JSON) it is skipped at once: installing them would wait on a
        # network such a machine may not have.
        peers) no_iperf=1; command -v iperf3 >/dev/null && command -v jq >/dev/null && no_iperf=0
            OUT=$RESULTS/$TAG/peers SIZE=$SIZE ROUNDS=${PEER_ROUNDS:-7} FIXTURE_ROUNDS=2 \
            FIXTURE_SIZE=${PEER_FIXTURE_SIZE:-2GB} NO_IPERF=${NO_IPERF:-$no_iperf} bash scripts/bench-peers.sh ;;
        *) echo "many-core: unknown step $step"; exit 2 ;;
    esac
done
