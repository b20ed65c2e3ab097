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

import fnmatch
import os.path

from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError
from ansible_collections.vmsnap.libvirt.plugins.module_utils._model import (
    EXTERNAL,
    INTERNAL,
    NO,
    build_snapshot_xml,
    default_memory_path,
    default_overlay_path,
    diff_view,
    location_of,
    parse_snapshot,
    parse_xml,
    snapshot_candidate,
    with_description,
    with_names,
)
from ansible_collections.vmsnap.libvirt.plugins.module_utils._tree import SnapshotTree, sort_key

# Domain states in which a domain has memory that a snapshot can save.
MEMORY_STATES = ('running', 'blocked', 'paused')


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

    def __init__(self, actions, before, after, snapshot, domain_state, deleted=None, warnings=None, merged=None):
        self.actions = actions
        self.before = before
        self.after = after
        self.snapshot = snapshot
        self.domain_state = domain_state
        self.deleted = deleted or []
        self.warnings = warnings or []
        self.merged = merged or []

    @property
    def changed(self):
        return bool(self.actions)


def _state_after_power(state):
    if state in ('running', 'blocked'):
        return 'running'
    if state in ('paused', 'pmsuspended'):
        return 'paused'
    return 'shutoff'


# ---------------------------------------------------------------------------------------------------------------------
# state=present


def plan_present(params, domain, existing, existing_xml, current_name, host, path_exists=os.path.exists):
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
    }
    xml = build_snapshot_xml(params['name'], params['description'], spec['memory'], spec['disks'])
    # A create of a running guest is noted in the pause journal (_journal) while libvirt works on it.
    actions.append(Action('create', name=params['name'], xml=xml, flags=spec['flags'], files=spec['files'],
                          journal=domain['state'] == 'running'))
    return Plan(actions, diff_view(None), diff_view(predicted), predicted, domain['state'], warnings=warnings)


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
    if params.get('quiesce') and memory:
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
    if params.get('quiesce') and not disk_only:
        raise SnapshotError('quiesce needs a disk-only external snapshot. Set location: external and memory: false.')
    flags = ['atomic']
    if disk_only:
        flags.append('disk_only')
    if params.get('quiesce'):
        flags.append('quiesce')
    # What libvirt records: the domain's own state, except that a disk-only snapshot of an active domain is
    # 'disk-snapshot' and of an inactive one 'shutoff'.
    if disk_only:
        state = 'disk-snapshot' if domain['active'] else 'shutoff'
    else:
        state = domain['state']
    return {'location': kind, 'memory': memory_spec, 'disks': disks, 'flags': flags,
            'files': [path for dummy, path in files], 'state': state}


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


# ---------------------------------------------------------------------------------------------------------------------
# state=absent


def require_force(params, affected, doing):
    """Operations that would remove or invalidate other snapshots need force; the failure lists them."""
    if affected and not params.get('force'):
        raise SnapshotError('%s would also remove or invalidate %d other snapshot%s: %s. Nothing was changed. Set '
                            'force: true to go ahead.' % (doing, len(affected), '' if len(affected) == 1 else 's',
                                                          ', '.join(affected)), affected=list(affected))


def plan_absent(params, existing, descendants, domain=None, bases=None, parent=None, current_name=None, host=None,
                local=True):
    """Delete one snapshot, its subtree (children) or only its subtree (children_only).

    ``descendants`` are the snapshot dicts below ``existing``. For an external snapshot the domain, the snapshot's
    disk bases, its parent's dict and the host are needed to foresee what libvirt would refuse.
    """
    if existing is None:
        return Plan([], diff_view(None), diff_view(None), None, None)
    names = [snapshot['name'] for snapshot in descendants]
    flags = []
    if params.get('metadata_only'):
        flags.append('metadata_only')
    if params.get('children_only'):
        if not names:
            return Plan([], diff_view(existing), diff_view(existing), existing, None)
        if not params.get('metadata_only'):
            _refuse_external_subtree(descendants, "the snapshots below '%s'" % existing['name'])
        # Naming children_only is the request to delete what is below: no force asked for (libvirt's CHILDREN_ONLY).
        flags.append('children_only')
        # When the current snapshot is among those deleted, libvirt makes the kept snapshot current.
        after = dict(existing, children=[], is_current=existing['is_current'] or current_name in names)
        action = Action('delete', name=existing['name'], flags=flags, keeps_snapshot=True,
                        remove_files=_memory_files(params, descendants))
        return Plan([action], diff_view(existing), diff_view(after), after, None, deleted=names)
    deleted = [existing['name']]
    gone = [existing]
    # libvirt refuses its children flag on any external snapshot, even one without children: such a leaf is deleted
    # like any other snapshot.
    if params.get('children') and (names or existing['location'] == INTERNAL):
        if existing['location'] != EXTERNAL and not params.get('metadata_only'):
            _refuse_external_subtree(descendants, "snapshot '%s' with its children" % existing['name'])
        # Naming children is the request to delete the subtree: no force asked for (libvirt's CHILDREN).
        if existing['location'] == EXTERNAL and not params.get('metadata_only'):
            # libvirt deletes external snapshots only one at a time; a merge folds the same layers into the same base.
            return plan_merge(dict(params, force=True), domain, existing, bases, descendants, current_name, local)
        flags.append('children')
        deleted += names
        gone += list(descendants)
    elif existing['location'] == EXTERNAL and not params.get('metadata_only'):
        if not (host or {}).get('external_delete'):
            # Before libvirt 9.0 libvirt cannot delete external snapshots: merge the overlay ourselves.
            return plan_merge(params, domain, existing, bases, descendants, current_name, local)
        _foresee_external_delete(existing, descendants, domain, bases, parent, current_name)
    elif existing['location'] == INTERNAL and domain is not None and not params.get('metadata_only'):
        _foresee_internal_delete(existing, domain, bases)
    action = Action('delete', name=existing['name'], flags=flags, keeps_snapshot=False,
                    remove_files=_memory_files(params, gone))
    return Plan([action], diff_view(existing), diff_view(None), None, None, deleted=deleted)


def _refuse_external_subtree(descendants, what):
    """libvirt refuses children and children_only when an external snapshot is among those to delete ("deletion of
    external children disk snapshots not supported"): say which, and how to merge them instead."""
    external = [item['name'] for item in descendants if item['location'] != INTERNAL]
    if not external:
        return
    # The highest external ones: merging each of them with force takes the rest of its subtree along.
    highest = [item['name'] for item in descendants
               if item['location'] != INTERNAL and item['parent'] not in external]
    raise SnapshotError('Cannot delete %s: libvirt deletes external snapshots only one at a time, never with children '
                        'or children_only, and %s %s external. Nothing was changed. Merge them instead, which keeps '
                        "the domain's current data as deleting them would: state: merged with force: true on %s, "
                        'then run this task again for what is left. Or use metadata_only: true to forget them and '
                        'keep their files.'
                        % (what, ', '.join(external), 'is' if len(external) == 1 else 'are',
                           ', '.join("'%s'" % name for name in highest)),
                        affected=[item['name'] for item in descendants])


def _memory_files(params, snapshots):
    """libvirt deletes an external snapshot's overlays but leaves its memory file: we remove it, unless only the
    metadata goes."""
    if params.get('metadata_only'):
        return []
    return [item['memory']['file'] for item in snapshots if item['memory']['file']]


def _current_path(snapshot_name, descendants, current_name):
    """Names from the snapshot down to the current snapshot, when the current one is at or below it; else None."""
    parents = dict((item['name'], item['parent']) for item in descendants)
    path = []
    name = current_name
    while name is not None and name != snapshot_name:
        if name not in parents:
            return None
        path.append(name)
        name = parents[name]
    return path if name == snapshot_name else None


def _chain_text(disk):
    return ' <- '.join(item['file'] for item in disk['chain']) or 'unknown'


def _foresee_external_delete(existing, descendants, domain, bases, parent, current_name):
    """Refuse, before acting, the external deletes libvirt would refuse halfway, describing the tree."""
    name = existing['name']
    tree = "snapshot '%s' (external, parent %s, children %s)" % (
        name, "'%s' (%s)" % (parent['name'], parent['location']) if parent else 'none',
        ', '.join(existing['children']) or 'none')
    if parent is not None and parent['location'] == INTERNAL:
        raise SnapshotError('Cannot delete %s: libvirt cannot delete an external snapshot whose parent is internal. '
                            'Nothing was changed. Use state: merged to fold its overlay into the base image, or '
                            'metadata_only: true to forget it and keep its files.' % tree)
    if descendants and _current_path(name, descendants, current_name) is None:
        raise SnapshotError('Cannot delete %s: it has children and the domain does not run on its branch (the current '
                            "snapshot is '%s'), and libvirt cannot delete such a snapshot. Nothing was changed. Revert "
                            'to a snapshot on its branch first, delete its children first, or use metadata_only: true.'
                            % (tree, current_name))
    by_name = dict((disk['name'], disk) for disk in domain['disks'])
    for disk in existing['disks']:
        if disk['snapshot'] != EXTERNAL:
            continue
        base = (bases or {}).get(disk['name'])
        chain = [item['file'] for item in by_name.get(disk['name'], {'chain': []})['chain']]
        if base not in chain:
            raise SnapshotError("Cannot delete %s: disk %s no longer sits on the snapshot's base '%s' (its chain is "
                                '%s), so there is nothing to merge into; this happens after reverting to an internal '
                                'snapshot taken before it. Nothing was changed. Use metadata_only: true to forget the '
                                'snapshot, then remove its files by hand if nothing uses them.'
                                % (tree, disk['name'], base, _chain_text(by_name.get(disk['name'], {'chain': []}))))


def _foresee_internal_delete(existing, domain, bases):
    """An internal snapshot lives in an image; libvirt can delete it only while that image is a disk's top layer."""
    by_name = dict((disk['name'], disk) for disk in domain['disks'])
    for disk in existing['disks']:
        current = by_name.get(disk['name'])
        if disk['snapshot'] != INTERNAL or current is None or not current['chain']:
            continue
        image = (bases or {}).get(disk['name'])
        if image is not None and current['chain'][0]['file'] != image:
            raise SnapshotError("Cannot delete internal snapshot '%s': it lives in '%s', but disk %s now writes to the "
                                'overlay %s of a later external snapshot, and libvirt deletes internal snapshots only '
                                'from the image in use. Nothing was changed. Merge the external snapshots above it '
                                'first (state: merged), or use metadata_only: true.'
                                % (existing['name'], image, disk['name'], current['chain'][0]['file']))


# ---------------------------------------------------------------------------------------------------------------------
# state=merged


def plan_merge(params, domain, existing, bases, descendants, current_name, local=True):
    """Fold an external snapshot's overlay (and every layer above it) into the image below it, then forget the
    snapshot: a block commit with pivot on a running domain, qemu-img commit on a shut-off one."""
    if existing is None:
        return Plan([], diff_view(None), diff_view(None), None, None)
    name = existing['name']
    if existing['location'] != EXTERNAL:
        raise SnapshotError("Snapshot '%s' of domain '%s' is %s: it has no overlay to merge, its data lives inside the "
                            'qcow2 image. Delete it with state: absent.' % (name, domain['name'], existing['location']))
    by_name = dict((disk['name'], disk) for disk in domain['disks'])
    merges = []
    for disk in existing['disks']:
        if disk['snapshot'] != EXTERNAL:
            continue
        current = by_name.get(disk['name'])
        if current is None:
            raise SnapshotError("Cannot merge snapshot '%s': its disk %s is no longer part of domain '%s'. Nothing was "
                                'changed.' % (name, disk['name'], domain['name']))
        chain = [item['file'] for item in current['chain']]
        base = (bases or {}).get(disk['name'])
        folded = _overlays_of(disk['name'], [existing] + list(descendants))
        if _merged_before(chain, base, folded, existing, descendants, current_name):
            merges.append({'disk': disk['name'], 'top': base, 'base': base,
                           'base_format': current['chain'][0]['format'], 'overlays': folded, 'done': True})
            continue
        if disk['file'] not in chain or base not in chain or chain.index(base) <= chain.index(disk['file']):
            raise SnapshotError("Cannot merge snapshot '%s': disk %s no longer runs on its overlay '%s' above '%s' (the "
                                "disk's chain is %s); the domain was reverted elsewhere. Nothing was changed. Use "
                                'state: absent to let libvirt delete it, or metadata_only: true to forget it.'
                                % (name, disk['name'], disk['file'], base, _chain_text(current)))
        position = chain.index(base)
        merge = {'disk': disk['name'], 'top': chain[0], 'base': base,
                 'base_format': current['chain'][position]['format'], 'overlays': chain[:position]}
        mirror = current.get('mirror')
        if mirror is not None:
            # A job libvirt runs without naming its target (it lost track of it in a restart) commits into this base
            # if nothing else lies between the top and the base.
            target = mirror['file'] if mirror['file'] is not None else (base if position == 1 else None)
            if mirror['job'] != 'active-commit' or target != base:
                raise SnapshotError("Cannot merge snapshot '%s': disk %s is busy with another block job (%s into %s). "
                                    'Nothing was changed. Wait until it ends, or stop it with `virsh blockjob %s %s '
                                    "--abort`, then run the task again."
                                    % (name, disk['name'], mirror['job'],
                                       "'%s'" % mirror['file'] if mirror['file'] else 'an image libvirt does not name',
                                       domain['name'], disk['name']))
            # A commit into this base that an interrupted run started (libvirt keeps it across its restarts): only its
            # pivot remains to be done.
            merge['resume'] = True
        merges.append(merge)

    affected = [item['name'] for item in descendants]
    require_force(params, affected, "Merging snapshot '%s' folds every layer above its base and" % name)
    if affected and len(_current_path(name, descendants, current_name) or []) != len(affected):
        raise SnapshotError("Cannot merge snapshot '%s': snapshots below it lie on more than one branch (%s), and "
                            'merging would destroy the branches the domain does not run on. Nothing was changed. '
                            'Delete those branches first.' % (name, ', '.join(affected)), affected=affected)
    running = domain['state'] in MEMORY_STATES
    if not running and not local:
        raise SnapshotError("Merging snapshot '%s' of the shut-off domain '%s' needs qemu-img on the hypervisor. Run "
                            'the task on the hypervisor with a local uri, or start the domain so libvirt merges it '
                            'live. Nothing was changed.' % (name, domain['name']))
    memory_files = [item['memory']['file'] for item in [existing] + list(descendants) if item['memory']['file']]
    action = Action('merge', name=name, running=running, disks=merges,
                    remove_files=[path for merge in merges for path in merge['overlays']] + memory_files,
                    drop_flags=['metadata_only', 'children'] if affected else ['metadata_only'])
    merged = [dict(((key, value) for key, value in merge.items() if key not in ('done', 'resume')), job_size=None)
              for merge in merges]
    return Plan([action], diff_view(existing), diff_view(None), None, domain['state'], deleted=[name] + affected,
                merged=merged)


def _overlays_of(disk_name, snapshots):
    """The overlay files the given external snapshots put on one disk, the snapshots' order reversed."""
    return [disk['file'] for snapshot in reversed(snapshots) for disk in snapshot['disks']
            if disk['name'] == disk_name and disk['snapshot'] == EXTERNAL and disk['file']]


def _merged_before(chain, base, overlays, existing, descendants, current_name):
    """Whether an earlier merge of this snapshot pivoted the disk to the base and was interrupted before it dropped
    the snapshot's record: the disk writes to the snapshot's base, none of the overlays is in its chain any more, and
    the domain's current snapshot is still this one or one below it on the way down. A revert to another snapshot
    would have moved the current snapshot (an internal one) or put a fresh overlay on top (an external one)."""
    return (bool(chain) and chain[0] == base and not set(overlays) & set(chain)
            and _current_path(existing['name'], descendants, current_name) is not None)


# ---------------------------------------------------------------------------------------------------------------------
# redefine (state=present with xml and redefine=true)

# What makes a snapshot record the same as another: everything but the links libvirt derives (children, current).
REDEFINE_FIELDS = ('description', 'state', 'creation_time', 'parent', 'location', 'memory', 'disks')


def plan_redefine(params, domain_name, existing):
    """Re-create libvirt's record of a snapshot from its XML, as virt_snapshot_info exported it.

    An existing snapshot whose record matches the XML is left alone; one that differs is redefined (libvirt checks
    that the change is compatible). ``current`` makes the snapshot the domain's current one; without it the marker
    stays where it is.
    """
    root = parse_xml(params['xml'], 'the xml option')
    if root.tag != 'domainsnapshot':
        raise SnapshotError('xml must be snapshot XML (a <domainsnapshot> element, as virt_snapshot_info returns it '
                            'with include_xml: true); it is a <%s> element.' % root.tag)
    defined = parse_snapshot(params['xml'], domain_name)
    if defined['name'] != params['name']:
        raise SnapshotError("The xml defines snapshot %r, but name is %r. Set name to the name in the XML (a redefine "
                            'cannot rename; use new_name for that).' % (defined['name'], params['name']))
    current = bool(params.get('current'))
    if existing is not None:
        same = all(existing[field] == defined[field] for field in REDEFINE_FIELDS)
        if same and (existing['is_current'] or not current):
            return Plan([], diff_view(existing), diff_view(existing), existing, None)
        predicted = dict(defined, children=list(existing['children']), is_current=existing['is_current'] or current)
    else:
        predicted = dict(defined, is_current=current)
    action = Action('redefine', name=params['name'], xml=params['xml'], current=current)
    return Plan([action], diff_view(existing), diff_view(predicted), predicted, None)


# ---------------------------------------------------------------------------------------------------------------------
# rename (state=present with new_name)


def plan_rename(params, old, old_xml, new, children_xml):
    """Rename an external snapshot: its name lives only in libvirt's record, so this is a metadata change.

    ``children_xml`` maps each direct child's name to (its XML, whether it is current).
    """
    new_name = params['new_name']
    if old is None:
        if new is not None:
            return Plan([], diff_view(new), diff_view(new), new, None)
        raise SnapshotError("Cannot rename snapshot '%s' to '%s': neither exists. Check the names."
                            % (params['name'], new_name))
    if new is not None:
        raise SnapshotError("Cannot rename snapshot '%s' to '%s': both exist. Delete one of them first."
                            % (params['name'], new_name))
    if old['location'] != EXTERNAL:
        raise SnapshotError("Cannot rename snapshot '%s': it is %s, and an internal snapshot's name is also the tag "
                            'inside the qcow2 image that a revert loads, so libvirt would no longer find it. Take a '
                            'new snapshot under the new name instead.' % (old['name'], old['location']))
    actions = [Action('redefine', name=new_name, xml=with_names(old_xml, name=new_name), current=old['is_current'])]
    for child in sorted(children_xml):
        xml, is_current = children_xml[child]
        actions.append(Action('redefine', name=child, xml=with_names(xml, parent=new_name), current=is_current))
    actions.append(Action('delete', name=old['name'], flags=['metadata_only'], keeps_snapshot=False, lookup=True))
    renamed = dict(old, name=new_name)
    return Plan(actions, dict(diff_view(old), name=old['name']), dict(diff_view(renamed), name=new_name), renamed, None)


# ---------------------------------------------------------------------------------------------------------------------
# state=reverted


def plan_revert(params, domain, existing, host, descendants=()):
    """Revert to an existing snapshot: always a change; fails before acting where the host cannot do it."""
    if existing['location'] in (EXTERNAL, 'mixed') and not host.get('external_revert'):
        raise SnapshotError("Snapshot '%s' of domain '%s' is external, and this host (libvirt %s) cannot revert to "
                            'external snapshots: its capabilities do not advertise <externalSnapshot/> (libvirt 9.9 '
                            'and later do). Nothing was changed. Revert on a newer libvirt, or merge or delete the '
                            'snapshot instead.' % (existing['name'], domain['name'], host.get('libvirt_version')))
    if existing['location'] == INTERNAL and descendants:
        external = [item['name'] for item in descendants if item['location'] != INTERNAL]
        require_force(params, external, "Reverting to internal snapshot '%s' drops the external overlays below it, "
                                        'which' % existing['name'])
    revert_state = params.get('revert_state') or 'snapshot'
    flags = []
    warnings = []
    if revert_state == 'running':
        flags.append('running')
        state_after = 'running'
    elif revert_state == 'paused':
        flags.append('paused')
        state_after = 'paused'
    else:
        state_after = _state_after_power(existing['state'])
        if existing['state'] == 'disk-snapshot' and domain['state'] in MEMORY_STATES:
            warnings.append("Snapshot '%s' holds no memory state, so domain '%s' is shut off after the revert. Set "
                            'revert_state: running to boot it from the reverted disks.'
                            % (existing['name'], domain['name']))
    if params.get('force'):
        flags.append('force')
    if params.get('reset_nvram'):
        flags.append('reset_nvram')
    before = dict(diff_view(existing), domain_state=domain['state'])
    reverted = dict(existing, is_current=True)
    after = dict(diff_view(reverted), domain_state=state_after)
    params = dict(name=existing['name'], flags=flags)
    external = set(disk['name'] for disk in existing.get('disks') or [] if disk['snapshot'] == EXTERNAL)
    if external:
        # libvirt puts each of these disks on a new overlay: the runner makes it private, as it does a snapshot's own.
        params['fresh_overlays'] = dict((disk['name'], disk['source']) for disk in domain.get('disks') or []
                                        if disk['name'] in external)
    action = Action('revert', **params)
    return Plan([action], before, after, reverted, state_after, warnings=warnings)


# ---------------------------------------------------------------------------------------------------------------------
# virt_start_from_snapshot


# The domain states that count as each state a domain can be started in ('blocked' runs, waiting for a resource).
START_STATES = {'running': ('running', 'blocked'), 'paused': ('paused',)}


class StartPlan(Plan):
    """A Plan that starts a domain from a snapshot; it also predicts the preserved snapshot and the domain's ID."""

    def __init__(self, actions, before, after, snapshot, domain_state, preserved, domain_id, warnings=None):
        super(StartPlan, self).__init__(actions, before, after, snapshot, domain_state, warnings=warnings)
        self.preserved = preserved
        self.domain_id = domain_id


def started_from(domain):
    """The domain's start record if it describes the domain as it runs now (the same ID), else None."""
    record = domain.get('start_record')
    if record is None or domain['id'] is None or record['domain_id'] != domain['id']:
        return None
    return record


def _start_view(domain_state, started_name, preserved):
    return {'domain_state': domain_state, 'started_from': started_name, 'preserved': preserved}


def plan_start(params, domain, target, preserved, current_name, host, descendants=(), path_exists=os.path.exists):
    """Start the domain from snapshot ``target`` in params['state'], saving its current state first as the snapshot
    params['preserve_current'] when asked.

    ``domain`` is parse_domain's dict (with the domain's ID and start record), ``preserved`` the existing snapshot named
    preserve_current (or None), ``current_name`` the current snapshot (the parent a preserved snapshot gets), and
    ``descendants`` the snapshots below ``target``. A domain that was started from ``target`` and still runs under the
    ID it got then is left as it is (only resumed or paused to match the state asked for); starting any other running
    or paused domain would lose its state, so that needs force or preserve_current.
    """
    name = target['name']
    wanted = params.get('state') or 'running'
    preserve = params.get('preserve_current')
    record = started_from(domain)
    before = _start_view(domain['state'], record['snapshot'] if record else None,
                         diff_view(preserved) if preserve else None)

    if record is not None and record['snapshot'] == name:
        kept = preserved if preserve and record['preserved'] == preserve else None
        if domain['state'] in START_STATES[wanted]:
            return StartPlan([], before, before, target, domain['state'], kept, domain['id'])
        if domain['state'] in START_STATES['running'] + START_STATES['paused']:
            actions = [Action('resume' if wanted == 'running' else 'suspend'), _wait_action(params, name, wanted)]
            return StartPlan(actions, before, dict(before, domain_state=wanted), target, wanted, kept, domain['id'])

    revert = plan_revert({'revert_state': wanted, 'force': params.get('force'), 'reset_nvram': params.get('reset_nvram')},
                         domain, target, host, descendants)
    if domain['id'] is not None and not params.get('force') and not preserve:
        raise SnapshotError(_would_lose_message(domain, name), domain_state=domain['state'], domain_id=domain['id'])
    actions = []
    started = revert.snapshot
    saved = None
    if preserve:
        if preserved is not None:
            raise SnapshotError(_preserve_exists_message(domain, preserve))
        keep = _plan_preserve(preserve, domain, target, current_name, host, path_exists)
        actions.extend(keep.actions)
        # The revert makes the target current; a snapshot taken while the target was current is its child.
        saved = dict(keep.snapshot, is_current=False)
        if current_name == name:
            started = dict(started, children=sorted(started['children'] + [preserve]))
    actions.extend(revert.actions)
    actions.append(_wait_action(params, name, wanted))
    actions.append(Action('record_start', snapshot=name, preserved=preserve))
    after = _start_view(wanted, name, diff_view(saved) if preserve else None)
    # libvirt gives the domain a new ID when it starts it, so no ID can be predicted.
    return StartPlan(actions, before, after, started, wanted, saved, None, warnings=revert.warnings)


def _wait_action(params, name, wanted):
    timeout = params.get('wait')
    return Action('wait', snapshot=name, states=START_STATES[wanted], timeout=60 if timeout is None else timeout)


def _plan_preserve(preserve, domain, target, current_name, host, path_exists):
    """Snapshot the current state (with memory if the domain runs or is paused), as virt_snapshot would by default,
    but internal when ``target`` has internal parts: reverting to it loads its state into the qcow2 images, which an
    external snapshot of the current state would keep as the base of its overlays, so that state would be lost."""
    name = target['name']
    params = {
        'name': preserve,
        'description': "The state of domain '%s' (%s) before vmsnap.libvirt.virt_start_from_snapshot started it from "
                       "snapshot '%s'." % (domain['name'], domain['state'], name),
        'memory': None,
        'location': 'auto' if target['location'] == EXTERNAL else INTERNAL,
    }
    try:
        return plan_present(params, domain, None, None, current_name, host, path_exists)
    except SnapshotError as exc:
        raise SnapshotError("Cannot save the current state of domain '%s' as snapshot '%s' (preserve_current), so it "
                            "was not started from snapshot '%s'. Nothing was changed. %s"
                            % (domain['name'], preserve, name, exc.msg), **exc.details)


def _would_lose_message(domain, name):
    history = ''
    record = domain.get('start_record')
    if record is not None and record['snapshot'] == name:
        history = ("It was started from that snapshot before (as ID %s), but it has been restarted since. "
                   % record['domain_id'])
    elif started_from(domain) is not None:
        history = "It was started from snapshot '%s'. " % record['snapshot']
    return ("Domain '%s' is %s (ID %s), so starting it from snapshot '%s' would discard its current state: the memory "
            'of the %s guest and everything written to its disks since that snapshot. %sNothing was changed. Set '
            'preserve_current: NAME to save that state first as a snapshot (with its memory) that can be examined or '
            'reverted to later, or set force: true to discard it.'
            % (domain['name'], domain['state'], domain['id'], name, domain['state'], history))


def _preserve_exists_message(domain, preserve):
    record = domain.get('start_record')
    holds = ''
    if record is not None and record['preserved'] == preserve:
        holds = (" (it holds the state the domain had before it was started from snapshot '%s' earlier)"
                 % record['snapshot'])
    return ("preserve_current names snapshot '%s' of domain '%s', which already exists%s, so the current state cannot "
            "be saved in it. Nothing was changed. Choose a new preserve_current name (for example with the date and "
            "time in it), or delete snapshot '%s' if it is no longer needed. If it already holds the state to keep (an "
            'earlier run saved it and then failed to start the domain), run the task without preserve_current%s.'
            % (preserve, domain['name'], holds, preserve, ' and with force: true' if domain['id'] is not None else ''))


# ---------------------------------------------------------------------------------------------------------------------
# state=absent with all or pattern: many snapshots of one domain, with retention


def newest_first(snapshots):
    """The snapshot dicts ordered newest first by creation time.

    Snapshots taken within the same second tie; the one deeper in the tree counts as newer (a child is always taken
    after its parent), then the later name in virsh's order, so the order never depends on how libvirt listed them.
    """
    parents = dict((item['name'], item['parent']) for item in snapshots)
    depth = {}
    for name in SnapshotTree(parents).preorder():
        depth[name] = depth[parents[name]] + 1 if parents[name] in depth else 0
    return sorted(snapshots, key=lambda item: (item['creation_time'] or 0, depth[item['name']], sort_key(item['name'])),
                  reverse=True)


def select_removals(snapshots, pattern=None, keep_newest=None):
    """(names to delete, names kept) among the snapshot dicts: those whose names match the glob ``pattern`` (every
    one when it is None), less the ``keep_newest`` newest of them, which are kept (newest first).

    A snapshot the pattern does not match is in neither list: retention never touches it.
    """
    # Ordered among all snapshots, so that a snapshot the pattern does not match still counts for its children's depth.
    ordered = [item['name'] for item in newest_first(snapshots)
               if pattern is None or fnmatch.fnmatchcase(item['name'], pattern)]
    keep = keep_newest or 0
    return ordered[keep:], ordered[:keep]


def removal_order(parents, names):
    """``names`` ordered so that every snapshot comes before its ancestors (children before parents, leaves first),
    as external snapshots must be merged from the top layer down. ``parents`` maps every snapshot to its parent."""
    wanted = set(names)
    return [name for name in reversed(SnapshotTree(parents).preorder()) if name in wanted]


class BulkPlan(Plan):
    """Deletes of many snapshots of one domain, one step (name, Plan) per snapshot in the order they must run; the
    diff lists the domain's snapshots before and after."""

    def __init__(self, steps, before, after, kept):
        actions = [action for dummy, step in steps for action in step.actions]
        deleted = [name for dummy, step in steps for name in step.deleted]
        merged = [merge for dummy, step in steps for merge in step.merged]
        super(BulkPlan, self).__init__(actions, before, after, None, None, deleted=deleted, merged=merged)
        self.steps = steps
        self.kept = kept


def _subtree(children, name):
    found = []
    stack = sorted(children[name], key=sort_key, reverse=True)
    while stack:
        below = stack.pop()
        found.append(below)
        stack.extend(sorted(children[below], key=sort_key, reverse=True))
    return found


def _bulk_refusal(exc, existing, order, pattern):
    """The failure of a bulk delete, in the words of the selection: which snapshots, in which order, where it stopped."""
    selection = ("the %d snapshot%s of domain '%s' that %s (children first: %s)"
                 % (len(order), '' if len(order) == 1 else 's', existing['domain'],
                    'all: true selects' if pattern is None else "match pattern '%s'" % pattern, ', '.join(order)))
    affected = exc.details.get('affected')
    if affected:
        # plan_absent asks for force here; a bulk delete never takes along what the selection leaves out.
        return SnapshotError("Cannot delete %s: deleting snapshot '%s' would also remove or invalidate %s, which the "
                             'selection leaves out (or keep_newest keeps). Nothing was changed. Select those too, or '
                             "delete snapshot '%s' on its own (name, with force: true)."
                             % (selection, existing['name'], ', '.join(affected), existing['name']), **exc.details)
    return SnapshotError("Cannot delete %s, at snapshot '%s': %s" % (selection, existing['name'], exc.msg), **exc.details)


def plan_bulk_absent(params, snapshots, current_name, domain=None, bases=None, host=None, local=True):
    """Delete every snapshot (params['all']) or those whose names match params['pattern'], keeping the
    params['keep_newest'] newest of them; children before parents.

    ``snapshots`` are the dicts of every snapshot of the domain, ``bases`` maps each name to its disk bases
    (snapshot_disk_bases). Each snapshot is deleted on its own, never with libvirt's children flags, and each delete is
    planned by plan_absent on the tree as the deletes before it leave it (children re-parented, the current snapshot
    moved to the parent, merged overlays gone from the disks' chains). So a delete that would take along a snapshot
    the selection does not hold (a merge of a layer a kept snapshot sits on) is refused, as are deletes libvirt would
    refuse, before anything changes.
    """
    pattern = None if params.get('all') else params['pattern']
    doomed, kept = select_removals(snapshots, pattern, params.get('keep_newest'))
    by_name = dict((item['name'], item) for item in snapshots)
    parents = dict((name, item['parent'] if item['parent'] in by_name else None) for name, item in by_name.items())
    order = removal_order(parents, doomed)
    before = {'snapshots': SnapshotTree(parents).preorder()}
    after = {'snapshots': [name for name in before['snapshots'] if name not in set(doomed)]}

    children = dict((name, set()) for name in by_name)
    for name, parent in parents.items():
        if parent is not None:
            children[parent].add(name)
    chains = {}
    if domain is not None:
        chains = dict((disk['name'], list(disk['chain'])) for disk in domain['disks'])
    # Never force: each delete removes its own snapshot, and anything beyond it was not asked for.
    step_params = {'metadata_only': params.get('metadata_only'), 'force': False}
    current = current_name
    steps = []
    for name in order:
        parent = parents[name]
        existing = dict(by_name[name], parent=parent, children=sorted(children[name], key=sort_key),
                        is_current=name == current)
        descendants = [dict(by_name[below], parent=parents[below]) for below in _subtree(children, name)]
        domain_now = None
        if domain is not None:
            domain_now = dict(domain, disks=[dict(disk, chain=chains[disk['name']]) for disk in domain['disks']])
        try:
            step = plan_absent(step_params, existing, descendants, domain_now, (bases or {}).get(name),
                               by_name[parent] if parent is not None else None, current, host, local)
        except SnapshotError as exc:
            raise _bulk_refusal(exc, existing, order, pattern)
        steps.append((name, step))
        # What libvirt leaves behind: the children re-parented, the parent current, the merged overlays gone.
        for child in children.pop(name):
            parents[child] = parent
            if parent is not None:
                children[parent].add(child)
        if parent is not None:
            children[parent].discard(name)
        del parents[name]
        if current == name:
            current = parent
        if by_name[name]['location'] == EXTERNAL and not params.get('metadata_only'):
            overlays = set(disk['file'] for disk in by_name[name]['disks'] if disk['snapshot'] == EXTERNAL)
            chains = dict((disk, [item for item in chain if item['file'] not in overlays])
                          for disk, chain in chains.items())
    return BulkPlan(steps, before, after, kept)
