# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils file is private to the vmsnap.libvirt collection. It can change at any time,
# without a deprecation period. Do not use it outside this collection.

"""virt_snapshot's checks of option values: what the argument spec cannot declare, or would say less clearly."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError
from ansible_collections.vmsnap.libvirt.plugins.module_utils._model import validate_description, validate_snapshot_name

# Options that only mean something for some states, and those states. An option counts as given when it differs from
# its default in the argument spec (None where the spec has none).
STATE_OPTIONS = {
    'description': ('present',),
    'memory': ('present',),
    'location': ('present',),
    'memory_file': ('present',),
    'disks': ('present',),
    'quiesce': ('present',),
    'quiesce_timeout': ('present',),
    'live': ('present',),
    'new_name': ('present',),
    'xml': ('present',),
    'redefine': ('present',),
    'current': ('present',),
    'consistency': ('present',),
    'children': ('absent',),
    'children_only': ('absent',),
    'metadata_only': ('absent',),
    'all': ('absent',),
    'pattern': ('absent',),
    'keep_newest': ('absent',),
    'revert_state': ('reverted',),
    'clock_sync': ('reverted',),
    'clock_sync_timeout': ('reverted',),
    'force': ('absent', 'merged', 'reverted'),
}


def quiesce_mode(params):
    """quiesce as 'true', 'false' or 'auto' (the module gives strings; a caller of the planners may give a bool)."""
    value = params.get('quiesce')
    if value is True or value == 'true':
        return 'true'
    return 'auto' if value == 'auto' else 'false'


# What a task with all or pattern deletes is exactly what they select, each snapshot on its own.
NOT_WITH_SELECTION = ('children', 'children_only', 'force')


def check_options(params, argument_spec):
    state = params['state']
    for option in sorted(STATE_OPTIONS):
        states = STATE_OPTIONS[option]
        if state not in states and params[option] != argument_spec[option].get('default'):
            raise SnapshotError('%s only applies to state=%s, not to state=%s. Remove it from the task.'
                                % (option, ' or state='.join(states), state))
    check_selection(params)
    if params['quiesce_timeout'] <= 0:
        raise SnapshotError('quiesce_timeout is how many seconds the guest agent has to freeze the file systems; it '
                            'must be more than 0, not %g.' % params['quiesce_timeout'])
    if params['new_name'] is not None:
        validate_snapshot_name(params['new_name'], option='new_name')
        creation_only = sorted(option for option in ('memory', 'memory_file', 'disks', 'live', 'description')
                               if params[option] not in (None, False)) + (
            ['quiesce'] if quiesce_mode(params) != 'false' else []) + (
            ['location'] if params['location'] != 'auto' else [])
        if creation_only:
            raise SnapshotError('new_name renames an existing snapshot; %s cannot be combined with it. Rename in '
                                'one task, change the snapshot in another.' % ', '.join(creation_only))
    check_redefine_options(params)
    validate_description(params['description'])
    check_fleet_options(params)


def is_bulk(params):
    return bool(params['all']) or params['pattern'] is not None


def check_selection(params):
    """The snapshots a task is about: the one called name, or (state=absent) those all or pattern select."""
    if not is_bulk(params):
        if params['keep_newest'] is not None:
            raise SnapshotError('keep_newest keeps the newest of the snapshots that all or pattern select for '
                                'deletion; set pattern (or all: true) with it.')
        if params['name'] is None:
            raise SnapshotError('state=%s needs name: the snapshot to %s.%s' % (
                params['state'], {'present': 'create', 'absent': 'delete', 'merged': 'merge',
                                  'reverted': 'revert to'}[params['state']],
                ' To delete many, set pattern (a glob on snapshot names) or all: true instead.'
                if params['state'] == 'absent' else ''))
        validate_snapshot_name(params['name'])
        return
    if params['all'] and params['pattern'] is not None:
        raise SnapshotError('all: true deletes every snapshot and pattern those whose names match it; set one of them.')
    if params['name'] is not None:
        raise SnapshotError('name deletes one snapshot, %s many; set one of them.'
                            % ('all: true' if params['all'] else 'pattern'))
    conflicting = [option for option in NOT_WITH_SELECTION if params[option]]
    if conflicting:
        raise SnapshotError('%s cannot be combined with %s: it deletes exactly the snapshots it selects, each on its '
                            'own and children first, and never takes other snapshots along. Remove %s.'
                            % (', '.join(conflicting), 'all' if params['all'] else 'pattern', ', '.join(conflicting)))
    if params['pattern'] == '':
        raise SnapshotError("pattern must not be empty; give a glob on snapshot names, for example 'nightly-*'.")
    if params['keep_newest'] is not None and params['keep_newest'] < 0:
        raise SnapshotError('keep_newest must be 0 or more; it is %d.' % params['keep_newest'])


def check_fleet_options(params):
    if params['parallel'] < 1:
        raise SnapshotError('parallel must be 1 or more; it is %d.' % params['parallel'])
    if params['domains'] is None:
        if params['consistency'] == 'group':
            raise SnapshotError('consistency: group takes the snapshots of a set of domains at one instant; give the '
                                'set in domains.')
        return
    if not params['domains'] or not all(params['domains']):
        raise SnapshotError('domains must list domain names or glob patterns, none of them empty.')
    one_file = ['memory_file'] if params['memory_file'] else []
    one_file += ['disks[].file'] if any(item.get('file') for item in params['disks'] or []) else []
    if one_file:
        raise SnapshotError('%s name%s one file, but domains takes a snapshot of each domain, which cannot all write '
                            'to it. Leave %s unset: each domain then gets its own files next to its disks.'
                            % (' and '.join(one_file), 's' if len(one_file) == 1 else '', ' and '.join(one_file)))
    if params['xml'] is not None:
        raise SnapshotError("xml holds one domain's snapshot; redefine it with domain, one task per domain.")


def check_redefine_options(params):
    if params['redefine'] and params['xml'] is None:
        raise SnapshotError('redefine re-creates a snapshot from its XML; give the XML in xml (as '
                            'vmsnap.libvirt.virt_snapshot_info returns it with include_xml: true).')
    if params['xml'] is not None and not params['redefine']:
        raise SnapshotError('xml is only used to redefine a snapshot whose data still exists; set redefine: true.')
    if params['current'] and not params['redefine']:
        raise SnapshotError('current marks a redefined snapshot as current; it needs redefine: true and xml.')
    if params['redefine']:
        shaping = sorted(option for option in ('memory', 'memory_file', 'disks', 'description', 'new_name')
                         if params[option] is not None) + (
            ['quiesce'] if quiesce_mode(params) != 'false' else []) + (['live'] if params['live'] else []) + (
            ['location'] if params['location'] != 'auto' else [])
        if shaping:
            raise SnapshotError('redefine takes everything from xml; %s cannot be combined with it. Change the XML '
                                'instead, or redefine in one task and change the snapshot in another.'
                                % ', '.join(shaping))
