# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Which domains names and glob patterns choose (match_domains), without libvirt: a client that lists fake domains."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.vmsnap.libvirt.plugins.module_utils._domains import is_glob, match_domains


class FakeDomain:
    def __init__(self, name):
        self._name = name

    def name(self):
        return self._name


class ListingClient:
    def __init__(self, *names):
        self.domains = [FakeDomain(name) for name in names]
        self.lists = 0

    def list_domains(self):
        self.lists += 1
        return list(self.domains)


def test_plain_names_are_not_listed_nor_looked_up():
    client = ListingClient('web01')
    assert match_domains(client, ['web01', 'db01', 'web01']) == ([('web01', None, True), ('db01', None, True)], [])
    assert client.lists == 0


def test_globs_match_one_listing_in_name_order_each_domain_once_and_unmatched_globs_are_named():
    client = ListingClient('web10', 'web2', 'db01')
    chosen, unmatched = match_domains(client, ['web*', 'db01', 'web2', 'x?'])
    # virsh's order compares names as text (web10 before web2); a name also given plainly counts as named.
    assert [(name, dom.name() if dom else None, named) for name, dom, named in chosen] == [
        ('web10', 'web10', False), ('web2', 'web2', True), ('db01', 'db01', True)]
    assert unmatched == ['x?']
    assert client.lists == 1


def test_what_counts_as_a_glob():
    assert [is_glob(text) for text in ('a*', 'a?', 'a[0-9]', 'plain')] == [True, True, True, False]
