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

Exit codes: 0 success (for check: the pattern is there), 1 check found other data, 2 error (including usage errors).
Run it with the project's virtual environment (it needs libvirt-python and lxml): .venv/bin/python vmsnap_testctl.py --help
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
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
    return top


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
        print('vmsnap_testctl %s: error: %s' % (args.command, error), file=sys.stderr)
    except libvirt.libvirtError as error:
        print('vmsnap_testctl %s: libvirt error: %s' % (args.command, error), file=sys.stderr)
    return EXIT_ERROR


if __name__ == '__main__':
    sys.exit(main())
