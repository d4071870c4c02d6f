# shellcheck shell=bash
# Sourced by .ci/run and scripts that need Debian packages on the host.
#
# need_packages WHO COMMAND=PACKAGE...: installs the Debian packages whose commands are missing, with apt-get, as
# root. A COMMAND starting with / is a file that must exist instead. Commands are looked for on PATH and in the sbin
# folders (a user's PATH often lacks them). Prints one line naming what it installs; where it cannot install (not
# root, no apt-get, apt-get failed), one line saying what is missing and returns 1.
need_packages() {
    local who=$1 pair cmd pkg
    shift
    local want=()
    for pair in "$@"; do
        cmd=${pair%%=*}
        pkg=${pair#*=}
        case $cmd in
            /*) [ -e "$cmd" ] && continue ;;
            *) PATH=$PATH:/usr/sbin:/sbin command -v "$cmd" >/dev/null 2>&1 && continue ;;
        esac
        case " ${want[*]} " in *" $pkg "*) ;; *) want+=("$pkg") ;; esac
    done
    [ ${#want[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "$who: missing Debian package(s) ${want[*]}: install them as root (apt-get install ${want[*]})" >&2
        return 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "$who: missing ${want[*]} and no apt-get to install them with: install them by hand" >&2
        return 1
    fi
    echo "$who: installing ${want[*]}"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null; }; then
        echo "$who: apt-get could not install ${want[*]}" >&2
        return 1
    fi
}
