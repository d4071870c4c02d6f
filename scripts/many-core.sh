#!/usr/bin/env bash
# The article's experiment and the thread sweep on a many-core machine that has no Rust toolchain: copy the
# repository there with a release binary built elsewhere (target/release/xferbench; it needs glibc 2.36 or newer),
# run this, and bring back the tarball it prints. The article and sweep steps resume: if a time limit cuts one
# short, run this again on the same machine and finished cases are skipped (peers, a few minutes, starts over).
#
# Each run should last at least ~0.5 s, so the file is large (16 GB by default: on 16 cores a 1.2 GB file moves in
# tens of milliseconds). Needs 2 x SIZE of free disk (the fixture) and more memory than SIZE (the warm cache).
#
# Environment: SIZE [16GB], THREADS [1 2 4 8 10 12 16], CHUNKS [10MiB], REPEAT [3], TAG [<CPUs>cpu-<host>-linux-<kernel>],
#              TARBALL [results-<TAG>.tar.gz], STEPS ["article sweep peers"], PEER_ROUNDS [7]
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${SIZE:-16GB}
TAG=${TAG:-$(nproc)cpu-$(hostname -s 2>/dev/null || hostname)-linux-$(uname -r | cut -d- -f1)}
TARBALL=${TARBALL:-results-$TAG.tar.gz}
[ -x target/release/xferbench ] || { echo "many-core: target/release/xferbench is missing: build it first"; exit 1; }
for step in ${STEPS:-article sweep peers}; do
    case $step in
        article) OUT=results/$TAG/article SIZE=$SIZE THREADS=10 REPEAT=${REPEAT:-3} bash scripts/reproduce-article.sh ;;
        sweep) OUT=results/$TAG/sweep SIZE=$SIZE THREADS=${THREADS:-"1 2 4 8 10 12 16"} CHUNKS=${CHUNKS:-10MiB} \
            REPEAT=${REPEAT:-3} bash scripts/sweep.sh ;;
        # xferbench against the bare C loop (and iperf3 where installed), and the cost of --verify, single stream.
        peers) OUT=results/$TAG/peers SIZE=$SIZE ROUNDS=${PEER_ROUNDS:-7} FIXTURE_ROUNDS=2 FIXTURE_SIZE=2GB \
            bash scripts/bench-peers.sh ;;
        *) echo "many-core: unknown step $step"; exit 2 ;;
    esac
done
tar czf "$TARBALL" "results/$TAG"
echo "many-core: results in $TARBALL"
