# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils file is private to the vmsnap.libvirt collection. It can change at any time,
# without a deprecation period. Do not use it outside this collection.

"""state=merged: fold an external snapshot's overlays into the image below it (plan_merge)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError
from ansible_collections.vmsnap.libvirt.plugins.module_utils._model import EXTERNAL, diff_view
from ansible_collections.vmsnap.libvirt.plugins.module_utils._plan import Action, MEMORY_STATES, Plan, require_force


def plan_merge(params, domain, existing, *, bases, descendants, current_name, local=True):
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
        if _merged_before(chain, base, folded, existing=existing, descendants=descendants, current_name=current_name):
            merges.append({'disk': disk['name'], 'top': base, 'base': base,
                           'base_format': current['chain'][0]['format'], 'overlays': folded, 'done': True})
            continue
        if disk['file'] not in chain or base not in chain or chain.index(base) <= chain.index(disk['file']):
            raise SnapshotError("Cannot merge snapshot '%s': disk %s no longer runs on its overlay '%s' above '%s' (the "
                                "disk's chain is %s); the domain was reverted elsewhere. Nothing was changed. Use "
                                'state: absent to let libvirt delete it, or metadata_only: true to forget it.'
                                % (name, disk['name'], disk['file'], base, chain_text(current)))
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
    if affected and len(current_path(name, descendants, current_name) or []) != len(affected):
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


def _merged_before(chain, base, overlays, *, existing, descendants, current_name):
    """Whether an earlier merge of this snapshot pivoted the disk to the base and was interrupted before it dropped
    the snapshot's record: the disk writes to the snapshot's base, none of the overlays is in its chain any more, and
    the domain's current snapshot is still this one or one below it on the way down. A revert to another snapshot
    would have moved the current snapshot (an internal one) or put a fresh overlay on top (an external one)."""
    return (bool(chain) and chain[0] == base and not set(overlays) & set(chain)
            and current_path(existing['name'], descendants, current_name) is not None)


def current_path(snapshot_name, descendants, current_name):
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


def chain_text(disk):
    return ' <- '.join(item['file'] for item in disk['chain']) or 'unknown'
