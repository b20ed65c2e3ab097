# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Unit tests of vmsnap.libvirt.virt_snapshot at fleet scale: domains (names and globs, the pool, partial failure),
consistency=group (pause, take, resume, also when a snapshot fails), and state=absent with pattern/all/keep_newest.
main() runs in-process on libvirt's test driver with fixtures/fleet.xml; the daemon-backed behaviour is tested by
tests/integration/targets/virt_snapshot_fleet."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import libvirt
import pytest

from ansible_collections.vmsnap.libvirt.plugins.module_utils import _client, _model
from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError
from ansible_collections.vmsnap.libvirt.plugins.modules import virt_snapshot
from ansible_collections.vmsnap.libvirt.tests.unit.plugins.modules.conftest import SharedHost

FLEET_XML = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'fixtures', 'fleet.xml')
UNREACHABLE_URI = 'qemu:///system?socket=/nonexistent/vmsnap-unit.sock'
RESULT_KEYS = set(['changed', 'snapshot', 'domain_state', 'deleted', 'merged', 'diff'])


@pytest.fixture
def fleet(monkeypatch):
    """fixtures/fleet.xml on the test driver, one connection kept for the whole test (see conftest.SharedHost)."""
    uri = 'test://' + FLEET_XML
    host = SharedHost(libvirt.open(uri), uri)
    monkeypatch.setattr(_client.libvirt, 'open', host.open)
    yield host
    host.conn.close()


@pytest.fixture
def run(run_module, fleet):
    def run_on_fleet(check_mode=False, **options):
        args = dict(uri=fleet.uri)
        args.update(options)
        return run_module(virt_snapshot.main, args, check_mode=check_mode)
    return run_on_fleet


def ok(result):
    assert not result.get('failed'), result.get('msg')
    return result


def failed(result):
    assert result.get('failed') is True, result
    return result['msg']


def state_of(fleet, name):
    return {libvirt.VIR_DOMAIN_RUNNING: 'running', libvirt.VIR_DOMAIN_PAUSED: 'paused',
            libvirt.VIR_DOMAIN_SHUTOFF: 'shutoff'}[fleet.conn.lookupByName(name).state()[0]]


def recorded_state(fleet, domain, snapshot):
    xml = fleet.conn.lookupByName(domain).snapshotLookupByName(snapshot, 0).getXMLDesc(0)
    return _model.parse_snapshot(xml, domain)['state']


def by_domain(result):
    return dict((item['domain'], item) for item in result['results'])


# -- domains: one task, many domains ------------------------------------------------------------------------------

def test_domains_create_check_real_idempotent(run, fleet):
    options = dict(domains=['app*', 'db1'], name='before')
    check = ok(run(check_mode=True, **options))
    assert check['changed'] is True
    assert [item['domain'] for item in check['results']] == ['app1', 'app2', 'db1']
    assert all(fleet.snapshot_names(name) == [] for name in ('app1', 'app2', 'db1'))

    real = ok(run(**options))
    assert real['changed'] is True
    assert set(real) == set(['changed', 'results', 'diff'])
    assert check['diff'] == real['diff']
    assert sorted(real['diff']['after']) == ['app1', 'app2', 'db1']
    for item in real['results']:
        # exactly what domain mode returns, plus the domain's name
        assert set(item) == RESULT_KEYS | set(['domain'])
        assert item['snapshot']['domain'] == item['domain'] and item['snapshot']['state'] == 'running'
        assert item['diff'] == {'before': real['diff']['before'][item['domain']],
                                'after': real['diff']['after'][item['domain']]}
        assert fleet.snapshot_names(item['domain']) == ['before']
    predicted = by_domain(check)
    for item in real['results']:
        assert predicted[item['domain']]['snapshot'] == dict(item['snapshot'], creation_time=None,
                                                             creation_time_iso=None)
    assert fleet.snapshot_names('spare') == []

    again = ok(run(**options))
    assert again['changed'] is False
    assert [item['changed'] for item in again['results']] == [False] * 3
    again_check = ok(run(check_mode=True, **options))
    assert again_check['changed'] is False


def test_the_single_domain_result_is_unchanged(run):
    result = ok(run(domain='app1', name='before'))
    assert set(result) == RESULT_KEYS


@pytest.mark.parametrize('parallel', [1, 3])
def test_one_failing_domain_does_not_stop_the_others(run, fleet, parallel):
    # spare's disk is raw: no internal snapshot; 'gone' does not exist
    result = run(domains=['gone', 'spare', 'app1', 'app2'], name='before', location='internal', parallel=parallel)
    message = failed(result)
    assert message.startswith('Failed on 2 of 4 domains (gone, spare); the other 2 were handled, see results. ')
    assert "gone: Domain 'gone' does not exist" in message
    assert "spare: Cannot snapshot domain 'spare': disk 'vda' (raw /var/lib/libvirt/images/spare.img) cannot take an " \
           'internal snapshot' in message
    assert result['changed'] is True
    entries = by_domain(result)
    assert entries['gone']['failed'] is True and entries['gone']['changed'] is False
    assert entries['spare']['msg'].startswith("Cannot snapshot domain 'spare'")
    assert entries['app1']['changed'] is True and 'failed' not in entries['app1']
    assert fleet.snapshot_names('app1') == fleet.snapshot_names('app2') == ['before']
    assert fleet.snapshot_names('spare') == []


def test_a_glob_that_matches_nothing_is_a_warning(run, run_module):
    result = ok(run(domains=['web*', 'app1'], name='before'))
    assert [item['domain'] for item in result['results']] == ['app1']
    assert run_module.warnings == ["The pattern 'web*' in domains matches no domain on test://%s; it was skipped. "
                                   'Check it with `virsh list --all`; patterns are case-sensitive.' % FLEET_XML]


def test_domain_warnings_name_their_domain(run, run_module):
    ok(run(domains=['app1', 'db1'], name='before'))
    ok(run(domains=['app1', 'db*'], name='before', memory=False))
    assert [warning.split(':')[0] for warning in run_module.warnings] == ["Domain 'app1'", "Domain 'db1'"]
    assert run_module.warnings[1].startswith("Domain 'db1': Snapshot 'before' of domain 'db1' already exists; ")


def test_domains_revert(run, fleet):
    ok(run(domains=['app*'], name='before'))
    fleet.conn.lookupByName('app2').suspend()
    reverted = ok(run(domains=['app*'], name='before', state='reverted'))
    assert [item['domain_state'] for item in reverted['results']] == ['running', 'running']
    assert state_of(fleet, 'app2') == 'running'
    missing = run(domains=['app*', 'db1'], name='before', state='reverted')
    assert failed(missing).startswith('Failed on 1 of 3 domains (db1); the other 2 were handled')


# -- consistency: group -------------------------------------------------------------------------------------------

def test_group_pauses_takes_resumes_and_records_running(run, fleet):
    fleet.conn.lookupByName('db1').suspend()  # paused by someone else: left paused, records 'paused'
    check = ok(run(check_mode=True, domains=['app*', 'db1'], name='set', consistency='group'))
    assert check['group'] == {'paused': ['app1', 'app2'], 'resumed': ['app1', 'app2'], 'frozen': [], 'thawed': [],
                              'seconds': {'app1': None, 'app2': None}}
    assert fleet.snapshot_names('app1') == []

    taken = ok(run(domains=['app*', 'db1'], name='set', consistency='group'))
    assert dict(taken['group'], seconds=None) == {'paused': ['app1', 'app2'], 'resumed': ['app1', 'app2'],
                                                  'frozen': [], 'thawed': [], 'seconds': None}
    assert sorted(taken['group']['seconds']) == ['app1', 'app2']
    assert check['diff'] == taken['diff']
    assert [(item['domain'], item['snapshot']['state'], item['domain_state']) for item in taken['results']] == [
        ('app1', 'running', 'running'), ('app2', 'running', 'running'), ('db1', 'paused', 'paused')]
    assert [(state_of(fleet, name), recorded_state(fleet, name, 'set')) for name in ('app1', 'app2', 'db1')] == [
        ('running', 'running'), ('running', 'running'), ('paused', 'paused')]

    # reverting to a snapshot the group took resumes the domain, as for any memory snapshot of a running domain
    fleet.conn.lookupByName('app1').suspend()
    ok(run(domain='app1', name='set', state='reverted'))
    assert state_of(fleet, 'app1') == 'running'

    again = ok(run(domains=['app*', 'db1'], name='set', consistency='group'))
    assert again['changed'] is False
    assert again['group'] == {'paused': [], 'resumed': [], 'frozen': [], 'thawed': [], 'seconds': {}}


def test_group_resumes_everything_when_a_snapshot_fails(run, fleet, monkeypatch):
    real_create = _client.Client.create_snapshot
    paused_when_taken = []

    def create_failing_on_app2(self, dom, xml, flags, name):
        paused_when_taken.append((dom.name(), state_of(fleet, dom.name())))
        if dom.name() == 'app2' and 'redefine' not in flags:
            raise SnapshotError("Could not create snapshot 'set' of domain 'app2': injected failure.")
        return real_create(self, dom, xml, flags, name)

    monkeypatch.setattr(_client.Client, 'create_snapshot', create_failing_on_app2)
    result = run(domains=['app1', 'app2', 'db1'], name='set', consistency='group', parallel=1)
    message = failed(result)
    assert message.startswith('Failed on 1 of 3 domains (app2); the other 2 were handled, see results. app2: ')
    assert dict(result['group'], seconds=None) == {'paused': ['app1', 'app2', 'db1'], 'resumed': ['app1', 'app2', 'db1'],
                                                   'frozen': [], 'thawed': [], 'seconds': None}
    # every domain was paused while the snapshots were taken, and none is paused now
    assert set(state for dummy, state in paused_when_taken) == set(['paused'])
    assert [state_of(fleet, name) for name in ('app1', 'app2', 'db1')] == ['running'] * 3
    assert fleet.snapshot_names('app1') == fleet.snapshot_names('db1') == ['set']
    assert fleet.snapshot_names('app2') == []
    assert result['changed'] is True


def test_group_takes_nothing_when_a_domain_cannot_be_snapshotted(run, fleet, monkeypatch):
    pauses = []
    monkeypatch.setattr(_client.Client, 'suspend', lambda self, dom: pauses.append(dom.name()))
    result = run(domains=['app*', 'spare'], name='set', consistency='group')
    message = failed(result)
    assert message.startswith('Failed on 1 of 3 domains (spare); no other domain was handled. Skipped app1, app2: '
                              'consistency: group takes the snapshots of every domain or of none, and spare cannot be '
                              'snapshotted; nothing was paused or taken.')
    assert pauses == []
    assert result['group'] == {'paused': [], 'resumed': [], 'frozen': [], 'thawed': [], 'seconds': {}}
    assert [by_domain(result)[name].get('skipped') for name in ('app1', 'app2')] == [True, True]
    assert fleet.snapshot_names('app1') == []


# -- state=absent with pattern, all and keep_newest ---------------------------------------------------------------

def _chain(fleet, domain, names):
    dom = fleet.conn.lookupByName(domain)
    for name in names:
        dom.snapshotCreateXML('<domainsnapshot><name>%s</name></domainsnapshot>' % name, 0)


def test_retention_keeps_the_newest_matches_and_never_touches_others(run, fleet):
    # one chain, all taken within the same second or so: the deeper one is the newer one
    for domain in ('app1', 'app2'):
        _chain(fleet, domain, ['auto-1', 'auto-2', 'by-hand', 'auto-3', 'auto-4'])
    options = dict(domains=['app*'], state='absent', pattern='auto-*', keep_newest=2)
    check = ok(run(check_mode=True, **options))
    assert [(item['deleted'], item['kept']) for item in check['results']] == [
        (['auto-2', 'auto-1'], ['auto-4', 'auto-3'])] * 2
    assert fleet.snapshot_names('app1') == ['auto-1', 'auto-2', 'auto-3', 'auto-4', 'by-hand']

    real = ok(run(**options))
    assert real['changed'] is True
    assert real['diff'] == check['diff']
    assert real['diff']['before']['app1'] == {'snapshots': ['auto-1', 'auto-2', 'by-hand', 'auto-3', 'auto-4']}
    assert real['diff']['after']['app1'] == {'snapshots': ['by-hand', 'auto-3', 'auto-4']}
    assert fleet.snapshot_names('app1') == fleet.snapshot_names('app2') == ['auto-3', 'auto-4', 'by-hand']
    # the kept child was re-parented, not deleted
    by_hand = fleet.conn.lookupByName('app1').snapshotLookupByName('by-hand', 0)
    assert _model.parse_snapshot(by_hand.getXMLDesc(0), 'app1')['parent'] is None

    again = ok(run(**options))
    assert again['changed'] is False
    assert [item['deleted'] for item in again['results']] == [[], []]
    assert ok(run(check_mode=True, **options))['changed'] is False


def test_all_deletes_every_snapshot_children_first(run, fleet):
    _chain(fleet, 'db1', ['a', 'b', 'c'])
    result = ok(run(domain='db1', state='absent', all=True))
    assert set(result) == RESULT_KEYS | set(['kept'])
    assert (result['deleted'], result['kept'], result['snapshot']) == (['c', 'b', 'a'], [], None)
    assert fleet.snapshot_names('db1') == []
    assert ok(run(domain='db1', state='absent', all=True))['changed'] is False


# -- options: clear errors before anything connects ---------------------------------------------------------------

@pytest.mark.parametrize('options, message', [
    (dict(name='s'), 'one of the following is required: domain, domains'),
    (dict(domain='a', domains=['b'], name='s'), 'parameters are mutually exclusive: domain|domains'),
    (dict(domain='a'), 'state=present needs name: the snapshot to create.'),
    (dict(domain='a', state='absent'), 'state=absent needs name: the snapshot to delete. To delete many, set pattern'),
    (dict(domain='a', name='s', state='absent', pattern='x*'), 'name deletes one snapshot, pattern many; set one'),
    (dict(domain='a', state='absent', pattern='x*', all=True), 'all: true deletes every snapshot and pattern'),
    (dict(domain='a', state='absent', pattern='x*', children=True),
     'children cannot be combined with pattern: it deletes exactly the snapshots it selects'),
    (dict(domain='a', state='absent', all=True, force=True), 'force cannot be combined with all'),
    (dict(domain='a', state='absent', name='s', keep_newest=2), 'keep_newest keeps the newest of the snapshots'),
    (dict(domain='a', state='absent', pattern='x*', keep_newest=-1), 'keep_newest must be 0 or more; it is -1.'),
    (dict(domain='a', state='absent', pattern=''), 'pattern must not be empty'),
    (dict(domain='a', pattern='x*'), 'pattern only applies to state=absent, not to state=present.'),
    (dict(domain='a', name='s', state='reverted', all=True), 'all only applies to state=absent'),
    (dict(domain='a', name='s', consistency='group'), 'consistency: group takes the snapshots of a set of domains'),
    (dict(domains=['a'], name='s', state='absent', consistency='group'),
     'consistency only applies to state=present, not to state=absent.'),
    (dict(domains=['a'], name='s', parallel=0), 'parallel must be 1 or more; it is 0.'),
    (dict(domains=[], name='s'), 'domains must list domain names or glob patterns'),
    (dict(domains=['a', ''], name='s'), 'domains must list domain names or glob patterns'),
    (dict(domains=['a*'], name='s', memory_file='/tmp/m'), 'memory_file names one file, but domains takes a snapshot'),
    (dict(domains=['a*'], name='s', location='external', disks=[{'name': 'vda', 'file': '/tmp/o'}]),
     'disks[].file names one file'),
    (dict(domains=['a*'], name='s', xml='<domainsnapshot/>', redefine=True), "xml holds one domain's snapshot"),
])
def test_bad_combinations_fail_before_connecting(run_module, connection_attempts, options, message):
    args = dict(uri=UNREACHABLE_URI)
    args.update(options)
    assert message in failed(run_module(virt_snapshot.main, args))
    assert connection_attempts == []
