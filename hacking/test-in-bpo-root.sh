#!/usr/bin/env bash
# Run the tests on libvirt 11.3 / QEMU 10 from bookworm-backports without touching this machine's libvirt: in a Debian 12
# root of its own (debootstrap), with a private libvirt daemon that lives and dies with the run.
#
#   hacking/test-in-bpo-root.sh                    # units, then integration (all targets)
#   hacking/test-in-bpo-root.sh integration virt_snapshot virt_snapshot_info     # some targets
#   hacking/test-in-bpo-root.sh units | sanity
#   hacking/test-in-bpo-root.sh shell              # a shell in the root with the daemon up (or: ... shell <script)
#
# 1. Root: `debootstrap --variant=minbase bookworm` into $VMSNAP_BPO_ROOT (default /var/tmp/vmsnap-bpo/root) the first
#    time, from the mirror this machine's apt uses for bookworm. It stays there for later runs (about 1.2 GB).
# 2. Copy: the files hacking/stage-collection.sh stages go to $root/src/vmsnap (its .venv is kept).
# 3. Provision, in the root (host network): python3, then `LIBVIRT=backports hacking/bootstrap.sh`, which adds
#    bookworm-backports and installs libvirt 11.3 / QEMU 10 and the .venv. Quick when all is in place. Package scripts
#    start no services (policy-rc.d), and recommended packages are not installed (no network or storage drivers).
# 4. Test, in the root, in new mount, PID, network, IPC and UTS namespaces: /proc, /dev, /sys (read-only) and a /run of
#    its own; hacking/libvirt-up.sh starts virtlogd + libvirtd there (qemu.conf also gets `cgroup_controllers = [ ]`,
#    so they create no cgroups on the host); then `make units` and/or `make integration`. When the run ends, PID 1 of
#    the namespace exits and the kernel ends the daemons and any QEMU left. The network namespace has only loopback:
#    nothing in the test can reach the host's network, and `sanity` (whose tool venvs come from PyPI) therefore runs
#    in the provisioning namespaces instead, without the daemon.
#
# Results stay in $root/src/vmsnap/.build/ansible_collections/vmsnap/libvirt/tests/output/. Runs under nice.
# Environment: VMSNAP_BPO_ROOT (the root's path), DEBIAN_MIRROR (default: apt's source for bookworm on this machine).
# The scripts in single quotes below run inside the root and expand their variables there.
# shellcheck disable=SC2016
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
root=${VMSNAP_BPO_ROOT:-/var/tmp/vmsnap-bpo/root}
copy=/src/vmsnap

log() { printf 'test-in-bpo-root: %s\n' "$*"; }
die() { printf 'test-in-bpo-root: ERROR: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "needs root (debootstrap, chroot, namespaces)"
command -v unshare >/dev/null || die "unshare (util-linux) is missing"
[[ $root == /* && $root != / ]] || die "VMSNAP_BPO_ROOT must be an absolute path other than /"

what=${1:-all}
(($# == 0)) || shift
case $what in
    all | units | integration | sanity | shell) ;;
    *) die "unknown step '$what': use all, units, integration, sanity or shell" ;;
esac

make_root() {
    local mirror targets
    [[ -f $root/etc/debian_version ]] && return
    if ! command -v debootstrap >/dev/null; then
        log "installing debootstrap on this machine"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap </dev/null
    fi
    # shellcheck disable=SC2016  # $(RELEASE) and $(SITE) are apt's field names, not shell
    targets=$(apt-get indextargets --format '$(RELEASE) $(SITE)')
    mirror=${DEBIAN_MIRROR:-$(sed -n '/^bookworm /{s///p;q}' <<<"$targets")}
    [[ -n $mirror ]] || die "this machine's apt has no source for bookworm: set DEBIAN_MIRROR"
    log "debootstrap bookworm from $mirror into $root (a few minutes)"
    mkdir -p "$root"
    nice debootstrap --variant=minbase bookworm "$root" "$mirror"
}

configure_root() {
    # Package scripts must not start daemons (they would outlive the chroot, outside any namespace of ours).
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod 0755 "$root/usr/sbin/policy-rc.d"
    printf 'APT::Install-Recommends "false";\n' >"$root/etc/apt/apt.conf.d/90vmsnap-no-recommends"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    # The root trusts the certificate authorities this machine added (a proxy in front of PyPI, say), and pip there
    # uses the system's bundle as it does here.
    # A minbase root has no ca-certificates package (so no update-ca-certificates) until something pulls it in: then
    # the host's bundle, which holds those authorities already, stands in for the root's until the package builds its
    # own (from the copied .crt files too).
    if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
        mkdir -p "$root/usr/local/share/ca-certificates" "$root/etc/ssl/certs"
        cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
        if [[ -x $root/usr/sbin/update-ca-certificates ]]; then
            chroot "$root" update-ca-certificates >/dev/null
        else
            cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
        fi
        printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$root/etc/pip.conf"
    fi
}

copy_repository() {
    local dest=$root$copy stage
    mkdir -p "$dest"
    if [[ -d $dest/.venv ]]; then mv "$dest/.venv" "$root/src/.venv.kept"; fi
    rm -rf "$dest"
    mkdir -p "$dest"
    # The files hacking/stage-collection.sh stages (from a clone or from a source archive alike), .venv kept apart.
    stage=$("$repo_root/hacking/stage-collection.sh")
    rsync -a --exclude=/tests/output "$stage/" "$dest/"
    if [[ -d $root/src/.venv.kept ]]; then mv "$root/src/.venv.kept" "$dest/.venv"; fi
    log "copied the staged collection ($(find "$dest" -path "$dest/.venv" -prune -o -type f -print | wc -l) files) to $dest"
}

# The script run inside the namespaces (as PID 1 there) before it enters the root: mounts, then chroot.
enter_root='
set -euo pipefail
root=$1; shift
# A mount point of its own: libvirt gives each QEMU a private /dev, which needs / to be one ("Failed disable mount
# propagation out of the root filesystem").
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"
mount --rbind /sys "$root/sys"
mount -o remount,bind,ro "$root/sys"
mount -t tmpfs -o mode=0755 tmpfs "$root/run"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
# The real-guest lab'"'"'s image cache (hacking/guest-image.sh), built on the host beforehand: the test namespace has no
# network to build it with.
if [[ -d /var/cache/vmsnap/guest-image ]]; then
    mkdir -p "$root/var/cache/vmsnap/guest-image"
    mount --bind /var/cache/vmsnap/guest-image "$root/var/cache/vmsnap/guest-image"
fi
if [[ -n ${VMSNAP_BPO_NO_NET:-} ]]; then ip link set lo up; fi
exec chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
'

# in_root NET|NO_NET COMMAND...: run COMMAND in the root, in new mount and PID namespaces (and network, IPC, UTS ones
# with NO_NET).
in_root() {
    # --kill-child: when this script is interrupted, the namespace's PID 1 (and with it every process there) goes too.
    local mode=$1 namespaces=(--mount --pid --fork --kill-child)
    shift
    if [[ $mode == NO_NET ]]; then
        namespaces+=(--net --ipc --uts)
        command -v ip >/dev/null || die "ip (iproute2) is missing: it brings up loopback in the test's network namespace"
    fi
    VMSNAP_BPO_NO_NET=$([[ $mode == NO_NET ]] && echo 1) nice -n 10 unshare "${namespaces[@]}" \
        bash -c "$enter_root" enter-root "$root" "$@"
}

provision() {
    log "provisioning the root: python3, then LIBVIRT=backports hacking/bootstrap.sh"
    in_root NET bash -euo pipefail -c '
        cd "$1"
        export DEBIAN_FRONTEND=noninteractive
        for package in python3-venv python3-dev; do
            if [[ $(dpkg-query -W -f="\${db:Status-Status}" "$package" 2>/dev/null) != installed ]]; then
                apt-get update -q
                apt-get install -y -q python3 python3-venv python3-dev </dev/null
                break
            fi
        done
        LIBVIRT=backports hacking/bootstrap.sh
        # no cgroups of our own on the host (its libvirtd keeps its own there); set before libvirt-up.sh adds the rest
        grep -qxF "cgroup_controllers = [ ]" /etc/libvirt/qemu.conf || echo "cgroup_controllers = [ ]" >>/etc/libvirt/qemu.conf
        echo "versions: $(libvirtd --version), $(qemu-system-x86_64 --version | head -n 1)"
    ' provision "$copy"
}

# The test steps, inside the root: the daemon, then make.
run_tests='
set -uo pipefail
cd "$1"
export LIBVIRT=backports
hacking/libvirt-up.sh || exit 1
virsh -c qemu:///system version
what=$2
shift 2
status=0
if [[ $what == shell ]]; then
    # interactive on a terminal; otherwise it runs the commands it reads from stdin
    bash
    exit
fi
if [[ $what == all || $what == units ]]; then
    make --no-print-directory units || status=1
fi
if [[ $what == all || $what == integration ]]; then
    if (($#)); then
        python_version=$(.venv/bin/python -c "import sys; print(\"%d.%d\" % sys.version_info[:2])")
        hacking/ansible-test.sh integration --local --python "$python_version" --allow-destructive --continue-on-error "$@" \
            || status=1
    else
        make --no-print-directory integration || status=1
    fi
fi
exit $status
'

make_root
configure_root
copy_repository
provision
if [[ $what == sanity ]]; then
    in_root NET bash -c "cd $copy && make --no-print-directory sanity"
    exit
fi
log "testing ($what) on the private daemon; results in $root$copy/.build/ansible_collections/vmsnap/libvirt/tests/output"
in_root NO_NET bash -c "$run_tests" run-tests "$copy" "$what" "$@"
