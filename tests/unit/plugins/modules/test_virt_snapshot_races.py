# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Races between two runs on the same snapshot: another run creates or deletes it between this run's lookup and its
action. libvirt refuses the action; the run decides again from what exists now and ends as if it had started a moment
later. The other run is played by a direct libvirt call on the same test-driver connection, made right before the
client's own call. tests/reliability runs the real thing: eight ansible-playbook processes at a barrier."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.vmsnap.libvirt.plugins.module_utils import _client, _model
from ansible_collections.vmsnap.libvirt.plugins.modules import virt_snapshot


@pytest.fixture
def run(run_module, testhost):
    def run_on_testhost(**options):
        return run_module(virt_snapshot.main, dict(dict(uri=testhost.uri, domain='web01'), **options))
    return run_on_testhost


def other_run_first(monkeypatch, method, other_run):
    """Make Client.<method> call ``other_run`` once, right before it calls libvirt itself."""
    real = getattr(_client.Client, method)
    pending = [other_run]

    def raced(self, *args):
        while pending:
            pending.pop()()
        return real(self, *args)
    monkeypatch.setattr(_client.Client, method, raced)


def create_directly(testhost, name, description):
    xml = '<domainsnapshot><name>%s</name><description>%s</description></domainsnapshot>' % (name, description)
    testhost.conn.lookupByName('web01').snapshotCreateXML(xml, 0)


def description_of(testhost, name):
    xml = testhost.conn.lookupByName('web01').snapshotLookupByName(name, 0).getXMLDesc(0)
    return _model.parse_snapshot(xml, 'web01')['description']


def test_create_that_another_run_made_first_is_ok(run, testhost, monkeypatch):
    other_run_first(monkeypatch, 'create_snapshot', lambda: create_directly(testhost, 'race', 'the same'))
    result = run(name='race', description='the same')
    assert not result.get('failed'), result.get('msg')
    assert result['changed'] is False
    assert result['snapshot']['name'] == 'race' and result['snapshot']['description'] == 'the same'
    assert result['diff']['before'] == result['diff']['after']
    assert testhost.snapshot_names('web01') == ['race']


def test_create_that_another_run_made_with_another_description_updates_it(run, testhost, monkeypatch):
    other_run_first(monkeypatch, 'create_snapshot', lambda: create_directly(testhost, 'race', 'theirs'))
    result = run(name='race', description='ours')
    assert not result.get('failed'), result.get('msg')
    assert result['changed'] is True
    assert result['diff']['before']['description'] == 'theirs' and result['diff']['after']['description'] == 'ours'
    assert description_of(testhost, 'race') == 'ours'
    assert testhost.snapshot_names('web01') == ['race']


def test_delete_that_another_run_did_first_is_ok(run, testhost, monkeypatch):
    create_directly(testhost, 'race', 'doomed')
    other_run_first(monkeypatch, 'delete_snapshot',
                    lambda: testhost.conn.lookupByName('web01').snapshotLookupByName('race', 0).delete(0))
    result = run(name='race', state='absent')
    assert not result.get('failed'), result.get('msg')
    assert result['changed'] is False
    assert result['snapshot'] is None and result['deleted'] == []
    assert testhost.snapshot_names('web01') == []


def test_a_failure_that_is_no_race_is_reported_as_it_was(run, testhost, monkeypatch):
    def refuse(self, *args):
        raise _client.SnapshotError('Could not create snapshot: the disk is full.')
    monkeypatch.setattr(_client.Client, 'create_snapshot', refuse)
    result = run(name='race')
    assert result['failed'] is True
    assert result['msg'] == 'Could not create snapshot: the disk is full.'
    assert testhost.snapshot_names('web01') == []


def test_a_dropped_connection_reports_the_action_error_not_the_lookup(run, testhost, monkeypatch):
    real_find = _client.Client.find_snapshot
    lookups = []

    def find_until_the_connection_drops(self, dom, name):
        lookups.append(name)
        if len(lookups) > 1:
            raise _client.SnapshotError('Could not look up snapshot: the connection is gone.')
        return real_find(self, dom, name)

    def drop(self, *args):
        raise _client.SnapshotError('Could not create snapshot: End of file while reading data.')
    monkeypatch.setattr(_client.Client, 'find_snapshot', find_until_the_connection_drops)
    monkeypatch.setattr(_client.Client, 'create_snapshot', drop)
    result = run(name='race')
    assert result['failed'] is True
    assert result['msg'] == 'Could not create snapshot: End of file while reading data.'
    assert lookups == ['race', 'race']


def test_delete_whose_parent_another_run_deletes_meanwhile(run, testhost, monkeypatch):
    create_directly(testhost, 'parent', 'p')
    create_directly(testhost, 'child', 'c')
    real_find = _client.Client.find_snapshot

    def parent_deleted_first(self, dom, name):
        if name == 'parent':
            testhost.conn.lookupByName('web01').snapshotLookupByName('parent', 0).delete(0)
        return real_find(self, dom, name)
    monkeypatch.setattr(_client.Client, 'find_snapshot', parent_deleted_first)
    result = run(name='child', state='absent')
    assert not result.get('failed'), result.get('msg')
    assert result['changed'] is True and result['deleted'] == ['child']
    assert testhost.snapshot_names('web01') == []


def test_delete_whose_parent_another_run_deletes_between_its_lookup_and_its_description(run, testhost, monkeypatch):
    create_directly(testhost, 'parent', 'p')
    create_directly(testhost, 'child', 'c')
    real_describe = _client.Client.describe_snapshot

    def parent_deleted_while_described(self, snap, xml=None):
        if snap.getName() == 'parent':
            testhost.conn.lookupByName('web01').snapshotLookupByName('parent', 0).delete(0)
        return real_describe(self, snap, xml)
    monkeypatch.setattr(_client.Client, 'describe_snapshot', parent_deleted_while_described)
    result = run(name='child', state='absent')
    assert not result.get('failed'), result.get('msg')
    assert result['changed'] is True and result['deleted'] == ['child']
    assert testhost.snapshot_names('web01') == []


def test_delete_of_a_snapshot_another_run_deletes_while_this_one_reads_it(run, testhost, monkeypatch):
    create_directly(testhost, 'race', 'doomed')
    real_describe = _client.Client.describe_snapshot
    pending = [True]

    def deleted_while_described(self, snap, xml=None):
        if pending and snap.getName() == 'race':
            pending.pop()
            testhost.conn.lookupByName('web01').snapshotLookupByName('race', 0).delete(0)
        return real_describe(self, snap, xml)
    monkeypatch.setattr(_client.Client, 'describe_snapshot', deleted_while_described)
    result = run(name='race', state='absent')
    assert not result.get('failed'), result.get('msg')
    assert (result['changed'], result['snapshot']) == (False, None)
