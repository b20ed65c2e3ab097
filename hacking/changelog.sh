#!/usr/bin/env bash
# The changelog: `antsibull-changelog lint` on changelogs/, then the release notes the next release would get, generated
# from the fragments in a scratch copy of the staged collection (the repository is left alone: a real release runs
# `antsibull-changelog release` in the work tree and commits the result).
#
# Writes .build/changelog/CHANGELOG.rst and prints its path.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$repo_root/hacking/tools-venv.sh" >&2
export PATH="$repo_root/.venv-docs/bin:$PATH"

(cd "$repo_root" && antsibull-changelog lint) >&2 || { echo "changelog.sh: ERROR: antsibull-changelog lint failed (above)" >&2; exit 1; }

stage=$("$repo_root/hacking/stage-collection.sh")
version=$(python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["version"])' "$stage/galaxy.yml")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/ansible_collections/vmsnap"
cp -a "$stage" "$work/ansible_collections/vmsnap/libvirt"
rm -rf "$work/ansible_collections/vmsnap/libvirt/tests/output"
# antsibull-changelog finds the collection's plugins (for "New Modules") with ansible-doc on ANSIBLE_COLLECTIONS_PATH.
(cd "$work/ansible_collections/vmsnap/libvirt" \
    && ANSIBLE_COLLECTIONS_PATH="$work" antsibull-changelog release --version "$version" >&2)

out="$repo_root/.build/changelog"
mkdir -p "$out"
cp "$work/ansible_collections/vmsnap/libvirt/CHANGELOG.rst" "$out/CHANGELOG.rst"
echo "$out/CHANGELOG.rst"
