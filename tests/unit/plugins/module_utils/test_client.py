# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Unit tests of _client against libvirt's test driver (in-process), with small fakes only for what the test driver
refuses (disk-only and metadata-only) and for timing (transient errors, with an injected clock)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import libvirt
import pytest

from ansible_collections.vmsnap.libvirt.plugins.module_utils import _client, _model
from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError

UNREACHABLE_URI = 'qemu:///system?socket=/nonexistent/vmsnap-unit.sock'

INTERNAL_WITH_MEMORY = {'snapshot': 'internal', 'file': None}
WEB01_INTERNAL_DISKS = [{'name': 'vda', 'snapshot': 'internal', 'file': None}, {'name': 'hdc', 'snapshot': 'no', 'file': None}]


@pytest.fixture
def client(testhost_uri):
    client = _client.Client(uri=testhost_uri)
    yield client
    client.close()


@pytest.fixture
def web01(client):
    return client.domain('web01')


def create(client, dom, name, description=None):
    xml = _model.build_snapshot_xml(name, description, INTERNAL_WITH_MEMORY, WEB01_INTERNAL_DISKS)
    return client.create_snapshot(dom, xml, ['atomic'], name)


def libvirt_error(code, message):
    """A libvirtError as libvirt-python raises it: the err tuple is (code, domain, message, level, str1, ...)."""
    exc = libvirt.libvirtError(message)
    exc.err = (code, libvirt.VIR_FROM_QEMU, message, libvirt.VIR_ERR_ERROR, message, None, None, -1, -1)
    exc.args = (message,)
    return exc


# -- lookups by name --------------------------------------------------------------------------------------------------

def test_find_domain(client):
    assert client.find_domain('web01').name() == 'web01'
    assert client.find_domain('nope') is None
    assert client.find_domain('WEB01') is None


def test_domain_missing_names_it_and_the_uri(client, testhost_uri):
    with pytest.raises(SnapshotError) as caught:
        client.domain('nope')
    assert caught.value.msg == ("Domain 'nope' does not exist on %s. Check the name with `virsh list --all`; domain "
                                'names are case-sensitive.' % testhost_uri)


def test_find_snapshot(client, web01):
    assert client.find_snapshot(web01, 'before') is None
    create(client, web01, 'before')
    assert client.find_snapshot(web01, 'before').getName() == 'before'
    assert client.find_snapshot(web01, 'Before') is None


def test_domain_state_and_read_domain(client, web01):
    assert client.domain_state(web01) == 'running'
    web01.suspend()
    assert client.domain_state(web01) == 'paused'
    web01.destroy()
    domain = client.read_domain(web01)
    assert (domain['name'], domain['state'], domain['active']) == ('web01', 'shutoff', False)
    assert [(disk['name'], disk['device'], disk['format'], disk['source']) for disk in domain['disks']] == \
        [('vda', 'disk', 'qcow2', '/var/lib/libvirt/images/web01.qcow2'), ('hdc', 'cdrom', 'raw', None)]


def test_host(client, testhost_uri):
    version = client.conn.getLibVersion()
    host = client.host()
    assert (host['uri'], host['libvirt_version'], host['external_revert'], host['external_delete']) == (
        testhost_uri,
        '%d.%d.%d' % (version // 1000000, version // 1000 % 1000, version % 1000),
        False,  # the test driver's capabilities have no <externalSnapshot/>
        True,  # libvirt 9.0 and later delete external snapshots
    )
    assert client.host() is host


# -- describing -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('name, description', [
    ('plain', None),
    ('a<b>&c"d\'e ]]>', 'up & <running>\n\tsecond "line"'),
    (u'\u540d\u524d \U0001F600', u'\u00fcmlaut \u00e9t\u00e9 \U0001D400'),
])
def test_create_and_describe_round_trip(client, web01, name, description):
    snap = create(client, web01, name, description)
    described = client.describe_snapshot(snap)
    assert described['name'].encode('utf-8') == name.encode('utf-8')
    assert (described['description'] or '').encode('utf-8') == (description or '').encode('utf-8')
    assert isinstance(described['creation_time'], int)
    assert described == {
        'name': name,
        'domain': 'web01',
        'description': description,
        'state': 'running',
        'creation_time': described['creation_time'],
        'creation_time_iso': _model.iso_utc(described['creation_time']),
        'parent': None,
        'children': [],
        'is_current': True,
        'location': 'internal',
        'memory': {'snapshot': 'internal', 'file': None},
        'disks': WEB01_INTERNAL_DISKS,
        'consistency': 'memory',
    }


def test_describe_uses_the_xml_it_is_given(client, web01):
    snap = create(client, web01, 'given', 'stored')
    xml = _model.with_description(client.snapshot_xml(snap), 'handed in')
    assert client.describe_snapshot(snap, xml)['description'] == 'handed in'


def descendant_names(client, snap):
    return sorted(item['name'] for item in client.describe_descendants(snap))


def test_tree_current_and_descendants(client, web01):
    assert client.current_snapshot_name(web01) is None
    first = create(client, web01, 'a')
    assert client.current_snapshot_name(web01) == 'a'
    create(client, web01, 'b')
    create(client, web01, 'c')
    client.revert_to_snapshot(first, [])
    create(client, web01, 'd')
    assert client.current_snapshot_name(web01) == 'd'
    a = client.describe_snapshot(first)
    assert (a['children'], a['is_current'], a['parent']) == (['b', 'd'], False, None)
    assert client.describe_snapshot(client.find_snapshot(web01, 'c'))['parent'] == 'b'
    assert descendant_names(client, first) == ['b', 'c', 'd']
    assert descendant_names(client, client.find_snapshot(web01, 'b')) == ['c']
    assert descendant_names(client, client.find_snapshot(web01, 'c')) == []
    assert client.snapshot_names(web01) == ['a', 'b', 'c', 'd']


# -- changing ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('current', [True, False])
def test_redefine_changes_the_description_only(client, web01, current):
    snap = create(client, web01, 'a', 'old')
    create(client, web01, 'b')
    if current:
        client.revert_to_snapshot(snap, [])
    before = client.describe_snapshot(snap)
    flags = ['redefine', 'current'] if current else ['redefine']
    redefined = client.create_snapshot(web01, _model.with_description(client.snapshot_xml(snap), u'new <\u00e9>'),
                                       flags, 'a')
    after = client.describe_snapshot(redefined)
    assert after == dict(before, description=u'new <\u00e9>')
    assert client.current_snapshot_name(web01) == ('a' if current else 'b')


@pytest.mark.parametrize('flags, remaining, parent_of_c', [
    ([], ['a', 'c'], 'a'),  # children are re-parented
    (['children'], ['a'], None),
    (['children_only'], ['a', 'b'], None),
])
def test_delete(client, web01, flags, remaining, parent_of_c):
    create(client, web01, 'a')
    b = create(client, web01, 'b')
    create(client, web01, 'c')
    client.delete_snapshot(b, flags)
    assert client.snapshot_names(web01) == remaining
    if parent_of_c:
        assert client.describe_snapshot(client.find_snapshot(web01, 'c'))['parent'] == parent_of_c


@pytest.mark.parametrize('revert_flags, state_after', [([], 'running'), (['paused'], 'paused'), (['running'], 'running')])
def test_revert_from_shut_off(client, web01, revert_flags, state_after):
    snap = create(client, web01, 'live')
    web01.destroy()
    assert client.domain_state(web01) == 'shutoff'
    client.revert_to_snapshot(snap, revert_flags)
    assert client.domain_state(web01) == state_after


def test_revert_to_a_shut_off_snapshot(client, web01):
    web01.destroy()
    snap = client.create_snapshot(web01, _model.build_snapshot_xml('off', None, {'snapshot': 'no'}, []), ['atomic'],
                                  'off')
    web01.create()
    assert client.domain_state(web01) == 'running'
    client.revert_to_snapshot(snap, [])
    assert client.domain_state(web01) == 'shutoff'


class FakeDomain:
    """Records the flags of calls the test driver refuses (disk-only, metadata-only)."""

    def __init__(self):
        self.calls = []

    def name(self):
        return 'web01'

    def snapshotCreateXML(self, xml, flags):
        self.calls.append(('create', xml, flags))
        return FakeSnapshot(self, 'created')

    def revertToSnapshot(self, snap, flags):
        self.calls.append(('revert', snap.getName(), flags))


class FakeSnapshot:
    def __init__(self, dom, name):
        self.dom = dom
        self.name = name

    def getDomain(self):
        return self.dom

    def getName(self):
        return self.name

    def delete(self, flags):
        self.dom.calls.append(('delete', self.name, flags))


@pytest.mark.parametrize('names, flags', [
    (['atomic'], libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC),
    (['atomic', 'disk_only', 'quiesce'], libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC
     | libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY | libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE),
    (['redefine', 'current'], libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE | libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT),
])
def test_create_flags_by_name(names, flags):
    dom = FakeDomain()
    snap = _client.Client(uri='test:///default').create_snapshot(dom, '<domainsnapshot/>', names, 's')
    assert snap.getName() == 'created'
    assert dom.calls == [('create', '<domainsnapshot/>', flags)]


@pytest.mark.parametrize('names, flags', [
    ([], 0),
    (['metadata_only'], libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY),
    (['metadata_only', 'children'],
     libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY | libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN),
    (['children_only'], libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY),
])
def test_delete_flags_by_name(names, flags):
    dom = FakeDomain()
    _client.Client(uri='test:///default').delete_snapshot(FakeSnapshot(dom, 's'), names)
    assert dom.calls == [('delete', 's', flags)]


@pytest.mark.parametrize('names, flags', [
    (['paused', 'force'], libvirt.VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED | libvirt.VIR_DOMAIN_SNAPSHOT_REVERT_FORCE),
    (['running'], libvirt.VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING),
])
def test_revert_flags_by_name(names, flags):
    dom = FakeDomain()
    _client.Client(uri='test:///default').revert_to_snapshot(FakeSnapshot(dom, 's'), names)
    assert dom.calls == [('revert', 's', flags)]


def test_a_flag_this_libvirt_python_lacks_is_named():
    with pytest.raises(SnapshotError) as caught:
        _client._flags({'future': 'VIR_DOMAIN_SNAPSHOT_CREATE_FUTURE'}, ['future'])
    assert 'lacks VIR_DOMAIN_SNAPSHOT_CREATE_FUTURE, which the option asking for future needs' in caught.value.msg


def test_a_real_libvirt_refusal_is_translated(client, web01, testhost_uri):
    # the test driver refuses disk-only snapshots: a genuine libvirtError through the whole path
    xml = _model.build_snapshot_xml('ds', None, {'snapshot': 'no'}, [{'name': 'vda', 'snapshot': 'external'}])
    with pytest.raises(SnapshotError) as caught:
        client.create_snapshot(web01, xml, ['atomic', 'disk_only'], 'ds')
    assert caught.value.msg == ("Could not create snapshot 'ds' of domain 'web01' on %s: unsupported flags (0x10) in "
                                'function testDomainSnapshotCreateXML.' % testhost_uri)
    assert (caught.value.code, caught.value.details) == (libvirt.VIR_ERR_INVALID_ARG, {})
    assert client.find_snapshot(web01, 'ds') is None


# -- error translation ------------------------------------------------------------------------------------------------

PASSWORD_URI = 'qemu+tcp://admin:hunter2@hv1:16509/system'
REDACTED_URI = 'qemu+tcp://admin:********@hv1:16509/system'


@pytest.mark.parametrize('where, place', [
    ({'domain': 'web01', 'snapshot': 's1'}, " snapshot 's1' of domain 'web01'"),
    ({'domain': 'web01'}, " domain 'web01'"),
    ({}, ''),
])
def test_error_names_the_operation_and_the_place_and_redacts_the_password(where, place):
    exc = libvirt_error(libvirt.VIR_ERR_OPERATION_INVALID, 'domain is not running.')
    error = _client.Client(uri=PASSWORD_URI).error('delete', exc, **where)
    assert error.msg == 'Could not delete%s on %s: domain is not running.' % (place, REDACTED_URI)
    assert 'hunter2' not in error.msg
    assert (error.code, error.details) == (libvirt.VIR_ERR_OPERATION_INVALID, {})


@pytest.mark.parametrize('code, hint', [
    (libvirt.VIR_ERR_NO_DOMAIN, 'Check the domain name with `virsh list --all`.'),
    (libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT, 'Check the snapshot name with `virsh snapshot-list DOMAIN`.'),
    (libvirt.VIR_ERR_SYSTEM_ERROR, 'The connection to libvirt failed'),
    (libvirt.VIR_ERR_RPC, 'The connection to libvirt failed'),
    (libvirt.VIR_ERR_NO_CONNECT, 'The connection to libvirt failed'),
    (libvirt.VIR_ERR_AGENT_UNRESPONSIVE, 'The QEMU guest agent in the guest did not answer (it is not running, or took longer than allowed).'),
])
def test_error_hints(code, hint):
    error = _client.Client(uri='qemu:///system').error('create', libvirt_error(code, 'it failed'), domain='web01')
    assert error.msg.startswith("Could not create domain 'web01' on qemu:///system: it failed. " + hint)


def test_error_hint_for_a_snapshot_name_qemu_refuses_as_a_job_id():
    # libvirt 11.3 with QEMU 10, a running domain: virsh snapshot-create-as DOMAIN 'a b'
    message = "internal error: unable to execute QEMU command 'snapshot-save': Invalid job ID 'internal-snapshot-save-a b'"
    error = _client.Client().error('create', libvirt_error(libvirt.VIR_ERR_INTERNAL_ERROR, message),
                                   domain='web01', snapshot='a b')
    assert error.msg == "Could not create snapshot 'a b' of domain 'web01' on qemu:///system: %s. %s" % (
        message, _client.QEMU_JOB_NAME_HINT)
    assert "letters, digits, '-', '.' and '_'" in error.msg
    assert 'location: external' in error.msg


def test_error_without_hint_ends_with_libvirts_message():
    error = _client.Client().error('create', libvirt_error(libvirt.VIR_ERR_INTERNAL_ERROR, 'boom'), domain='web01')
    assert error.msg == "Could not create domain 'web01' on qemu:///system: boom."


def test_error_with_a_given_hint():
    error = _client.Client().error('merge', libvirt_error(libvirt.VIR_ERR_NO_DOMAIN, 'gone'), domain='web01',
                                   hint='Do this instead.')
    assert error.msg == "Could not merge domain 'web01' on qemu:///system: gone. Do this instead."


@pytest.mark.parametrize('uri, redacted', [
    ('qemu:///system', 'qemu:///system'),
    ('qemu+ssh://root@hv1/system', 'qemu+ssh://root@hv1/system'),
    (PASSWORD_URI, REDACTED_URI),
    ('qemu+tcp://admin:pa:ss@hv1/system', 'qemu+tcp://admin:********@hv1/system'),
    ('qemu+tcp://admin:p%40ss@hv1/system?no_verify=1', 'qemu+tcp://admin:********@hv1/system?no_verify=1'),
    ('qemu+ssh://hv1/system?keyfile=/root/.ssh/id', 'qemu+ssh://hv1/system?keyfile=/root/.ssh/id'),
    ('', ''),
    (None, None),
])
def test_redact_uri(uri, redacted):
    assert _client.redact_uri(uri) == redacted


# -- transient errors: retried with backoff until lock_timeout, with an injected clock --------------------------------

class FakeTime:
    def __init__(self):
        self.now = 1000.0
        self.slept = []

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds

    def clock(self):
        return self.now


class Flaky:
    """A libvirt call that fails ``failures`` times with ``error``, then returns 'done'."""

    def __init__(self, failures, error):
        self.failures = failures
        self.error = error
        self.calls = []

    def __call__(self, *args):
        self.calls.append(args)
        if len(self.calls) <= self.failures:
            raise self.error
        return 'done'


def timed_client(lock_timeout, fake_time):
    return _client.Client(uri='qemu:///system', lock_timeout=lock_timeout, sleep=fake_time.sleep,
                          clock=fake_time.clock)


TIMEOUT = libvirt_error(libvirt.VIR_ERR_OPERATION_TIMEOUT,
                        'Timed out during operation: cannot acquire state change lock (held by '
                        'monitor=remoteDispatchDomainSnapshotCreateXML)')
LOCK_BY_MESSAGE = libvirt_error(libvirt.VIR_ERR_OPERATION_FAILED,
                                'cannot acquire state change lock (held by agent=remoteDispatchDomainFSFreeze)')


@pytest.mark.parametrize('error', [TIMEOUT, LOCK_BY_MESSAGE])
@pytest.mark.parametrize('failures, slept', [
    (0, []),
    (1, [0.25]),
    (3, [0.25, 0.5, 1.0]),
    (8, [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]),  # the delay stops growing at 5 s
])
def test_transient_errors_are_retried_until_success(error, failures, slept):
    fake_time = FakeTime()
    call = Flaky(failures, error)
    assert timed_client(60, fake_time)._call('create', call, 'xml', 3, domain='web01', snapshot='s1') == 'done'
    assert call.calls == [('xml', 3)] * (failures + 1)
    assert fake_time.slept == slept


@pytest.mark.parametrize('lock_timeout, slept', [
    (10, [0.25, 0.5, 1.0, 2.0, 4.0]),  # the next 5 s would pass 10 s
    (0.5, [0.25]),
    (0, []),
])
def test_transient_errors_give_up_after_lock_timeout(lock_timeout, slept):
    fake_time = FakeTime()
    call = Flaky(1000, TIMEOUT)
    with pytest.raises(SnapshotError) as caught:
        timed_client(lock_timeout, fake_time)._call('create', call, domain='web01', snapshot='s1')
    assert fake_time.slept == slept
    assert sum(fake_time.slept) <= lock_timeout
    assert len(call.calls) == len(slept) + 1
    assert caught.value.msg == (
        "Could not create snapshot 's1' of domain 'web01' on qemu:///system: Timed out during operation: cannot "
        'acquire state change lock (held by monitor=remoteDispatchDomainSnapshotCreateXML). The domain stayed busy '
        'for longer than lock_timeout (%s s); another job holds it. Wait for it to finish or raise lock_timeout.'
        % lock_timeout)
    assert (caught.value.code, caught.value.details) == (libvirt.VIR_ERR_OPERATION_TIMEOUT, {})


@pytest.mark.parametrize('code, message', [
    (libvirt.VIR_ERR_OPERATION_INVALID, 'domain is not running'),
    (libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT, 'Domain snapshot not found'),
    (libvirt.VIR_ERR_OPERATION_UNSUPPORTED, 'internal snapshot of a running VM must include the memory state'),
])
def test_other_errors_are_not_retried(code, message):
    fake_time = FakeTime()
    call = Flaky(1, libvirt_error(code, message))
    with pytest.raises(SnapshotError) as caught:
        timed_client(60, fake_time)._call('create', call, domain='web01', snapshot='s1')
    assert (len(call.calls), fake_time.slept) == (1, [])
    assert caught.value.msg.startswith("Could not create snapshot 's1' of domain 'web01' on qemu:///system: %s."
                                       % message)
    assert 'lock_timeout' not in caught.value.msg


# -- connecting -------------------------------------------------------------------------------------------------------

def test_unreachable_uri_names_it():
    with pytest.raises(SnapshotError) as caught:
        _client.Client(uri=UNREACHABLE_URI).find_domain('web01')
    assert caught.value.msg.startswith(
        "Could not connect to libvirt at %s: Failed to connect socket to '/nonexistent/vmsnap-unit.sock': "
        'No such file or directory. Check that the uri is right, that the libvirt daemon' % UNREACHABLE_URI)
    assert caught.value.details == {'uri': UNREACHABLE_URI}


@pytest.mark.parametrize('auth', [{}, {'auth_username': 'admin', 'auth_password': 'hunter2'}])
def test_unreachable_uri_with_a_password_is_redacted(auth):
    uri = 'qemu+tcp://admin:hunter2@127.0.0.1:1/system'
    with pytest.raises(SnapshotError) as caught:
        _client.Client(uri=uri, **auth).host()
    assert caught.value.msg.startswith('Could not connect to libvirt at qemu+tcp://admin:********@127.0.0.1:1/system: ')
    assert 'hunter2' not in caught.value.msg and 'hunter2' not in str(caught.value.details)


def test_auth_answers_username_and_password(monkeypatch):
    opened = []

    def open_auth(uri, auth, flags):
        credentials = [[libvirt.VIR_CRED_AUTHNAME, 'user', 'user', 'default-user', None],
                       [libvirt.VIR_CRED_PASSPHRASE, 'pass', 'pass', None, None]]
        opened.append((uri, auth[0], auth[1](credentials, auth[2]), [item[4] for item in credentials], flags))
        return 'connection'

    monkeypatch.setattr(_client.libvirt, 'openAuth', open_auth)
    client = _client.Client(uri='qemu+tcp://hv1/system', auth_username='admin', auth_password='hunter2')
    assert client.conn == 'connection'
    assert opened == [('qemu+tcp://hv1/system', [libvirt.VIR_CRED_AUTHNAME, libvirt.VIR_CRED_PASSPHRASE], 0,
                       ['admin', 'hunter2'], 0)]


def test_connection_is_opened_once_and_closed(client, testhost_uri, monkeypatch):
    opened = []
    real_open = libvirt.open

    def counting_open(uri):
        opened.append(uri)
        return real_open(uri)

    monkeypatch.setattr(_client.libvirt, 'open', counting_open)
    client.find_domain('web01')
    client.find_domain('db01')
    client.host()
    assert opened == [testhost_uri]
    client.close()
    client.close()
    assert client._conn is None


def test_default_uri():
    assert _client.Client().uri == 'qemu:///system'


@pytest.mark.parametrize('uri, local', [
    ('qemu:///system', True),
    ('qemu:///session', True),
    ('test:///default', True),
    ('qemu+unix:///system', True),
    ('qemu+tcp://localhost/system', True),
    ('qemu+ssh://root@127.0.0.1:22/system', True),
    ('qemu+tcp://[::1]/system', True),
    ('qemu+tcp://[::1]:16509/system', True),
    ('qemu+ssh://root@[::1]:22/system', True),
    ('qemu+tcp://[2001:db8::1]:16509/system', False),
    ('qemu+ssh://root@hv1/system', False),
    ('qemu+ssh://hv1.example.com:2222/system', False),
    ('qemu+tls://10.0.0.5/system', False),
])
def test_is_local(uri, local):
    assert _client.Client(uri=uri).is_local() is local
