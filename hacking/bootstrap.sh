#!/usr/bin/env bash
# Prepare this machine for building and testing vmsnap.libvirt. Idempotent, and quick when all is in place.
#
#  1. Debian packages: libvirt (daemon, client, headers) and QEMU, the build tools for libvirt-python, and the tools the
#     Makefile uses. `apt-get update` runs only when a package is missing.
#  2. .venv in the repository with the exact versions of requirements-dev.txt; pip runs again only when that file
#     (or the Python it was built with) changed: a stamp file in .venv records what was installed.
#  3. The offline pip bootstrap that `ansible-test sanity` needs (see hacking/offline_get_pip.py).
#
# Environment: PYTHON (default python3) is the interpreter the virtual environment is made from.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$repo_root/.venv"
requirements="$repo_root/requirements-dev.txt"
stamp="$venv/.requirements-dev.stamp"
python=${PYTHON:-python3}

log() { printf 'bootstrap: %s\n' "$*"; }
die() { printf 'bootstrap: ERROR: %s\n' "$*" >&2; exit 1; }

debian_packages=(
    # libvirt and QEMU, as measured in ../shared/docs/libvirt-here.md
    libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils
    # building libvirt-python (an sdist) against the system's libvirt
    libvirt-dev pkg-config gcc
    # the Makefile and sanity tests
    make git rsync shellcheck
)

install_debian_packages() {
    local missing=() package status
    for package in "${debian_packages[@]}"; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
        [[ $status == installed ]] || missing+=("$package")
    done
    if ((${#missing[@]} == 0)); then
        log "Debian packages: all ${#debian_packages[@]} present"
        return
    fi
    [[ $(id -u) == 0 ]] || die "Debian packages missing (${missing[*]}) and not root: install them or run as root"
    log "Debian packages: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # --force-confold: a hand-written /etc/libvirt/qemu.conf (hacking/libvirt-up.sh) must not stop dpkg at a prompt.
    apt-get install -y -q -o Dpkg::Options::=--force-confold "${missing[@]}" </dev/null
}

create_venv() {
    command -v "$python" >/dev/null || die "no $python on PATH (set PYTHON=...)"
    "$python" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] < (3, 14))' \
        || die "$python is $("$python" -V 2>&1); ansible-core 2.19 needs Python 3.11 to 3.13"
    # A venv whose interpreter vanished (pyenv version removed) is rebuilt, not patched.
    if [[ -x $venv/bin/python ]] && ! "$venv/bin/python" -c '' 2>/dev/null; then
        log "virtual environment at $venv is broken: recreating it"
        rm -rf "$venv"
    fi
    if [[ ! -x $venv/bin/python ]]; then
        log "creating virtual environment $venv with $("$python" -V 2>&1)"
        "$python" -m venv "$venv"
    fi

    local wanted
    wanted="$(sha256sum <"$requirements" | cut -d' ' -f1) $("$venv/bin/python" -VV | tr -s ' \n' ' ')"
    if [[ -f $stamp && $(<"$stamp") == "$wanted" ]]; then
        log "Python requirements: up to date ($venv)"
        return
    fi
    log "Python requirements: installing requirements-dev.txt (libvirt-python compiles from source)"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --requirement "$requirements"
    "$venv/bin/python" -m pip check
    printf '%s' "$wanted" >"$stamp"
}

# ansible-test downloads a get-pip script from a host that is unreachable here, unless
# ~/.ansible/test/cache/get_pip_<version>.py exists. Put ours there, with the pip wheel it installs from.
install_offline_pip_bootstrap() {
    local requirements_py pip_version cache script wheel
    requirements_py=$("$venv/bin/python" -c \
        'import ansible_test, os; print(os.path.join(os.path.dirname(ansible_test.__file__), "_internal", "python_requirements.py"))')
    pip_version=$(sed -n "s/^ *pip='\([0-9.]*\)',\$/\1/p" "$requirements_py")
    [[ $pip_version =~ ^[0-9]+(\.[0-9]+)*$ ]] || die "cannot find ansible-test's pip version in $requirements_py"
    # ansible-test looks under ~ (expanduser: $HOME, else the password database)
    cache="${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.ansible/test/cache"
    script="$cache/get_pip_${pip_version//./_}.py"
    wheel="$cache/pip-$pip_version-py3-none-any.whl"
    mkdir -p "$cache"
    if [[ ! -f $wheel ]]; then
        log "ansible-test: downloading the pip $pip_version wheel into $cache"
        "$venv/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
            --dest "$cache" "pip==$pip_version"
    fi
    if ! cmp -s "$repo_root/hacking/offline_get_pip.py" "$script"; then
        log "ansible-test: installing the offline pip bootstrap $script"
        cp "$repo_root/hacking/offline_get_pip.py" "$script"
    fi
    log "ansible-test: offline pip $pip_version bootstrap in place"
}

install_debian_packages
create_venv
install_offline_pip_bootstrap
