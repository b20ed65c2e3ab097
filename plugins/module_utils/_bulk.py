# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils file is private to the vmsnap.libvirt collection. It can change at any time,
# without a deprecation period. Do not use it outside this collection.

"""state=absent with all or pattern: many snapshots of one domain, with retention (plan_bulk_absent)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import fnmatch

from ansible_collections.vmsnap.libvirt.plugins.module_utils._delete import plan_absent
from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError
from ansible_collections.vmsnap.libvirt.plugins.module_utils._model import EXTERNAL
from ansible_collections.vmsnap.libvirt.plugins.module_utils._plan import Plan
from ansible_collections.vmsnap.libvirt.plugins.module_utils._tree import SnapshotTree, sort_key


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


def plan_bulk_absent(params, snapshots, current_name, *, domain=None, bases=None, host=None, local=True):
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
            step = plan_absent(step_params, existing, descendants, domain=domain_now, bases=(bases or {}).get(name),
                               parent=by_name[parent] if parent is not None else None, current_name=current, host=host, local=local)
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
