#!/usr/bin/env bash
# Build the collection as a user or a release would (`ansible-galaxy collection build` in the repository root, so that
# galaxy.yml's build_ignore is what keeps development files out), and check the result:
#
#  1. the tarball's file list: what must be in it is, what must not (virtual environments, build and test output,
#     hacking/, bench/, CI files, caches) is not;
#  2. it installs with `ansible-galaxy collection install` into an empty collections path;
#  3. from there, `ansible-doc` renders every module and role, and the documentation comes from the installed copy;
#  4. a small playbook runs the installed modules against libvirt's test driver (test:///default);
#  5. execution environment: `ansible-builder introspect` finds the Python and system requirements of the installed
#     collection (meta/execution-environment.yml), and `ansible-builder create` writes the build context of
#     examples/execution-environment/ (building the image itself needs Podman or Docker, which this machine lacks).
#
# Leaves the tarball in .build/dist/. Uses .venv (ansible-core, libvirt-python) and .venv-docs (ansible-builder).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$repo_root/.venv"
log() { printf 'check-build: %s\n' "$*"; }
fail() { printf 'check-build: FAILED: %s\n' "$*" >&2; exit 1; }

[[ -x $venv/bin/ansible-galaxy ]] || fail "$venv/bin/ansible-galaxy is missing: run 'make setup' first"
"$repo_root/hacking/tools-venv.sh"
export PATH="$venv/bin:$PATH"
export ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dist="$repo_root/.build/dist"
rm -rf "$dist"
mkdir -p "$dist"

# 1. build and look inside
(cd "$repo_root" && ansible-galaxy collection build --output-path "$dist") >/dev/null
tarball=$(echo "$dist"/vmsnap-libvirt-*.tar.gz)
[[ -f $tarball ]] || fail "ansible-galaxy collection build made no tarball in $dist"
tar -tzf "$tarball" | sed 's|^\./||; s|/$||' | sort >"$work/files"
log "$(basename "$tarball"): $(wc -l <"$work/files") entries"

forbidden='^(\.venv|\.venv-docs|\.build|\.git|\.ci|\.ansible|\.pytest_cache|\.ruff_cache|\.mypy_cache|hacking|bench|tests/output)(/|$)|(^|/)__pycache__(/|$)|\.pyc$|^Makefile$|\.tar\.gz$'
if grep -E "$forbidden" "$work/files" >"$work/forbidden"; then
    fail "development files in the tarball (add them to build_ignore in galaxy.yml):
$(head -20 "$work/forbidden")"
fi
required=(MANIFEST.json FILES.json README.md meta/runtime.yml meta/execution-environment.yml requirements.txt bindep.txt
          changelogs/changelog.yaml docs/docsite/extra-docs.yml docs/docsite/links.yml)
for path in "$repo_root"/plugins/modules/*.py "$repo_root"/plugins/module_utils/*.py "$repo_root"/plugins/doc_fragments/*.py \
            "$repo_root"/roles/*/meta/argument_specs.yml "$repo_root"/docs/docsite/rst/*.rst "$repo_root"/examples/*.yml; do
    [[ -f $path ]] && required+=("${path#"$repo_root"/}")
done
for path in "${required[@]}"; do
    grep -qxF "$path" "$work/files" || fail "$path is missing from the tarball"
done
log "file list: ${#required[@]} required files present, no development files"

# 2. install into an empty collections path
collections="$work/collections"
ANSIBLE_COLLECTIONS_PATH="$collections" ansible-galaxy collection install --offline --no-deps --force -p "$collections" "$tarball" >/dev/null
installed="$collections/ansible_collections/vmsnap/libvirt"
[[ -f $installed/MANIFEST.json ]] || fail "the tarball did not install to $installed"
export ANSIBLE_COLLECTIONS_PATH="$collections"
log "installed into $collections"

# 3. ansible-doc of every module and role, from the installed copy
modules=()
for path in "$installed"/plugins/modules/*.py; do
    modules+=("vmsnap.libvirt.$(basename "$path" .py)")
done
roles=()
for path in "$installed"/roles/*/meta/argument_specs.yml; do
    roles+=("vmsnap.libvirt.$(basename "$(dirname "$(dirname "$path")")")")
done
listed=$(cd "$work" && ansible-doc -t module -l vmsnap.libvirt)
for module in "${modules[@]}"; do
    grep -q "^$module " <<<"$listed" || fail "ansible-doc -l does not list $module"
    (cd "$work" && ansible-doc -t module --json "$module") >"$work/doc.json" || fail "ansible-doc $module failed"
    python - "$work/doc.json" "$module" "$installed" <<'PY' || exit 1
import json, sys
path, name, installed = sys.argv[1:]
doc = json.load(open(path))[name]
filename = doc['doc']['filename']
problems = []
if not filename.startswith(installed + '/'):
    problems.append('documented from %s, not from the installed collection' % filename)
for key in ('doc', 'examples', 'return'):
    if not doc.get(key):
        problems.append('no %s' % key)
if not doc['doc'].get('options'):
    problems.append('no options')
if problems:
    sys.exit('check-build: FAILED: ansible-doc %s: %s' % (name, '; '.join(problems)))
PY
    (cd "$work" && ansible-doc -t module "$module") | grep -q "OPTIONS" || fail "ansible-doc $module shows no OPTIONS"
done
for role in "${roles[@]}"; do
    (cd "$work" && ansible-doc -t role --json "$role") >"$work/role.json" || fail "ansible-doc -t role $role failed"
    python - "$work/role.json" "$role" "$installed" <<'PY' || exit 1
import json, sys
path, name, installed = sys.argv[1:]
doc = json.load(open(path))[name]
if doc.get('path') != installed:
    sys.exit('check-build: FAILED: ansible-doc -t role %s: documented from %s, not from the installed collection' % (name, doc.get('path')))
if not doc['entry_points'].get('main', {}).get('options'):
    sys.exit('check-build: FAILED: ansible-doc -t role %s: no options for the main entry point' % name)
PY
done
log "ansible-doc: ${modules[*]} ${roles[*]}"

# 4. the installed modules at work, on libvirt's test driver (in-process: each task gets a fresh test host)
cat >"$work/playbook.yml" <<'YAML'
- name: Use the installed collection
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/vmsnap.libvirt.libvirt:
      uri: test:///default
  tasks:
    - name: Describe the test driver's domain and what the host can do
      vmsnap.libvirt.virt_snapshot_info:
        domain: test
      register: info

    - name: Take a snapshot
      vmsnap.libvirt.virt_snapshot:
        domain: test
        name: from-the-tarball
        description: taken by hacking/check-build.sh
        # the test driver's disk has no format (no internal snapshot) and its external snapshots are metadata only
        location: external
      register: taken

    - name: Check the results
      ansible.builtin.assert:
        that:
          - info.domains[0].domain == 'test'
          - info.host.libvirt_version is match('^[0-9]+[.][0-9]+[.][0-9]+$')
          - taken is changed
          - taken.snapshot.name == 'from-the-tarball'
          - taken.snapshot.description == 'taken by hacking/check-build.sh'
          - taken.snapshot.location == 'external'
YAML
(cd "$work" && ansible-playbook -i localhost, -c local -e "ansible_python_interpreter=$venv/bin/python" playbook.yml) \
    >"$work/playbook.log" 2>&1 || { cat "$work/playbook.log" >&2; fail "the playbook with the installed collection failed"; }
grep -qE 'localhost +: ok=3 +changed=1 +unreachable=0 +failed=0' "$work/playbook.log" \
    || { cat "$work/playbook.log" >&2; fail "unexpected play recap"; }
log "playbook on test:///default with the installed collection: ok"

# 5. execution environment
builder="$repo_root/.venv-docs/bin/ansible-builder"
"$builder" introspect --sanitize "$collections" >"$work/introspect.txt"
for requirement in libvirt-python lxml 'libvirt-devel \[platform:rpm compile\]' 'libvirt-dev \[platform:dpkg compile\]' \
                   'qemu-img \[platform:rpm\]'; do
    grep -qE "$requirement" "$work/introspect.txt" \
        || { cat "$work/introspect.txt" >&2; fail "ansible-builder introspect does not find '$requirement' in the installed collection"; }
done
"$builder" create --file "$repo_root/examples/execution-environment/execution-environment.yml" --context "$work/ee-context" \
    --output-filename Containerfile >"$work/builder.log" 2>&1 || { cat "$work/builder.log" >&2; fail "ansible-builder create failed"; }
[[ -f $work/ee-context/Containerfile ]] || fail "ansible-builder create wrote no Containerfile"
grep -q 'vmsnap' "$work/ee-context/_build/requirements.yml" || fail "the EE build context lacks the collection in requirements.yml"
log "execution environment: introspect finds the requirements; ansible-builder create wrote the build context (no image: no container engine here)"

log "ok: $tarball"
