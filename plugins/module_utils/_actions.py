# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils file is private to the vmsnap.libvirt collection. It can change at any time,
# without a deprecation period. Do not use it outside this collection.

"""Actions: how a Plan's changes are made, through the client. Decisions stay in _plan."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError

# Overlay and memory files hold the guest's disk and RAM: only their owner may read them.
PRIVATE_FILE_MODE = 0o600


def missing_snapshot_error(client, dom, name, what):
    """The failure for an operation whose snapshot does not exist, listing the ones that do."""
    names = client.snapshot_names(dom)
    listing = ', '.join(names[:20]) + (' and %d more' % (len(names) - 20) if len(names) > 20 else '')
    return SnapshotError("Snapshot '%s' of domain '%s' does not exist, so there is nothing to %s. The domain has %s. "
                         'Check the name (snapshot names are case-sensitive).'
                         % (name, dom.name(), what, ('these snapshots: ' + listing) if names else 'no snapshots'))


def _make_private(client, paths):
    """Tighten the mode of files a snapshot created, where they live on this host."""
    if not client.is_local():
        return
    for path in paths:
        try:
            os.chmod(path, PRIVATE_FILE_MODE)
        except OSError as exc:
            if not os.path.exists(path):
                continue  # a block device overlay or a file libvirt placed elsewhere
            raise SnapshotError("The snapshot was created, but its file '%s' could not be made private (mode 0600): "
                                '%s. Fix its mode by hand; it holds guest data.' % (path, exc))


def execute(client, dom, snap, plan):
    """Perform the plan's actions. Returns the snapshot object the domain has afterwards (or None)."""
    for action in plan.actions:
        params = action.params
        if action.kind == 'create':
            snap = client.create_snapshot(dom, params['xml'], params['flags'], params['name'])
            _make_private(client, params['files'])
        elif action.kind == 'redefine':
            flags = ['redefine', 'current'] if params['current'] else ['redefine']
            snap = client.create_snapshot(dom, params['xml'], flags, params['name'])
        elif action.kind == 'delete':
            client.delete_snapshot(snap, params['flags'])
            if not params['keeps_snapshot']:
                snap = None
        elif action.kind == 'revert':
            client.revert_to_snapshot(snap, params['flags'])
        else:  # pragma: no cover - plans only hold the kinds above
            raise SnapshotError('Internal error: unknown action %r.' % action.kind)
    return snap
