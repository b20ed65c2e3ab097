# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Unit tests of the virt_start_from_snapshot module's flow (read once, plan, act unless in check mode, one result)
on libvirt's test driver, in one process: the check-mode run, the real run and the repeats share one connection, so
the repeats see what the real run did."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.vmsnap.libvirt.plugins.module_utils import _client
from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError
from ansible_collections.vmsnap.libvirt.plugins.modules import virt_start_from_snapshot

DEFAULTS = dict(domain='web01', name='good', state='running', force=False, preserve_current=None, wait=60,
                reset_nvram=False)
CREATION_TIMES = ('creation_time', 'creation_time_iso')


class DummyModule:
    """What start() uses of an AnsibleModule."""

    def __init__(self, check_mode=False, **params):
        self.params = dict(DEFAULTS, **params)
        self.check_mode = check_mode
        self._diff = True
        self.warnings = []

    def warn(self, warning):
        self.warnings.append(warning)


@pytest.fixture
def client(testhost_uri):
    client = _client.Client(uri=testhost_uri)
    yield client
    client.close()


@pytest.fixture
def web01(client):
    """web01 runs (ID 1) and has the snapshot 'good', taken while it ran, which is current."""
    dom = client.domain('web01')
    dom.snapshotCreateXML('<domainsnapshot><name>good</name></domainsnapshot>', 0)
    return dom


def start(client, check_mode=False, **params):
    return virt_start_from_snapshot.start(DummyModule(check_mode, **params), client)


def looks(client, dom):
    """What a refusal must leave as it was."""
    return client.domain_state(dom), client.domain_id(dom), client.snapshot_names(dom), client.domain_metadata(dom)


def without(snapshot, keys=CREATION_TIMES):
    return None if snapshot is None else dict((key, value) for key, value in snapshot.items() if key not in keys)


def test_a_running_domain_is_refused_in_check_mode_and_for_real(client, web01):
    before = looks(client, web01)
    for check_mode in (True, False):
        with pytest.raises(SnapshotError) as caught:
            start(client, check_mode)
        assert "Domain 'web01' is running (ID 1)" in caught.value.msg
        assert caught.value.details == {'domain_state': 'running', 'domain_id': 1}
        assert looks(client, web01) == before


def test_preserve_current_check_real_repeat_and_repeat_in_check_mode(client, web01):
    before = looks(client, web01)
    check = start(client, True, preserve_current='crash-1')
    assert looks(client, web01) == before  # check mode changed nothing

    real = start(client, preserve_current='crash-1')
    repeat = start(client, preserve_current='crash-1')
    repeat_check = start(client, True, preserve_current='crash-1')

    assert check['changed'] and real['changed']
    assert not repeat['changed'] and not repeat_check['changed']
    assert check['diff'] == real['diff']
    assert repeat['diff'] == repeat_check['diff']
    assert repeat['diff']['before'] == repeat['diff']['after'] == real['diff']['after']
    assert sorted(check) == sorted(real) == sorted(repeat) == sorted(repeat_check) == [
        'changed', 'clock', 'diff', 'domain_id', 'domain_state', 'preserved', 'started_from']

    # check mode predicted the real run, except what libvirt only decides while acting
    assert check['domain_state'] == real['domain_state'] == 'running'
    assert check['started_from'] == real['started_from']
    assert without(check['preserved']) == without(real['preserved'])
    assert check['domain_id'] is None
    assert check['preserved']['creation_time'] is None

    assert real['domain_id'] not in (None, 1)  # started again: a new QEMU process
    assert real['started_from']['is_current']
    assert real['started_from']['children'] == ['crash-1']
    assert real['preserved']['name'] == 'crash-1'
    assert real['preserved']['parent'] == 'good'
    assert real['preserved']['memory']['snapshot'] == 'internal'
    assert isinstance(real['preserved']['creation_time'], int)
    assert not real['preserved']['is_current']

    for again in (repeat, repeat_check):
        assert again['domain_id'] == real['domain_id']
        assert again['started_from'] == real['started_from']
        assert again['preserved'] == real['preserved']
        assert again['domain_state'] == 'running'


def test_state_paused_then_running_only_resumes(client, web01):
    paused = start(client, state='paused', force=True)
    assert paused['changed'] and paused['domain_state'] == 'paused'
    assert client.domain_state(web01) == 'paused'
    resumed = start(client)
    assert resumed['changed']
    assert resumed['domain_id'] == paused['domain_id']
    assert resumed['diff'] == {'before': {'domain_state': 'paused', 'started_from': 'good', 'preserved': None},
                               'after': {'domain_state': 'running', 'started_from': 'good', 'preserved': None}}
    assert client.domain_state(web01) == 'running'
    assert not start(client)['changed']


def test_a_shut_off_domain_is_started(client, web01):
    web01.destroy()
    started = start(client, True)
    assert started['changed'] and started['domain_id'] is None
    assert client.domain_state(web01) == 'shutoff'
    started = start(client)
    assert started['changed']
    assert client.domain_state(web01) == 'running'
    record = {'snapshot': 'good', 'domain_id': started['domain_id'], 'preserved': None}
    assert client.read_domain(web01)['start_record'] == record


def test_a_missing_snapshot_fails_listing_the_ones_that_exist(client, web01):
    with pytest.raises(SnapshotError) as caught:
        start(client, name='nope', force=True)
    assert caught.value.msg == ("Snapshot 'nope' of domain 'web01' does not exist, so there is nothing to start from. "
                                'The domain has these snapshots: good. Check the name (snapshot names are '
                                'case-sensitive).')


@pytest.mark.parametrize('params, message', [
    (dict(preserve_current='good'), "preserve_current names a new snapshot to save the current state in; it cannot "
                                    "be the snapshot 'good' the domain is started from. Choose another name."),
    (dict(preserve_current='a/b'), "The snapshot preserve_current 'a/b' is not valid"),
    (dict(wait=-1.0), 'wait must be 0 or more seconds; it is -1.0.'),
])
def test_bad_options_are_refused_before_libvirt_is_asked(params, message):
    with pytest.raises(SnapshotError) as caught:
        virt_start_from_snapshot.check_options(dict(DEFAULTS, **params))
    assert caught.value.msg.startswith(message)
