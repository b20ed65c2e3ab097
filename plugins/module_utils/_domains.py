# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils file is private to the vmsnap.libvirt collection. It can change at any time,
# without a deprecation period. Do not use it outside this collection.

"""Which domains a list of names and glob patterns chooses: the one resolution of the domains option of
virt_snapshot (_batch.resolve) and virt_snapshot_info (_info.select_domains)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import fnmatch

from ansible_collections.vmsnap.libvirt.plugins.module_utils._tree import sort_key

GLOB_CHARACTERS = '*?['


def is_glob(text):
    return any(char in text for char in GLOB_CHARACTERS)


def match_domains(client, entries):
    """The domains ``entries`` (names or glob patterns) choose, and the globs among them that match nothing.

    Returns ([(name, domain object or None, named)], unmatched globs). Globs are matched against one list of the
    host's domains (listAllDomains, only when there is a glob), each glob's matches in virsh's name order. Plain names
    are not looked up: their object is the listed one, or None when nothing was listed or the list does not hold it.
    ``named`` says that the user named the domain rather than a glob finding it. Every domain appears once, at its
    first mention.
    """
    listed = None
    if any(is_glob(entry) for entry in entries):
        listed = dict((dom.name(), dom) for dom in client.list_domains())
    chosen = []
    seen = set()
    unmatched = []
    for entry in entries:
        if is_glob(entry):
            found = sorted((name for name in listed if fnmatch.fnmatchcase(name, entry)), key=sort_key)
            if not found:
                unmatched.append(entry)
        else:
            found = [entry]
        for name in found:
            if name not in seen:
                seen.add(name)
                chosen.append((name, (listed or {}).get(name), name in entries))
    return chosen, unmatched
