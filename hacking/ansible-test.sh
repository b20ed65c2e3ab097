#!/usr/bin/env bash
# Run ansible-test on the staged copy of the collection (hacking/stage-collection.sh) with .venv/bin first on PATH.
#
# Usage: hacking/ansible-test.sh sanity|units|integration [ansible-test options...]
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$repo_root/.venv"

if [[ ! -x $venv/bin/ansible-test ]]; then
    echo "ansible-test.sh: ERROR: $venv/bin/ansible-test is missing: run 'make setup' (hacking/bootstrap.sh) first" >&2
    exit 1
fi

stage=$("$repo_root/hacking/stage-collection.sh")

export PATH="$venv/bin:$PATH"
# Without this, ansible-test walks up from the staged copy, finds the repository's .git, asks git for the files of .build/
# (which is git-ignored) and sees none.
export ANSIBLE_TEST_CONTENT_ROOT="$stage"
cd "$stage"
exec ansible-test "$@"
