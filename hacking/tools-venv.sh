#!/usr/bin/env bash
# Make .venv-docs: the documentation, changelog, lint and execution-environment tools of docs/requirements.txt, apart
# from .venv (tests) so that each stays lean and neither pins the other. Idempotent, and quick when all is in place: a
# stamp file records what was installed, and pip runs again only when docs/requirements.txt (or the Python) changed.
# Needs PyPI and nothing else.
#
# Environment: PYTHON (default python3) is the interpreter the virtual environment is made from.
# Prints nothing but its progress; the tools are in .venv-docs/bin.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$repo_root/.venv-docs"
requirements="$repo_root/docs/requirements.txt"
stamp="$venv/.requirements.stamp"
python=${PYTHON:-python3}

log() { printf 'tools-venv: %s\n' "$*"; }
die() { printf 'tools-venv: ERROR: %s\n' "$*" >&2; exit 1; }

command -v "$python" >/dev/null || die "no $python on PATH (set PYTHON=...)"
if [[ -x $venv/bin/python ]] && ! "$venv/bin/python" -c '' 2>/dev/null; then
    log "virtual environment at $venv is broken: recreating it"
    rm -rf "$venv"
fi
if [[ ! -x $venv/bin/python ]]; then
    log "creating virtual environment $venv with $("$python" -V 2>&1)"
    "$python" -m venv "$venv"
fi

wanted="$(sha256sum <"$requirements" | cut -d' ' -f1) $("$venv/bin/python" -VV | tr -s ' \n' ' ')"
if [[ -f $stamp && $(<"$stamp") == "$wanted" ]]; then
    log "up to date ($venv)"
    exit 0
fi
log "installing docs/requirements.txt into $venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --requirement "$requirements"
"$venv/bin/python" -m pip check
printf '%s' "$wanted" >"$stamp"
