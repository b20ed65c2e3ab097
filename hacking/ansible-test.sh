#!/usr/bin/env bash
# Run ansible-test on a staged copy of the collection.
#
# ansible-test wants the collection at .../ansible_collections/vmsnap/libvirt/, and the repository root is the collection
# root, so we mirror it to .build/ansible_collections/vmsnap/libvirt: the files git tracks plus the untracked ones it does not
# ignore (so new work is tested before it is committed), deleting whatever else is there, except ansible-test's own
# tests/output. Then ansible-test runs there with .venv/bin first on PATH.
#
# Usage: hacking/ansible-test.sh sanity|units|integration [ansible-test options...]
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$repo_root/.venv"
stage="$repo_root/.build/ansible_collections/vmsnap/libvirt"

die() { printf 'ansible-test.sh: ERROR: %s\n' "$*" >&2; exit 1; }

[[ -x $venv/bin/ansible-test ]] || die "$venv/bin/ansible-test is missing: run 'make setup' (hacking/bootstrap.sh) first"
git -C "$repo_root" rev-parse --is-inside-work-tree >/dev/null 2>&1 \
    || die "$repo_root is not a git work tree: the staged copy is built from git's list of files"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

stage_collection() {
    local wanted present
    wanted="$work/wanted"
    present="$work/present"

    # tracked files deleted from the work tree are still listed: keep only what exists
    git -C "$repo_root" ls-files -z --cached --others --exclude-standard \
        | (cd "$repo_root" && while IFS= read -r -d '' path; do
            if [[ -f $path || -L $path ]]; then printf '%s\0' "$path"; fi
        done) \
        | sort -zu >"$wanted"

    mkdir -p "$stage"
    rsync -a --from0 --files-from="$wanted" "$repo_root/" "$stage/"

    (cd "$stage" && find . -path ./tests/output -prune -o \( -type f -o -type l \) -print0) \
        | sed -z 's|^\./||' | sort -zu >"$present"
    comm -z -23 "$present" "$wanted" | (cd "$stage" && xargs -0 -r rm -f --)
    find "$stage" -mindepth 1 -type d -empty -not -path "$stage/tests/output" -not -path "$stage/tests/output/*" -delete
}

stage_collection
rm -rf "$work"
trap - EXIT

export PATH="$venv/bin:$PATH"
# Without this, ansible-test walks up from the staged copy, finds the repository's .git, asks git for the files of .build/
# (which is git-ignored) and sees none.
export ANSIBLE_TEST_CONTENT_ROOT="$stage"
cd "$stage"
exec ansible-test "$@"
