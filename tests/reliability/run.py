#!/usr/bin/env python
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The reliability and security suite of vmsnap.libvirt (issue 6), against a real libvirt daemon of its own.

Runs ansible-playbook (tests/reliability/playbooks) the way a user would, against a private libvirtd that it may kill,
and prints a summary table: cases tried / passed, faults injected / survived, items lost. tests/reliability/README.md
explains each part. Needs root (it sets up the private daemon's user); `make reliability` runs it.
"""

import argparse
import fcntl
import os
import pwd
import secrets
import subprocess
import sys
import tempfile
import time
import traceback

import libvirt

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# pylint: disable=wrong-import-position
from vmsnap_reliability import bad_input, concurrency, faults, security  # noqa: E402
from vmsnap_reliability.control import ControlServer  # noqa: E402
from vmsnap_reliability.daemon import PrivateDaemon  # noqa: E402
from vmsnap_reliability.fixtures import Fixtures  # noqa: E402
from vmsnap_reliability.report import Part, table  # noqa: E402
from vmsnap_reliability.runner import HERE, Ansible  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))
TESTCTL = os.path.join(REPO, 'tests/integration/targets/setup_libvirt/files/vmsnap_testctl.py')
PARTS = {
    'bad_input': bad_input.run,
    'concurrency': concurrency.run,
    'faults': faults.run,
    'security': security.run,
}
LOCK_FILE = '/run/lock/vmsnap-reliability.lock'
# Every domain of the suite's runs starts with this; each run adds its own random part.
PREFIX = 'rel-'


class Context:
    """What every part uses: the private daemon, a root connection to it, ansible-playbook, the fixtures, the control
    socket of the fault hook, a work directory, and the options."""

    def __init__(self, options, daemon, ansible, workdir):
        self.options = options
        self.daemon = daemon
        self.ansible = ansible
        self.workdir = workdir
        self.prefix = '%s%s-' % (PREFIX, secrets.token_hex(3))
        self.workers = options.workers
        self.iterations = options.iterations
        self._conn = None
        self._conn_generation = None
        account = pwd.getpwnam(daemon.user)
        self.uid, self.gid = account.pw_uid, account.pw_gid
        self.control = ControlServer(os.path.join(daemon.work, 'control.sock'), self.uid, self.gid)
        self.hook_env = {
            'PYTHONPATH': os.path.join(daemon.work, 'hook'),
            'VMSNAP_FAULT_SOCKET': self.control.path,
        }
        self.fixtures = Fixtures(daemon, lambda: self.conn, self.prefix)

    @property
    def conn(self):
        """A root connection to the private daemon, opened again after the daemon was restarted (a connection to a
        killed daemon does not know it is dead until a call fails)."""
        if self._conn is not None and self._conn_generation != self.daemon.generation:
            try:
                self._conn.close()
            except libvirt.libvirtError:
                pass  # it was a connection to a daemon that is gone
            self._conn = None
        if self._conn is None:
            self._conn = libvirt.open(self.daemon.root_uri)
            self._conn_generation = self.daemon.generation
        return self._conn

    def log(self, text):
        print('%s %s' % (time.strftime('%H:%M:%S'), text), flush=True)


def stage_collection():
    """hacking/stage-collection.sh's copy; its ansible_collections parent is the collections path."""
    stage = subprocess.run([os.path.join(REPO, 'hacking/stage-collection.sh')], capture_output=True, text=True,
                           check=True).stdout.strip()
    return stage.rsplit('/ansible_collections/', 1)[0]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', 1)[0])
    parser.add_argument('--parts', default=','.join(PARTS),
                        help='comma-separated parts to run (default: %(default)s)')
    parser.add_argument('--iterations', type=int, default=10, help='faults injected per operation and fault kind')
    parser.add_argument('--fault-operations', default=','.join(faults.OPERATIONS),
                        help='operations the faults part interrupts (default: %(default)s)')
    parser.add_argument('--fault-kinds', default=','.join(faults.KINDS),
                        help='kill: the daemon is killed; drop: the connection is cut (default: %(default)s)')
    parser.add_argument('--workers', type=int, default=3, help='bad-input fixtures tested side by side')
    parser.add_argument('--collections-path', help='where ansible_collections/vmsnap/libvirt is (default: stage it '
                                                   'with hacking/stage-collection.sh)')
    parser.add_argument('--venv', default=os.path.join(REPO, '.venv'), help='virtual environment with ansible-core')
    parser.add_argument('--workdir', help='where playbook logs and results go (default: a new temporary directory)')
    parser.add_argument('--keep', action='store_true', help='leave the domains and the private daemon running')
    options = parser.parse_args(argv)
    unknown = set(options.parts.split(',')) - set(PARTS)
    if unknown:
        parser.error('unknown parts: %s (known: %s)' % (', '.join(sorted(unknown)), ', '.join(PARTS)))
    return options


def main(argv=None):
    options = parse_args(argv)
    if os.geteuid() != 0:
        sys.exit('run.py needs root: it sets up the private daemon user and runs the modules as that user')
    started = time.monotonic()
    os.makedirs(os.path.dirname(LOCK_FILE), exist_ok=True)
    lock = open(LOCK_FILE, 'w')
    # One suite at a time: two runs would kill each other's daemon.
    fcntl.flock(lock, fcntl.LOCK_EX)
    workdir = options.workdir or tempfile.mkdtemp(prefix='vmsnap-reliability-')
    os.makedirs(workdir, exist_ok=True)
    collections_path = options.collections_path or stage_collection()

    daemon = PrivateDaemon()
    daemon.setup({'vmsnap_testctl.py': TESTCTL, 'hook': os.path.join(HERE, 'hook')})
    if not daemon.autostart_is_off():
        sys.exit('a client of %s spawned a libvirt daemon of its own although LIBVIRT_AUTOSTART=0: the fault tests '
                 'could not control the daemon' % daemon.user)
    daemon.start()
    ansible = Ansible(options.venv, collections_path, workdir, daemon)
    ctx = Context(options, daemon, ansible, workdir)
    ctx.log('private daemon: libvirtd (pid %s) of user %s, %s; collection from %s; logs in %s'
            % (daemon.pid(), daemon.user, daemon.user_uri, collections_path, workdir))
    # Leftovers of an interrupted earlier run of the suite (only the suite uses this daemon).
    Fixtures(daemon, lambda: ctx.conn, PREFIX).cleanup()
    daemon.kill_orphaned_qemu()
    forgotten = daemon.forget_unloadable(PREFIX)
    if forgotten:
        ctx.log('removed the saved state of domains libvirt could not load any more: %s' % ', '.join(forgotten))

    parts = []
    try:
        for name in options.parts.split(','):
            ctx.log('=== %s' % name)
            part = Part(name.replace('_', ' '))
            parts.append(part)
            started_part = time.monotonic()
            try:
                PARTS[name](ctx, part)
            except Exception:  # pylint: disable=broad-except  # report the part as failed, go on with the others
                part.problems.append(('the part itself', [traceback.format_exc()]))
            part.seconds = time.monotonic() - started_part
            daemon.start()  # a part that failed halfway may have left the daemon down
    finally:
        if not options.keep:
            daemon.start()
            ctx.fixtures.cleanup()
            orphans = daemon.kill_orphaned_qemu()
            if orphans:
                ctx.log('killed QEMU processes libvirt had lost track of: %s' % ', '.join(map(str, orphans)))
            daemon.stop()
        ctx.control.close()

    for part in parts:
        for note in part.notes:
            print('note: ' + note)
    for part in parts:
        for label, problems in part.problems:
            print('\nFAILED %s: %s' % (part.name, label))
            for problem in problems:
                print('  - ' + problem.replace('\n', '\n    '))
    print('\n' + table(parts))
    print('runtime %.0f s; playbook logs and results in %s' % (time.monotonic() - started, workdir))
    return 0 if parts and all(part.ok for part in parts) else 1


if __name__ == '__main__':
    sys.exit(main())
