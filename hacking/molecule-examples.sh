#!/usr/bin/env bash
# Run the Molecule scenario of examples/molecule/vm_labels as its README says a user runs it, on a real Debian guest
# (hacking/guest-image.sh builds its image when it is not cached; vmsnap_testctl makes the guest and removes it again,
# however the run ends), and check in the guest what each step left:
#   molecule converge   the first run: create.yml takes the snapshot "clean", converge applies the role over SSH
#   molecule reset      forget Molecule's state, as a run that died before its destroy does; then dirt in the guest
#   molecule create     its reset alone brings the guest back to "clean": the role's files and the dirt are gone
#   molecule test       destroy, syntax, create, converge, idempotence, verify, destroy, on a guest with dirt again;
#                       afterwards the guest is clean and running, and "clean" is still its only snapshot
#
# Needs `make setup` (the .venv with Molecule, a libvirt daemon). Molecule finds ansible through PATH, so .venv/bin goes
# first; the collection under test is the staged copy (hacking/stage-collection.sh) on ANSIBLE_COLLECTIONS_PATH.
# Prints how long each step took.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$repo_root/.venv"
log() { printf 'molecule-examples: %s\n' "$*"; }
fail() { printf 'molecule-examples: FAILED: %s\n' "$*" >&2; exit 1; }

[[ -x $venv/bin/molecule ]] || fail "$venv/bin/molecule is missing: run 'make setup' (requirements-dev.txt has molecule)"
"$repo_root/hacking/guest-image.sh" >/dev/null
stage=$("$repo_root/hacking/stage-collection.sh")
export PATH="$venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="${stage%/ansible_collections/*}"
export ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1 NO_COLOR=1
work=$(mktemp -d)
# Ansible's and Molecule's files of this run in a folder of its own: other runs on this machine have theirs.
export ANSIBLE_REMOTE_TMP="$work/ansible-tmp" ANSIBLE_LOCAL_TEMP="$work/ansible-local-tmp"
export MOLECULE_EPHEMERAL_DIRECTORY="$work/molecule"
export MOLECULE_TEST_VM_INVENTORY="$work/inventory.yml"
testctl=("$venv/bin/python" "$repo_root/tests/integration/targets/setup_libvirt/files/vmsnap_testctl.py")
vm="vmsnap-mol-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
trap '"${testctl[@]}" destroy "$vm" >/dev/null || true; rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# timed LABEL COMMAND...: run a step, say how long it took
timed() {
    local label=$1 start=$SECONDS
    shift
    "$@"
    log "$label: $((SECONDS - start)) s"
}

# in_guest COMMAND: run a shell command in the guest over SSH
in_guest() { "${testctl[@]}" guest ssh "$vm" -- "$1"; }

# The role's files, the dirt, and what the unit wrote: the ones that exist in the guest, one a line.
# shellcheck disable=SC2016 # the guest's shell expands it
leftovers='for f in /etc/vm-labels.conf /etc/systemd/system/vm-labels.service /run/motd.d/vm-labels /root/dirt; do
    [ ! -e "$f" ] || echo "$f"; done'
make_dirt() { in_guest 'echo "left by an earlier run" >/root/dirt'; }
check_clean() {
    local left
    left=$(in_guest "$leftovers")
    [[ -z $left ]] || fail "$1: the guest still has $(tr '\n' ' ' <<<"$left")"
}

# step_times: pass Molecule's output through, and log how long each of its steps took
step_times() {
    local line step='' start=0
    while IFS= read -r line; do
        printf '%s\n' "$line"
        if [[ $line =~ \[default\ \>\ ([a-z_]+)\]\ Executing ]]; then
            step=${BASH_REMATCH[1]} start=$SECONDS
        elif [[ -n $step && $line == *"[default > $step] Executed"* ]]; then
            log "  $step: $((SECONDS - start)) s"
            step=''
        fi
    done
}

# molecule_run LOG ARGS...: molecule ARGS in the scenario's folder of the staged collection (as installed with it)
molecule_run() {
    local name=$1
    shift
    (cd "$stage/examples/molecule/vm_labels" && molecule "$@") 2>&1 | tee "$work/$name.log" | step_times
}

log "guest $vm (real Debian 12, SSH through a port forward on 127.0.0.1)"
# A bound, not a wish: a boot takes about 20 s on an idle machine, minutes when other guests keep both cores busy.
create_guest() { "${testctl[@]}" guest create "$vm" --timeout 600 >/dev/null; }
timed "guest create" create_guest
"${testctl[@]}" guest inventory "$vm" --group test_vm >"$MOLECULE_TEST_VM_INVENTORY"

log "molecule converge: the first create takes 'clean', converge applies the role"
timed "molecule converge (first run)" molecule_run converge converge
[[ $(virsh snapshot-list "$vm" --name | sed '/^$/d') == clean ]] || fail "create did not leave exactly the snapshot 'clean'"
in_guest 'test -s /run/motd.d/vm-labels' || fail "converge did not put the labels into the login banner"

log "molecule reset, dirt in the guest, molecule create: the reset alone cleans the guest"
molecule_run reset reset >/dev/null
make_dirt
timed "molecule create (reset to 'clean')" molecule_run create create
check_clean "after molecule create"

log "molecule test, on a guest with dirt again"
make_dirt
timed "molecule test" molecule_run test test
# The converge step changed the guest (it started from "clean"), and the idempotence step passed.
converge_changed=$(sed -n '/default > converge\] Executing/,/default > converge\] Executed/p' "$work/test.log" \
    | sed -n "s/^$vm *: .*changed=\([0-9]*\).*/\1/p")
[[ ${converge_changed:-0} -gt 0 ]] || fail "the converge step of molecule test changed nothing (changed=${converge_changed:-none})"
grep -q 'default > idempotence\] Executed: Successful' "$work/test.log" || fail "molecule did not pass the idempotence step"
check_clean "after molecule test"
[[ $(virsh domstate "$vm" | head -1) == running ]] || fail "the guest does not run after molecule test"
[[ $(virsh snapshot-list "$vm" --name | sed '/^$/d') == clean ]] || fail "the guest's snapshots changed: not only 'clean'"
log "ok: snapshot taken once, guest reset by create and by destroy, role converged over SSH, idempotent, verified"
