#!/usr/bin/env bash
# Build (once) and cache the real-guest lab's Debian 12 image; print the image's folder on stdout (logs go to stderr).
#
#   hacking/guest-image.sh              # the cached image for this recipe, built first when there is none
#   hacking/guest-image.sh --rebuild    # build it again even though it is cached
#   hacking/guest-image.sh --key        # only print the recipe's key
#
# Cache: ${VMSNAP_GUEST_CACHE:-/var/cache/vmsnap/guest-image}/KEY/, KEY = the first 16 hex digits of the sha256 over the
# recipe (this script, plus every file under hacking/guest-image/ when that folder exists). It holds
#   base.qcow2                 compressed qcow2 of an ext4 root file system made with `mke2fs -d` (no loop mount), read-only
#                              and immutable (chattr +i): guests run on overlays of it, and nothing may write into it
#   vmlinuz, initrd.img        for direct kernel boot: root=/dev/vda console=ttyS0 net.ifnames=0 panic=0
#   id_ed25519, id_ed25519.pub the image's own SSH key (root's authorized_keys in the image; no password logs in)
#   manifest.json              key, build date, sizes, Debian package versions of interest
# Each build goes into a temporary folder next to the entries and is renamed to KEY when complete, so there is never a
# half-built entry; then the symlink `current` is replaced (atomically) by one pointing at KEY, and older entries are
# removed unless a process (a guest's QEMU) holds a file of theirs open. A lock (flock on .lock) makes concurrent
# callers wait for one build instead of building twice.
#
# The guest: `debootstrap --variant=minbase` of bookworm from the mirror this machine's apt uses (DEBIAN_MIRROR
# overrides it), with systemd, the cloud kernel, qemu-guest-agent (freeze hooks on: /etc/qemu/fsfreeze-hook runs the
# executables in /etc/qemu/fsfreeze-hook.d/; log in /var/log/qemu-ga.log), python3 (+ python3-apt for Ansible's apt
# module), openssh-server (root by key only, host keys made at build), ifupdown with eth0 on DHCP (allow-hotplug),
# dbus (systemd-logind: the ACPI power button shuts down), pvpanic loaded at boot and kernel.panic=0, no apt sources (the
# guest reaches no network; a file: source added later works). For the boot under software emulation: a small initrd
# (virtio_pci, virtio_blk), modules of the emulated PC that virtio guests never use blacklisted, and the timers,
# wait-online units and pseudo file systems that slow a boot or wake up on their own masked.
set -euo pipefail

script=$(readlink -f "${BASH_SOURCE[0]}")
recipe_dir=$(dirname "$script")/guest-image
cache=${VMSNAP_GUEST_CACHE:-/var/cache/vmsnap/guest-image}
# Where vmsnap_testctl keeps its guests' overlays (an image they are made on is never pruned).
guest_dirs=${VMSNAP_TEST_IMAGE_ROOT:-/var/lib/libvirt/images/vmsnap-test}
suite=bookworm
root_size=2G
packages=systemd-sysv,linux-image-cloud-amd64,qemu-guest-agent,python3,python3-apt,openssh-server,udev,ifupdown
packages+=,isc-dhcp-client,iproute2,e2fsprogs,procps,dbus,kmod
# Units that wake up on their own (and would show in timings or fight a test), make a boot wait for the network, or
# load and mount what a lab guest never uses (each costs seconds under software emulation).
masked_units=(apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer e2scrub_reap.service
    fstrim.timer systemd-networkd-wait-online.service ifupdown-wait-online.service
    proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount systemd-binfmt.service sys-fs-fuse-connections.mount
    sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount dev-hugepages.mount
    modprobe@dm_mod.service modprobe@loop.service modprobe@fuse.service modprobe@efi_pstore.service modprobe@drm.service
    modprobe@configfs.service)
# Modules udev would load for the emulated PC that a guest on virtio never needs (kvm: the CPU model offers svm).
blacklisted_modules=(kvm kvm_amd kvm_intel ata_piix ata_generic pata_acpi floppy serio_raw psmouse i2c_piix4 pcspkr joydev
    powernow_k8 acpi_cpufreq)
# Services with a watchdog that a guest starved of CPU (a busy host) can miss: they would be killed and restarted.
watchdog_services=(systemd-journald systemd-logind systemd-udevd)

log() { printf 'guest-image: %s\n' "$*" >&2; }
die() { printf 'guest-image: ERROR: %s\n' "$*" >&2; exit 1; }

recipe_key() {
    {
        cat "$script"
        if [[ -d $recipe_dir ]]; then
            local file
            while IFS= read -r -d '' file; do
                printf '\0%s\0' "${file#"$recipe_dir"/}"
                cat "$file"
            done < <(find "$recipe_dir" -type f -print0 | LC_ALL=C sort -z)
        fi
    } | sha256sum | cut -c1-16
}

rebuild=false
case ${1:-} in
    '') ;;
    --rebuild) rebuild=true ;;
    --key) recipe_key; exit 0 ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$script"; exit 0 ;;
    *) die "unknown option '$1': use --rebuild, --key or --help" ;;
esac
(($# <= 1)) || die "too many arguments: use at most one of --rebuild, --key, --help"
[[ $cache == /* && $cache != / ]] || die "VMSNAP_GUEST_CACHE must be an absolute path other than / (got '$cache')"

key=$(recipe_key)
entry=$cache/$key
# Scratch folders in /dev/shm are named after the cache (whose lock guards them), not after the key.
scratch_prefix=vmsnap-guest-image-$(printf '%s' "$cache" | sha256sum | cut -c1-8)

# Quick answer without root or lock: an entry exists only once it is complete, and `current` already points at it.
if ! $rebuild && [[ -f $entry/manifest.json && $(readlink "$cache/current" 2>/dev/null) == "$key" ]]; then
    log "cached: $entry"
    printf '%s\n' "$entry"
    exit 0
fi

[[ $(id -u) == 0 ]] || die "building the image needs root (debootstrap, chroot); run it as root or ask for 'make guest-image'"

install_missing_tools() {
    local -A tool_package=([debootstrap]=debootstrap [mke2fs]=e2fsprogs [chattr]=e2fsprogs [qemu-img]=qemu-utils
        [ssh-keygen]=openssh-client [flock]=util-linux)
    local tool missing=()
    for tool in "${!tool_package[@]}"; do
        command -v "$tool" >/dev/null || missing+=("${tool_package[$tool]}")
    done
    [[ -e /usr/share/keyrings/debian-archive-keyring.gpg ]] || missing+=(debian-archive-keyring)
    ((${#missing[@]})) || return 0
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 </dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 </dev/null
}

debian_mirror() {
    local targets mirror
    # shellcheck disable=SC2016  # $(RELEASE) and $(SITE) are apt's field names, not shell
    targets=$(apt-get indextargets --format '$(RELEASE) $(SITE)')
    mirror=${DEBIAN_MIRROR:-$(sed -n "/^$suite /{s///p;q}" <<<"$targets")}
    [[ -n $mirror ]] || die "this machine's apt has no source for $suite: set DEBIAN_MIRROR (e.g. http://deb.debian.org/debian)"
    printf '%s\n' "$mirror"
}

# Remove a folder of ours that a build left behind: first whatever a killed debootstrap left mounted in it.
remove_build_dir() {
    local dir=$1 mount_point
    [[ -d $dir ]] || return 0
    while read -r mount_point; do
        umount -l "$mount_point" || true
    done < <(awk -v dir="$dir/" 'index($2, dir) == 1 {print $2}' /proc/mounts | sort -r)
    chattr -i "$dir/base.qcow2" 2>/dev/null || true
    rm -rf --one-file-system "$dir"
}

configure_root() {
    local root=$1 unit
    printf '/dev/vda / ext4 defaults 0 1\n' >"$root/etc/fstab"
    printf 'vmsnap-guest\n' >"$root/etc/hostname"
    printf '127.0.0.1 localhost\n127.0.1.1 vmsnap-guest\n::1 localhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
    cat >"$root/etc/network/interfaces" <<'EOF'
# The guest's only NIC: QEMU user networking (restricted; the host reaches it through a port forward to 22).
auto lo
iface lo inet loopback

# allow-hotplug, not auto: udev raises it when the NIC shows up, and the boot does not wait for udev to settle first.
allow-hotplug eth0
iface eth0 inet dhcp
EOF

    # Root logs in with the image's key only; no account has a password.
    chroot "$root" usermod -p '*' root
    install -d -m 0700 "$root/root/.ssh"
    install -m 0600 "$build/id_ed25519.pub" "$root/root/.ssh/authorized_keys"
    cat >"$root/etc/ssh/sshd_config.d/vmsnap.conf" <<'EOF'
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
EOF
    # openssh-server's postinst made the host keys; make sure, so that a boot never spends time on it.
    compgen -G "$root/etc/ssh/ssh_host_ed25519_key" >/dev/null || chroot "$root" ssh-keygen -A

    # The guest agent with freeze hooks and a log file (Debian's unit starts it without either; udev starts the unit
    # when the agent's virtio port appears).
    install -d "$root/etc/systemd/system/qemu-guest-agent.service.d" "$root/etc/qemu/fsfreeze-hook.d"
    cat >"$root/etc/systemd/system/qemu-guest-agent.service.d/vmsnap.conf" <<'EOF'
[Service]
ExecStart=
ExecStart=-/usr/sbin/qemu-ga --fsfreeze-hook=/etc/qemu/fsfreeze-hook --logfile=/var/log/qemu-ga.log
EOF
    [[ -x $root/etc/qemu/fsfreeze-hook ]] || die "qemu-guest-agent no longer ships /etc/qemu/fsfreeze-hook: the recipe needs updating"

    # A kernel panic is reported to libvirt (<panic model='isa'/>, ACPI device QEMU0001) and the guest does not reboot.
    printf 'pvpanic-mmio\n' >"$root/etc/modules-load.d/vmsnap-pvpanic.conf"
    printf 'kernel.panic = 0\n' >"$root/etc/sysctl.d/90-vmsnap.conf"

    # apt: no sources (nothing to reach), small installs; a `deb [trusted=yes] file:/...` source added later works.
    printf '# The lab guest reaches no network; add a file: source, e.g. deb [trusted=yes] file:/srv/repo ./\n' \
        >"$root/etc/apt/sources.list"
    printf 'APT::Install-Recommends "false";\nAcquire::Languages "none";\n' >"$root/etc/apt/apt.conf.d/90vmsnap"
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb

    for unit in "${masked_units[@]}"; do
        if [[ -e $root/lib/systemd/system/$unit || -e $root/lib/systemd/system/${unit%%@*}@.service ]]; then
            chroot "$root" systemctl mask --quiet "$unit"
        fi
    done
    chroot "$root" systemctl set-default --quiet multi-user.target
    # On a busy host a guest gets a fraction of a CPU: sshd's config test and systemd-logind once took longer than the
    # default start timeout (90 s), and both failed. Slow is fine here; failing is not.
    install -d "$root/etc/systemd/system.conf.d"
    printf '[Manager]\nDefaultTimeoutStartSec=15min\nDefaultTimeoutStopSec=5min\n' >"$root/etc/systemd/system.conf.d/vmsnap.conf"
    for unit in "${watchdog_services[@]}"; do
        install -d "$root/etc/systemd/system/$unit.service.d"
        printf '[Service]\nWatchdogSec=0\n' >"$root/etc/systemd/system/$unit.service.d/vmsnap-no-watchdog.conf"
    done
    printf 'LANG=C.UTF-8\n' >"$root/etc/default/locale"
    printf 'blacklist %s\n' "${blacklisted_modules[@]}" >"$root/etc/modprobe.d/vmsnap-lab.conf"

    # A small initrd with only what finds the root file system (ext4 is built in): a third of the size, and no probing
    # of the emulated IDE controller before /dev/vda shows up.
    # debootstrap made none (INITRD=No): one build, not two.
    printf 'virtio_pci\nvirtio_blk\n' >"$root/etc/initramfs-tools/modules"
    sed -i 's/^MODULES=.*/MODULES=list/' "$root/etc/initramfs-tools/initramfs.conf"
    local kernel
    for kernel in "$root"/boot/vmlinuz-*; do
        kernel=${kernel##*/vmlinuz-}
        if [[ -e $root/boot/initrd.img-$kernel ]]; then
            chroot "$root" update-initramfs -u -k "$kernel" >&2
        else
            chroot "$root" update-initramfs -c -k "$kernel" >&2
        fi
    done

    # Smaller image: no manuals, documentation or translations, now or from later installs.
    cat >"$root/etc/dpkg/dpkg.cfg.d/90vmsnap-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
    rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
    rm -f "$root/usr/sbin/policy-rc.d"
}

write_manifest() {
    local root=$1 build_seconds=$2 package versions='' first=true
    for package in base-files linux-image-cloud-amd64 qemu-guest-agent openssh-server python3 python3-apt systemd \
        ifupdown isc-dhcp-client e2fsprogs; do
        $first || versions+=', '
        first=false
        versions+=$(printf '"%s": "%s"' "$package" \
            "$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f '${Version}' "$package")")
    done
    cat >"$build/manifest.json" <<EOF
{
  "key": "$key",
  "suite": "$suite",
  "mirror": "$mirror",
  "built": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "build_seconds": $build_seconds,
  "debian_version": "$(cat "$root/etc/debian_version")",
  "kernel": "$kernel_release",
  "kernel_cmdline": "root=/dev/vda console=ttyS0 net.ifnames=0 panic=0",
  "packages": {$versions},
  "sizes": {
    "base.qcow2": $(stat -c %s "$build/base.qcow2"),
    "root_virtual": $(qemu-img info --output=json "$build/base.qcow2" | sed -n 's/^ *"virtual-size": \([0-9]*\),*$/\1/p'),
    "root_used_kib": $(du -sk --apparent-size "$root" | cut -f1),
    "vmlinuz": $(stat -c %s "$build/vmlinuz"),
    "initrd.img": $(stat -c %s "$build/initrd.img")
  }
}
EOF
}

# Where the root file system and the raw image are put together: a tmpfs when there is room (dpkg's many fsyncs cost
# nothing there, and the disk others test on stays quiet), else the build folder itself.
scratch_dir() {
    local avail_kib
    avail_kib=$(df -k --output=fstype,avail /dev/shm 2>/dev/null | awk 'NR == 2 && $1 == "tmpfs" {print $2}')
    if [[ -n $avail_kib ]] && ((avail_kib > 4 * 1024 * 1024)); then
        mktemp -d "/dev/shm/$scratch_prefix.XXXXXX"
    else
        printf '%s\n' "$build"
    fi
}

build_image() {
    local started=$SECONDS root phase=$SECONDS
    scratch=$(scratch_dir)
    root=$scratch/root
    log "building image $key in $build, from $mirror (about a minute and a half)"
    ssh-keygen -q -t ed25519 -N '' -C "vmsnap-guest-image-$key" -f "$build/id_ed25519"
    chmod 0600 "$build/id_ed25519" "$build/id_ed25519.pub"

    log "debootstrap --variant=minbase $suite into $root"
    # INITRD=No: the kernel's postinst makes no initrd (configure_root makes a small one).
    INITRD=No debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$mirror" >"$scratch/debootstrap.log" 2>&1 \
        || die "debootstrap failed; its last lines:$(printf '\n'; tail -n 20 "$scratch/debootstrap.log")"
    configure_root "$root"
    log "debootstrap and configuration: $((SECONDS - phase)) s"
    phase=$SECONDS

    kernel_release=$(find "$root/boot" -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sort -V | tail -n 1)
    kernel_release=${kernel_release#vmlinuz-}
    [[ -f $root/boot/vmlinuz-$kernel_release && -f $root/boot/initrd.img-$kernel_release ]] \
        || die "no kernel and initrd in $root/boot (kernel '$kernel_release')"
    cp "$root/boot/vmlinuz-$kernel_release" "$build/vmlinuz"
    cp "$root/boot/initrd.img-$kernel_release" "$build/initrd.img"

    log "mke2fs -d (ext4, $root_size) and qemu-img convert -c (zstd)"
    truncate -s "$root_size" "$scratch/root.raw"
    mke2fs -q -t ext4 -L root -d "$root" "$scratch/root.raw"
    # zstd: a fifth of zlib's CPU time here, for the same size, and faster reads in the guest.
    qemu-img convert -c -W -m 4 -O qcow2 -o compression_type=zstd "$scratch/root.raw" "$build/base.qcow2"
    rm -f "$scratch/root.raw"
    log "image: $((SECONDS - phase)) s"
    write_manifest "$root" $((SECONDS - started))
    remove_build_dir "$root"
    rm -f "$scratch/debootstrap.log"
    [[ $scratch == "$build" ]] || remove_build_dir "$scratch"
    chmod 0755 "$build"
    chmod 0444 "$build/base.qcow2" "$build/vmlinuz" "$build/initrd.img" "$build/manifest.json"
    # Root ignores file modes: only the immutable flag stops a block commit aimed at the wrong base from writing here.
    chattr +i "$build/base.qcow2" 2>/dev/null || log "warning: cannot make base.qcow2 immutable (chattr +i) on this file system"
    log "built in $((SECONDS - started)) s: base.qcow2 $(du -h --apparent-size "$build/base.qcow2" | cut -f1)"
}

# Why an image entry is still needed (empty when it is not): a process (a guest's QEMU) holds one of its files open, or a
# guest's overlay, running or not, names its base.qcow2 as backing file.
image_user() {
    local entry_dir=$1 holder overlay
    # Not `find | grep -q`: with pipefail, a find killed by SIGPIPE would make an open file look like none.
    holder=$(find /proc/[0-9]*/fd -lname "$entry_dir/*" -print -quit 2>/dev/null || true)
    if [[ -n $holder ]]; then
        printf 'process %s has a file of it open\n' "${holder%/fd/*}"
        return
    fi
    for overlay in "$guest_dirs"/*/*.qcow2; do
        [[ -f $overlay ]] || continue
        # qemu-img writes the backing file's name into the image's first cluster.
        if grep -aqF "$entry_dir/base.qcow2" < <(head -c 65536 "$overlay"); then
            printf '%s is an overlay of it\n' "$overlay"
            return
        fi
    done
}

point_current_and_prune() {
    local other holder
    ln -sfn "$key" "$cache/.current.$$"
    mv -T "$cache/.current.$$" "$cache/current"
    for other in "$cache"/*; do
        [[ -d $other && ! -L $other && $(basename "$other") != "$key" ]] || continue
        holder=$(image_user "$other")
        if [[ -n $holder ]]; then
            log "keeping older image $other: $holder"
            continue
        fi
        log "removing older image $other"
        remove_build_dir "$other"
    done
}

mkdir -p "$cache"
exec 9>"$cache/.lock"
if ! flock -n 9; then
    log "another build holds $cache/.lock: waiting for it"
    flock 9
fi

if $rebuild || [[ ! -f $entry/manifest.json ]]; then
    # Left by a build that was killed (the lock is ours, so no build is running).
    for stale in "$cache"/.build-* /dev/shm/"$scratch_prefix".*; do
        remove_build_dir "$stale"
    done
    install_missing_tools
    mirror=$(debian_mirror)
    build=$(mktemp -d "$cache/.build-$key.XXXXXX")
    scratch=$build
    trap 'remove_build_dir "$build"; remove_build_dir "$scratch"' EXIT
    build_image
    if [[ -d $entry ]]; then
        remove_build_dir "$entry"
    fi
    mv -T "$build" "$entry"
    trap - EXIT
fi
point_current_and_prune
printf '%s\n' "$entry"
