# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Unit tests of what virt_start_from_snapshot adds to the core: the start record in the domain's metadata (_model),
the client's ID, metadata, resume and suspend calls, and the Runner's wait and record actions, against libvirt's test
driver (in-process) and, for timing, an injected clock."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.vmsnap.libvirt.plugins.module_utils import _client, _model
from ansible_collections.vmsnap.libvirt.plugins.module_utils._actions import Runner
from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError
from ansible_collections.vmsnap.libvirt.plugins.module_utils._plan import Action, Plan

NS = _model.VMSNAP_NAMESPACE


@pytest.fixture
def client(testhost_uri):
    client = _client.Client(uri=testhost_uri)
    yield client
    client.close()


@pytest.fixture
def web01(client):
    return client.domain('web01')


def live_domain_xml(domain_id, metadata):
    return "<domain type='qemu' id='%s'><name>web01</name><metadata>%s</metadata><devices/></domain>" % (
        domain_id, metadata)


# -- _model: the record in the domain XML -----------------------------------------------------------------------------

@pytest.mark.parametrize('metadata, expected', [
    ('', None),
    ("<vmsnap:vmsnap xmlns:vmsnap='%s'/>" % NS, None),
    ("<vmsnap:vmsnap xmlns:vmsnap='%s'><vmsnap:started-from snapshot='good' domain-id='7'/></vmsnap:vmsnap>" % NS,
     {'snapshot': 'good', 'domain_id': 7, 'preserved': None}),
    ("<v:vmsnap xmlns:v='%s'><v:started-from snapshot='a&lt;b' domain-id='7' preserved='c d'/></v:vmsnap>" % NS,
     {'snapshot': 'a<b', 'domain_id': 7, 'preserved': 'c d'}),
    # someone else's element of the same name, and unreadable IDs, are not ours to trust
    ("<vmsnap xmlns='urn:other'><started-from snapshot='good' domain-id='7'/></vmsnap>", None),
    ("<vmsnap:vmsnap xmlns:vmsnap='%s'><vmsnap:started-from snapshot='good' domain-id='x'/></vmsnap:vmsnap>" % NS,
     {'snapshot': 'good', 'domain_id': None, 'preserved': None}),
    ("<vmsnap:vmsnap xmlns:vmsnap='%s'><vmsnap:started-from domain-id='7'/></vmsnap:vmsnap>" % NS, None),
])
def test_parse_domain_reads_the_start_record(metadata, expected):
    assert _model.parse_domain(live_domain_xml(7, metadata), 'running')['start_record'] == expected


@pytest.mark.parametrize('attribute, expected', [(" id='7'", 7), (" id='-1'", None), ('', None), (" id='x'", None)])
def test_parse_domain_reads_the_id(attribute, expected):
    assert _model.parse_domain("<domain%s><name>a</name></domain>" % attribute, 'running')['id'] == expected


def test_with_start_record_builds_a_new_element():
    xml = _model.with_start_record(None, 'a<b "c"', 7, None)
    root = _model.parse_xml(xml, 'test')
    assert root.tag == 'vmsnap'
    record = {'snapshot': 'a<b "c"', 'domain-id': '7'}
    assert [(child.tag, dict(child.attrib)) for child in root] == [('started-from', record)]


def test_with_start_record_replaces_the_record_and_keeps_the_rest():
    metadata = "<vmsnap><other a='1'/><started-from snapshot='old' domain-id='3' preserved='p'/></vmsnap>"
    root = _model.parse_xml(_model.with_start_record(metadata, 'new', 9, 'q'), 'test')
    assert [(child.tag, dict(child.attrib)) for child in root] == [
        ('other', {'a': '1'}), ('started-from', {'snapshot': 'new', 'domain-id': '9', 'preserved': 'q'})]


# -- _client: IDs, metadata, resume and suspend, on the test driver ---------------------------------------------------

def test_domain_id_is_looked_up_again_after_a_restart(client, web01):
    assert client.domain_id(web01) == 1
    web01.destroy()
    assert client.domain_id(web01) is None
    web01.create()
    fresh = client.conn.lookupByName('web01').ID()
    assert fresh not in (-1, 1)
    assert client.domain_id(web01) == fresh


def test_metadata_round_trip_through_the_live_domain(client, web01):
    assert client.domain_metadata(web01) is None
    client.set_domain_metadata(web01, _model.with_start_record(None, 'good', client.domain_id(web01), 'kept'))
    assert _model.parse_xml(client.domain_metadata(web01), 'test').find('started-from').get('snapshot') == 'good'
    # read_domain finds it in the one XML fetch, under the collection's namespace
    assert client.read_domain(web01)['start_record'] == {'snapshot': 'good', 'domain_id': 1, 'preserved': 'kept'}
    assert client.read_domain(web01)['id'] == 1


def test_metadata_of_a_missing_domain_is_an_error_not_none(client, web01):
    web01.destroy()
    web01.undefine()
    with pytest.raises(SnapshotError) as caught:
        client.domain_metadata(web01)
    assert "Could not read the metadata of domain 'web01'" in caught.value.msg


def test_resume_and_suspend(client, web01):
    client.suspend(web01)
    assert client.domain_state(web01) == 'paused'
    client.resume(web01)
    assert client.domain_state(web01) == 'running'
    with pytest.raises(SnapshotError) as caught:
        client.resume(web01)
    assert caught.value.msg.startswith("Could not resume domain 'web01'")


# -- Runner: waiting for the state, and recording the start -----------------------------------------------------------

class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def run(client, dom, *actions, **runner_options):
    return Runner(client, dom, **runner_options).execute(None, Plan(list(actions), {}, {}, None, None))


def test_wait_returns_at_once_when_the_domain_is_there(client, web01):
    clock = FakeClock()
    run(client, web01, Action('wait', snapshot='good', states=('running', 'blocked'), timeout=60),
        sleep=clock.sleep, clock=clock.clock)
    assert clock.sleeps == []


@pytest.mark.parametrize('timeout, sleeps', [
    (0, []),
    (1, [0.05, 0.1, 0.2, 0.4]),
    (4, [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]),
])
def test_wait_gives_up_after_the_timeout_naming_the_state(client, web01, timeout, sleeps):
    web01.suspend()
    clock = FakeClock()
    with pytest.raises(SnapshotError) as caught:
        run(client, web01, Action('wait', snapshot='good', states=('running', 'blocked'), timeout=timeout),
            sleep=clock.sleep, clock=clock.clock)
    assert caught.value.msg.startswith("Domain 'web01' was started from snapshot 'good' but is paused, not running, "
                                       'after waiting %s s (wait).' % timeout)
    assert clock.sleeps == pytest.approx(sleeps)
    assert clock.now <= timeout


def test_wait_sees_the_state_arrive(client, web01):
    web01.suspend()
    clock = FakeClock()

    def sleep(seconds):
        clock.sleep(seconds)
        if len(clock.sleeps) == 3:
            web01.resume()

    run(client, web01, Action('wait', snapshot='good', states=('running',), timeout=60), sleep=sleep,
        clock=clock.clock)
    assert len(clock.sleeps) == 3


def test_record_start_writes_the_id_the_domain_has_after_the_revert(client, web01):
    snap = web01.snapshotCreateXML('<domainsnapshot><name>good</name></domainsnapshot>', 0)
    web01.destroy()
    client.revert_to_snapshot(snap, ['running'])
    run(client, web01, Action('record_start', snapshot='good', preserved=None))
    domain = client.read_domain(web01)
    assert domain['id'] == client.conn.lookupByName('web01').ID() != 1
    assert domain['start_record'] == {'snapshot': 'good', 'domain_id': domain['id'], 'preserved': None}


@pytest.mark.parametrize('kind, state', [('suspend', 'paused'), ('resume', 'running')])
def test_resume_and_suspend_actions(client, web01, kind, state):
    if kind == 'resume':
        web01.suspend()
    run(client, web01, Action(kind))
    assert client.domain_state(web01) == state
