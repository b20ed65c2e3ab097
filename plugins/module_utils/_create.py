# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils file is private to the vmsnap.libvirt collection. It can change at any time,
# without a deprecation period. Do not use it outside this collection.

"""state=present: create a snapshot, or update the description of one that exists (plan_present).

Like every planner (see _plan), nothing here calls libvirt."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os.path

from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError
from ansible_collections.vmsnap.libvirt.plugins.module_utils._model import (
    build_snapshot_xml,
    default_memory_path,
    default_overlay_path,
    diff_view,
    EXTERNAL,
    INTERNAL,
    location_of,
    NO,
    snapshot_candidate,
    with_description,
)
from ansible_collections.vmsnap.libvirt.plugins.module_utils._options import quiesce_mode
from ansible_collections.vmsnap.libvirt.plugins.module_utils._plan import Action, MEMORY_STATES, Plan


def plan_present(params, *, domain, existing, existing_xml, current_name, host, path_exists=os.path.exists):
    """Create the snapshot, or bring an existing one's description up to date."""
    if existing is not None:
        return _plan_update(params, existing, existing_xml)
    actions = []
    warnings = []
    if domain.get('interrupted_pause'):
        # libvirt paused the guest for a save or snapshot of its own and stopped before resuming it (typically an
        # earlier try of this very task): resume it first, so the snapshot records the guest as it was.
        actions.append(Action('resume', interrupted_pause=domain['interrupted_pause']))
        if domain['interrupted_pause'] in ('save', 'snapshot'):
            warnings.append("Domain '%s' was paused by a libvirt %s job that no longer runs (the daemon stopped in "
                            'the middle of it); it was resumed before the snapshot was taken.'
                            % (domain['name'], domain['interrupted_pause']))
        elif domain.get('interrupted_create'):
            warnings.append("Domain '%s' was left paused by an interrupted snapshot: a run of this collection on this "
                            "host was creating snapshot '%s' of it when libvirt stopped, after QEMU paused the guest and "
                            'before libvirt recorded why (libvirt now calls the pause %s); it was resumed before the '
                            'snapshot was taken.'
                            % (domain['name'], domain['interrupted_create'], domain['interrupted_pause']))
        else:
            warnings.append("Domain '%s' was left paused by an interrupted snapshot: its images already hold an "
                            "internal snapshot '%s' that libvirt does not list (libvirt stopped after QEMU took it and "
                            'before it resumed the guest, and now calls the pause %s); it was resumed before the '
                            'snapshot was taken again.' % (domain['name'], params['name'], domain['interrupted_pause']))
        domain = dict(domain, state='running')
    spec = snapshot_spec(params, domain, host, path_exists)
    predicted = {
        'name': params['name'],
        'domain': domain['name'],
        'description': params['description'] or None,
        'state': spec['state'],
        'creation_time': None,
        'creation_time_iso': None,
        'parent': current_name,
        'children': [],
        'is_current': True,
        'location': spec['location'],
        'memory': spec['memory'],
        'disks': spec['disks'],
        'consistency': spec['consistency'],
    }
    if spec['unquiesced']:
        warnings.append("Snapshot '%s' of domain '%s' is crash-consistent, not quiesced: %s (quiesce: auto goes on "
                        'without freezing; quiesce: true would have refused.)'
                        % (params['name'], domain['name'], spec['unquiesced']))
    xml = build_snapshot_xml(params['name'], params['description'], spec['memory'], spec['disks'])
    # A create of a running guest is noted in the pause journal (_journal) while libvirt works on it.
    actions.append(Action('create', name=params['name'], xml=xml, flags=spec['flags'], files=spec['files'],
                          journal=domain['state'] == 'running', quiesce=spec['quiesce']))
    plan = Plan(actions, diff_view(None), diff_view(predicted), predicted, domain['state'], warnings=warnings)
    if quiesce_mode(params) != 'false':
        plan.quiesce = {'mode': quiesce_mode(params), 'quiesced': spec['consistency'] == 'quiesced',
                        'reason': spec['unquiesced']}
    return plan


def _plan_update(params, existing, existing_xml):
    warnings = _creation_only_warnings(params, existing)
    desired = params['description']
    if desired is None or (desired or None) == (existing['description'] or None):
        return Plan([], diff_view(existing), diff_view(existing), existing, None, warnings=warnings)
    updated = dict(existing, description=desired or None)
    action = Action('redefine', name=existing['name'], xml=with_description(existing_xml, desired),
                    current=existing['is_current'])
    return Plan([action], diff_view(existing), diff_view(updated), updated, None, warnings=warnings)


def _creation_only_warnings(params, existing):
    """Options that only shape a new snapshot and differ from the existing one: say so, do not act."""
    differences = []
    has_memory = existing['memory']['snapshot'] != NO
    if params.get('memory') is not None and params['memory'] != has_memory:
        differences.append('memory=%s (it has %s)' % (params['memory'], 'memory' if has_memory else 'no memory'))
    if params.get('location') not in (None, 'auto') and params['location'] != existing['location']:
        differences.append('location=%s (it is %s)' % (params['location'], existing['location']))
    if not differences:
        return []
    return ["Snapshot '%s' of domain '%s' already exists; %s only apply when a snapshot is created, so it was left as "
            'it is. Delete it first (state=absent) or choose another name to take a new one.'
            % (existing['name'], existing['domain'], ', '.join(differences))]


def snapshot_spec(params, domain, host, path_exists=os.path.exists):
    """What a new snapshot will hold: memory, each disk, the create flags, and the files it will create.

    Fails, naming the disk or option, before anything changes when the request cannot work.
    """
    name = params['name']
    memory = params.get('memory')
    if memory is None:
        memory = domain['state'] in MEMORY_STATES
    if memory and domain['state'] not in MEMORY_STATES:
        raise SnapshotError("Domain '%s' is %s, so it has no memory state to save. Leave memory unset or set "
                            'memory: false for a disk-only snapshot, or start the domain first.'
                            % (domain['name'], domain['state']))
    quiesce = quiesce_mode(params)
    if quiesce == 'true' and memory:
        raise SnapshotError('quiesce freezes the guest file systems for a disk-only snapshot; it cannot be combined with '
                            'memory. Set memory: false.')
    if params.get('memory_file') and not memory:
        raise SnapshotError('memory_file names where the memory of a snapshot goes, but this snapshot holds no '
                            'memory. Drop memory_file, or set memory: true on a running domain.')

    requested = _requested_disks(params.get('disks') or [], domain)
    location = params.get('location') or 'auto'
    if location == 'auto':
        location = choose_location(domain, requested, host)

    disks = []
    files = []
    wrong_internal = []
    wrong_external = []
    for disk in domain['disks']:
        if disk['name'] is None:
            continue
        item = requested.get(disk['name']) or {}
        kind = item.get('snapshot') or (location if snapshot_candidate(disk) else NO)
        if kind != NO and not snapshot_candidate(disk):
            raise SnapshotError("Disk '%s' of domain '%s' cannot be snapshotted: it is a %s%s. Set its snapshot to no."
                                % (disk['name'], domain['name'], 'read-only ' if disk['readonly'] else '',
                                   disk['device'] if disk['source'] else 'drive without media'))
        if item.get('file') and kind != EXTERNAL:
            raise SnapshotError("disks[].file applies to external snapshots, but disk '%s' is to take a%s %s one. "
                                'Set its snapshot to external, or drop file.'
                                % (disk['name'], 'n' if kind == INTERNAL else '', kind))
        target = None
        if kind == INTERNAL and disk['format'] != 'qcow2':
            wrong_internal.append(disk)
        elif kind == EXTERNAL:
            if disk['type'] not in ('file', 'block'):
                wrong_external.append(disk)
            else:
                target = item.get('file') or default_overlay_path(disk['source'], name)
                files.append(('overlay of disk %s' % disk['name'], target))
        disks.append({'name': disk['name'], 'snapshot': kind, 'file': target})

    if wrong_internal or wrong_external:
        raise SnapshotError(_wrong_disks_message(domain, wrong_internal, wrong_external))

    memory_kind = NO
    memory_file = None
    if memory:
        memory_kind = INTERNAL if location == INTERNAL else EXTERNAL
        if memory_kind == EXTERNAL:
            memory_file = params.get('memory_file') or default_memory_path(domain, name)
            files.append(('memory file', memory_file))
    elif domain['active'] and INTERNAL in [disk['snapshot'] for disk in disks]:
        raise SnapshotError("An internal snapshot of the running domain '%s' must include its memory (libvirt refuses "
                            'otherwise). Leave memory unset or set memory: true, or set location: external for a '
                            'disk-only snapshot.' % domain['name'])
    if params.get('live') and (memory_kind != EXTERNAL or domain['state'] != 'running'):
        raise SnapshotError("live keeps the guest running while an external snapshot saves its memory, but %s. %s"
                            % _live_refusal(domain, memory_kind, params.get('location') or 'auto'))
    if memory_kind == INTERNAL and params.get('memory_file'):
        raise SnapshotError('memory_file applies to external snapshots; internal ones keep memory inside the qcow2 '
                            'image. Drop memory_file, or set location: external.')

    memory_spec = {'snapshot': memory_kind, 'file': memory_file}
    kind = location_of(memory_spec, disks)
    if kind == 'mixed':
        raise SnapshotError('libvirt cannot mix internal and external parts in one snapshot; the request gives %s. '
                            'Make every disk (and the memory) internal, or every one external.'
                            % ', '.join('%s %s' % (disk['name'], disk['snapshot']) for disk in disks
                                        if disk['snapshot'] != NO))
    if kind == 'none':
        raise SnapshotError("Nothing to snapshot on domain '%s': every disk is excluded and memory is not saved. "
                            'Include at least one disk.' % domain['name'])
    if kind == INTERNAL:
        # libvirt refuses it ("disk 'vdb' must use snapshot mode 'internal'"), running or shut off.
        left_out = ["disk '%s'" % disk['name'] for disk in domain['disks']
                    if snapshot_candidate(disk) and (requested.get(disk['name']) or {}).get('snapshot') == NO]
        if left_out:
            raise SnapshotError("libvirt cannot leave %s out of an internal snapshot of domain '%s': every writable "
                                "disk takes part unless the domain definition marks it snapshot='no'. Set location: "
                                'external, or mark the disk in the domain definition.'
                                % (', '.join(left_out), domain['name']))
    _check_files(files, path_exists)

    disk_only = memory_kind == NO and EXTERNAL in [disk['snapshot'] for disk in disks]
    if quiesce == 'true' and not disk_only:
        raise SnapshotError('quiesce needs a disk-only external snapshot. Set location: external and memory: false.')
    consistency, unquiesced = _consistency(quiesce, domain, memory_kind)
    flags = ['atomic']
    if disk_only:
        flags.append('disk_only')
    if consistency == 'quiesced':
        flags.append('quiesce')
    if params.get('live'):
        flags.append('live')
    # What libvirt records: the domain's own state, except that a disk-only snapshot of an active domain is
    # 'disk-snapshot' and of an inactive one 'shutoff'.
    if disk_only:
        state = 'disk-snapshot' if domain['active'] else 'shutoff'
    else:
        state = domain['state']
    return {'location': kind, 'memory': memory_spec, 'disks': disks, 'flags': flags,
            'files': [path for dummy, path in files], 'state': state, 'consistency': consistency,
            'unquiesced': unquiesced,
            'quiesce': ({'mode': quiesce, 'timeout': params.get('quiesce_timeout') or QUIESCE_TIMEOUT}
                        if consistency == 'quiesced' else None)}


# How long the guest agent has to freeze the file systems, unless quiesce_timeout says otherwise.
QUIESCE_TIMEOUT = 60


def _consistency(quiesce, domain, memory_kind):
    """(how consistent the new snapshot will be, why it is not quiesced although quiesce: auto asked for it, or None).

    Refuses quiesce: true where it cannot freeze. ``domain['agent_silence']``, read only for a disk-only snapshot of a
    running guest with quiesce asked for, says why its agent did not answer (None: it did).
    """
    if memory_kind != NO:
        return 'memory', None
    if not domain['active']:
        if quiesce == 'true':
            raise SnapshotError("quiesce freezes a running guest's file systems, but domain '%s' is %s: its disks are "
                                'as its shutdown left them, with nothing to freeze. Drop quiesce (or use quiesce: auto '
                                'where a domain can be either).' % (domain['name'], domain['state']))
        return 'shutoff', None
    if quiesce == 'false':
        return 'crash', None
    if domain['state'] not in ('running', 'blocked'):
        why = ("domain '%s' is %s, and a guest that does not run cannot freeze its file systems (libvirt does not ask "
               'the agent of a paused guest).' % (domain['name'], domain['state']))
        way_out = 'Resume the domain first, or set quiesce: auto to take a crash-consistent snapshot.'
    elif domain.get('agent_silence'):
        why = "the guest agent of domain '%s' did not answer: %s" % (domain['name'], domain['agent_silence'])
        way_out = ('Start qemu-guest-agent in the guest (and give the domain its org.qemu.guest_agent.0 channel), or '
                   'set quiesce: auto to take a crash-consistent snapshot when the agent does not answer.')
    else:
        return 'quiesced', None
    if quiesce == 'true':
        raise SnapshotError('quiesce: true takes the snapshot only with the guest file systems frozen, but %s Nothing '
                            'was changed. %s' % (why, way_out))
    return 'crash', why


def _live_refusal(domain, memory_kind, asked_location):
    """Why live cannot apply to this snapshot, and the way out."""
    if domain['state'] != 'running':
        return ("domain '%s' is %s" % (domain['name'], domain['state']),
                'Drop live, or start (or resume) the domain first.')
    if memory_kind == NO:
        return ('this snapshot saves no memory', 'Drop live, or leave memory unset (or set it to true).')
    why = 'this snapshot is internal'
    if asked_location == 'auto':
        why += ' (location: auto picks internal on a host that cannot revert external snapshots)'
    return (why, 'Set location: external for an external snapshot with memory, or drop live.')


def _requested_disks(items, domain):
    known = [disk['name'] for disk in domain['disks'] if disk['name']]
    requested = {}
    for item in items:
        if item['name'] not in known:
            raise SnapshotError("disks names '%s', but domain '%s' has no such disk; its disks are: %s."
                                % (item['name'], domain['name'], ', '.join(known) or 'none'))
        if item['name'] in requested:
            raise SnapshotError("disks names '%s' twice; give each disk once." % item['name'])
        requested[item['name']] = item
    return requested


def choose_location(domain, requested, host):
    """location=auto: external where the host can revert it and every disk is a file, else internal where every
    disk is qcow2; otherwise fail naming the disks."""
    disks = [disk for disk in domain['disks']
             if snapshot_candidate(disk) and (requested.get(disk['name']) or {}).get('snapshot') != NO]
    explicit = set((requested.get(disk['name']) or {}).get('snapshot') for disk in disks) - set([None])
    if len(explicit) == 1 and all((requested.get(disk['name']) or {}).get('snapshot') for disk in disks):
        return explicit.pop()
    if host.get('external_revert') and all(disk['type'] in ('file', 'block') for disk in disks):
        return EXTERNAL
    if all(disk['format'] == 'qcow2' for disk in disks):
        return INTERNAL
    not_qcow2 = [disk for disk in disks if disk['format'] != 'qcow2']
    not_file = [disk for disk in disks if disk['type'] not in ('file', 'block')]
    reason = _describe_disks(not_qcow2) + ' cannot take an internal snapshot (that needs qcow2)'
    if not_file:
        reason += ', and %s cannot take an external one (that needs a file or block device)' % _describe_disks(not_file)
    else:
        reason += (', and this host (libvirt %s) cannot revert external snapshots (libvirt 9.9 and later can)'
                   % host.get('libvirt_version', 'unknown'))
    raise SnapshotError("location=auto found no kind of snapshot that suits every disk of domain '%s': %s. Set "
                        'location: external to take an external snapshot anyway (it can be merged or deleted); an '
                        'external snapshot can also leave a disk out with disks: [{name: DISK, snapshot: "no"}].'
                        % (domain['name'], reason))


def _describe_disks(disks):
    return ', '.join("disk '%s' (%s%s)" % (disk['name'], disk['format'] or disk['type'],
                                           ' ' + disk['source'] if disk['source'] else '') for disk in disks)


def _wrong_disks_message(domain, wrong_internal, wrong_external):
    parts = []
    if wrong_internal:
        parts.append('%s cannot take an internal snapshot: internal snapshots live inside qcow2 images'
                     % _describe_disks(wrong_internal))
    if wrong_external:
        parts.append('%s cannot take an external snapshot: the overlay must be a local file or block device'
                     % _describe_disks(wrong_external))
    if wrong_external:
        way_out = ('Leave the disk out of the external snapshot with disks: [{name: DISK, snapshot: "no"}], or use '
                   'location: internal if every disk is qcow2.')
    else:
        way_out = ('Use location: external, which can also leave a disk out with disks: [{name: DISK, '
                   'snapshot: "no"}]; libvirt cannot leave a writable disk out of an internal snapshot.')
    return "Cannot snapshot domain '%s': %s. %s" % (domain['name'], '; '.join(parts), way_out)


def _check_files(files, path_exists):
    seen = {}
    for what, path in files:
        if not os.path.isabs(path):
            raise SnapshotError("The %s path '%s' is not absolute. Give a full path." % (what, path))
        if path in seen:
            raise SnapshotError("The %s and the %s would both be '%s'. Give them different files." %
                                (seen[path], what, path))
        seen[path] = what
        if path_exists(path):
            raise SnapshotError("The %s '%s' already exists; libvirt will not overwrite it. Choose another snapshot "
                                'name, give another file, or remove the file if nothing uses it.' % (what, path))
