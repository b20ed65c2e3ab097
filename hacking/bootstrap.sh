#!/usr/bin/env bash
# Prepare this machine for building and testing vmsnap.libvirt. Idempotent, and quick when all is in place.
#
#  1. Debian packages: libvirt (daemon, client, headers) and QEMU, the build tools for libvirt-python, and the tools the
#     Makefile uses. `apt-get update` runs only when a package is missing. LIBVIRT=backports takes libvirt and QEMU from
#     bookworm-backports (libvirt 11.3, QEMU 10) and adds that apt source when it is missing; the default, stock, takes
#     Debian 12's (libvirt 9.0, QEMU 7.2) and never downgrades what is installed.
#  2. .venv in the repository with the exact versions of requirements-dev.txt; pip runs again only when that file
#     (or the Python it was built with) changed: a stamp file in .venv records what was installed.
#  3. The offline pip bootstrap that `ansible-test sanity` needs (see hacking/offline_get_pip.py).
#
# Environment: PYTHON (default python3) is the interpreter the virtual environment is made from;
# LIBVIRT (stock or backports, default stock) picks where libvirt and QEMU come from.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$repo_root/.venv"
requirements="$repo_root/requirements-dev.txt"
stamp="$venv/.requirements-dev.stamp"
python=${PYTHON:-python3}
libvirt_from=${LIBVIRT:-stock}
backports_suite=bookworm-backports

log() { printf 'bootstrap: %s\n' "$*"; }
die() { printf 'bootstrap: ERROR: %s\n' "$*" >&2; exit 1; }

case $libvirt_from in
    stock | backports) ;;
    *) die "LIBVIRT=$libvirt_from: use stock (Debian 12's libvirt 9.0) or backports (libvirt 11.3 from $backports_suite)" ;;
esac

# libvirt and QEMU, as measured in ../shared/docs/libvirt-here.md, and libvirt's headers for building libvirt-python
# (an sdist) against the system's libvirt: LIBVIRT=backports takes these from bookworm-backports.
libvirt_packages=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils libvirt-dev)
other_packages=(
    # the rest of the build tools for libvirt-python
    pkg-config gcc
    # the Makefile and sanity tests
    make git rsync shellcheck
    # ansible-test integration (it runs ssh-keygen even for --local); pgrep for testctl_selftest (a minbase root, as
    # hacking/test-in-bpo-root.sh makes, has no procps)
    openssh-client procps
    # the demo's and snapshot_guard_guests' local apt repository (hacking/demo/build-app.sh: dpkg-scanpackages)
    dpkg-dev
    # make integration-backports (hacking/test-in-bpo-root.sh): the root's debootstrap, the loopback of its namespace
    debootstrap iproute2
)

installed() { [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true) == installed ]]; }
installed_from_backports() { installed "$1" && [[ $(dpkg-query -W -f='${Version}' "$1") == *~bpo12* ]]; }

# Add bookworm-backports next to the source that serves bookworm, unless apt already knows it.
add_backports_source() {
    local targets mirror file=/etc/apt/sources.list.d/vmsnap-bookworm-backports.sources
    # shellcheck disable=SC2016  # $(RELEASE) and $(SITE) are apt's field names, not shell
    targets=$(apt-get indextargets --format '$(RELEASE) $(SITE)')
    if grep -q "^$backports_suite " <<<"$targets"; then
        return
    fi
    mirror=$(sed -n '/^bookworm /{s///p;q}' <<<"$targets")
    [[ -n $mirror ]] || die "no apt source serves bookworm: add $backports_suite to /etc/apt/sources.list.d/ yourself"
    log "adding the apt source $backports_suite ($mirror) as $file"
    printf '%s\n' 'Types: deb' "URIs: $mirror" "Suites: $backports_suite" 'Components: main' \
        'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' >"$file"
}

install_debian_packages() {
    local from_debian=() from_backports=() package
    for package in "${libvirt_packages[@]}"; do
        if [[ $libvirt_from == backports ]]; then
            installed_from_backports "$package" || from_backports+=("$package")
        else
            installed "$package" || from_debian+=("$package")
        fi
    done
    for package in "${other_packages[@]}"; do
        installed "$package" || from_debian+=("$package")
    done
    if ((${#from_debian[@]} + ${#from_backports[@]} == 0)); then
        log "Debian packages: all $((${#libvirt_packages[@]} + ${#other_packages[@]})) present (libvirt: $libvirt_from)"
        return
    fi
    [[ $(id -u) == 0 ]] \
        || die "Debian packages missing (${from_debian[*]} ${from_backports[*]}) and not root: install them or run as root"
    export DEBIAN_FRONTEND=noninteractive
    [[ $libvirt_from == stock ]] || add_backports_source
    apt-get update -q
    # --force-confold: a hand-written /etc/libvirt/qemu.conf (hacking/libvirt-up.sh) must not stop dpkg at a prompt.
    if ((${#from_debian[@]})); then
        log "Debian packages: installing ${from_debian[*]}"
        apt-get install -y -q -o Dpkg::Options::=--force-confold "${from_debian[@]}" </dev/null
    fi
    if ((${#from_backports[@]})); then
        # -t: their dependencies come from backports too (libvirt0, QEMU's data, and systemd/libudev).
        log "Debian packages: installing ${from_backports[*]} from $backports_suite"
        apt-get install -y -q -o Dpkg::Options::=--force-confold -t "$backports_suite" "${from_backports[@]}" </dev/null
    fi
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
