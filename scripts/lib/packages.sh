# shellcheck shell=bash
# Sourced by .ci/run and scripts that need Debian packages on the host.
#
# need_packages WHO COMMAND=PACKAGE...: installs the Debian packages whose commands are missing, with apt-get, as
# root. A COMMAND starting with / is a file that must exist instead. Commands are looked for on PATH and in the sbin
# folders (a user's PATH often lacks them). Prints one line naming what it installs; where it cannot install (not
# root, no apt-get, apt-get failed), one line saying what is missing and returns 1.
#
# Installs wait for each other: two callers at once (the tests of tests/kernels.rs each run scripts/kernels.sh)
# would otherwise both run apt-get, and the second fail on apt's lock ("Could not get lock
# /var/lib/apt/lists/lock"). Each caller takes an exclusive flock on XFERBENCH_PACKAGES_LOCK
# [/var/lock/xferbench-packages.lock] for as long as it installs, looks again for what is missing once it holds it
# (the caller before may have installed it), and asks apt-get to wait up to 10 minutes for a lock held by anything
# else (an unattended upgrade).
need_packages() {
    local who=$1
    shift
    local want
    want=$(missing_packages "$@")
    [ -z "$want" ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "$who: missing Debian package(s) $want: install them as root (apt-get install $want)" >&2
        return 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "$who: missing $want and no apt-get to install them with: install them by hand" >&2
        return 1
    fi
    local lock=${XFERBENCH_PACKAGES_LOCK:-/var/lock/xferbench-packages.lock} status=0
    # A subshell holds the lock on its own descriptor, so it is let go however the install ends.
    (
        if command -v flock >/dev/null 2>&1; then
            exec 9>"$lock" || exit 1
            flock -w 900 9 || { echo "$who: waited 15 minutes for $lock; giving up" >&2; exit 1; }
        fi
        want=$(missing_packages "$@")
        [ -z "$want" ] && exit 0
        echo "$who: installing $want"
        # shellcheck disable=SC2086 # one word per package
        if ! { apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive \
            apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $want >/dev/null; }; then
            echo "$who: apt-get could not install $want" >&2
            exit 1
        fi
    ) || status=$?
    return $status
}

# missing_packages COMMAND=PACKAGE...: the packages (each once, space-separated) whose command or file is missing.
missing_packages() {
    local pair cmd pkg want=()
    for pair in "$@"; do
        cmd=${pair%%=*}
        pkg=${pair#*=}
        case $cmd in
            /*) [ -e "$cmd" ] && continue ;;
            *) PATH=$PATH:/usr/sbin:/sbin command -v "$cmd" >/dev/null 2>&1 && continue ;;
        esac
        case " ${want[*]} " in *" $pkg "*) ;; *) want+=("$pkg") ;; esac
    done
    echo "${want[*]}"
}
