# Clean Debian roots made with mmdebstrap, cached as tarballs, and a way to
# run commands inside them. Sourced by packaging/check/prove.
#
# A root runs commands under chroot in new mount, PID, IPC and UTS namespaces
# (and a new network namespace when asked): whatever it starts ends with it,
# and nothing it mounts is seen outside. The host needs only unshare and
# chroot, as root; no systemd.

CACHE=${TUNGUI_ROOTS_CACHE:-/var/cache/tungui-roots}
MIRROR=${TUNGUI_MIRROR:-http://deb.debian.org/debian}
SECURITY=${TUNGUI_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
# Tarballs older than this many days are made again, so that a root's
# packages do not drift too far behind the archive.
MAX_AGE_DAYS=7

log() { printf '== %s\n' "$*" >&2; }

# in_root ROOT net|nonet COMMAND...: run COMMAND as root inside ROOT.
# Downloaded .debs are kept in $CACHE/archives-<release> across roots and runs.
in_root() {
    local root=$1 net=$2
    shift 2
    local archives=$CACHE/archives-$(cat "$root/etc/proof-release")
    mkdir -p "$archives/partial"
    local isolate=()
    [ "$net" = net ] && isolate=(--net)
    unshare --mount --pid --fork --ipc --uts "${isolate[@]}" -- /bin/sh -euc '
        root=$1 archives=$2
        shift 2
        # The root is a mount point of its own, as / is on a machine
        # ("ip netns" remounts / as a slave, which only a mount point can be).
        mount --bind "$root" "$root"
        mount -t proc proc "$root/proc"
        mount -t sysfs sysfs "$root/sys"
        mount --rbind /dev "$root/dev"
        mount -t tmpfs -o mode=0755 tmpfs "$root/run"
        mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
        mount --bind "$archives" "$root/var/cache/apt/archives"
        exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
            HOME=/root LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes "$@"
    ' sh "$root" "$archives" "$@"
}

# fresh_tarball PATH: true if PATH exists and is younger than MAX_AGE_DAYS.
fresh_tarball() {
    [ -f "$1" ] && [ -z "$(find "$1" -mtime +"$MAX_AGE_DAYS")" ]
}

# base_tarball RELEASE: the path of a minimal root of RELEASE (apt and the
# essential packages), made with mmdebstrap from the Debian archive if needed.
base_tarball() {
    local release=$1 tarball=$CACHE/base-$1.tar
    mkdir -p "$CACHE"
    if ! fresh_tarball "$tarball"; then
        log "mmdebstrap $release"
        mmdebstrap --quiet --variant=apt --mode=root --format=tar "$release" "$tarball.new" \
            "deb $MIRROR $release main" \
            "deb $MIRROR $release-updates main" \
            "deb $SECURITY $release-security main"
        mv "$tarball.new" "$tarball"
        # The .debs kept since the last base root are older than it.
        rm -rf "$CACHE/archives-$release"
    fi
    echo "$tarball"
}

# unpack TARBALL RELEASE DIR: a root in DIR, ready for in_root.
unpack() {
    local tarball=$1 release=$2 root=$3
    mkdir -p "$root"
    tar -C "$root" --numeric-owner -xpf "$tarball"
    echo "$release" >"$root/etc/proof-release"
    # Packages that are installed start no services inside a root.
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod 0755 "$root/usr/sbin/policy-rc.d"
    cp -L /etc/resolv.conf "$root/etc/resolv.conf"
}

# derived_tarball RELEASE NAME PACKAGES...: a root of RELEASE with PACKAGES
# installed, cached under a name that changes with the package list.
derived_tarball() {
    local release=$1 name=$2
    shift 2
    local key
    key=$(printf '%s\n' "$release" "$@" | sha256sum | cut -c1-12)
    local tarball=$CACHE/$name-$release-$key.tar
    if ! fresh_tarball "$tarball"; then
        local base work
        base=$(base_tarball "$release")
        work=$(mktemp -d /var/tmp/tungui-root.XXXXXX)
        log "$name root for $release: $*"
        unpack "$base" "$release" "$work"
        in_root "$work" nonet apt-get update -qq
        in_root "$work" nonet apt-get install -y -qq --no-install-recommends "$@" >/dev/null
        rm -f "$work/etc/proof-release" "$work/usr/sbin/policy-rc.d"
        tar -C "$work" --numeric-owner -cf "$tarball.new" .
        rm -rf --one-file-system "$work"
        # Older keys of the same root are of no use any more.
        find "$CACHE" -maxdepth 1 -name "$name-$release-*.tar" ! -name "${tarball##*/}" -delete
        mv "$tarball.new" "$tarball"
    fi
    echo "$tarball"
}
