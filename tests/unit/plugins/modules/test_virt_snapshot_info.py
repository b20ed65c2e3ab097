# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Unit tests of vmsnap.libvirt.virt_snapshot_info, and of the metadata round trip through virt_snapshot's xml and
redefine options: main() in-process against libvirt's test driver.

The real daemon (undefine, define, revert, and the data on the disk) is tested by
tests/integration/targets/virt_snapshot_info.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.vmsnap.libvirt.plugins.modules import virt_snapshot, virt_snapshot_info

DOMAIN_KEYS = set(['domain', 'state', 'persistent', 'current_snapshot', 'count', 'snapshots', 'tree', 'tree_truncated',
                   'tree_text'])


@pytest.fixture
def info(run_module, testhost):
    def run_info(check_mode=False, **options):
        return run_module(virt_snapshot_info.main, dict(options, uri=testhost.uri), check_mode=check_mode)
    return run_info


@pytest.fixture
def snapshot(run_module, testhost):
    def run_snapshot(check_mode=False, **options):
        args = dict(uri=testhost.uri, domain='web01')
        args.update(options)
        return run_module(virt_snapshot.main, args, check_mode=check_mode)
    return run_snapshot


@pytest.fixture
def tree(snapshot):
    """web01 with base -> (left, right), taken in that order after a revert to base; right is current."""
    for name in ('base', 'left'):
        ok(snapshot(name=name))
    ok(snapshot(name='base', state='reverted'))
    ok(snapshot(name='right'))


def ok(result):
    assert not result.get('failed'), result.get('msg')
    return result


def failed(result):
    assert result.get('failed') is True, result
    return result['msg']


def test_result_shape_and_check_mode(info, tree):
    result = ok(info(domain='web01'))
    assert set(result) == set(['changed', 'domains', 'host'])
    assert result['changed'] is False
    entry = result['domains'][0]
    assert set(entry) == DOMAIN_KEYS
    assert [snapshot['name'] for snapshot in entry['snapshots']] == ['base', 'left', 'right']
    assert (entry['current_snapshot'], entry['count']) == ('right', 3)
    assert entry['tree_text'] == 'base\n  |\n  +- left\n  +- right (current)\n    '
    assert ok(info(domain='web01', check_mode=True)) == result


def test_every_domain(info, tree):
    result = ok(info())
    assert [(entry['domain'], entry['count']) for entry in result['domains']] == [('db01', 0), ('web01', 3)]


def test_options_reach_the_filters(info, tree):
    result = ok(info(domains=['w*'], leaves=True, pattern='r*'))
    assert [snapshot['name'] for snapshot in result['domains'][0]['snapshots']] == ['right']


def test_domain_and_domains_are_exclusive(info):
    assert 'mutually exclusive' in failed(info(domain='web01', domains=['db01']))


def test_a_missing_domain_fails_cleanly(info, testhost):
    msg = failed(info(domain='nope'))
    assert msg == ("Domain 'nope' does not exist on %s. Check the name with `virsh list --all`; domain names are "
                   'case-sensitive.' % testhost.uri)


def test_a_missing_snapshot_fails_cleanly(info, tree):
    assert failed(info(domain='web01', name='middle')).startswith(
        "Snapshot 'middle' of domain 'web01' does not exist, so there is nothing to describe.")


# -- the metadata round trip through virt_snapshot ---------------------------------------------------------------------

def forget(testhost, *names):
    """Drop snapshots' records (the test driver keeps no data, and refuses METADATA_ONLY; a delete is the same here)."""
    dom = testhost.conn.lookupByName('web01')
    for name in names:
        dom.snapshotLookupByName(name, 0).delete(0)


def redefine_all(snapshot, exported, check_mode=False):
    return [snapshot(check_mode=check_mode, name=item['name'], xml=item['xml'], redefine=True,
                     current=item['is_current'])
            for item in exported]


def test_round_trip(info, snapshot, testhost, tree):
    exported = ok(info(domain='web01', include_xml=True))['domains'][0]
    forget(testhost, 'left', 'right', 'base')
    assert testhost.snapshot_names('web01') == []

    checked = redefine_all(snapshot, exported['snapshots'], check_mode=True)
    assert [ok(result)['changed'] for result in checked] == [True, True, True]
    assert testhost.snapshot_names('web01') == []
    assert checked[2]['snapshot']['is_current'] is True

    done = redefine_all(snapshot, exported['snapshots'])
    assert [ok(result)['changed'] for result in done] == [True, True, True]
    assert [result['diff'] for result in done] == [result['diff'] for result in checked]
    again = ok(info(domain='web01', include_xml=True))['domains'][0]
    assert again == exported

    assert [ok(result)['changed'] for result in redefine_all(snapshot, exported['snapshots'])] == [False] * 3
    assert [ok(result)['changed'] for result in redefine_all(snapshot, exported['snapshots'], check_mode=True)] == \
        [False] * 3


def test_redefine_restores_the_current_marker_only_when_asked(info, snapshot, testhost, tree):
    exported = dict((item['name'], item) for item in ok(info(domain='web01', include_xml=True))['domains'][0]['snapshots'])
    forget(testhost, 'right')  # libvirt makes the parent of a deleted current snapshot current
    assert ok(info(domain='web01'))['domains'][0]['current_snapshot'] == 'base'
    ok(snapshot(name='right', xml=exported['right']['xml'], redefine=True))
    assert ok(info(domain='web01'))['domains'][0]['current_snapshot'] == 'base'
    marked = ok(snapshot(name='right', xml=exported['right']['xml'], redefine=True, current=True))
    assert marked['changed'] is True
    assert marked['diff']['before']['is_current'] is False and marked['diff']['after']['is_current'] is True
    assert ok(info(domain='web01'))['domains'][0]['current_snapshot'] == 'right'


def test_redefine_updates_a_record_that_differs(info, snapshot, testhost, tree):
    exported = dict((item['name'], item) for item in ok(info(domain='web01', include_xml=True))['domains'][0]['snapshots'])
    described = exported['left']['xml'].replace('<name>left</name>',
                                                '<name>left</name>\n  <description>Left</description>', 1)
    result = ok(snapshot(name='left', xml=described, redefine=True))
    assert result['changed'] is True
    assert (result['diff']['before']['description'], result['diff']['after']['description']) == (None, 'Left')
    assert result['snapshot']['description'] == 'Left'


@pytest.mark.parametrize('options, message', [
    ({'xml': '<domainsnapshot><name>s</name></domainsnapshot>'},
     'xml is only used to redefine a snapshot whose data still exists; set redefine: true.'),
    ({'redefine': True},
     'redefine re-creates a snapshot from its XML; give the XML in xml (as vmsnap.libvirt.virt_snapshot_info returns '
     'it with include_xml: true).'),
    ({'current': True}, 'current marks a redefined snapshot as current; it needs redefine: true and xml.'),
    ({'redefine': True, 'xml': '<domainsnapshot><name>s</name></domainsnapshot>', 'description': 'x',
      'location': 'internal'},
     'redefine takes everything from xml; description, location cannot be combined with it. Change the XML instead, '
     'or redefine in one task and change the snapshot in another.'),
    ({'redefine': True, 'xml': '<domainsnapshot><name>s</name></domainsnapshot>', 'state': 'absent'},
     'redefine only applies to state=present, not to state=absent. Remove it from the task.'),
    ({'redefine': True, 'xml': '<domainsnapshot><name>other</name></domainsnapshot>'},
     "The xml defines snapshot 'other', but name is 's'. Set name to the name in the XML (a redefine cannot rename; "
     'use new_name for that).'),
])
def test_redefine_options_are_checked_before_anything_happens(snapshot, testhost, options, message):
    assert failed(snapshot(name='s', **options)) == message
    assert testhost.snapshot_names('web01') == []
