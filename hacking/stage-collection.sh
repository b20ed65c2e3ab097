#!/usr/bin/env bash
# Mirror the collection to .build/ansible_collections/vmsnap/libvirt, where ansible-test and ansible's collection loader
# expect it (the repository root is the collection root). Copies the files git tracks plus the untracked ones it does not
# ignore (so new work counts before it is committed) and deletes everything else there except ansible-test's tests/output.
# Prints the path of the staged collection.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
stage="$repo_root/.build/ansible_collections/vmsnap/libvirt"

git -C "$repo_root" rev-parse --is-inside-work-tree >/dev/null 2>&1 \
    || { echo "stage-collection.sh: ERROR: $repo_root is not a git work tree: the copy is built from git's list of files" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# tracked files deleted from the work tree are still listed: keep only what exists
git -C "$repo_root" ls-files -z --cached --others --exclude-standard \
    | (cd "$repo_root" && while IFS= read -r -d '' path; do
        if [[ -f $path || -L $path ]]; then printf '%s\0' "$path"; fi
    done) \
    | sort -zu >"$work/wanted"

mkdir -p "$stage"
rsync -a --from0 --files-from="$work/wanted" "$repo_root/" "$stage/"

(cd "$stage" && find . -path ./tests/output -prune -o \( -type f -o -type l \) -print0) \
    | sed -z 's|^\./||' | sort -zu >"$work/present"
comm -z -23 "$work/present" "$work/wanted" | (cd "$stage" && xargs -0 -r rm -f --)
find "$stage" -mindepth 1 -type d -empty -not -path "$stage/tests/output" -not -path "$stage/tests/output/*" -delete

echo "$stage"
