#!/usr/bin/env bash
# `make archive-check`: both README commands must work from a source archive without .git (git archive, a release
# tarball, a "download ZIP"), not only from a clone. This exports the tree as such an archive would hold it, then runs
# from there, without git's help: the staging every target starts with (its file list must equal the export's), and
# `make units` (ansible-test on that staged copy). The export borrows this checkout's .venv (a symlink) so that the
# check takes a minute, not a fresh pip install; everything else it builds stays inside the export, which it removes.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { printf 'archive-check: %s\n' "$*"; }
die() { printf 'archive-check: ERROR: %s\n' "$*" >&2; exit 1; }

export_dir=$(mktemp -d /tmp/vmsnap-archive.XXXXXX)
trap 'rm -rf "$export_dir"' EXIT
tree="$export_dir/vmsnap.libvirt"
mkdir "$tree"

# What a release archive of this work tree holds: from a clone, git archive of the tree as it is now (uncommitted
# changes to tracked files included); from an archive already, the tree itself without its build products.
if [[ $(git -C "$repo_root" rev-parse --show-toplevel 2>/dev/null) == "$repo_root" ]]; then
    snapshot=$(git -C "$repo_root" stash create 2>/dev/null || true)
    git -C "$repo_root" archive --format=tar "${snapshot:-HEAD}" | tar -x -C "$tree"
    log "exported $(git -C "$repo_root" rev-parse --short HEAD)${snapshot:+ with uncommitted changes} without .git to $tree"
else
    tar -C "$repo_root" --exclude=./.git --exclude='./.venv*' --exclude=./.build --exclude=./tests/output -c . | tar -x -C "$tree"
    log "copied this archive's tree to $tree"
fi
[[ ! -e $tree/.git ]] || die "the export has a .git: it would not test an archive"
(cd "$tree" && find . -type f | sed 's|^\./||' | sort) >"$export_dir/exported"

# The copy is no work tree of any repository: run from /tmp, git finds none above it either.
if git -C "$tree" rev-parse --git-dir >/dev/null 2>&1; then
    die "$tree is inside a git repository: choose another TMPDIR"
fi

stage=$("$tree/hacking/stage-collection.sh")
(cd "$stage" && find . -path ./tests/output -prune -o -type f -print | sed 's|^\./||' | sort) >"$export_dir/staged"
if ! diff -u "$export_dir/exported" "$export_dir/staged" >"$export_dir/difference"; then
    cat "$export_dir/difference" >&2
    die "staging from the archive did not copy exactly the archive's files (diff above: - exported, + staged)"
fi
log "staged from the archive: $(wc -l <"$export_dir/staged") files, the same as the export"

ln -s "$repo_root/.venv" "$tree/.venv"
log "make units in the export (ansible-test on the archive's staged copy)"
make -C "$tree" --no-print-directory units
log "passed: staging and make units work from a source archive without .git"
