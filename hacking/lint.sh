#!/usr/bin/env bash
# Lint everything that ansible-test sanity does not: every linter runs, and the script fails if any failed.
#   ruff                          the Python of plugins/, tests/, hacking/, bench/, extensions/ and examples/ (ruff.toml)
#   ansible-lint                  roles/ and examples/, production profile (.ansible-lint)
#   antsibull-docs                the collection's docs: plugin and role documentation markup, docs/docsite/ (extra docs
#                                 and links); the references in the guides are checked by `make docs` (Sphinx, -W)
#   antsibull-changelog lint      changelogs/ (ansible-test sanity's 'changelog' test runs an older antsibull-changelog)
# Tools come from .venv-docs (docs/requirements.txt, hacking/tools-venv.sh).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$repo_root/hacking/tools-venv.sh"
export PATH="$repo_root/.venv-docs/bin:$PATH"
export ANSIBLE_FORCE_COLOR=0 NO_COLOR=1
stage=$("$repo_root/hacking/stage-collection.sh")
cd "$repo_root"

python_paths=()
for path in plugins tests hacking bench extensions examples; do
    [[ -e $path ]] && python_paths+=("$path")
done

failed=()
run() {
    local name=$1
    shift
    echo "=== lint: $name"
    if "$@"; then echo "=== lint: $name: ok"; else echo "=== lint: $name: FAILED"; failed+=("$name"); fi
}
run ruff ruff check --no-cache "${python_paths[@]}"
# The example role's Molecule scenario finds its role the way Molecule sets it up (molecule.yml): on the roles path.
# The collection's own modules come from the staged copy, as for every other tool here.
run ansible-lint env ANSIBLE_COLLECTIONS_PATH="${stage%/ansible_collections/*}" ANSIBLE_ROLES_PATH="$repo_root/examples/molecule" \
    ansible-lint --nocolor roles/ examples/
run antsibull-docs env ANSIBLE_COLLECTIONS_PATH="${stage%/ansible_collections/*}" \
    antsibull-docs lint-collection-docs --plugin-docs "$stage"
run antsibull-changelog antsibull-changelog lint

if ((${#failed[@]})); then
    echo "make lint: FAILED: ${failed[*]}"
    exit 1
fi
echo "make lint: ruff, ansible-lint, antsibull-docs and antsibull-changelog passed"
