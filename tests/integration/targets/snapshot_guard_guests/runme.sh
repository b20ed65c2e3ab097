#!/usr/bin/env bash
# The snapshot_guard role on two real Debian guests over SSH (the lab image of hacking/guest-image.sh, built when it is
# missing), upgrading the application of the demo (hacking/demo/build-app.sh: real Debian packages in a local apt
# repository on each guest) from release 1 to release 2:
#   passes  release 2 installs and its health check passes: the guest keeps it
#   breaks  release 2's post-installation script fails, so apt fails: the role keeps the broken state as a snapshot
#           (snapshot_guard_keep_broken) and reverts the guest to its guard snapshot (memory included)
# The playbooks:
#   setup.yml   release 1 on both guests, healthy, and a file with this run's token written on each before the change
#   guard.yml   the run under test: the role on both; must exit 2, because breaks fails on purpose
#   verify.yml  the results, the snapshots left, and on each guest the package in dpkg, the service, the health URL, the
#               data schema, the file written before the change, and what the change left (or, rolled back, did not)
# The guests are removed however the run ends.
set -euxo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"
# The demo's files, from the collection under test (ansible-test puts it on ANSIBLE_COLLECTIONS_PATH; hacking/ is in it).
collection=$(ansible-galaxy collection list vmsnap.libvirt --format json \
    | python -c 'import json, sys; print(next(p for p, c in json.load(sys.stdin).items() if "vmsnap.libvirt" in c))')/vmsnap/libvirt
demo="$collection/hacking/demo"
[[ -f $demo/app_release.yml && -x $collection/hacking/guest-image.sh ]] || { echo "no hacking/demo/ or hacking/guest-image.sh in $collection" >&2; exit 1; }

work=${OUTPUT_DIR:-$(mktemp -d)}
export ANSIBLE_LOCAL_TEMP="$work/ansible-local-tmp" ANSIBLE_PIPELINING=true
# verify.yml uses the role setup_libvirt of the targets next to this one.
export ANSIBLE_ROLES_PATH="$here/.."
uri=${VMSNAP_URI:-qemu:///system}
prefix="vmsnap-it-gg-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')-"
testctl=(python "$here/../setup_libvirt/files/vmsnap_testctl.py" --uri "$uri")
guests=("${prefix}passes" "${prefix}breaks")
vars=(-i "$INVENTORY_PATH" -i "$work/guests.yml" -e "gg_prefix=$prefix" -e "gg_dir=$work" -e "gg_demo=$demo" -e "gg_uri=$uri")

trap '"${testctl[@]}" cleanup --prefix "$prefix"' EXIT

"$collection/hacking/guest-image.sh"
"$demo/build-app.sh" "$work/app"

# Both guests boot at once; each create waits for its guest's agent and SSH: about 20 s on an idle machine, minutes
# when other guests keep both cores busy, hence a bound of 900 s.
pids=()
for guest in "${guests[@]}"; do
    "${testctl[@]}" guest create "$guest" --timeout 900 >"$work/$guest.json" &
    pids+=($!)
done
for pid in "${pids[@]}"; do
    wait "$pid"
done
"${testctl[@]}" guest inventory "${guests[@]}" --group guests >"$work/guests.yml"

ansible-playbook setup.yml "${vars[@]}" "$@"

rc=0
ansible-playbook guard.yml "${vars[@]}" "$@" 2>&1 | tee "$work/guard.log" || rc=$?
if [[ $rc != 2 ]]; then
    echo "the guarded upgrade exited $rc; expected 2 (the guest ${prefix}breaks fails on purpose)" >&2
    exit 1
fi

ansible-playbook verify.yml "${vars[@]}" "$@"
