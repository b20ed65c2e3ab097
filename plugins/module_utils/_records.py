# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils file is private to the vmsnap.libvirt collection. It can change at any time,
# without a deprecation period. Do not use it outside this collection.

"""Snapshot records changed in place: redefine (state=present with xml and redefine=true) and rename
(state=present with new_name)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError
from ansible_collections.vmsnap.libvirt.plugins.module_utils._model import (
    diff_view,
    EXTERNAL,
    parse_snapshot,
    parse_xml,
    with_names,
)
from ansible_collections.vmsnap.libvirt.plugins.module_utils._plan import Action, Plan


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
