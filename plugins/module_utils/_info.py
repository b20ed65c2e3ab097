# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils file is private to the vmsnap.libvirt collection. It can change at any time,
# without a deprecation period. Do not use it outside this collection.

"""What virt_snapshot_info reports: the chosen domains, each with its snapshots, their tree and the current one.

Reading is cheap by construction: domains are looked up by name (the host's domains are listed only for glob
patterns), and each domain costs one snapshot list call, one XML fetch per snapshot and one call for the current
snapshot. Children, roots, leaves and the current marker all come from the parent links in the XML.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import fnmatch

from ansible_collections.vmsnap.libvirt.plugins.module_utils._actions import missing_snapshot_error
from ansible_collections.vmsnap.libvirt.plugins.module_utils._client import is_missing
from ansible_collections.vmsnap.libvirt.plugins.module_utils._domains import match_domains
from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError
from ansible_collections.vmsnap.libvirt.plugins.module_utils._model import parse_snapshot
from ansible_collections.vmsnap.libvirt.plugins.module_utils._tree import SnapshotTree, sort_key


def select_domains(client, domain=None, domains=None):
    """The domains to describe, in order, as (domain object, named): ``domain`` alone; the entries of ``domains`` in
    their order (each glob's matches sorted by name); or, when neither is given, every domain sorted by name.

    ``named`` says the user named the domain (rather than a glob or no option finding it). A name that does not
    exist is a failure; a glob that matches nothing selects nothing.
    """
    if domain is not None:
        return [(client.domain(domain), True)]
    if domains is None:
        return [(dom, False) for dom in sorted(client.list_domains(), key=lambda dom: sort_key(dom.name()))]
    # A name the list does not hold (or that was not listed) gets the failure of a lookup by name.
    return [(dom if dom is not None else client.domain(name), named)
            for name, dom, named in match_domains(client, domains)[0]]


def matches(snapshot, tree, options):
    """Whether a snapshot passes every filter the options set (filters that are not set let it pass)."""
    name = snapshot['name']
    if options.get('name') is not None and name != options['name']:
        return False
    if options.get('roots') and not tree.is_root(name):
        return False
    if options.get('leaves') and not tree.is_leaf(name):
        return False
    if options.get('current') and not snapshot['is_current']:
        return False
    if options.get('location') is not None and snapshot['location'] != options['location']:
        return False
    if options.get('pattern') is not None and not fnmatch.fnmatchcase(name, options['pattern']):
        return False
    return True


def describe_snapshots(domain_name, xmls, current, options):
    """The domain's snapshot report from its snapshots' XML (``[(name, xml)]``) and current snapshot's name.

    Pure: ``snapshots`` holds those that pass the filters, each after its parent; everything else describes the
    whole domain.
    """
    parsed = {}
    for name, xml in xmls:
        snapshot = parse_snapshot(xml, domain_name)
        if options.get('include_xml'):
            snapshot['xml'] = xml
        parsed[name] = snapshot
    tree = SnapshotTree(dict((name, snapshot['parent']) for name, snapshot in parsed.items()))
    for name, snapshot in parsed.items():
        snapshot['children'] = sorted(tree.children_of(name))
        snapshot['is_current'] = name == current
    nested, truncated = tree.nested()
    return {
        'current_snapshot': current if current in parsed else None,
        'count': len(parsed),
        'snapshots': [parsed[name] for name in tree.preorder() if matches(parsed[name], tree, options)],
        'tree': nested,
        'tree_truncated': truncated,
        'tree_text': tree.text(current),
    }


def describe_domain(client, dom, options):
    """One entry of the module's ``domains`` result."""
    name = dom.name()
    entry = {'domain': name, 'state': client.domain_state(dom), 'persistent': client.is_persistent(dom)}
    xmls = client.snapshots_xml(dom, secure=bool(options.get('include_xml')))
    wanted = options.get('name')
    if wanted is not None and wanted not in [snapshot_name for snapshot_name, dummy in xmls]:
        raise missing_snapshot_error(client, dom, wanted, 'describe')
    current = client.current_snapshot_name(dom) if xmls else None
    entry.update(describe_snapshots(name, xmls, current, options))
    return entry


def gather(client, options):
    """The module's result without ``changed``: ``domains`` and ``host``.

    A domain that a glob (or no domain option) found and that is undefined before it is read is left out, as if the
    list had been taken a moment later; a named one that disappears is a failure.
    """
    entries = []
    for dom, named in select_domains(client, options.get('domain'), options.get('domains')):
        try:
            entries.append(describe_domain(client, dom, options))
        except SnapshotError as exc:
            if named or not is_missing(exc, 'domain'):
                raise
    return {'domains': entries, 'host': client.host()}
