#!/usr/bin/env bash
# Make sure a libvirt daemon answers on qemu:///system, starting one without systemd when nothing does.
#
# What a daemon needs on these machines (../shared/docs/libvirt-here.md): the system user libvirt-qemu, a running virtlogd,
# and libvirt's directories. /etc/libvirt/qemu.conf gets user/group root, dynamic_ownership 0 and security_driver "none"
# (only when it lacks them; the previous file is kept as qemu.conf.vmsnap-backup). The daemons are left running for later
# runs; their output goes to /var/log/libvirt/{virtlogd,libvirtd}.log.
#
# Environment: VMSNAP_URI (default qemu:///system), LIBVIRT_UP_TIMEOUT (seconds to wait for an answer, default 90).
set -euo pipefail

uri=${VMSNAP_URI:-qemu:///system}
wait_seconds=${LIBVIRT_UP_TIMEOUT:-90}
qemu_conf=/etc/libvirt/qemu.conf
log_dir=/var/log/libvirt
libvirtd_log=$log_dir/libvirtd.log
virtlogd_log=$log_dir/virtlogd.log
libvirtd_pidfile=/run/libvirtd.pid
virtlogd_pidfile=/run/virtlogd.pid

# key=value lines qemu.conf must hold, in the file's own syntax
qemu_conf_settings=(
    'user = "root"'
    'group = "root"'
    'dynamic_ownership = 0'
    'security_driver = "none"'
)

log() { printf 'libvirt-up: %s\n' "$*"; }
die() { printf 'libvirt-up: ERROR: %s\n' "$*" >&2; exit 1; }

answers() {
    # The first connection of a fresh daemon probes QEMU's capabilities (~8 s here): allow for that.
    timeout 30 virsh -c "$uri" version >/dev/null 2>&1
}

qemu_conf_complete() {
    local setting
    [[ -f $qemu_conf ]] || return 1
    for setting in "${qemu_conf_settings[@]}"; do
        grep -qxF "$setting" "$qemu_conf" || return 1
    done
}

write_qemu_conf() {
    local setting key tmp
    if qemu_conf_complete; then
        return
    fi
    mkdir -p "$(dirname "$qemu_conf")"
    tmp=$(mktemp "$qemu_conf.XXXXXX")
    if [[ -f $qemu_conf ]]; then
        cp -p "$qemu_conf" "$qemu_conf.vmsnap-backup"
        log "$qemu_conf lacks our settings: saved it as $qemu_conf.vmsnap-backup"
        cp -p "$qemu_conf" "$tmp"
        # Drop the active lines that set our keys, so each key is set once, below.
        for setting in "${qemu_conf_settings[@]}"; do
            key=${setting%% *}
            sed -i "/^[[:space:]]*${key}[[:space:]]*=/d" "$tmp"
        done
    fi
    {
        printf '\n# Set by vmsnap.libvirt hacking/libvirt-up.sh: no chown, no AppArmor/SELinux labels (sandboxed test machines).\n'
        printf '%s\n' "${qemu_conf_settings[@]}"
    } >>"$tmp"
    chmod 0644 "$tmp"
    mv "$tmp" "$qemu_conf"
    log "wrote $qemu_conf"
}

ensure_qemu_user() {
    if ! getent passwd libvirt-qemu >/dev/null; then
        # libvirtd refuses to start without it, whatever qemu.conf says ("Failed to parse user 'libvirt-qemu'").
        useradd --system --user-group --no-create-home --home-dir /var/lib/libvirt --shell /usr/sbin/nologin libvirt-qemu
        log "created system user libvirt-qemu"
    fi
}

running_from_pidfile() {
    local pid
    [[ -f $1 ]] || return 1
    pid=$(<"$1")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

start_detached() {
    # Detached from our session and from make's pipes, so that it outlives this run and holds no caller's output open.
    local logfile=$1
    shift
    setsid "$@" </dev/null >>"$logfile" 2>&1 &
    started_pid=$!
}

fail_with_logs() {
    printf 'libvirt-up: ERROR: %s\n' "$1" >&2
    local file
    for file in "$libvirtd_log" "$virtlogd_log"; do
        if [[ -f $file ]]; then
            printf -- '--- last lines of %s ---\n' "$file" >&2
            tail -n 30 "$file" >&2
        fi
    done
    exit 1
}

if answers; then
    log "libvirt answers on $uri"
    qemu_conf_complete || log "WARNING: $qemu_conf lacks ${qemu_conf_settings[*]}; the running daemon may chown or label images"
    exit 0
fi

[[ $(id -u) == 0 ]] || die "nothing answers on $uri and starting libvirtd needs root"
for tool in libvirtd virtlogd virsh; do
    command -v "$tool" >/dev/null || die "$tool is missing: run hacking/bootstrap.sh first"
done

ensure_qemu_user
mkdir -p "$log_dir/qemu" /var/lib/libvirt/qemu /var/lib/libvirt/images /var/cache/libvirt /run/libvirt
write_qemu_conf

if running_from_pidfile "$virtlogd_pidfile"; then
    log "virtlogd already running (pid $(<"$virtlogd_pidfile"))"
else
    log "starting virtlogd (log: $virtlogd_log)"
    start_detached "$virtlogd_log" virtlogd --pid-file "$virtlogd_pidfile"
fi

if running_from_pidfile "$libvirtd_pidfile"; then
    log "libvirtd is running (pid $(<"$libvirtd_pidfile")) but does not answer yet: waiting for it"
else
    log "starting libvirtd (log: $libvirtd_log)"
    # Without systemd there is no journal: send libvirtd's warnings and errors to its log file.
    LIBVIRT_LOG_OUTPUTS="3:file:$libvirtd_log" start_detached "$libvirtd_log" libvirtd --pid-file "$libvirtd_pidfile"
    libvirtd_pid=$started_pid
fi

deadline=$((SECONDS + wait_seconds))
until answers; do
    if [[ -n ${libvirtd_pid:-} ]] && ! kill -0 "$libvirtd_pid" 2>/dev/null; then
        fail_with_logs "libvirtd (pid $libvirtd_pid) exited during start-up"
    fi
    ((SECONDS < deadline)) || fail_with_logs "libvirtd did not answer on $uri within ${wait_seconds}s"
    sleep 1
done
log "libvirt answers on $uri ($(virsh -c "$uri" version 2>/dev/null | sed -n 's/^Running hypervisor: //p'))"
