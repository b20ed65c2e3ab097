#!/usr/bin/env bash
# Run the Molecule scenario of examples/molecule/vm_labels as its README says a user runs it, on a throwaway domain of
# the real daemon made with vmsnap_testctl, and check afterwards that the scenario left the VM clean: its data and its
# definition as in the snapshot "clean", although the test wrote into it before and the role changed it.
#
# Needs `make setup` (the .venv with Molecule, a libvirt daemon). Molecule finds ansible through PATH, so .venv/bin goes
# first; the collection under test is the staged copy (hacking/stage-collection.sh) on ANSIBLE_COLLECTIONS_PATH.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$repo_root/.venv"
log() { printf 'molecule-examples: %s\n' "$*"; }
fail() { printf 'molecule-examples: FAILED: %s\n' "$*" >&2; exit 1; }

[[ -x $venv/bin/molecule ]] || fail "$venv/bin/molecule is missing: run 'make setup' (requirements-dev.txt has molecule)"
stage=$("$repo_root/hacking/stage-collection.sh")
export PATH="$venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="${stage%/ansible_collections/*}"
export ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1
work=$(mktemp -d)
export ANSIBLE_REMOTE_TMP="$work/ansible-tmp" ANSIBLE_LOCAL_TEMP="$work/ansible-local-tmp"
testctl=("$venv/bin/python" "$repo_root/tests/integration/targets/setup_libvirt/files/vmsnap_testctl.py")
vm="vmsnap-mol-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')-vm"
trap '"${testctl[@]}" destroy "$vm" >/dev/null || true; rm -rf "$work"' EXIT

log "test VM $vm with data 0x11 and its snapshot 'clean', then dirt (0x22) that the scenario must reset"
"${testctl[@]}" create "$vm" --start >/dev/null
"${testctl[@]}" write "$vm" 0x11
# the README's one-time set-up, as an ad-hoc command
(cd "$work" && ansible localhost -e "ansible_python_interpreter=$venv/bin/python" -m vmsnap.libvirt.virt_snapshot \
    -a "domain=$vm name=clean") >/dev/null
"${testctl[@]}" write "$vm" 0x22
virsh desc "$vm" --title --live --config --new-desc "left by an earlier run" >/dev/null

# The scenario, from the staged copy of examples/ (as installed with the collection)
log "molecule test (examples/molecule/vm_labels)"
(cd "$stage/examples/molecule/vm_labels" && MOLECULE_TEST_VM="$vm" molecule test) 2>&1 | tee "$work/molecule.log"

# The scenario's destroy left the VM clean: the data of "clean" (0x11), no title, running from "clean".
"${testctl[@]}" check "$vm" 0x11 || fail "the VM's disk does not hold the data of 'clean' after molecule test"
title=$(virsh desc "$vm" --title --config)
[[ $title == "No title for domain: $vm" ]] || fail "the VM still has a title after molecule test: $title"
[[ $(virsh domstate "$vm" | head -1) == running ]] || fail "the VM does not run after molecule test"
grep -q 'idempotence' "$work/molecule.log" || fail "molecule did not run the idempotence step"
log "ok: the scenario converged, was idempotent, verified, and left the VM clean"
