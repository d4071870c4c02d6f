#!/usr/bin/env bash
# The plan under other kernels, side by side, without rebooting the host: for each kernel, boot a QEMU guest from a
# small initramfs (busybox, the xferbench binary and its libraries, the kernel's own modules), make the test file on
# an ext4 virtual disk, run the plan on the guest's loopback, bring runs.csv, summary.json and the charts back to
# OUT/<guest kernel release>/, and line all kernels up with `xferbench compare` in OUT/compare. See docs/kernels.md.
#
# Environment (defaults in brackets):
#   KERNELS        space-separated; each a Debian cloud kernel series ("6.1", "6.12": the newest
#                  linux-image-<series>*-cloud-amd64-unsigned of DEBIAN_SUITE and its updates, security and
#                  backports suites), or a folder holding a vmlinuz (or boot/vmlinuz-*) and lib/modules/<release>
#                  ["6.1 6.12"]
#   OUT            result folder [results/kernels-<UTC date>]; run again with the same OUT to resume
#   SIZE [1.2GB]  STRATEGIES [sendfile splice read-send parallel-sendfile]  THREADS [guest CPUs, at least 2]
#   CHUNKS [10MiB]  CACHES [warm cold]  REPEAT [3]  WARMUP [1]
#   EXTRA          more options for `xferbench run` in the guest, e.g. "--verify"; with --link veth:..., the host's
#                  iproute2 (`ip`, `tc`) goes into the guest, and GUEST_MODULES should name veth, sch_htb, sch_netem
#   XFERBENCH      the binary [target/release/xferbench, built if missing]; it runs in the guest with the host's
#                  shared libraries, so it must be an x86-64 Linux binary
#   ACCEL          auto, kvm or tcg [auto: KVM if a guest boots with it within 30 s, else TCG (emulated)]
#   GUEST_CPUS     vCPUs [this machine's CPUs less one, at least 1]
#   GUEST_MEM      MiB [the test file, the initramfs and 1 GiB, capped by this machine's available memory less 1 GiB]
#   GUEST_TIMEOUT  seconds a guest may take before it is killed [three times a rough estimate of the plan, plus 2 min]
#   GUEST_MODULES  modules loaded besides the disk's and ext4's, when the kernel has them [tls and the AEADs kTLS
#                  asks the crypto API for: gcm ghash_generic chacha20poly1305, and the AES-NI/CLMUL ones where the
#                  guest's CPU has those instructions; the guest has no modprobe to load them on demand]
#   CACHE_DIR      downloaded kernels [${XDG_CACHE_HOME:-~/.cache}/xferbench/kernels]
#   WORK_DIR       where the guests' disks are made (sparse, the test file plus a little) [${TMPDIR:-/var/tmp}]
#   DEBIAN_MIRROR [http://deb.debian.org/debian]  DEBIAN_SECURITY [http://deb.debian.org/debian-security]
#   DEBIAN_SUITE [bookworm]  KEEP_WORK [0: 1 keeps the guests' disks and initramfs]
#
# The host's tools are Debian packages installed when missing (as root): qemu-system-x86, busybox-static, cpio,
# e2fsprogs, kmod, xz-utils, and debian-archive-keyring where Debian kernels are downloaded. Nothing else on the host
# needs root: kernels are fetched with apt-get into CACHE_DIR under an apt state of their own (the host's packages
# and sources are left alone), the ext4 disk is made by mkfs.ext4 on a file, and results leave the guest as a tar
# stream written onto a second, raw virtual disk that tar reads back here. A guest killed at its time limit (or by ^C)
# still gives back its finished rows, read off its ext4 disk with debugfs; running again with the same OUT resumes.
. "$(dirname "$0")/lib/common.sh"
PATH=$PATH:/usr/sbin:/sbin
[ -n "${OUT:-}" ] && OUT=$(abs "$OUT")
[ -n "${CACHE_DIR:-}" ] && CACHE_DIR=$(abs "$CACHE_DIR")
[ -n "${WORK_DIR:-}" ] && WORK_DIR=$(abs "$WORK_DIR")

KERNELS=${KERNELS:-"6.1 6.12"}
OUT=${OUT:-results/kernels-$(date -u +%Y%m%d)}
SIZE=${SIZE:-1.2GB}
STRATEGIES=${STRATEGIES:-"sendfile splice read-send parallel-sendfile"}
CHUNKS=${CHUNKS:-10MiB}
CACHES=${CACHES:-"warm cold"}
REPEAT=${REPEAT:-3}
WARMUP=${WARMUP:-1}
EXTRA=${EXTRA:-}
ACCEL=${ACCEL:-auto}
GUEST_MODULES=${GUEST_MODULES:-tls gcm ghash_generic chacha20poly1305 aesni_intel ghash_clmulni_intel}
CACHE_DIR=${CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/xferbench/kernels}
WORK_DIR=${WORK_DIR:-${TMPDIR:-/var/tmp}}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SECURITY=${DEBIAN_SECURITY:-http://deb.debian.org/debian-security}
DEBIAN_SUITE=${DEBIAN_SUITE:-bookworm}
KEEP_WORK=${KEEP_WORK:-0}
case $ACCEL in auto|kvm|tcg) ;; *) die "ACCEL must be auto, kvm or tcg, not '$ACCEL'" ;; esac
host_cpus=$(nproc)
GUEST_CPUS=${GUEST_CPUS:-$(( host_cpus > 1 ? host_cpus - 1 : 1 ))}
[[ $GUEST_CPUS =~ ^[1-9][0-9]*$ ]] || die "GUEST_CPUS must be a whole number of vCPUs, not '$GUEST_CPUS'"
[ -z "${GUEST_MEM:-}" ] || [[ $GUEST_MEM =~ ^[1-9][0-9]*$ ]] || die "GUEST_MEM is in MiB, a whole number, not '$GUEST_MEM'"
[ -z "${GUEST_TIMEOUT:-}" ] || [[ $GUEST_TIMEOUT =~ ^[1-9][0-9]*$ ]] ||
    die "GUEST_TIMEOUT is in seconds, a whole number, not '$GUEST_TIMEOUT'"
THREADS=${THREADS:-$(( GUEST_CPUS > 2 ? GUEST_CPUS : 2 ))}

# The host's tools. Debian kernels are downloaded with apt-get and unpacked with dpkg-deb, which cannot be installed
# as packages: without them, KERNELS must name folders.
tools=(qemu-system-x86_64=qemu-system-x86 busybox=busybox-static cpio=cpio mkfs.ext4=e2fsprogs debugfs=e2fsprogs depmod=kmod
    xz=xz-utils timeout=coreutils flock=util-linux)
for k in $KERNELS; do
    if [ ! -d "$(abs "$k")" ]; then
        tools+=(/usr/share/keyrings/debian-archive-keyring.gpg=debian-archive-keyring)
        command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
            die "'$k' is a kernel series to download, which needs apt-get and dpkg-deb (a Debian or Ubuntu host); or give a folder holding a vmlinuz and its lib/modules"
        break
    fi
done
# A plan over a --link path makes it in the guest with the host's iproute2.
links=0
case " $EXTRA " in *" --link "*|*" --link="*) links=1; tools+=(ip=iproute2 tc=iproute2) ;; esac
need_packages kernels "${tools[@]}" || exit 1

need_bin

# The plan, checked by xferbench itself before any kernel is fetched.
# shellcheck disable=SC2086
run_args=(--size "$SIZE" --strategies "$(join $STRATEGIES)" --threads "$(join $THREADS)" --chunk "$(join $CHUNKS)"
    --cache "$(join $CACHES)" --repeat "$REPEAT" --warmup "$WARMUP")
# shellcheck disable=SC2086
plan=$("$bin" run "${run_args[@]}" $EXTRA --dry-run 2>&1) || die "the plan is refused: ${plan%%$'\n'*}"
plan_line=${plan%%$'\n'*}
runs=$(sed -n 's/^plan: [0-9]* cases, \([0-9]*\) runs.*/\1/p' <<<"$plan_line")
bytes=$(sed -n 's/.* \([0-9]*\) bytes per run$/\1/p' <<<"$plan_line")
[ -n "$runs" ] && [ -n "$bytes" ] || die "cannot read the plan from '$plan_line'"
cold_cases=$(grep -c ' cold$' <<<"$plan" || true)
all_cases=$(grep -c '^  ' <<<"$plan" || true)
file_mib=$(( (bytes + 1048575) / 1048576 ))

# --- Kernels: each entry resolved to a folder with a vmlinuz and (maybe) lib/modules/<release> ---

# Absolute: apt reads a relative Dir:: path under its own folders (/var/lib/apt, /etc/apt).
apt_dir=$(realpath -m "$CACHE_DIR")/apt
apt_opts() {
    printf '%s\n' -o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=$apt_dir/empty" \
        -o "Dir::Etc::Preferences=$apt_dir/empty/none" -o "Dir::Etc::PreferencesParts=$apt_dir/empty" \
        -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::State::status=$apt_dir/status" \
        -o "Dir::Cache=$apt_dir/cache" -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=" \
        -o Acquire::Languages=none -o Acquire::GzipIndexes=true -o APT::Architecture=amd64 \
        -o APT::Architectures::=amd64 -o Debug::NoLocking=true -o APT::Sandbox::User="$(id -un)"
}
# The package lists of DEBIAN_SUITE, its updates, security and backports suites, in an apt state of our own;
# refreshed when a day old. Offline, older lists (or the kernels already unpacked) still serve.
lists_state=
refresh_lists() {
    [ -z "$lists_state" ] || return "$lists_state"
    lists_state=1
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/empty"
    : >"$apt_dir/status"
    local key=/usr/share/keyrings/debian-archive-keyring.gpg s
    {
        for s in "$DEBIAN_SUITE" "$DEBIAN_SUITE-updates" "$DEBIAN_SUITE-backports"; do
            echo "deb [signed-by=$key] $DEBIAN_MIRROR $s main"
        done
        echo "deb [signed-by=$key] $DEBIAN_SECURITY $DEBIAN_SUITE-security main"
    } >"$apt_dir/sources.list.new"
    if cmp -s "$apt_dir/sources.list.new" "$apt_dir/sources.list" &&
        [ -n "$(find "$apt_dir/lists" -maxdepth 1 -name '*Packages*' -mmin -1440 -print -quit)" ]; then
        rm "$apt_dir/sources.list.new"
        lists_state=0
        return 0
    fi
    mv "$apt_dir/sources.list.new" "$apt_dir/sources.list"
    say "fetching the package lists of $DEBIAN_SUITE (into $apt_dir)"
    local opts log
    mapfile -t opts < <(apt_opts)
    if ! log=$(apt-get "${opts[@]}" update 2>&1) || grep -q '^[WE]: Failed' <<<"$log"; then
        if [ -n "$(find "$apt_dir/lists" -maxdepth 1 -name '*Packages*' -print -quit)" ]; then
            say "could not refresh the package lists ($(grep -m1 '^[WE]:' <<<"$log" || echo "apt-get failed")); using the old ones"
        else
            return 1
        fi
    fi
    [ -n "$(find "$apt_dir/lists" -maxdepth 1 -name '*Packages*' -print -quit)" ] || return 1
    lists_state=0
}

# The bzImage's own release string (the header's kernel_version field), so that a kernel is named before it boots.
vmlinuz_release() {
    local off
    off=$(od -An -tu2 -j 526 -N 2 "$1" | tr -d ' ')
    [ -n "$off" ] && [ "$off" -gt 0 ] || return 0
    dd if="$1" bs=1 skip=$((off + 512)) count=200 2>/dev/null | tr '\0' '\n' | head -n1 | cut -d' ' -f1
}

# Fills k_dir, k_vmlinuz, k_release, k_moddir, k_source for one KERNELS entry.
resolve_kernel() {
    local entry=$1 dir
    dir=$(abs "$entry")
    if [ -d "$dir" ]; then
        k_dir=$dir
        k_source="folder $entry"
    else
        [[ $entry =~ ^[0-9]+\.[0-9]+([.-][0-9A-Za-z.+~-]*)?$ ]] ||
            die "'$entry' is neither a folder nor a kernel series like 6.1 or 6.12"
        local re pkg cached
        re="^linux-image-${entry//./\\.}([.+-].*)?-cloud-amd64-unsigned\$"
        # Newest of the series: from the lists, or (offline, no lists) from what is already unpacked.
        if refresh_lists; then
            local opts
            mapfile -t opts < <(apt_opts)
            pkg=$(apt-cache "${opts[@]}" pkgnames linux-image- 2>/dev/null | grep -E "$re" | sort -V | tail -n1 || true)
        else
            say "cannot fetch the package lists of $DEBIAN_SUITE; looking in $CACHE_DIR only"
            pkg=$(find "$CACHE_DIR" -mindepth 2 -maxdepth 2 -name .complete -printf '%h\n' 2>/dev/null |
                xargs -rn1 basename | grep -E "$re" | sort -V | tail -n1 || true)
        fi
        [ -n "$pkg" ] || die "no Debian cloud kernel package of series $entry in $DEBIAN_SUITE (looked for $re)"
        cached=$CACHE_DIR/$pkg
        if [ ! -e "$cached/.complete" ]; then
            say "downloading $pkg (into $CACHE_DIR)"
            rm -rf "$cached" "$cached.deb.d"
            mkdir -p "$cached.deb.d" "$cached"
            local opts
            mapfile -t opts < <(apt_opts)
            (cd "$cached.deb.d" && apt-get "${opts[@]}" download "$pkg" >/dev/null 2>&1) ||
                die "could not download $pkg from $DEBIAN_MIRROR"
            dpkg-deb -x "$cached.deb.d"/*.deb "$cached" || die "could not unpack $pkg"
            rm -rf "$cached.deb.d"
            touch "$cached/.complete"
        fi
        k_dir=$cached
        k_source=$pkg
    fi
    k_vmlinuz=
    local v
    for v in "$k_dir/vmlinuz" "$k_dir"/vmlinuz-* "$k_dir"/boot/vmlinuz-* "$k_dir"/boot/vmlinuz; do
        [ -f "$v" ] && { k_vmlinuz=$v; break; }
    done
    [ -n "$k_vmlinuz" ] || die "no vmlinuz in $k_dir (nor vmlinuz-*, boot/vmlinuz-*)"
    k_release=$(vmlinuz_release "$k_vmlinuz")
    k_moddir=
    local m
    for m in "$k_dir/lib/modules/$k_release" "$k_dir/usr/lib/modules/$k_release"; do
        [ -n "$k_release" ] && [ -d "$m" ] && { k_moddir=$m; break; }
    done
    if [ -z "$k_moddir" ]; then
        # No release in the image's header, or modules under another name: a lone modules tree will do.
        local found=("$k_dir"/lib/modules/*/ "$k_dir"/usr/lib/modules/*/)
        local dirs=()
        for m in "${found[@]}"; do [ -d "$m" ] && dirs+=("${m%/}"); done
        if [ ${#dirs[@]} -eq 1 ]; then
            k_moddir=${dirs[0]}
            [ -n "$k_release" ] || k_release=$(basename "$k_moddir")
        fi
    fi
    [ -n "$k_release" ] || die "cannot tell the release of $k_vmlinuz (and no single lib/modules/<release> beside it)"
}

# Writes to stdout the modules to load for the guest, in load order, one "file name required|optional" a line:
# virtio_pci, virtio_blk, ext4 and crc32c (ext4 asks the crypto API for it) where they are modules, then
# GUEST_MODULES; each after what modules.dep says it needs. Built-in modules are skipped.
module_plan() {
    local dep=$1
    local -A done_=()
    load() {
        local name=$1 kind=$2 line path d
        line=$(grep -E "(^|/)${name//[-_]/[-_]}\.ko(\.xz|\.zst|\.gz)?:" "$dep" | head -n1 || true)
        [ -n "$line" ] || return 0
        path=${line%%:*}
        [ -n "${done_[$path]:-}" ] && return 0
        for d in ${line#*:}; do load "$(basename "${d%%.ko*}")" "$kind"; done
        done_[$path]=1
        echo "$path $(basename "${path%%.ko*}") $kind"
    }
    local m
    for m in virtio_pci virtio_blk ext4 crc32c_generic; do load "$m" required; done
    for m in $GUEST_MODULES; do load "$m" optional; done
    unset -f load
}

# Kernels first (downloads), so that the probe and the plan name what really runs.
# One script at a time fetches into CACHE_DIR (tests run side by side share it).
mkdir -p "$CACHE_DIR"
exec 9>"$CACHE_DIR/.lock"
flock 9
kernels=()
declare -A K_VMLINUZ K_RELEASE K_MODDIR K_SOURCE
for k in $KERNELS; do
    resolve_kernel "$k"
    for r in "${kernels[@]}"; do
        [ "${K_RELEASE[$r]}" = "$k_release" ] && die "two KERNELS entries are the same kernel, $k_release"
    done
    kernels+=("$k")
    K_VMLINUZ[$k]=$k_vmlinuz; K_RELEASE[$k]=$k_release; K_MODDIR[$k]=$k_moddir
    K_SOURCE[$k]=$k_source
done
[ ${#kernels[@]} -gt 0 ] || die "KERNELS is empty"
exec 9>&-

mkdir -p "$WORK_DIR"
work=$(mktemp -d "$WORK_DIR/xferbench-kernels.XXXXXX")
# cache=none (O_DIRECT here) so that a guest's cold read reaches this machine's disk, not its page cache; where the
# file system has no O_DIRECT (tmpfs), writeback.
disk_cache=none
dd if=/dev/zero of="$work/odirect" bs=4096 count=1 oflag=direct 2>/dev/null || disk_cache=writeback
rm -f "$work/odirect"
# The rows a guest left on its disk when it did not end as planned (killed at the time limit, interrupted,
# crashed): the journal replayed by e2fsck, the results folder read by debugfs, neither needing root. They go into
# DEST, so that running again with the same OUT resumes. Says what it kept.
kept() {   # DATA_IMG DEST
    local tmp=$work/salvage rows
    rm -rf "$tmp"
    mkdir -p "$tmp"
    e2fsck -y -E journal_only "$1" >/dev/null 2>&1 || true
    debugfs -R "rdump /results $tmp" "$1" >/dev/null 2>&1 || true
    if [ ! -s "$tmp/results/runs.csv" ]; then
        echo "no finished rows on its disk"
        return
    fi
    cp "$tmp/results/runs.csv" "$2/"
    [ ! -s "$tmp/results/summary.json" ] || cp "$tmp/results/summary.json" "$2/"
    rows=$(( $(wc -l <"$2/runs.csv") - 1 ))
    "$bin" plot "$2" >/dev/null 2>&1 || true
    echo "$rows finished row(s) kept in $2/runs.csv (run again with OUT=$OUT to resume)"
}
qemu_pid=
cur_img=
cleanup() {
    if [ -n "$qemu_pid" ] && [ -s "$work/qemu.pid" ]; then
        kill "$(cat "$work/qemu.pid")" 2>/dev/null
        wait "$qemu_pid" 2>/dev/null
    fi
    if [ -n "$cur_img" ] && [ -f "$cur_img" ]; then
        echo "kernels: $(basename "$cur_dest"): $(kept "$cur_img" "$cur_dest")"
    fi
    if [ "$KEEP_WORK" = 1 ]; then echo "kernels: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'echo "kernels: interrupted"; exit 130' INT TERM

# The common part of every initramfs: busybox, the binary and the shared libraries ldd names, the init.
stage=$work/stage
mkdir -p "$stage"/{bin,dev,proc,sys,tmp,data,modules}
copy_with_libs() {   # FILE DEST: the file, and each library it loads at the path it is loaded from
    cp -L "$1" "$stage/$2"
    local lib
    for lib in $(ldd "$1" 2>/dev/null | grep -oE '(^|[[:space:]])/[^[:space:]]+' || true); do
        mkdir -p "$stage$(dirname "$lib")"
        cp -L "$lib" "$stage$lib"
    done
}
copy_with_libs "$(command -v busybox)" bin/busybox
copy_with_libs "$bin" xferbench
# Before busybox installs its own applets of these names, which know no network namespaces.
if [ "$links" = 1 ]; then
    for t in ip tc; do copy_with_libs "$(PATH=$PATH:/usr/sbin:/sbin command -v "$t")" "bin/$t"; done
fi
if command -v strip >/dev/null; then strip "$stage/xferbench" 2>/dev/null || true; fi
# The guest's command line, one argument a line (the init reads it from plan.args, in each kernel's own archive).
printf '%s\n' run "${run_args[@]}" --fixture-dir fixtures --out results >"$work/plan.args"
# shellcheck disable=SC2086
[ -z "$EXTRA" ] || printf '%s\n' $EXTRA >>"$work/plan.args"
cat >"$stage/probe" <<'PROBE'
#!/bin/busybox sh
/bin/busybox mount -t devtmpfs devtmpfs /dev
echo xferbench-probe-ok >/dev/console
/bin/busybox poweroff -f
PROBE
cat >"$stage/init" <<'INIT'
#!/bin/busybox sh
# The guest's init, written by scripts/kernels.sh: modules, disks, loopback, the plan, the results onto the raw disk.
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /tmp
say() { echo "xferbench-guest: $*"; }
up() { cut -d' ' -f1 /proc/uptime; }
facts=/tmp/guest.txt
fact() { echo "$1=$2" >>$facts; }
back=
finish() {
    fact status "$1"
    fact end_uptime_s "$(up)"
    mkdir -p /tmp/back
    [ -d /data/results ] && cp -r /data/results/. /tmp/back/
    cp $facts /tmp/back/guest.txt
    [ -f /tmp/run.log ] && cp /tmp/run.log /tmp/back/run.log
    if [ -n "$back" ]; then
        tar -cf "/dev/$back" -C /tmp/back . && sync && say "results written to /dev/$back"
    else
        say "no results disk: nothing comes back"
    fi
    say "done: $1"
    umount /data 2>/dev/null
    sync
    poweroff -f
}
fact release "$(uname -r)"
fact init_uptime_s "$(up)"
fact cmdline "$(cat /proc/cmdline)"
fact vcpus "$(nproc)"
fact mem_total_kib "$(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)"
say "kernel $(uname -r) up in $(up) s, $(nproc) vCPU(s)"
loaded= failed=
while read -r file name kind; do
    if insmod "/modules/$file" 2>/tmp/insmod.err; then
        loaded="$loaded $name"
    else
        failed="$failed $name"
        say "insmod $name failed: $(cat /tmp/insmod.err)"
        [ "$kind" = required ] && finish "module-failed:$name"
    fi
done </modules/load
fact modules_loaded "${loaded# }"
fact modules_failed "${failed# }"
[ -n "$loaded" ] && say "modules loaded:$loaded"
fact tcp_available_ulp "$(cat /proc/sys/net/ipv4/tcp_available_ulp 2>/dev/null)"
fact io_uring_disabled "$(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null || echo absent)"
disk() { for b in /sys/block/vd*; do [ "$(cat "$b/serial" 2>/dev/null)" = "$1" ] && echo "${b##*/}" && return 0; done; return 1; }
i=0
until back=$(disk xferbench-results) && data=$(disk xferbench-data); do
    i=$((i + 1))
    [ $i -gt 50 ] && { back=$(disk xferbench-results) || back=; finish no-disks; }
    sleep 0.2
done
mount -t ext4 "/dev/$data" /data || finish mount-failed
fact storage "virtio-blk /dev/$data ext4"
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up || finish no-loopback
hostname qemu-guest
# `ip netns` keeps named namespaces in /run/netns (/var/run/netns in some builds).
mkdir -p /run /var && ln -sfn /run /var/run
cd /data
set --
while IFS= read -r a; do set -- "$@" "$a"; done </plan.args
say "xferbench $*"
t0=$(up)
# Its output into run.log, and onto the console line by line with the prefix the host follows.
{ /xferbench "$@"; echo $? >/tmp/rc; } 2>&1 | tee /tmp/run.log | while IFS= read -r l; do say "| $l"; done
rc=$(cat /tmp/rc 2>/dev/null || echo 1)
fact xferbench_rc "$rc"
fact run_s "$(awk -v a="$t0" -v b="$(up)" 'BEGIN { printf "%.1f", b - a }')"
cd /
sync
if [ "$rc" = 0 ]; then finish ok; else finish "xferbench-exit-$rc"; fi
INIT
chmod +x "$stage/init" "$stage/probe"
(cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$work/common.cpio"
initrd_mib=$(( $(stat -c %s "$work/common.cpio") / 1048576 ))

avail_mib=$(( $(sed -n 's/^MemAvailable: *\([0-9]*\) kB/\1/p' /proc/meminfo) / 1024 ))
mem_cap=$(( avail_mib - 1024 > 256 ? avail_mib - 1024 : 256 ))
if [ -n "${GUEST_MEM:-}" ]; then
    mem=$GUEST_MEM
else
    mem=$(( file_mib + initrd_mib + 1024 ))
    if [ "$mem" -gt "$mem_cap" ]; then
        say "warning: the test file ($file_mib MiB), the initramfs and 1 GiB do not fit in what this machine has available; guest memory $mem_cap MiB, so warm cases may not stay cached"
        mem=$mem_cap
    fi
fi


# A guest: qemu with the kernel, an initramfs, the data and results disks; console into a file. Returns qemu's status
# (124 when killed at the time limit).
boot() {   # ACCEL VMLINUZ INITRD CONSOLE TIMEOUT DATA_IMG RESULTS_IMG [APPEND...]
    local accel=$1 vmlinuz=$2 initrd=$3 console=$4 limit=$5 data=$6 results=$7 cpu=max
    shift 7
    [ "$accel" = kvm ] && cpu=host
    local disks=()
    if [ -n "$data" ]; then
        # shellcheck disable=SC2054
        disks+=(-drive "if=none,id=data,file=$data,format=raw,cache=$disk_cache"
            -device virtio-blk-pci,drive=data,serial=xferbench-data
            -drive "if=none,id=results,file=$results,format=raw"
            -device virtio-blk-pci,drive=results,serial=xferbench-results)
    fi
    # In a subshell of its own, so that a qemu that aborts is reported into its log, not on this script's
    # terminal; the pid of `timeout` (which passes a TERM on to qemu) is noted for the clean-up.
    {
        timeout -k 5 "$limit" qemu-system-x86_64 -accel "$accel" -cpu "$cpu" -smp "$GUEST_CPUS" -m "$mem" \
            -nodefaults -no-user-config -display none -monitor none -no-reboot -serial "file:$console" \
            -kernel "$vmlinuz" -initrd "$initrd" -append "console=ttyS0 panic=-1 $*" "${disks[@]}" &
        echo $! >"$work/qemu.pid"
        wait $!
    } </dev/null >"$console.qemu" 2>&1 &
    qemu_pid=$!
    local follower=
    if [ "${follow:-0}" = 1 ]; then
        # The init's own lines, as they come (tail stops once qemu has).
        tail -n +1 -s 0.5 -F --pid="$qemu_pid" "$console" 2>/dev/null |
            sed -un 's/\r$//; s/^xferbench-guest: | /    /p; s/^xferbench-guest: /  guest: /p' &
        follower=$!
    fi
    local rc=0
    wait "$qemu_pid" || rc=$?
    qemu_pid=
    [ -z "$follower" ] || wait "$follower" || true
    return "$rc"
}

first=${kernels[0]}
probe_note=
case $ACCEL in
    kvm) [ -r /dev/kvm ] && [ -w /dev/kvm ] || die "ACCEL=kvm, but /dev/kvm is missing or not readable and writable here"
        accel=kvm ;;
    tcg) accel=tcg ;;
    auto)
        accel=tcg
        if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
            say "probing KVM: booting ${K_RELEASE[$first]} for at most 30 s"
            probe_rc=0
            boot kvm "${K_VMLINUZ[$first]}" "$work/common.cpio" "$work/probe.log" 30 "" "" rdinit=/probe ||
                probe_rc=$?
            if [ "$probe_rc" -eq 0 ] && grep -q xferbench-probe-ok "$work/probe.log"; then
                accel=kvm
            else
                [ "$probe_rc" -eq 124 ] && why="no answer in 30 s" || why="exit $probe_rc"
                why="$why: $(tr -d '\r' <"$work/probe.log.qemu" | grep -v '^$' | grep -v 'Aborted' |
                    tail -n1 | cut -c1-160 || true)"
                say "KVM did not boot a guest here (${why%: }): using TCG"
                probe_note="KVM failed its probe, "
            fi
        else
            probe_note="no usable /dev/kvm, "
        fi ;;
esac

# Rough duration per guest, to set the time limit: rates from a 2-CPU machine, KVM near native, TCG about a tenth.
if [ "$accel" = kvm ]; then warm_rate=1000000000 cold_rate=500000000 per_run=1 boot_s=30
else warm_rate=150000000 cold_rate=100000000 per_run=3 boot_s=60; fi
cold_runs=$(( all_cases > 0 ? runs * cold_cases / all_cases : 0 ))
estimate=$(( boot_s + bytes / cold_rate + (runs - cold_runs) * (bytes / warm_rate + per_run)
    + cold_runs * (bytes / cold_rate + per_run) ))
GUEST_TIMEOUT=${GUEST_TIMEOUT:-$(( 3 * estimate + 120 ))}
disk_mib=$(( file_mib + file_mib / 8 + 256 ))
[ "$disk_mib" -lt 1024 ] && disk_mib=1024

[ "$accel" = tcg ] && accel_words="tcg (${probe_note}emulated: the numbers measure QEMU's emulator, not the kernel)" ||
    accel_words="kvm"
cat <<PLAN
kernels: ${#kernels[@]} kernel(s), one guest each, one after another
$(for k in "${kernels[@]}"; do printf '  %-8s %s (%s)\n' "$k" "${K_RELEASE[$k]}" "${K_SOURCE[$k]}"; done)
  accelerator: $accel_words
  guest:       $GUEST_CPUS vCPU(s), $mem MiB, initramfs $initrd_mib MiB, ext4 on a virtio-blk disk of $disk_mib MiB (sparse, in $WORK_DIR)
  modules:     virtio_pci virtio_blk ext4 crc32c where not built in, and ${GUEST_MODULES:-nothing more} where present
  $plan_line
  strategies:  $STRATEGIES; threads $THREADS; chunks $CHUNKS; caches $CACHES; repeat $REPEAT, warm-up $WARMUP${EXTRA:+; $EXTRA}
  into:        $OUT/<release>/ (runs.csv, summary.json, charts, console.log, guest.txt), then $OUT/compare
  roughly:     $((estimate / 60)) min $((estimate % 60)) s per guest; one taking over $GUEST_TIMEOUT s is killed
PLAN

failures=()
done_dirs=()
fail() { failures+=("$1"); echo "kernels: $1" >&2; }
cmdline="xferbench.hypervisor=qemu xferbench.accel=$accel xferbench.vcpus=$GUEST_CPUS xferbench.mem_mib=$mem"
cmdline+=" xferbench.storage=virtio-blk"
for k in "${kernels[@]}"; do
    release=${K_RELEASE[$k]}
    dest=$OUT/$release
    mkdir -p "$dest"
    kw=$work/$release
    mkdir -p "$kw/stage/modules" "$kw/populate"
    # The modules this kernel needs, uncompressed (busybox's insmod reads plain .ko files), and their load order.
    : >"$kw/stage/modules/load"
    if [ -n "${K_MODDIR[$k]}" ]; then
        dep=${K_MODDIR[$k]}/modules.dep
        if [ ! -s "$dep" ]; then
            dep=$kw/modules.dep
            depmod -n -b "${K_MODDIR[$k]%/lib/modules/*}" "$(basename "${K_MODDIR[$k]}")" 2>/dev/null |
                sed '/^#/,$d' >"$dep" || true
            [ -s "$dep" ] || { failures+=("$release: no modules.dep, and depmod could not make one"); continue; }
        fi
        module_plan "$dep" | while read -r path name kind; do
            case $path in
                *.xz) xz -dc "${K_MODDIR[$k]}/$path" >"$kw/stage/modules/$name.ko" ;;
                *.zst) zstd -qdc "${K_MODDIR[$k]}/$path" >"$kw/stage/modules/$name.ko" ;;
                *.gz) gzip -dc "${K_MODDIR[$k]}/$path" >"$kw/stage/modules/$name.ko" ;;
                *) cp "${K_MODDIR[$k]}/$path" "$kw/stage/modules/$name.ko" ;;
            esac
            echo "$name.ko $name $kind" >>"$kw/stage/modules/load"
        done
    fi
    # --resume travels in the plan when OUT already holds rows for this release: the earlier runs.csv goes onto the
    # guest's disk, and the run skips the cases it holds in full.
    cp "$work/plan.args" "$kw/stage/plan.args"
    resume=
    if [ -s "$dest/runs.csv" ]; then
        mkdir -p "$kw/populate/results"
        cp "$dest/runs.csv" "$kw/populate/results/"
        echo --resume >>"$kw/stage/plan.args"
        resume=1
    fi
    (cd "$kw/stage" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$kw/kernel.cpio"
    # The kernel reads one archive after another: the common part, then this kernel's modules and plan.
    cat "$work/common.cpio" "$kw/kernel.cpio" >"$kw/initrd"
    # A fresh ext4 disk per kernel, made here by mkfs (no root; inode tables and journal written now, so that no
    # lazy initialisation runs in the guest while it measures).
    rm -f "$kw/data.img" "$kw/results.img"
    truncate -s "${disk_mib}M" "$kw/data.img"
    truncate -s 256M "$kw/results.img"
    mkfs.ext4 -q -F -b 4096 -L xferbench-data -E lazy_itable_init=0,lazy_journal_init=0 -d "$kw/populate" \
        "$kw/data.img" >/dev/null 2>&1 || die "mkfs.ext4 could not make the guest's disk in $kw"
    say "$release: booting (${accel}${resume:+; resuming the rows already in $dest/runs.csv})"
    cur_img=$kw/data.img cur_dest=$dest
    t0=$(date +%s)
    rc=0
    follow=1 boot "$accel" "${K_VMLINUZ[$k]}" "$kw/initrd" "$kw/console.log" "$GUEST_TIMEOUT" "$kw/data.img" \
        "$kw/results.img" "$cmdline" || rc=$?
    took=$(( $(date +%s) - t0 ))
    tr -d '\r' <"$kw/console.log" >"$dest/console.log"
    rm -rf "$kw/back"
    mkdir -p "$kw/back"
    [ "$rc" -ne 0 ] || tar -xf "$kw/results.img" -C "$kw/back" 2>/dev/null || true
    if [ ! -s "$kw/back/guest.txt" ]; then
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            why="the guest did not finish within GUEST_TIMEOUT=$GUEST_TIMEOUT s and was killed"
        elif [ "$rc" -ne 0 ]; then
            why="qemu failed (exit $rc: $(tail -n1 "$kw/console.log.qemu" | cut -c1-120))"
        else
            why="results missing: the guest wrote nothing back ($(grep -m1 -o 'xferbench-guest: done: .*' \
                "$dest/console.log" || echo "it never reached its end"))"
        fi
        fail "$release: $why; $(kept "$kw/data.img" "$dest") (console: $dest/console.log)"
        cur_img=
        continue
    fi
    cur_img=
    for f in runs.csv summary.json run.log guest.txt; do
        [ ! -e "$kw/back/$f" ] || cp "$kw/back/$f" "$dest/$f"
    done
    printf 'accel=%s\nhost_seconds=%s\n' "$accel" "$took" >>"$dest/guest.txt"
    fact() { sed -n "s/^$1=//p" "$dest/guest.txt"; }
    if [ "$(fact release)" != "$release" ]; then
        fail "$release: the guest ran kernel '$(fact release)', not $release"
        continue
    fi
    if [ ! -s "$dest/runs.csv" ]; then
        fail "$release: results missing: no runs.csv came back (guest status $(fact status); console: $dest/console.log)"
        continue
    fi
    "$bin" plot "$dest" >/dev/null 2>&1 || say "$release: could not draw the charts"
    say "$release: ${took} s in all (boot to init $(fact init_uptime_s) s, plan $(fact run_s) s, guest clock); tcp_available_ulp: $(fact tcp_available_ulp)"
    done_dirs+=("$dest")
    [ "$(fact status)" = ok ] || fail "$release: the plan did not finish cleanly in the guest ($(fact status); see $dest/run.log)"
done

if [ ${#done_dirs[@]} -ge 2 ]; then
    if "$bin" compare "${done_dirs[@]}" --out "$OUT/compare" >"$work/compare.out" 2>&1; then
        cat "$OUT/compare/compare.md"
        say "compare in $OUT/compare"
    else
        failures+=("compare failed: $(tail -n1 "$work/compare.out")")
        echo "kernels: ${failures[-1]}" >&2
    fi
elif [ ${#done_dirs[@]} -eq 1 ]; then
    say "one kernel's results: nothing to compare (no $OUT/compare)"
fi
if [ ${#failures[@]} -gt 0 ]; then
    say "${#failures[@]} failure(s):"
    printf '  %s\n' "${failures[@]}"
    exit 1
fi
say "results in $OUT"
