#!/usr/bin/env bash
# Build the demo application as real Debian packages, and a flat apt repository for each release a guest is offered:
#
#   OUTDIR/release-1/                 vmsnap-demo-app 1.0
#   OUTDIR/release-2/                 vmsnap-demo-app 2.0
#   OUTDIR/release-2-broken-service/  vmsnap-demo-app 2.0 whose configuration has a typo: it installs, its service fails
#   OUTDIR/release-2-broken-postinst/ vmsnap-demo-app 2.0 whose post-installation script fails: apt fails
#
# Each folder holds the .deb and its Packages index (dpkg-scanpackages), to be copied to /srv/repo on a guest and used as
# `deb [trusted=yes] file:/srv/repo ./` (hacking/demo/app_release.yml). Nothing is fetched from a network.
#
# The package: a systemd service (Type=notify) running a small python3 HTTP server on 127.0.0.1:PORT (app.conf, 8080)
# that answers GET /health with {"status": "ok", "version": ...}. Its post-installation script records the data schema
# of the release in /var/lib/vmsnap-demo-app/schema and restarts the service, debhelper-style: a service that fails to
# start does not fail the installation. Used by `make demo` and the integration target snapshot_guard_guests.
#
# Usage: build-app.sh OUTDIR    (prints OUTDIR)
set -euo pipefail

[[ $# == 1 ]] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
out=$1
package=vmsnap-demo-app

if ! command -v dpkg-scanpackages >/dev/null; then
    echo "build-app.sh: installing dpkg-dev (dpkg-scanpackages)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q dpkg-dev >&2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# build VARIANT VERSION: one package tree in $work/VARIANT, built into $out/VARIANT with its Packages index.
build() {
    local variant=$1 version=$2 root=$work/$1 port=8080 postinst_failure=''
    case $variant in
        release-2-broken-service) port=80800 ;;
        release-2-broken-postinst)
            postinst_failure="echo \"$package: migrating /var/lib/$package to schema $version failed\" >&2; exit 1"
            ;;
    esac
    mkdir -p "$root/DEBIAN" "$root/usr/lib/$package" "$root/lib/systemd/system" "$root/etc/$package"

    cat >"$root/DEBIAN/control" <<EOF
Package: $package
Version: $version
Architecture: all
Maintainer: vmsnap.libvirt contributors <vmsnap@localhost>
Depends: python3, systemd
Section: misc
Priority: optional
Description: vmsnap.libvirt demo application
 A small HTTP service whose GET /health answers its version, for the demo and tests of vmsnap.libvirt.
EOF
    echo "/etc/$package/app.conf" >"$root/DEBIAN/conffiles"

    cat >"$root/DEBIAN/postinst" <<EOF
#!/bin/sh
set -e
if [ "\$1" = configure ]; then
    mkdir -p /var/lib/$package
    echo $version >/var/lib/$package/schema
    $postinst_failure
    # As debhelper's postinst snippets do: a service that does not start leaves the package installed.
    deb-systemd-helper enable $package.service
    if [ -d /run/systemd/system ]; then
        systemctl --system daemon-reload || true
        deb-systemd-invoke restart $package.service || true
    fi
fi
EOF
    cat >"$root/DEBIAN/prerm" <<EOF
#!/bin/sh
set -e
if [ "\$1" = remove ] && [ -d /run/systemd/system ]; then
    deb-systemd-invoke stop $package.service || true
fi
EOF
    chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm"

    cat >"$root/etc/$package/app.conf" <<EOF
# vmsnap-demo-app: the address it listens on (only loopback: the guest has no other network)
port = $port
EOF

    cat >"$root/lib/systemd/system/$package.service" <<EOF
[Unit]
Description=vmsnap.libvirt demo application $version

[Service]
Type=notify
ExecStart=/usr/bin/python3 /usr/lib/$package/server.py
TimeoutStartSec=60

[Install]
WantedBy=multi-user.target
EOF

    sed "s/@VERSION@/$version/" >"$root/usr/lib/$package/server.py" <<'EOF'
"""vmsnap-demo-app: answers GET /health with its version, on 127.0.0.1 and the port of /etc/vmsnap-demo-app/app.conf."""
import http.server
import json
import os
import socket
import sys

VERSION = "@VERSION@"
CONFIG = "/etc/vmsnap-demo-app/app.conf"


def read_port():
    with open(CONFIG, encoding="utf-8") as config:
        settings = dict(
            (part.strip() for part in line.split("=", 1)) for line in config if "=" in line and not line.lstrip().startswith("#")
        )
    port = int(settings["port"])
    if not 0 < port < 65536:
        sys.exit("vmsnap-demo-app %s: %s: port %d is not a TCP port (1-65535)" % (VERSION, CONFIG, port))
    return port


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/health":
            self.send_error(404)
            return
        body = json.dumps({"status": "ok", "version": VERSION}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def notify_ready():
    """Tell systemd (Type=notify) that the server listens."""
    address = os.environ.get("NOTIFY_SOCKET")
    if address:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
            notify.sendto(b"READY=1", "\0" + address[1:] if address.startswith("@") else address)


server = http.server.ThreadingHTTPServer(("127.0.0.1", read_port()), Health)
notify_ready()
server.serve_forever()
EOF

    mkdir -p "$out/$variant"
    rm -f "$out/$variant"/*.deb
    dpkg-deb --root-owner-group -Zxz --build "$root" "$out/$variant/${package}_${version}_all.deb" >/dev/null
    (cd "$out/$variant" && dpkg-scanpackages --multiversion . /dev/null 2>/dev/null >Packages)
}

build release-1 1.0
build release-2 2.0
build release-2-broken-service 2.0
build release-2-broken-postinst 2.0
echo "$out"
