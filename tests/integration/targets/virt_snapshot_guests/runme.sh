#!/usr/bin/env bash
# vmsnap.libvirt's modules on real Debian 12 guests (the lab image of hacking/guest-image.sh, built when it is missing),
# each case checked inside the guest over SSH, not only in libvirt's answers. Two guests, each shared by two cases:
#   <prefix>mem  (--on-crash preserve)
#     ram_revert.yml   a memory snapshot and a revert bring back what only lived in RAM: a process and a tmpfs file
#     postmortem.yml   the kernel panics; the guest is started from a good snapshot, its crashed state kept as one
#     boot_again.yml   the guest (stopped by postmortem.yml) booted again
#     live.yml         a live external memory snapshot (live: true); a revert to it brings the memory back where
#                      libvirt can revert external snapshots (9.9+), and is refused before acting elsewhere (9.0)
#   <prefix>disk
#     quiesce.yml      a disk-only external snapshot with quiesce: the agent froze and thawed the file system, and the
#                      image under the new overlay holds a clean, frozen ext4
#     merge.yml        that snapshot merged while the guest appends fsynced records: the guest runs on its base image
#                      again, and after a clean shutdown the image checks clean and holds every record
#     quiesce_modes.yml  the guest started again: quiesce true and auto with the agent stopped, the guest paused, and
#                      a freeze hook slower than quiesce_timeout; the guest is thawed after each
#   both guests, after the cases above
#     group.yml        a quiesced disk-only group snapshot freezes both guests instead of pausing them, and thaws both
# The two guests' cases run side by side. Every case runs, even when an earlier one failed (merge.yml then fails
# loudly: it merges quiesce.yml's snapshot); the script fails when any did, naming them. The guests are removed however
# the run ends.
set -euxo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"
# The collection under test (ansible-test runs a copy of this folder, and puts the collection on
# ANSIBLE_COLLECTIONS_PATH; its hacking/ holds the image script).
collection=$(ansible-galaxy collection list vmsnap.libvirt --format json \
    | python -c 'import json, sys; print(next(p for p, c in json.load(sys.stdin).items() if "vmsnap.libvirt" in c))')/vmsnap/libvirt
[[ -x $collection/hacking/guest-image.sh ]] || { echo "no hacking/guest-image.sh in $collection" >&2; exit 1; }

work=${OUTPUT_DIR:-$(mktemp -d)}
export ANSIBLE_LOCAL_TEMP="$work/ansible-local-tmp" ANSIBLE_PIPELINING=true
uri=${VMSNAP_URI:-qemu:///system}
prefix="vmsnap-it-rg-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')-"
testctl=(python "$here/../setup_libvirt/files/vmsnap_testctl.py" --uri "$uri")
vars=(-i "$INVENTORY_PATH" -i "$work/mem.yml" -i "$work/disk.yml" -e "rg_dir=$work" -e "rg_uri=$uri")

cleanup() {
    "${testctl[@]}" cleanup --prefix "$prefix"
    rm -f "$work"/*.raw
}
trap cleanup EXIT

image=$("$collection/hacking/guest-image.sh")

# Both guests boot at once; each create waits for its guest's agent and SSH: about 20 s on an idle host, minutes when
# other emulated guests share its two cores, hence the long bound. Both are waited for before any failure ends the
# script, so that the cleanup never runs while a create may still define its guest.
boot_timeout=900
"${testctl[@]}" guest create "${prefix}mem" --image "$image" --on-crash preserve --timeout "$boot_timeout" >"$work/mem.json" &
mem_create=$!
"${testctl[@]}" guest create "${prefix}disk" --image "$image" --timeout "$boot_timeout" >"$work/disk.json" &
disk_create=$!
created=true
wait "$mem_create" || created=false
wait "$disk_create" || created=false
$created || { echo "a guest did not come up (its error is above)" >&2; exit 1; }
"${testctl[@]}" guest inventory "${prefix}mem" --group rg_mem >"$work/mem.yml"
"${testctl[@]}" guest inventory "${prefix}disk" --group rg_disk >"$work/disk.yml"

playbook_args=("$@")
# Runs the cases of one guest, in order, into one log; a case that fails is noted in $work/failed-GUEST and the next
# one still runs.
run_cases() {
    local guest=$1 case
    shift
    for case in "$@"; do
        echo "=== $case"
        ansible-playbook "$case.yml" "${vars[@]}" "${playbook_args[@]}" || echo "$case" >>"$work/failed-$guest"
    done >"$work/$guest.log" 2>&1
}

# The two guests' cases run side by side (two guests, two cores); their logs are printed when both are done.
rm -f "$work"/failed-*
run_cases mem ram_revert postmortem boot_again live &
mem_cases=$!
run_cases disk quiesce merge quiesce_modes &
disk_cases=$!
wait "$mem_cases" "$disk_cases"
cat "$work/mem.log" "$work/disk.log"
# Then the case of both guests at once.
run_cases both group
cat "$work/both.log"

mapfile -t failed < <(cat "$work"/failed-* 2>/dev/null)
if ((${#failed[@]})); then
    echo "virt_snapshot_guests: FAILED: ${failed[*]}" >&2
    exit 1
fi
