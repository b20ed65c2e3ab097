#!/usr/bin/env python
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Throwaway libvirt domains for vmsnap.libvirt's integration tests, demo and benchmarks, and the data on their disks.

Every domain this tool creates carries a marker element in its <metadata> (namespace MARKER_NAMESPACE) and keeps its images
in a folder of its own, IMAGE_ROOT/NAME/. destroy and cleanup only ever touch domains that carry the marker, so they are safe
beside domains of other people and of parallel test runs (give each run its own name prefix).

write and check put a byte pattern on a guest disk and verify it, without any guest OS: a running or paused domain through
QEMU's own block layer (HMP "qemu-io", whose output lands in the domain's log, not in the monitor reply), a shut-off one with
the qemu-io command on the disk's top image, which reads through the backing chain.

guest create/wait/info/ssh/inventory run real Debian 12 guests (the image hacking/guest-image.sh builds and caches): a qcow2
overlay on the cached base image, direct kernel boot, the guest agent, pvpanic, a serial console log, and SSH through a QEMU
user-network port forward on 127.0.0.1 only (restrict=on: the guest reaches nothing else). The port and the key are kept in
the domain's marker, so every command (and destroy and cleanup) works from the name alone.

Exit codes: 0 success (for check: the pattern is there), 1 check found other data, 2 error (including usage errors);
guest ssh passes the remote command's exit code through (255: ssh itself failed).
Run it with the project's virtual environment (it needs libvirt-python and lxml): .venv/bin/python vmsnap_testctl.py --help
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import time

try:
    import libvirt
    import libvirt_qemu
    from lxml import etree
except ImportError as import_error:
    sys.exit('vmsnap_testctl: %s; run this tool with the Python of the project virtual environment (.venv/bin/python)' % import_error)

EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_ERROR = 2

DEFAULT_URI = os.environ.get('VMSNAP_URI', 'qemu:///system')
IMAGE_ROOT = os.environ.get('VMSNAP_TEST_IMAGE_ROOT', '/var/lib/libvirt/images/vmsnap-test')
QEMU_LOG_DIR = '/var/log/libvirt/qemu'

MARKER_NAMESPACE = 'https://vmsnap.dev/xmlns/test/1.0'
MARKER_PREFIX = 'vmsnaptest'
MARKER_TAG = '{%s}throwaway' % MARKER_NAMESPACE

DISK_SIZE = '64M'
MEMORY_MIB = 64
DISK_TARGETS = 'abcdefghijklmnopqrstuvwxyz'
NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$')

UNDEFINE_FLAGS = (libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
                  | libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)

STATE_NAMES = {
    libvirt.VIR_DOMAIN_NOSTATE: 'nostate',
    libvirt.VIR_DOMAIN_RUNNING: 'running',
    libvirt.VIR_DOMAIN_BLOCKED: 'blocked',
    libvirt.VIR_DOMAIN_PAUSED: 'paused',
    libvirt.VIR_DOMAIN_SHUTDOWN: 'shutdown',
    libvirt.VIR_DOMAIN_SHUTOFF: 'shutoff',
    libvirt.VIR_DOMAIN_CRASHED: 'crashed',
    libvirt.VIR_DOMAIN_PMSUSPENDED: 'pmsuspended',
}

# The lines qemu-io prints when a command is over: its statistics line, or an error.
QEMU_IO_DONE_RE = re.compile(r'^(\S.* ops; .*sec \(.*\)|.*\bfailed: .*|command ".*" not found|.*: invalid .*)$', re.MULTILINE)
QEMU_IO_FAILED_RE = re.compile(r'^(.*\bfailed: .*|command ".*" not found|.*: invalid .*|qemu-io: .*)$', re.MULTILINE)
PATTERN_FAILED_RE = re.compile(r'^Pattern verification failed', re.MULTILINE)
QEMU_IO_LOG_TIMEOUT = 15.0
SIZE_UNITS = {'': 1, 'B': 1, 'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30}

# Real guests (the guest sub-commands).
GUEST_CACHE = os.environ.get('VMSNAP_GUEST_CACHE', '/var/cache/vmsnap/guest-image')
GUEST_IMAGE_FILES = ('base.qcow2', 'vmlinuz', 'initrd.img', 'id_ed25519')
GUEST_TAG = '{%s}guest' % MARKER_NAMESPACE
QEMU_NAMESPACE = 'http://libvirt.org/schemas/domain/qemu/1.0'
GUEST_CMDLINE = 'root=/dev/vda console=ttyS0 net.ifnames=0 panic=0'
GUEST_USER = 'root'
GUEST_PYTHON = '/usr/bin/python3'
GUEST_SSH_COMMON_ARGS = '-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=10'
# Below Linux's ephemeral range (32768-60999), so that no outgoing connection holds a port a guest is about to get.
GUEST_PORTS = range(20000, 32768)
GUEST_PORT_LOCK = os.path.join(IMAGE_ROOT, '.guest-ports.lock')
GUEST_START_ATTEMPTS = 3
GUEST_POLL_INTERVAL = 1.0
GUEST_PROBE_TIMEOUT = 10
# SSH's banner can take 20 s when the host is busy (software emulation gets little CPU; measured 18 s at load 18).
# Ansible puts its own ConnectTimeout (from ansible_ssh_timeout, default 10) before ssh_common_args, so it gets the
# variable too; ssh_common_args keeps 10 as the interface says.
GUEST_SSH_TIMEOUT = 30
ANSI_ESCAPE_RE = re.compile(r'\x1b\[[0-9;?]*[A-Za-z]')


class TestctlError(Exception):
    """A failure the user can act on; main() prints it and exits with EXIT_ERROR."""


# --- arguments ---------------------------------------------------------------------------------------------------------

def domain_name(text):
    """argparse type: a domain name that is also safe as a folder name."""
    if not NAME_RE.match(text):
        raise argparse.ArgumentTypeError('%r is not a valid name (letters, digits, ".", "_", "-"; at most 63 characters)' % text)
    return text


def byte_pattern(text):
    """argparse type: one byte, as 0x11, 17 or 0o21."""
    try:
        value = int(text, 0)
    except ValueError:
        value = -1
    if not 0 <= value <= 255:
        raise argparse.ArgumentTypeError('%r is not a byte pattern (0x00 to 0xff)' % text)
    return value


def positive_int(text):
    """argparse type: a whole number above zero."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError('%r is not a whole number above zero' % text)
    return value


def byte_size(text):
    """argparse type: a size in bytes, with an optional K, M or G suffix (powers of 1024)."""
    match = re.match(r'^(\d+)([BKMG]?)$', text.strip().upper())
    if not match:
        raise argparse.ArgumentTypeError('%r is not a size (e.g. 4096, 64K, 1M)' % text)
    return int(match.group(1)) * SIZE_UNITS[match.group(2)]


# --- libvirt -----------------------------------------------------------------------------------------------------------

def ignore_libvirt_error(_context, _error):
    """libvirt prints every error to stderr by default; we report them ourselves."""


def connect(uri):
    """Open a read-write connection, or explain why not."""
    libvirt.registerErrorHandler(ignore_libvirt_error, None)
    try:
        return libvirt.open(uri)
    except libvirt.libvirtError as error:
        raise TestctlError('cannot connect to %s: %s (is the daemon up? make setup starts one)' % (uri, error)) from None


def lookup(conn, name):
    """The domain called name, or None when there is none."""
    try:
        return conn.lookupByName(name)
    except libvirt.libvirtError as error:
        if error.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return None
        raise


def domain_xml(dom, inactive=False):
    """The domain's XML as an lxml tree (the live definition of a running domain unless inactive)."""
    return etree.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0))


def marker(dom):
    """Our marker element of the domain, or None when we did not create it."""
    try:
        tree = domain_xml(dom)
    except libvirt.libvirtError as error:
        if error.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return None
        raise
    return tree.find('metadata/%s' % MARKER_TAG)


def require_ours(conn, name):
    """The domain called name, which must exist and carry our marker."""
    dom = lookup(conn, name)
    if dom is None:
        raise TestctlError('domain %s does not exist' % name)
    if marker(dom) is None:
        raise TestctlError('domain %s was not created by vmsnap_testctl (no %s:throwaway marker): refusing to touch it' % (name, MARKER_PREFIX))
    return dom


def state_name(dom):
    """The domain's state as a word."""
    return STATE_NAMES.get(dom.state()[0], 'unknown')


def disks(dom):
    """The domain's disks: target, bus, format, source path, alias (aliases only while it runs)."""
    result = []
    for disk in domain_xml(dom).iterfind('devices/disk'):
        target = disk.find('target')
        source = disk.find('source')
        driver = disk.find('driver')
        alias = disk.find('alias')
        result.append({
            'target': target.get('dev'),
            'bus': target.get('bus'),
            'device': disk.get('device'),
            'format': driver.get('type') if driver is not None else None,
            'source': (source.get('file') or source.get('dev')) if source is not None else None,
            'alias': alias.get('name') if alias is not None else None,
        })
    return result


def find_disk(dom, target):
    """The disk with the given target (vda, ...)."""
    for disk in disks(dom):
        if disk['target'] == target:
            return disk
    raise TestctlError('domain %s has no disk %s (it has: %s)' % (dom.name(), target, ', '.join(d['target'] for d in disks(dom)) or 'none'))


def domain_dir(name):
    """The folder that holds the images, overlays and memory files of our domain called name."""
    return os.path.join(IMAGE_ROOT, name)


def info(dom):
    """A JSON-friendly description of the domain."""
    return {
        'name': dom.name(),
        'uuid': dom.UUIDString(),
        'state': state_name(dom),
        'active': bool(dom.isActive()),
        'persistent': bool(dom.isPersistent()),
        'ours': marker(dom) is not None,
        'dir': domain_dir(dom.name()),
        'snapshots': dom.snapshotListNames(),
        'disks': disks(dom),
    }


# --- create / destroy / cleanup ---------------------------------------------------------------------------------------

def build_domain_xml(name, disk_paths, disk_format):
    """The XML of a throwaway domain: software emulation, 64 MiB, 1 vCPU, no NIC, no balloon, virtio disks, our marker."""
    domain = etree.Element('domain', type='qemu')
    etree.SubElement(domain, 'name').text = name
    metadata = etree.SubElement(domain, 'metadata')
    etree.SubElement(metadata, MARKER_TAG, nsmap={MARKER_PREFIX: MARKER_NAMESPACE}, dir=domain_dir(name))
    etree.SubElement(domain, 'memory', unit='MiB').text = str(MEMORY_MIB)
    etree.SubElement(domain, 'vcpu').text = '1'
    os_element = etree.SubElement(domain, 'os')
    etree.SubElement(os_element, 'type', arch='x86_64').text = 'hvm'
    etree.SubElement(os_element, 'boot', dev='hd')
    etree.SubElement(domain, 'on_poweroff').text = 'destroy'
    etree.SubElement(domain, 'on_crash').text = 'destroy'
    devices = etree.SubElement(domain, 'devices')
    for index, path in enumerate(disk_paths):
        disk = etree.SubElement(devices, 'disk', type='file', device='disk')
        etree.SubElement(disk, 'driver', name='qemu', type=disk_format)
        etree.SubElement(disk, 'source', file=path)
        etree.SubElement(disk, 'target', dev='vd' + DISK_TARGETS[index], bus='virtio')
    etree.SubElement(devices, 'controller', type='usb', model='none')
    etree.SubElement(devices, 'memballoon', model='none')
    return etree.tostring(domain, encoding='unicode')


def run(command):
    """Run a command; its output, or a TestctlError with what it printed."""
    try:
        completed = subprocess.run(command, check=False, capture_output=True, text=True)
    except OSError as error:
        raise TestctlError('cannot run %s: %s (install qemu-utils)' % (command[0], error)) from None
    if completed.returncode != 0:
        raise TestctlError('%s failed (exit %d): %s' % (' '.join(command), completed.returncode,
                                                        (completed.stderr or completed.stdout).strip()))
    return completed.stdout


def remove_domain_files(name):
    """Remove our domain's folder (images, overlays, memory files) and its QEMU log."""
    folder = domain_dir(name)
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    log_path = os.path.join(QEMU_LOG_DIR, name + '.log')
    if os.path.exists(log_path):
        os.unlink(log_path)


def destroy_domain(dom):
    """Stop and undefine one of our domains (snapshot and checkpoint metadata, managed save, NVRAM too) and remove its files."""
    name = dom.name()
    try:
        if dom.isActive():
            dom.destroy()
        if dom.isPersistent():
            dom.undefineFlags(UNDEFINE_FLAGS)
    except libvirt.libvirtError as error:
        # Someone else (a parallel cleanup, a test's own teardown) may be removing it at the same moment.
        if error.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
            raise TestctlError('cannot remove domain %s: %s' % (name, error)) from None
    remove_domain_files(name)


def cmd_create(args, conn):
    """create: a fresh throwaway domain (a leftover of ours with the same name is replaced)."""
    existing = lookup(conn, args.name)
    if existing is not None:
        if marker(existing) is None:
            raise TestctlError('domain %s exists and was not created by vmsnap_testctl: refusing to replace it' % args.name)
        print('replacing leftover throwaway domain %s' % args.name, file=sys.stderr)
        destroy_domain(existing)
    else:
        remove_domain_files(args.name)

    folder = domain_dir(args.name)
    os.makedirs(folder, exist_ok=True)
    extension = 'qcow2' if args.disk_format == 'qcow2' else 'img'
    paths = []
    for index in range(args.disks):
        path = os.path.join(folder, 'vd%s.%s' % (DISK_TARGETS[index], extension))
        run(['qemu-img', 'create', '-q', '-f', args.disk_format, path, DISK_SIZE])
        paths.append(path)

    try:
        dom = conn.defineXML(build_domain_xml(args.name, paths, args.disk_format))
        if args.start:
            dom.create()
    except libvirt.libvirtError as error:
        leftover = lookup(conn, args.name)
        if leftover is not None and marker(leftover) is not None:
            destroy_domain(leftover)
        else:
            remove_domain_files(args.name)
        raise TestctlError('cannot create domain %s: %s' % (args.name, error)) from None
    print(json.dumps(info(dom), indent=2))
    return EXIT_OK


def cmd_destroy(args, conn):
    """destroy: remove the named domains of ours; refuse (and touch nothing) if any of them is not ours."""
    doms = []
    for name in args.names:
        dom = lookup(conn, name)
        if dom is not None and marker(dom) is None:
            raise TestctlError('domain %s was not created by vmsnap_testctl: refusing to destroy it' % name)
        doms.append((name, dom))
    for name, dom in doms:
        if dom is None:
            remove_domain_files(name)
            print('%s: absent' % name)
        else:
            destroy_domain(dom)
            print('%s: destroyed' % name)
    return EXIT_OK


def cmd_cleanup(args, conn):
    """cleanup: remove every domain of ours whose name starts with the prefix, and our image folders left without domain."""
    removed = []
    for dom in conn.listAllDomains(0):
        try:
            name = dom.name()
        except libvirt.libvirtError:
            continue
        if name.startswith(args.prefix) and marker(dom) is not None:
            destroy_domain(dom)
            removed.append(name)
    if os.path.isdir(IMAGE_ROOT):
        for name in sorted(os.listdir(IMAGE_ROOT)):
            if name.startswith(args.prefix) and NAME_RE.match(name) and lookup(conn, name) is None:
                remove_domain_files(name)
                removed.append(name + ' (files only)')
    for name in removed:
        print('%s: destroyed' % name)
    print('cleanup: %d removed (prefix %r)' % (len(removed), args.prefix))
    return EXIT_OK


def cmd_info(args, conn):
    """info: JSON description of one domain (any domain: reading is harmless)."""
    dom = lookup(conn, args.name)
    if dom is None:
        raise TestctlError('domain %s does not exist' % args.name)
    print(json.dumps(info(dom), indent=2))
    return EXIT_OK


# --- data on the disks -------------------------------------------------------------------------------------------------

class OnlineDisk:
    """A disk of a running or paused domain, reached with HMP qemu-io; the output is read back from the domain's log."""

    def __init__(self, dom, disk):
        if not disk['alias']:
            raise TestctlError('disk %s of %s has no device alias; cannot address it in QEMU' % (disk['target'], dom.name()))
        self.dom = dom
        # virtio-blk's device is a PCI proxy: its block backend is the virtio-backend child. Other buses: the device itself.
        suffix = '/virtio-backend' if disk['bus'] == 'virtio' else ''
        self.qom_path = '/machine/peripheral/%s%s' % (disk['alias'], suffix)
        self.log_path = os.path.join(QEMU_LOG_DIR, dom.name() + '.log')

    def qemu_io(self, command):
        """Run one qemu-io command on the disk; return what it printed."""
        offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        hmp = 'qemu-io -d %s "%s"' % (self.qom_path, command)
        try:
            reply = libvirt_qemu.qemuMonitorCommand(self.dom, hmp, libvirt_qemu.VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP)
        except libvirt.libvirtError as error:
            raise TestctlError('monitor command %s on %s failed: %s' % (hmp, self.dom.name(), error)) from None
        if reply.strip():
            # qemu-io's own output goes to the log; anything in the reply is HMP refusing the command.
            raise TestctlError('monitor command %s on %s failed: %s' % (hmp, self.dom.name(), reply.strip()))
        return self.read_log_after(offset, hmp)

    def read_log_after(self, offset, what):
        """What was appended to the domain's log after offset, once qemu-io's closing line is there (bounded wait)."""
        deadline = time.monotonic() + QEMU_IO_LOG_TIMEOUT
        while True:
            text = ''
            if os.path.exists(self.log_path):
                with open(self.log_path, 'rb') as log:
                    if os.fstat(log.fileno()).st_size >= offset:
                        log.seek(offset)
                    # else virtlogd rotated the log meanwhile: the new file holds all of our output.
                    text = log.read().decode('utf-8', 'replace')
            if QEMU_IO_DONE_RE.search(text):
                return text
            if time.monotonic() > deadline:
                raise TestctlError('no qemu-io output for %s in %s after %.0fs (got: %r)' % (what, self.log_path, QEMU_IO_LOG_TIMEOUT, text))
            time.sleep(0.02)


class OfflineDisk:
    """A disk of a shut-off domain, reached with the qemu-io command on its top image (through the backing chain)."""

    def __init__(self, dom, disk, writable):
        if not disk['source']:
            raise TestctlError('disk %s of %s has no source file' % (disk['target'], dom.name()))
        self.path = disk['source']
        self.format = disk['format'] or 'raw'
        self.writable = writable

    def qemu_io(self, command):
        """Run one qemu-io command on the image (read-only unless opened for writing); return what it printed."""
        argv = ['qemu-io', '-f', self.format, '-c', command, self.path]
        if not self.writable:
            argv.insert(1, '-r')
        try:
            completed = subprocess.run(argv, check=False, capture_output=True, text=True)
        except OSError as error:
            raise TestctlError('cannot run qemu-io: %s (install qemu-utils)' % error) from None
        output = completed.stdout + completed.stderr
        if completed.returncode != 0 and not PATTERN_FAILED_RE.search(output):
            raise TestctlError('%s failed (exit %d): %s' % (' '.join(argv), completed.returncode, output.strip()))
        return output


def open_disk(conn, args, for_writing):
    """The disk to read or write, reached the way that fits the domain's state."""
    dom = require_ours(conn, args.name) if for_writing else lookup(conn, args.name)
    if dom is None:
        raise TestctlError('domain %s does not exist' % args.name)
    disk = find_disk(dom, args.disk)
    return OnlineDisk(dom, disk) if dom.isActive() else OfflineDisk(dom, disk, writable=for_writing)


def qemu_io_output(disk, command):
    """What a qemu-io command printed; TestctlError if it failed for any reason but a pattern mismatch."""
    output = disk.qemu_io(command)
    failure = QEMU_IO_FAILED_RE.search(output)
    if failure and not PATTERN_FAILED_RE.search(output):
        raise TestctlError('qemu-io "%s" failed: %s' % (command, failure.group(0)))
    return output


def pattern_found(disk, pattern, offset, length):
    """True when every byte in [offset, offset + length) of the disk is pattern."""
    return not PATTERN_FAILED_RE.search(qemu_io_output(disk, 'read -P 0x%02x %d %d' % (pattern, offset, length)))


def first_mismatch(disk, pattern, offset, length):
    """The offset of the first byte in [offset, offset + length) that differs from pattern (bisection on prefixes)."""
    good, bad = 0, length  # the first `good` bytes match, the first `bad` bytes do not
    while bad - good > 1:
        middle = (good + bad) // 2
        if pattern_found(disk, pattern, offset, middle):
            good = middle
        else:
            bad = middle
    return offset + bad - 1


def hexdump(disk, offset, length=16):
    """qemu-io's hex dump of length bytes at offset."""
    output = qemu_io_output(disk, 'read -v %d %d' % (offset, length))
    return '\n'.join(line for line in output.splitlines() if re.match(r'^[0-9a-f]{8}:', line))


def cmd_write(args, conn):
    """write: fill [offset, offset + length) of the disk with the byte pattern."""
    disk = open_disk(conn, args, for_writing=True)
    qemu_io_output(disk, 'write -P 0x%02x %d %d' % (args.pattern, args.offset, args.length))
    print('%s %s: wrote 0x%02x at %d, %d bytes' % (args.name, args.disk, args.pattern, args.offset, args.length))
    return EXIT_OK


def cmd_check(args, conn):
    """check: exit 0 when [offset, offset + length) of the disk holds only the pattern, 1 (saying what is there) when not."""
    disk = open_disk(conn, args, for_writing=False)
    if pattern_found(disk, args.pattern, args.offset, args.length):
        print('%s %s: 0x%02x at %d, %d bytes: match' % (args.name, args.disk, args.pattern, args.offset, args.length))
        return EXIT_OK
    where = first_mismatch(disk, args.pattern, args.offset, args.length)
    print('%s %s: 0x%02x at %d, %d bytes: MISMATCH, first differing byte at offset %d:\n%s'
          % (args.name, args.disk, args.pattern, args.offset, args.length, where, hexdump(disk, where)))
    return EXIT_MISMATCH


# --- real guests -------------------------------------------------------------------------------------------------------

def guest_image_dir(requested):
    """The image folder to use (--image, else the cache's current entry), resolved, with every file a guest needs."""
    current = os.path.join(GUEST_CACHE, 'current')
    folder = requested or current
    if not os.path.isdir(folder):
        if requested:
            raise TestctlError('guest image folder %s does not exist (hacking/guest-image.sh prints the one it built)' % requested)
        raise TestctlError('no guest image is cached in %s: run `make guest-image` (or hacking/guest-image.sh) first' % GUEST_CACHE)
    # The real path, never "current": a rebuild moves "current" on, and a guest's overlay must keep the base it was made on.
    folder = os.path.realpath(folder)
    missing = [name for name in GUEST_IMAGE_FILES if not os.path.isfile(os.path.join(folder, name))]
    if missing:
        raise TestctlError('guest image folder %s lacks %s: rebuild it with `hacking/guest-image.sh --rebuild`' % (folder, ', '.join(missing)))
    return folder


def build_guest_xml(name, image, port, overlay, console_log, args):
    """The XML of a real guest: software emulation, direct kernel boot from the image, virtio disk on an overlay, guest
    agent channel, ISA pvpanic, serial console to a file, and the NIC on restricted user networking with one forward to 22."""
    domain = etree.Element('domain', type='qemu', nsmap={'qemu': QEMU_NAMESPACE})
    etree.SubElement(domain, 'name').text = name
    metadata = etree.SubElement(domain, 'metadata')
    throwaway = etree.SubElement(metadata, MARKER_TAG, nsmap={MARKER_PREFIX: MARKER_NAMESPACE}, dir=domain_dir(name))
    etree.SubElement(throwaway, GUEST_TAG, port=str(port), key=os.path.join(image, 'id_ed25519'), image=image)
    throwaway.find(GUEST_TAG).set('console-log', console_log)
    etree.SubElement(domain, 'memory', unit='MiB').text = str(args.memory)
    etree.SubElement(domain, 'vcpu').text = str(args.vcpus)
    os_element = etree.SubElement(domain, 'os')
    etree.SubElement(os_element, 'type', arch='x86_64').text = 'hvm'
    etree.SubElement(os_element, 'kernel').text = os.path.join(image, 'vmlinuz')
    etree.SubElement(os_element, 'initrd').text = os.path.join(image, 'initrd.img')
    etree.SubElement(os_element, 'cmdline').text = GUEST_CMDLINE
    features = etree.SubElement(domain, 'features')
    # ACPI: the power button (virsh shutdown) and the ISA pvpanic device (ACPI QEMU0001) reach the guest through it.
    etree.SubElement(features, 'acpi')
    etree.SubElement(features, 'apic')
    etree.SubElement(domain, 'clock', offset='utc')
    etree.SubElement(domain, 'on_poweroff').text = 'destroy'
    etree.SubElement(domain, 'on_reboot').text = 'restart'
    etree.SubElement(domain, 'on_crash').text = args.on_crash
    devices = etree.SubElement(domain, 'devices')
    disk = etree.SubElement(devices, 'disk', type='file', device='disk')
    etree.SubElement(disk, 'driver', name='qemu', type='qcow2')
    etree.SubElement(disk, 'source', file=overlay)
    etree.SubElement(disk, 'target', dev='vda', bus='virtio')
    etree.SubElement(devices, 'controller', type='usb', model='none')
    serial = etree.SubElement(devices, 'serial', type='file')
    # append: a restart or a revert (a new QEMU) adds to the log instead of wiping what led to it.
    etree.SubElement(serial, 'source', path=console_log, append='on')
    etree.SubElement(serial, 'target', port='0')
    channel = etree.SubElement(devices, 'channel', type='unix')
    etree.SubElement(channel, 'target', type='virtio', name='org.qemu.guest_agent.0')
    etree.SubElement(devices, 'panic', model='isa')
    etree.SubElement(devices, 'memballoon', model='none')
    # The NIC: libvirt's own <interface type='user'> cannot restrict the network or bind the forward to loopback.
    # addr=0x9: without it, QEMU takes slot 2 and libvirt's virtio-serial controller fails to start.
    commandline = etree.SubElement(domain, '{%s}commandline' % QEMU_NAMESPACE)
    for value in ('-netdev', 'user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:%d-:22' % port,
                  '-device', 'virtio-net-pci,netdev=n0,addr=0x9'):
        etree.SubElement(commandline, '{%s}arg' % QEMU_NAMESPACE, value=value)
    return etree.tostring(domain, encoding='unicode')


def guest_settings(dom):
    """What the marker records about a real guest: port, key, image, console log; a TestctlError if it is no guest."""
    throwaway = marker(dom)
    guest = throwaway.find(GUEST_TAG) if throwaway is not None else None
    if guest is None:
        raise TestctlError('domain %s is not a real guest of vmsnap_testctl (made with "create", or not ours): '
                           'make one with "guest create %s"' % (dom.name(), dom.name()))
    return {'port': int(guest.get('port')), 'key': guest.get('key'), 'image': guest.get('image'), 'console_log': guest.get('console-log')}


def guest_json(dom):
    """The guest as the guest sub-commands print it: Ansible's connection variables and where to look."""
    settings = guest_settings(dom)
    return {
        'name': dom.name(),
        'state': state_name(dom),
        'ansible_host': '127.0.0.1',
        'ansible_port': settings['port'],
        'ansible_user': GUEST_USER,
        'ansible_ssh_private_key_file': settings['key'],
        'ansible_ssh_common_args': GUEST_SSH_COMMON_ARGS,
        'ansible_ssh_timeout': GUEST_SSH_TIMEOUT,
        'ansible_python_interpreter': GUEST_PYTHON,
        'console_log': settings['console_log'],
        'image': settings['image'],
    }


def ssh_argv(settings, connect_timeout=GUEST_SSH_TIMEOUT):
    """The ssh command line that reaches the guest as root with the image's key (no host key checks: throwaway guests)."""
    return ['ssh', '-i', settings['key'], '-p', str(settings['port']), '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no',
            '-o', 'UserKnownHostsFile=/dev/null', '-o', 'ConnectTimeout=%d' % connect_timeout, '-o', 'LogLevel=ERROR',
            '%s@127.0.0.1' % GUEST_USER]


def port_is_free(port):
    """True when nothing listens on (or holds) 127.0.0.1:port."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.bind(('127.0.0.1', port))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def ports_in_use_by_guests(conn):
    """The ports recorded in the markers of every real guest of ours (defined ones hold theirs while shut off too)."""
    ports = set()
    for dom in conn.listAllDomains(0):
        try:
            throwaway = marker(dom)
        except libvirt.libvirtError:
            continue
        guest = throwaway.find(GUEST_TAG) if throwaway is not None else None
        if guest is not None and (guest.get('port') or '').isdigit():
            ports.add(int(guest.get('port')))
    return ports


def free_guest_port(conn, taken):
    """A loopback port no guest of ours has and nothing listens on; taken: ports to avoid as well."""
    candidates = list(GUEST_PORTS)
    random.SystemRandom().shuffle(candidates)
    avoid = ports_in_use_by_guests(conn) | taken
    for port in candidates:
        if port not in avoid and port_is_free(port):
            return port
    raise TestctlError('no free TCP port on 127.0.0.1 between %d and %d' % (GUEST_PORTS[0], GUEST_PORTS[-1]))


class PortLock:
    """An exclusive lock that makes choosing a port, defining and starting a guest one step for parallel testctl runs."""

    def __init__(self):
        os.makedirs(IMAGE_ROOT, exist_ok=True)
        self.handle = None

    def __enter__(self):
        self.handle = open(GUEST_PORT_LOCK, 'a')  # held until __exit__
        fcntl.flock(self.handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc_info):
        self.handle.close()


def console_tail(path, lines=8):
    """The last lines of a console log, for error messages."""
    try:
        with open(path, 'rb') as log:
            log.seek(max(0, os.fstat(log.fileno()).st_size - 8192))
            text = log.read().decode('utf-8', 'replace')
    except OSError as error:
        return '(cannot read %s: %s)' % (path, os.strerror(error.errno))
    # systemd's status lines carry colours and cursor moves; keep the words.
    text = ANSI_ESCAPE_RE.sub('', text).replace('\r', '\n')
    tail = [line.rstrip() for line in text.splitlines() if line.strip()][-lines:]
    return '\n  '.join(tail) if tail else '(empty)'


def agent_answers(dom):
    """None when the guest agent answers guest-ping, else why not."""
    try:
        libvirt_qemu.qemuAgentCommand(dom, json.dumps({'execute': 'guest-ping'}), GUEST_PROBE_TIMEOUT, 0)
    except libvirt.libvirtError as error:
        return str(error)
    return None


def ssh_answers(settings, remaining):
    """None when `ssh ... true` works, else why not."""
    limit = max(5, min(int(remaining), 2 * GUEST_SSH_TIMEOUT))
    argv = ssh_argv(settings, connect_timeout=min(GUEST_SSH_TIMEOUT, limit)) + ['true']
    try:
        completed = subprocess.run(argv, check=False, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=limit)
    except subprocess.TimeoutExpired:
        return 'ssh did not finish within %d s' % limit
    except OSError as error:
        raise TestctlError('cannot run ssh: %s (install openssh-client)' % error) from None
    if completed.returncode == 0:
        return None
    return 'exit %d: %s' % (completed.returncode, (completed.stderr or completed.stdout).strip() or 'no output')


def wait_for_guest(dom, timeout):
    """Wait until both the guest agent and SSH answer, at most timeout seconds; a TestctlError naming what did not."""
    settings = guest_settings(dom)
    deadline = time.monotonic() + timeout
    agent_error = ssh_error = 'not tried yet'
    while True:
        state = state_name(dom)
        if state != 'running':
            raise TestctlError('guest %s is %s, not running: it cannot answer (start or resume it first). Console log %s ends:\n  %s'
                               % (dom.name(), state, settings['console_log'], console_tail(settings['console_log'])))
        if agent_error is not None:
            agent_error = agent_answers(dom)
        if ssh_error is not None:
            ssh_error = ssh_answers(settings, deadline - time.monotonic())
        if agent_error is None and ssh_error is None:
            return
        if time.monotonic() >= deadline:
            silent = []
            if agent_error is not None:
                silent.append('the guest agent (guest-ping: %s)' % agent_error)
            if ssh_error is not None:
                silent.append('SSH on 127.0.0.1:%d (%s)' % (settings['port'], ssh_error))
            raise TestctlError('guest %s: after %d s, %s did not answer. It is left running for a look; console log %s ends:\n  %s'
                               % (dom.name(), timeout, ' and '.join(silent), settings['console_log'], console_tail(settings['console_log'])))
        time.sleep(GUEST_POLL_INTERVAL)


def start_guest(conn, args, image, overlay, console_log):
    """Define and start the guest on a free loopback port; another port if something grabbed this one meanwhile."""
    tried = set()
    with PortLock():
        while True:
            port = free_guest_port(conn, tried)
            tried.add(port)
            dom = conn.defineXML(build_guest_xml(args.name, image, port, overlay, console_log, args))
            try:
                dom.create()
                return dom
            except libvirt.libvirtError as error:
                # Another program may have bound the port between the probe and QEMU's start: only that is worth another try.
                port_taken = 'hostfwd' in str(error) or 'host forwarding' in str(error)
                if not port_taken or len(tried) >= GUEST_START_ATTEMPTS:
                    raise
                print('port %d was taken meanwhile (%s): trying another one' % (port, error), file=sys.stderr)
                dom.undefineFlags(UNDEFINE_FLAGS)


def cmd_guest_create(args, conn):
    """guest create: a fresh real guest on an overlay of the cached image, started, and (unless --no-wait) answering."""
    image = guest_image_dir(args.image)
    existing = lookup(conn, args.name)
    if existing is not None:
        if marker(existing) is None:
            raise TestctlError('domain %s exists and was not created by vmsnap_testctl: refusing to replace it' % args.name)
        print('replacing leftover throwaway domain %s' % args.name, file=sys.stderr)
        destroy_domain(existing)
    else:
        remove_domain_files(args.name)

    folder = domain_dir(args.name)
    os.makedirs(folder, exist_ok=True)
    overlay = os.path.join(folder, 'vda.qcow2')
    console_log = os.path.join(folder, 'console.log')
    try:
        run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', os.path.join(image, 'base.qcow2'), overlay])
        os.chmod(overlay, 0o600)
        dom = start_guest(conn, args, image, overlay, console_log)
    except (libvirt.libvirtError, TestctlError) as error:
        leftover = lookup(conn, args.name)
        if leftover is not None and marker(leftover) is not None:
            destroy_domain(leftover)
        else:
            remove_domain_files(args.name)
        raise TestctlError('cannot create guest %s: %s' % (args.name, error)) from None
    if not args.no_wait:
        wait_for_guest(dom, args.timeout)
    print(json.dumps(guest_json(dom), indent=2))
    return EXIT_OK


def cmd_guest_wait(args, conn):
    """guest wait: wait until the guest agent and SSH answer again (after a revert, a start from a snapshot, ...)."""
    dom = require_ours(conn, args.name)
    wait_for_guest(dom, args.timeout)
    print(json.dumps(guest_json(dom), indent=2))
    return EXIT_OK


def cmd_guest_info(args, conn):
    """guest info: the guest's JSON, without waiting."""
    print(json.dumps(guest_json(require_ours(conn, args.name)), indent=2))
    return EXIT_OK


def cmd_guest_ssh(args, conn):
    """guest ssh: run a command in the guest over SSH; its stdout, stderr and exit code are passed through."""
    dom = require_ours(conn, args.name)
    settings = guest_settings(dom)
    if not dom.isActive():
        raise TestctlError('guest %s is %s: start it (then "guest wait %s") before running commands in it' % (args.name, state_name(dom), args.name))
    command = args.remote_command[1:] if args.remote_command[:1] == ['--'] else args.remote_command
    if not command:
        raise TestctlError('no command given: guest ssh %s -- COMMAND...' % args.name)
    sys.stdout.flush()
    try:
        # Like ssh: the words are joined and run by root's shell in the guest.
        return subprocess.run(ssh_argv(settings) + ['--'] + command, check=False).returncode
    except OSError as error:
        raise TestctlError('cannot run ssh: %s (install openssh-client)' % error) from None


def cmd_guest_inventory(args, conn):
    """guest inventory: an Ansible inventory (JSON, which is YAML) with the guests as hosts of one group."""
    hosts = {}
    for name in args.names:
        variables = guest_json(require_ours(conn, name))
        hosts[name] = {key: value for key, value in variables.items() if key.startswith('ansible_')}
        hosts[name].update(vmsnap_domain=name, vmsnap_console_log=variables['console_log'])
    print(json.dumps({'all': {'children': {args.group: {'hosts': hosts}}}}, indent=2))
    return EXIT_OK


# --- command line ------------------------------------------------------------------------------------------------------

def parser():
    """The command-line interface."""
    top = argparse.ArgumentParser(prog='vmsnap_testctl', description=__doc__.split('\n\n', maxsplit=1)[0])
    top.add_argument('--uri', default=DEFAULT_URI, help='libvirt URI (default: $VMSNAP_URI or qemu:///system)')
    commands = top.add_subparsers(dest='command', required=True, metavar='COMMAND')

    create = commands.add_parser('create', help='define a fresh throwaway domain (replacing a leftover of ours)')
    create.add_argument('name', type=domain_name)
    create.add_argument('--disk-format', choices=('qcow2', 'raw'), default='qcow2')
    create.add_argument('--disks', type=int, choices=range(1, 9), default=1, metavar='N', help='virtio disks vda, vdb, ... (1-8)')
    create.add_argument('--start', action='store_true', help='start the domain too')
    create.set_defaults(handler=cmd_create)

    destroy = commands.add_parser('destroy', help='destroy and undefine our domains and delete their files')
    destroy.add_argument('names', nargs='+', type=domain_name, metavar='NAME')
    destroy.set_defaults(handler=cmd_destroy)

    cleanup = commands.add_parser('cleanup', help='destroy all our domains whose names start with a prefix')
    cleanup.add_argument('--prefix', default='', help='only domains whose names start with this (default: all of ours)')
    cleanup.set_defaults(handler=cmd_cleanup)

    info_parser = commands.add_parser('info', help='print state and disks of a domain as JSON')
    info_parser.add_argument('name', type=domain_name)
    info_parser.set_defaults(handler=cmd_info)

    for name, handler, help_text in (('write', cmd_write, 'write a byte pattern on a disk of one of our domains'),
                                     ('check', cmd_check, 'verify a byte pattern: exit 0 if there, 1 if not, 2 on error')):
        data = commands.add_parser(name, help=help_text)
        data.add_argument('name', type=domain_name)
        data.add_argument('pattern', type=byte_pattern, help='one byte, e.g. 0x11')
        data.add_argument('--disk', default='vda', help='disk target (default vda)')
        data.add_argument('--offset', type=byte_size, default=0, help='start, in bytes or with K/M/G (default 0)')
        data.add_argument('--length', type=byte_size, default=1 << 20, help='bytes, or with K/M/G (default 1M)')
        data.set_defaults(handler=handler)

    guest = commands.add_parser('guest', help='real Debian 12 guests on the cached image (hacking/guest-image.sh): SSH and guest agent',
                                description='Real guests: an overlay on the cached Debian 12 image, SSH on a 127.0.0.1 port forward, '
                                            'the guest agent, pvpanic and a serial console log. Each prints JSON with Ansible\'s '
                                            'connection variables (ansible_host, ansible_port, ...).')
    guest_commands = guest.add_subparsers(dest='guest_command', required=True, metavar='GUEST_COMMAND')

    guest_create = guest_commands.add_parser('create', help='create and start a real guest; wait until agent and SSH answer')
    guest_create.add_argument('name', type=domain_name)
    guest_create.add_argument('--memory', type=positive_int, default=512, metavar='MIB', help='memory in MiB (default 512)')
    guest_create.add_argument('--vcpus', type=positive_int, default=1, help='virtual CPUs (default 1)')
    guest_create.add_argument('--on-crash', choices=('preserve', 'destroy'), default='destroy',
                              help='what libvirt does when the guest kernel panics (pvpanic): keep it as crashed, or stop it (default)')
    guest_create.add_argument('--image', help='image folder (default: the cache\'s current one, %s/current)' % GUEST_CACHE)
    guest_create.add_argument('--no-wait', action='store_true', help='return once started, without waiting for agent and SSH')
    guest_create.add_argument('--timeout', type=positive_int, default=180, metavar='SECONDS', help='how long to wait (default 180)')
    guest_create.set_defaults(handler=cmd_guest_create)

    guest_wait = guest_commands.add_parser('wait', help='wait until agent and SSH of a guest answer (after a revert, a start, ...)')
    guest_wait.add_argument('name', type=domain_name)
    guest_wait.add_argument('--timeout', type=positive_int, default=180, metavar='SECONDS', help='how long to wait (default 180)')
    guest_wait.set_defaults(handler=cmd_guest_wait)

    guest_info = guest_commands.add_parser('info', help='the guest\'s JSON, without waiting')
    guest_info.add_argument('name', type=domain_name)
    guest_info.set_defaults(handler=cmd_guest_info)

    guest_ssh = guest_commands.add_parser('ssh', help='run a command in the guest as root: guest ssh NAME -- COMMAND...',
                                          description='Runs COMMAND in the guest over SSH (its words joined and run by root\'s shell, '
                                                      'as ssh does) and passes its stdin, stdout, stderr and exit code through.')
    guest_ssh.add_argument('name', type=domain_name)
    guest_ssh.add_argument('remote_command', nargs=argparse.REMAINDER, metavar='-- COMMAND')
    guest_ssh.set_defaults(handler=cmd_guest_ssh)

    guest_inventory = guest_commands.add_parser('inventory', help='an Ansible inventory (JSON, valid YAML) with the guests as hosts')
    guest_inventory.add_argument('names', nargs='+', type=domain_name, metavar='NAME')
    guest_inventory.add_argument('--group', default='guests', help='the group the guests are in (default guests)')
    guest_inventory.set_defaults(handler=cmd_guest_inventory)
    return top


def command_name(args):
    """The sub-command as typed: "create", "guest create", ..."""
    return ' '.join(filter(None, (args.command, getattr(args, 'guest_command', None))))


def main(argv=None):
    """Entry point: run one subcommand; map failures to exit codes."""
    args = parser().parse_args(argv)
    if getattr(args, 'length', 1) <= 0:
        print('vmsnap_testctl: error: --length must be positive', file=sys.stderr)
        return EXIT_ERROR
    try:
        conn = connect(args.uri)
        try:
            return args.handler(args, conn)
        finally:
            conn.close()
    except TestctlError as error:
        print('vmsnap_testctl %s: error: %s' % (command_name(args), error), file=sys.stderr)
    except libvirt.libvirtError as error:
        print('vmsnap_testctl %s: libvirt error: %s' % (command_name(args), error), file=sys.stderr)
    except BrokenPipeError:
        # The reader of our output went away (| head): nothing left to tell it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_ERROR


if __name__ == '__main__':
    sys.exit(main())
