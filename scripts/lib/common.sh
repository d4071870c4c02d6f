# shellcheck shell=bash
# The preamble every script shares. A script sources it first thing:
#   . "$(dirname "$0")/lib/common.sh"
# It stops the script at the first error (set -euo pipefail), remembers where the script was started (start_dir),
# moves to the repository root (plans and result files then name the repository's folders, not this machine's) and
# defines:
#   me              the script's name without .sh, which opens its messages
#   say TEXT, die TEXT
#                   a message line "me: TEXT"; die writes it to stderr and exits 1
#   abs PATH        a path as the user gave it, relative to where the script was started; one inside the repository
#                   comes back relative to its root, so that no result file records a path of this machine
#   bin             the xferbench binary: XFERBENCH (read with abs) or target/release/xferbench
#   need_bin        builds target/release/xferbench when it is missing (any other missing XFERBENCH is an error)
#   host, stamp     this host's short name; <host>-<kernel release>-<UTC date>, the tail of default result folders
#   join WORD...    the words joined by commas, as `xferbench run` takes a list
#   need_packages   from packages.sh: Debian packages a script needs, installed when missing (as root)
set -euo pipefail
start_dir=$PWD
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=scripts/lib/packages.sh
. scripts/lib/packages.sh

me=$(basename "$0" .sh)
say() { echo "$me: $*"; }
die() {
    echo "$me: $*" >&2
    exit 1
}

abs() {
    local p
    case $1 in /*) p=$1 ;; *) p=$start_dir/$1 ;; esac
    realpath -m --relative-base="$PWD" "$p"
}

bin=target/release/xferbench
[ -n "${XFERBENCH:-}" ] && bin=$(abs "$XFERBENCH")
need_bin() {
    [ -x "$bin" ] && return 0
    [ "$bin" = target/release/xferbench ] || die "XFERBENCH: $bin is missing or not executable"
    say "building $bin"
    cargo build --release --quiet
}

host=$(hostname -s 2>/dev/null || hostname)
stamp=$host-$(uname -r)-$(date -u +%Y%m%d)

join() {
    local IFS=,
    echo "$*"
}
