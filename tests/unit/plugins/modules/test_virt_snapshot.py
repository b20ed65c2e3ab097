# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Unit tests of vmsnap.libvirt.virt_snapshot: main() in-process against libvirt's test driver.

The daemon-backed behaviour (real files, data, external snapshots) is tested by tests/integration/targets/virt_snapshot.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import libvirt
import pytest

from ansible_collections.vmsnap.libvirt.plugins.module_utils import _model
from ansible_collections.vmsnap.libvirt.plugins.modules import virt_snapshot

UNREACHABLE_URI = 'qemu:///system?socket=/nonexistent/vmsnap-unit.sock'

RESULT_KEYS = set(['changed', 'snapshot', 'domain_state', 'deleted', 'merged', 'diff'])
SNAPSHOT_KEYS = set(['name', 'domain', 'description', 'state', 'creation_time', 'creation_time_iso', 'parent',
                     'children', 'is_current', 'location', 'memory', 'disks', 'consistency'])
WEB01_DISKS = [{'name': 'vda', 'snapshot': 'internal', 'file': None}, {'name': 'hdc', 'snapshot': 'no', 'file': None}]


@pytest.fixture
def run(run_module, testhost):
    """Run virt_snapshot on the test host: run(name=..., **options) -> result."""
    def run_on_testhost(check_mode=False, **options):
        args = dict(uri=testhost.uri, domain='web01')
        args.update(options)
        return run_module(virt_snapshot.main, args, check_mode=check_mode)
    return run_on_testhost


def ok(result):
    assert not result.get('failed'), result.get('msg')
    return result


def failed(result):
    assert result.get('failed') is True, result
    return result['msg']


def description_of(testhost, domain, name):
    xml = testhost.conn.lookupByName(domain).snapshotLookupByName(name, 0).getXMLDesc(0)
    return _model.parse_snapshot(xml, domain)['description']


# -- create, idempotency, check mode ----------------------------------------------------------------------------------

def test_create_then_nothing_to_do(run, testhost):
    created = ok(run(name='before', description='Before the upgrade'))
    assert created['changed'] is True
    assert set(created) == RESULT_KEYS
    snapshot = created['snapshot']
    assert set(snapshot) == SNAPSHOT_KEYS
    assert isinstance(snapshot['creation_time'], int) and snapshot['creation_time_iso'].endswith('Z')
    assert dict(snapshot, creation_time=None, creation_time_iso=None) == {
        'name': 'before', 'domain': 'web01', 'description': 'Before the upgrade', 'state': 'running',
        'creation_time': None, 'creation_time_iso': None, 'parent': None, 'children': [], 'is_current': True,
        'location': 'internal', 'memory': {'snapshot': 'internal', 'file': None}, 'disks': WEB01_DISKS,
        'consistency': 'memory',
    }
    assert (created['domain_state'], created['deleted'], created['merged']) == ('running', [], [])
    assert created['diff']['before'] == {'exists': False}
    assert created['diff']['after'] == {
        'exists': True, 'description': 'Before the upgrade', 'parent': None, 'children': [], 'location': 'internal',
        'memory': {'snapshot': 'internal', 'file': None}, 'disks': WEB01_DISKS, 'is_current': True,
    }
    assert testhost.snapshot_names('web01') == ['before']

    again = ok(run(name='before', description='Before the upgrade'))
    assert again['changed'] is False
    assert again['snapshot'] == snapshot
    assert again['diff']['before'] == again['diff']['after'] == created['diff']['after']

    again_in_check_mode = ok(run(check_mode=True, name='before', description='Before the upgrade'))
    assert again_in_check_mode['changed'] is False
    assert again_in_check_mode['snapshot'] == snapshot
    assert testhost.snapshot_names('web01') == ['before']
    assert testhost.opened == [testhost.uri] * 3


def _shut_off(testhost):
    testhost.conn.lookupByName('web01').destroy()


def _paused(testhost):
    testhost.conn.lookupByName('web01').suspend()


def _with_base_snapshot(testhost):
    testhost.conn.lookupByName('web01').snapshotCreateXML('<domainsnapshot><name>base</name></domainsnapshot>', 0)


@pytest.mark.parametrize('prepare, options', [
    (None, {}),
    (None, {'description': u'a<b>&c"d\'e ]]> \u540d\u524d \U0001F600\n\tsecond line'}),
    (_shut_off, {}),
    (_paused, {'memory': True}),
    (_with_base_snapshot, {'location': 'internal'}),
    (None, {'disks': [{'name': 'hdc', 'snapshot': 'no'}, {'name': 'vda', 'snapshot': 'internal'}]}),
])
def test_check_mode_predicts_the_real_run(run, testhost, prepare, options):
    if prepare:
        prepare(testhost)
    existing = testhost.snapshot_names(options.get('domain', 'web01'))
    check = ok(run(check_mode=True, name=u'n\u00e4me <&>', **options))
    assert check['changed'] is True
    assert testhost.snapshot_names(options.get('domain', 'web01')) == existing  # nothing created

    real = ok(run(name=u'n\u00e4me <&>', **options))
    assert real['changed'] is True
    assert set(check) == set(real) == RESULT_KEYS
    assert check['diff'] == real['diff']
    assert check['snapshot'] == dict(real['snapshot'], creation_time=None, creation_time_iso=None)
    assert (check['domain_state'], check['deleted'], check['merged']) == (real['domain_state'], [], [])
    assert testhost.snapshot_names(options.get('domain', 'web01')) == sorted(existing + [u'n\u00e4me <&>'])


def test_a_request_that_cannot_work_fails_before_anything_changes(run, testhost):
    # db01's vdb is raw: no internal snapshot, and this host cannot revert external ones
    message = failed(run(domain='db01', name='snap'))
    assert "disk 'vdb' (raw /var/lib/libvirt/images/db01-data.raw) cannot take an internal snapshot" in message
    assert testhost.snapshot_names('db01') == []
    # and leaving it out does not make an internal snapshot possible: libvirt would refuse it
    message = failed(run(check_mode=True, domain='db01', name='snap', disks=[{'name': 'vdb', 'snapshot': 'no'}]))
    assert message.startswith("libvirt cannot leave disk 'vdb' out of an internal snapshot of domain 'db01'")
    assert testhost.snapshot_names('db01') == []


def test_a_libvirt_failure_is_a_message_without_internal_details(run, testhost):
    # the test driver refuses disk-only snapshots: libvirt's own error, through the one exit path
    result = run(name='disk-only', location='external', memory=False)
    assert failed(result) == ("Could not create snapshot 'disk-only' of domain 'web01' on %s: unsupported flags "
                              '(0x10) in function testDomainSnapshotCreateXML.' % testhost.uri)
    assert 'libvirt_error_code' not in result and 'exception' not in result
    assert testhost.snapshot_names('web01') == []


# -- description ------------------------------------------------------------------------------------------------------

def test_description_update_is_a_redefine(run, testhost):
    created = ok(run(name='before', description='old'))

    check = ok(run(check_mode=True, name='before', description=u'new <\u00e9>'))
    assert check['changed'] is True
    assert description_of(testhost, 'web01', 'before') == 'old'

    updated = ok(run(name='before', description=u'new <\u00e9>'))
    assert updated['changed'] is True
    assert updated['snapshot'] == dict(created['snapshot'], description=u'new <\u00e9>')
    assert (updated['diff']['before']['description'], updated['diff']['after']['description']) == \
        ('old', u'new <\u00e9>')
    assert check['diff'] == updated['diff'] and check['snapshot'] == updated['snapshot']
    assert description_of(testhost, 'web01', 'before') == u'new <\u00e9>'

    assert ok(run(name='before', description=u'new <\u00e9>'))['changed'] is False
    kept = ok(run(name='before'))
    assert (kept['changed'], kept['snapshot']['description']) == (False, u'new <\u00e9>')

    removed = ok(run(name='before', description=''))
    assert (removed['changed'], removed['snapshot']['description']) == (True, None)
    assert description_of(testhost, 'web01', 'before') is None


def test_description_with_a_carriage_return_is_refused_before_anything_changes(run, testhost):
    # libvirt would store it as a newline, and every later run would "update" it again
    message = failed(run(name='before', description='line\r\nbreak'))
    assert message.startswith('The description contains characters XML cannot carry (U+000D).')
    assert testhost.snapshot_names('web01') == []


def test_options_that_shape_a_new_snapshot_warn_on_an_existing_one(run, run_module):
    ok(run(name='before'))
    result = ok(run(name='before', memory=False))
    assert result['changed'] is False
    assert run_module.warnings == [
        "Snapshot 'before' of domain 'web01' already exists; memory=False (it has memory) only apply when a snapshot "
        'is created, so it was left as it is. Delete it first (state=absent) or choose another name to take a new one.']


# -- absent -----------------------------------------------------------------------------------------------------------

def test_absent_missing_is_ok(run):
    result = ok(run(name='never', state='absent'))
    assert (result['changed'], result['snapshot'], result['deleted']) == (False, None, [])
    assert result['diff'] == {'before': {'exists': False}, 'after': {'exists': False}}


def test_absent_deletes_in_check_mode_and_for_real(run, testhost):
    created = ok(run(name='before'))
    check = ok(run(check_mode=True, name='before', state='absent'))
    assert (check['changed'], check['deleted'], check['snapshot']) == (True, ['before'], None)
    assert testhost.snapshot_names('web01') == ['before']

    deleted = ok(run(name='before', state='absent'))
    assert (deleted['changed'], deleted['deleted'], deleted['snapshot']) == (True, ['before'], None)
    assert deleted['diff'] == check['diff'] == {'before': created['diff']['after'], 'after': {'exists': False}}
    assert testhost.snapshot_names('web01') == []
    assert ok(run(name='before', state='absent'))['changed'] is False


@pytest.mark.parametrize('options, deleted, kept', [
    ({'children': True}, ['a', 'b', 'c'], []),
    ({'children_only': True}, ['b', 'c'], ['a']),
    ({'children': True, 'force': True}, ['a', 'b', 'c'], []),
    ({'children_only': True, 'force': True}, ['b', 'c'], ['a']),
])
def test_absent_subtree_needs_no_force(run, testhost, options, deleted, kept):
    # Naming children or children_only is the request to delete what is below (libvirt's DELETE_CHILDREN).
    for name in ('a', 'b', 'c'):
        ok(run(name=name))
    check = ok(run(check_mode=True, name='a', state='absent', **options))
    assert (check['changed'], check['deleted']) == (True, deleted)
    assert testhost.snapshot_names('web01') == ['a', 'b', 'c']

    result = ok(run(name='a', state='absent', **options))
    assert (result['changed'], result['deleted']) == (True, deleted)
    assert result['diff'] == check['diff']
    assert testhost.snapshot_names('web01') == kept

    again = ok(run(name='a', state='absent', **options))
    again_check = ok(run(check_mode=True, name='a', state='absent', **options))
    assert (again['changed'], again['deleted'], again_check['changed'], again_check['deleted']) == \
        (False, [], False, [])
    assert testhost.snapshot_names('web01') == kept


def test_absent_children_only_of_a_leaf_is_ok(run, testhost):
    ok(run(name='leaf'))
    result = ok(run(name='leaf', state='absent', children_only=True))
    assert (result['changed'], result['deleted'], result['snapshot']['name']) == (False, [], 'leaf')
    assert testhost.snapshot_names('web01') == ['leaf']


# -- reverted ---------------------------------------------------------------------------------------------------------

def test_reverted_missing_fails_listing_the_snapshots(run, testhost):
    assert failed(run(name='nope', state='reverted')) == (
        "Snapshot 'nope' of domain 'web01' does not exist, so there is nothing to revert to. The domain has no "
        'snapshots. Check the name (snapshot names are case-sensitive).')
    ok(run(name='b'))
    ok(run(name='a'))
    assert failed(run(name='A', state='reverted')) == (
        "Snapshot 'A' of domain 'web01' does not exist, so there is nothing to revert to. The domain has these "
        'snapshots: a, b. Check the name (snapshot names are case-sensitive).')


@pytest.mark.parametrize('revert_state, state_after', [('snapshot', 'running'), ('paused', 'paused')])
def test_reverted_in_check_mode_and_for_real(run, testhost, revert_state, state_after):
    ok(run(name='live'))
    ok(run(name='later'))
    domain = testhost.conn.lookupByName('web01')
    domain.suspend()

    check = ok(run(check_mode=True, name='live', state='reverted', revert_state=revert_state))
    assert (check['changed'], check['domain_state']) == (True, state_after)
    assert domain.state()[0] == libvirt.VIR_DOMAIN_PAUSED
    assert domain.snapshotCurrent(0).getName() == 'later'

    reverted = ok(run(name='live', state='reverted', revert_state=revert_state))
    assert (reverted['changed'], reverted['domain_state'], reverted['snapshot']['is_current']) == \
        (True, state_after, True)
    assert check['diff'] == reverted['diff']
    assert (reverted['diff']['before']['domain_state'], reverted['diff']['after']['domain_state']) == \
        ('paused', state_after)
    assert domain.snapshotCurrent(0).getName() == 'live'
    # a revert is always a change
    assert ok(run(name='live', state='reverted', revert_state=revert_state))['changed'] is True


# -- bad input: a clear message, and nothing touched ------------------------------------------------------------------

@pytest.mark.parametrize('options, message', [
    ({'state': 'present', 'children': True},
     'children only applies to state=absent, not to state=present. Remove it from the task.'),
    ({'state': 'absent', 'description': 'x'},
     'description only applies to state=present, not to state=absent. Remove it from the task.'),
    ({'state': 'present', 'revert_state': 'running'},
     'revert_state only applies to state=reverted, not to state=present. Remove it from the task.'),
    ({'state': 'reverted', 'memory': True},
     'memory only applies to state=present, not to state=reverted. Remove it from the task.'),
    ({'state': 'present', 'force': True},
     'force only applies to state=absent or state=merged or state=reverted, not to state=present. Remove it from '
     'the task.'),
    ({'state': 'absent', 'children': True, 'children_only': True},
     'parameters are mutually exclusive: children|children_only'),
    ({'lock_timeout': -1}, 'lock_timeout must be 0 or more seconds; it is -1.0.'),
    ({'name': ''}, 'The snapshot name must not be empty.'),
    ({'name': 'a/b'}, "The snapshot name 'a/b' is not valid: it contains '/'"),
    ({'name': 'two\nlines'}, "The snapshot name 'two\\nlines' is not valid: it contains a control character"),
    ({'name': 'x' * 248}, 'is not valid: it is 248 bytes long in UTF-8 (at most 247 are allowed'),
    ({'name': '.hidden'}, "The snapshot name '.hidden' is not valid: it starts with '.'"),
    ({'description': 'bell\x07'}, 'The description contains characters XML cannot carry (U+0007).'),
])
def test_bad_input_fails_before_connecting(run_module, connection_attempts, options, message):
    args = dict(uri=UNREACHABLE_URI, domain='web01', name='snap')
    args.update(options)
    assert message in failed(run_module(virt_snapshot.main, args))
    assert connection_attempts == []


def test_an_unreachable_uri_is_named(run_module, connection_attempts):
    # the control for the test above: with valid input the module does try to connect, and says where it failed
    result = run_module(virt_snapshot.main, dict(uri=UNREACHABLE_URI, domain='web01', name='snap'))
    assert failed(result).startswith('Could not connect to libvirt at %s: ' % UNREACHABLE_URI)
    assert result['uri'] == UNREACHABLE_URI
    assert connection_attempts == [UNREACHABLE_URI]


def test_unknown_domain(run):
    assert failed(run(domain='nope', name='snap')).startswith("Domain 'nope' does not exist on ")
