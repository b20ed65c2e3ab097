#!/usr/bin/env bash
# The example playbooks of examples/, run as a user would run them (with examples/inventory.yml, -e for the variables),
# on throwaway domains of the real daemon, and what they leave checked against the domains' snapshots and disk data:
#   setup.yml                                  domains web1, web2 (running), db1 (shut off), meta (running, two snapshots)
#   fleet_pre_upgrade_snapshots.yml            take, take again (no change), "upgrade" (new data), rollback, commit
#   nightly_retention.yml                      three nights with keep=2, next to snapshots taken by hand
#   backup/restore_snapshot_metadata.yml       back up meta, undefine it, restore it, restore again (no change), revert
#   verify.yml -e step=...                     after each of those
#   cleanup.yml                                removes this run's domains, whatever happened
set -euxo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"
export ANSIBLE_ROLES_PATH="$here/.."
# The examples as installed with the collection under test (ansible-test puts it on ANSIBLE_COLLECTIONS_PATH).
collection=$(ansible-galaxy collection list vmsnap.libvirt --format json \
    | python -c 'import json, sys; print(next(p for p, c in json.load(sys.stdin).items() if "vmsnap.libvirt" in c))')/vmsnap/libvirt
examples="$collection/examples"
[[ -f $examples/inventory.yml ]] || { echo "no examples/ in $collection" >&2; exit 1; }

work=${OUTPUT_DIR:-$(mktemp -d)}
# Ansible's temporary files of this run in a folder of its own: other runs on this machine may clean ~/.ansible/tmp.
export ANSIBLE_REMOTE_TMP="$work/ansible-tmp" ANSIBLE_LOCAL_TEMP="$work/ansible-local-tmp"
prefix="vmsnap-it-ex-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')-"
uri=${VMSNAP_URI:-qemu:///system}
test_vars=(-i "$INVENTORY_PATH" -e "examples_prefix=$prefix" -e "examples_dir=$work")
example_vars=(-i "$examples/inventory.yml" -e "uri=$uri")

trap 'ansible-playbook cleanup.yml "${test_vars[@]}"' EXIT

# run_example EXPECTED_CHANGED PLAYBOOK ARGS...: run an example and check the recap's changed count (0 or "some").
run_example() {
    local expected=$1 playbook=$2 log
    shift 2
    log="$work/$(basename "$playbook" .yml)-$RANDOM.log"
    ANSIBLE_FORCE_COLOR=0 ansible-playbook "$examples/$playbook" "${example_vars[@]}" "$@" 2>&1 | tee "$log"
    local changed
    changed=$(sed -n 's/^localhost *: .*changed=\([0-9]*\).*/\1/p' "$log")
    if [[ $expected == 0 && $changed != 0 ]] || [[ $expected == some && ${changed:-0} == 0 ]]; then
        echo "$playbook $*: changed=$changed, expected $expected" >&2
        exit 1
    fi
}

ansible-playbook setup.yml "${test_vars[@]}"
guests="{\"guests\": [\"${prefix}web*\", \"${prefix}db1\"]}"

# Pre-upgrade snapshots of the fleet: check mode first (changes nothing), take, take again, roll back, commit.
run_example some fleet_pre_upgrade_snapshots.yml -e "$guests" --check --diff
ansible-playbook verify.yml "${test_vars[@]}" -e step=nothing_taken
run_example some fleet_pre_upgrade_snapshots.yml -e "$guests"
run_example 0 fleet_pre_upgrade_snapshots.yml -e "$guests"
ansible-playbook verify.yml "${test_vars[@]}" -e step=taken
run_example some fleet_pre_upgrade_snapshots.yml -e "$guests" -e phase=rollback
ansible-playbook verify.yml "${test_vars[@]}" -e step=rolled_back
run_example some fleet_pre_upgrade_snapshots.yml -e "$guests" -e phase=commit
run_example 0 fleet_pre_upgrade_snapshots.yml -e "$guests" -e phase=commit
ansible-playbook verify.yml "${test_vars[@]}" -e step=committed

# Three nights, keeping two nightly snapshots (snapshot names have a one-second resolution).
for _ in 1 2 3; do
    run_example some nightly_retention.yml -e "{\"guests\": [\"${prefix}web*\"], \"keep\": 2}"
    sleep 1
done
ansible-playbook verify.yml "${test_vars[@]}" -e step=retention

# Snapshot metadata across an undefine.
run_example some backup_snapshot_metadata.yml -e "domain=${prefix}meta" -e "backup_dir=$work/backups"
virsh --connect "$uri" destroy "${prefix}meta"
virsh --connect "$uri" undefine --snapshots-metadata "${prefix}meta"
ansible-playbook verify.yml "${test_vars[@]}" -e step=undefined
run_example some restore_snapshot_metadata.yml -e "domain=${prefix}meta" -e "backup_dir=$work/backups"
run_example 0 restore_snapshot_metadata.yml -e "domain=${prefix}meta" -e "backup_dir=$work/backups"
ansible-playbook verify.yml "${test_vars[@]}" -e step=restored
