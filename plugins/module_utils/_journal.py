# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils file is private to the vmsnap.libvirt collection. It can change at any time,
# without a deprecation period. Do not use it outside this collection.

"""The pause journal: what a run notes on its own host while libvirt may pause a guest for it, so that a later run can
tell a guest that an interrupted snapshot left paused from one that somebody paused on purpose.

libvirt pauses a running guest for a memory snapshot with QEMU's "stop" and records the pause (reason "save" or
"snapshot") only when it handles QEMU's STOP event a moment later. A daemon killed in between comes back with the guest
paused and nothing of its own to say why: it asks QEMU, which says "paused", and reports the pause as the user's, like a
`virsh suspend` -- and when QEMU had not started saving yet, the images hold no trace either. The journal is that trace:
an entry per run and domain, written before the create and removed once libvirt answered. An entry whose run has ended
(its process is gone) while the same QEMU process (domain ID) still runs the guest marks a pause as ours.

Entries live in a private folder on the host that runs the module: /run/vmsnap.libvirt for root, else
$XDG_RUNTIME_DIR/vmsnap.libvirt, else a folder of the user's own in the temporary directory. /run is emptied at boot,
and so are the guests it could concern.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import json
import os
import stat
import tempfile
import time

FOLDER_MODE = 0o700
ENTRY_SUFFIX = '.json'


def default_folder():
    if os.geteuid() == 0:
        return '/run/vmsnap.libvirt'
    runtime = os.environ.get('XDG_RUNTIME_DIR')
    if runtime and os.path.isdir(runtime):
        return os.path.join(runtime, 'vmsnap.libvirt')
    return os.path.join(tempfile.gettempdir(), 'vmsnap.libvirt-%d' % os.geteuid())


def process_start(pid):
    """When process ``pid`` started (clock ticks since boot, from /proc), or None when there is no such process."""
    try:
        with open('/proc/%d/stat' % pid) as stream:
            fields = stream.read().rsplit(')', 1)[1].split()
    except (IOError, OSError, IndexError):
        return None
    return fields[19]  # field 22 of stat(5); the two before the split (pid, comm) are gone


class PauseJournal:
    """The entries of one domain, reached through one libvirt URI, on this host.

    Writing and reading it never fails the task: a journal that cannot be kept only means that a later run falls back
    on what libvirt and the images tell (the entry is an extra trace, not a requirement).
    """

    def __init__(self, uri, domain_uuid, folder=None, pid=None):
        self.folder = folder or default_folder()
        self.key = hashlib.sha256(('%s\n%s' % (uri, domain_uuid)).encode('utf-8')).hexdigest()[:32]
        self.pid = os.getpid() if pid is None else pid
        self.path = os.path.join(self.folder, '%s.%d%s' % (self.key, self.pid, ENTRY_SUFFIX))

    @classmethod
    def for_domain(cls, client, dom):
        """The journal of ``dom`` as reached through ``client`` (the object's UUID needs no call to libvirt)."""
        return cls(client.uri, dom.UUIDString())

    def _private_folder(self):
        """The folder, made if missing; None unless it is a real folder of this user's that nobody else may enter."""
        try:
            os.makedirs(self.folder, FOLDER_MODE)
        except OSError:
            pass  # it exists (checked below) or cannot be made
        try:
            info = os.lstat(self.folder)
        except OSError:
            return None
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
            return None
        return self.folder

    def begin(self, domain_id, snapshot):
        """Note, before asking libvirt, that this run is about to snapshot the running guest (QEMU process
        ``domain_id``) as ``snapshot``."""
        if self._private_folder() is None:
            return
        entry = {'pid': self.pid, 'process_start': process_start(self.pid), 'domain_id': domain_id,
                 'snapshot': snapshot, 'time': int(time.time())}
        try:
            descriptor = os.open(self.path + '.tmp', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, 'w') as stream:
                json.dump(entry, stream)
            os.rename(self.path + '.tmp', self.path)
        except (IOError, OSError):
            pass

    def end(self):
        """libvirt answered: whatever it paused, it also resumed (or reported why not)."""
        self._remove(self.path)

    def left_by_ended_runs(self, domain_id):
        """The entries of runs that ended in the middle of a snapshot of this same QEMU process, oldest first.

        An entry of a run that still goes on (its process lives), or of an earlier QEMU process of the domain (another
        ID: that pause, if any, ended with that process), does not count; the latter are removed.
        """
        if self._private_folder() is None:
            return []
        found = []
        try:
            names = os.listdir(self.folder)
        except OSError:
            return []
        for name in names:
            if not (name.startswith(self.key + '.') and name.endswith(ENTRY_SUFFIX)):
                continue
            path = os.path.join(self.folder, name)
            try:
                with open(path) as stream:
                    entry = json.load(stream)
                pid = int(entry['pid'])
            except (IOError, OSError, ValueError, KeyError, TypeError):
                continue
            if entry.get('domain_id') != domain_id:
                self._remove(path)
            elif process_start(pid) is None or process_start(pid) != entry.get('process_start'):
                entry['path'] = path
                found.append(entry)
        return sorted(found, key=lambda entry: entry.get('time') or 0)

    def forget(self, entries):
        """Remove entries that left_by_ended_runs returned, once the pause they explain is over."""
        for entry in entries:
            self._remove(entry['path'])

    @staticmethod
    def _remove(path):
        try:
            os.remove(path)
        except OSError:
            pass
