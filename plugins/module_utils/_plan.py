# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils file is private to the vmsnap.libvirt collection. It can change at any time,
# without a deprecation period. Do not use it outside this collection.

"""Decisions: what must change, and why not.

Every function here takes what was read (the parsed domain, the snapshot dict, what the host can do) and the user's
options, and returns a Plan: the actions to perform and the diff they make. Nothing here calls libvirt, so check mode
and a real run get the same plan, and unit tests can test the decisions as tables.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError

# Domain states in which a domain has memory that a snapshot can save.
# A crashed domain (on_crash preserve) keeps its QEMU process, and with it the memory of the crashed guest.
MEMORY_STATES = ('running', 'blocked', 'paused', 'crashed')


class Action:
    """One change to make: ``kind`` is create, redefine, delete, merge, revert, resume, suspend, wait or record_start;
    ``params`` what it needs."""

    def __init__(self, kind, **params):
        self.kind = kind
        self.params = params

    def __repr__(self):
        return 'Action(%r, %r)' % (self.kind, self.params)


class Plan:
    """The actions to perform and what the result will be, the same in check mode and in a real run."""

    def __init__(self, actions, before, after, snapshot, domain_state, *, deleted=None, warnings=None, merged=None):
        self.actions = actions
        self.before = before
        self.after = after
        self.snapshot = snapshot
        self.domain_state = domain_state
        self.deleted = deleted or []
        self.warnings = warnings or []
        self.merged = merged or []
        # What is done about the guest's clock after a resume from saved memory (_revert.plan_clock); None: nothing.
        self.clock = None
        # What quiesce true or auto got a new snapshot (_create): {'mode', 'quiesced', 'reason'}; None: not asked.
        self.quiesce = None

    @property
    def changed(self):
        return bool(self.actions)


def state_after_power(state):
    if state in ('running', 'blocked'):
        return 'running'
    if state in ('paused', 'pmsuspended'):
        return 'paused'
    return 'shutoff'


def require_force(params, affected, doing):
    """Operations that would remove or invalidate other snapshots need force; the failure lists them."""
    if affected and not params.get('force'):
        raise SnapshotError('%s would also remove or invalidate %d other snapshot%s: %s. Nothing was changed. Set '
                            'force: true to go ahead.' % (doing, len(affected), '' if len(affected) == 1 else 's',
                                                          ', '.join(affected)), affected=list(affected))
