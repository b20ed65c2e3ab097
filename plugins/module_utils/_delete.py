# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils file is private to the vmsnap.libvirt collection. It can change at any time,
# without a deprecation period. Do not use it outside this collection.

"""state=absent of one snapshot, its subtree (children) or only its subtree (children_only): plan_absent."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError
from ansible_collections.vmsnap.libvirt.plugins.module_utils._merge import chain_text, current_path, plan_merge
from ansible_collections.vmsnap.libvirt.plugins.module_utils._model import EXTERNAL, INTERNAL, diff_view
from ansible_collections.vmsnap.libvirt.plugins.module_utils._plan import Action, Plan


def plan_absent(params, existing, descendants, *, domain=None, bases=None, parent=None, current_name=None, host=None,
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
            return plan_merge(dict(params, force=True), domain, existing, bases=bases, descendants=descendants, current_name=current_name, local=local)
        flags.append('children')
        deleted += names
        gone += list(descendants)
    elif existing['location'] == EXTERNAL and not params.get('metadata_only'):
        if not (host or {}).get('external_delete'):
            # Before libvirt 9.0 libvirt cannot delete external snapshots: merge the overlay ourselves.
            return plan_merge(params, domain, existing, bases=bases, descendants=descendants, current_name=current_name, local=local)
        _foresee_external_delete(existing, descendants, domain, bases=bases, parent=parent, current_name=current_name)
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


def _foresee_external_delete(existing, descendants, domain, *, bases, parent, current_name):
    """Refuse, before acting, the external deletes libvirt would refuse halfway, describing the tree."""
    name = existing['name']
    tree = "snapshot '%s' (external, parent %s, children %s)" % (
        name, "'%s' (%s)" % (parent['name'], parent['location']) if parent else 'none',
        ', '.join(existing['children']) or 'none')
    if parent is not None and parent['location'] == INTERNAL:
        raise SnapshotError('Cannot delete %s: libvirt cannot delete an external snapshot whose parent is internal. '
                            'Nothing was changed. Use state: merged to fold its overlay into the base image, or '
                            'metadata_only: true to forget it and keep its files.' % tree)
    if descendants and current_path(name, descendants, current_name) is None:
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
                                % (tree, disk['name'], base, chain_text(by_name.get(disk['name'], {'chain': []}))))


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
