#!/usr/bin/env bash
# Mirror the collection to .build/ansible_collections/vmsnap/libvirt, where ansible-test and ansible's collection loader
# expect it (the repository root is the collection root). Copies the files git tracks plus the untracked ones it does not
# ignore (so new work counts before it is committed; from a source archive without .git, every file .gitignore keeps),
# and deletes everything else there except ansible-test's tests/output.
# Prints the path of the staged collection.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
stage="$repo_root/.build/ansible_collections/vmsnap/libvirt"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The files to stage: those git tracks plus the untracked ones .gitignore does not exclude. A source archive without .git
# (git archive, a release tarball, a "download ZIP") gets the same list from a throwaway repository whose work tree is
# the archive: git applies the archive's .gitignore files, so .venv/, .build/, caches and tests/output stay out, exactly
# as in a clone.
if [[ $(git -C "$repo_root" rev-parse --show-toplevel 2>/dev/null) == "$repo_root" ]]; then
    git_list=(git -C "$repo_root")
else
    git init -q "$work/index"
    git_list=(git --git-dir="$work/index/.git" --work-tree="$repo_root")
fi

# Tools' caches and virtual environments stay out even where no .gitignore names them (galaxy.yml's build_ignore).
# Tracked files deleted from the work tree are still listed: keep only what exists.
"${git_list[@]}" ls-files -z --cached --others --exclude-standard \
    -x '.venv*/' -x .build/ -x .pytest_cache/ -x .ruff_cache/ -x .ansible/ -x tests/output/ \
    | (cd "$repo_root" && while IFS= read -r -d '' path; do
        if [[ -f $path || -L $path ]]; then printf '%s\0' "$path"; fi
    done) \
    | sort -zu >"$work/wanted"
[[ -s $work/wanted ]] || { echo "stage-collection.sh: ERROR: found no files to stage in $repo_root" >&2; exit 1; }

mkdir -p "$stage"
rsync -a --from0 --files-from="$work/wanted" "$repo_root/" "$stage/"

(cd "$stage" && find . -path ./tests/output -prune -o \( -type f -o -type l \) -print0) \
    | sed -z 's|^\./||' | sort -zu >"$work/present"
comm -z -23 "$work/present" "$work/wanted" | (cd "$stage" && xargs -0 -r rm -f --)
find "$stage" -mindepth 1 -type d -empty -not -path "$stage/tests/output" -not -path "$stage/tests/output/*" -delete

echo "$stage"
