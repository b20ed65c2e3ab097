#!/usr/bin/env bash
# Run the Molecule scenario extensions/molecule/snapshot_guard (the snapshot_guard role across a fleet of throwaway
# domains on the real daemon) from the staged collection, and check that it left no domain of its own behind.
#
# Needs `make setup` (the .venv with Molecule, a libvirt daemon). Molecule finds ansible through PATH, so .venv/bin goes
# first; the collection under test is the staged copy (hacking/stage-collection.sh) on ANSIBLE_COLLECTIONS_PATH, and
# Molecule runs from its root, where it finds the scenario under extensions/molecule.
# Environment: VENV (default .venv in the repository) is the virtual environment to use.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${VENV:-$repo_root/.venv}
log() { printf 'molecule-snapshot-guard: %s\n' "$*"; }
fail() { printf 'molecule-snapshot-guard: FAILED: %s\n' "$*" >&2; exit 1; }

[[ -x $venv/bin/molecule ]] || fail "$venv/bin/molecule is missing: run 'make setup' (requirements-dev.txt has molecule)"
stage=$("$repo_root/hacking/stage-collection.sh")
export PATH="$venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="${stage%/ansible_collections/*}"
export ANSIBLE_NOCOLOR=1

log "molecule test -s snapshot_guard (in $stage)"
(cd "$stage" && molecule test -s snapshot_guard)

# The scenario's domains are named vmsnap-molecule-guard-*; its destroy step removes them.
left=$(virsh list --all --name | grep '^vmsnap-molecule-guard-' || true)
[[ -z $left ]] || fail "the scenario left domains behind: $left"
log "ok: created the fleet, ran the role three times, verified results, data and snapshots, and removed the fleet"
