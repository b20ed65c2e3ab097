#!/usr/bin/env bash
# The snapshot_guard role on the real daemon, on a fleet of six throwaway guests (libvirt domains without an OS; the
# "guest hosts" are inventory entries with a local connection, and the change and health tasks reach the domains' disks
# through QEMU with vmsnap_testctl):
#   setup.yml   creates the domains, writes the old data (0x11), makes the snapshots some cases need, writes the inventory
#   fleet.yml   the run under test: the role on every guest; must exit 2, because some guests fail on purpose
#   fleet.yml   again in check mode on the healthy guest
#   verify.yml  checks the results, the data on every disk, the domain states and the snapshots that are left
#   cleanup.yml removes this run's domains, whatever happened
set -euxo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"
export ANSIBLE_ROLES_PATH="$here/.."
work=${OUTPUT_DIR:-$(mktemp -d)}
prefix="vmsnap-it-guard-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')-"
vars=(-i inventory.yml -e "guard_test_prefix=$prefix" -e "guard_test_dir=$work")

trap 'ansible-playbook cleanup.yml "${vars[@]}"' EXIT

ansible-playbook setup.yml "${vars[@]}"

rc=0
ansible-playbook fleet.yml "${vars[@]}" -i "$work/fleet_inventory.yml" -e guard_test_results=fleet --forks 6 "$@" \
    2>&1 | tee "$work/fleet.log" || rc=$?
if [[ $rc != 2 ]]; then
    echo "the fleet run exited $rc; expected 2 (some guests fail on purpose)" >&2
    exit 1
fi

ansible-playbook fleet.yml "${vars[@]}" -i "$work/fleet_inventory.yml" -e guard_test_results=check \
    --check --limit "localhost,${prefix}keeps" "$@"

ansible-playbook verify.yml "${vars[@]}" "$@"
