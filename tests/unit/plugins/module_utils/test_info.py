# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Unit tests of _info (what virt_snapshot_info reports) and the client reads it uses, on libvirt's test driver.

Snapshot trees are made with REDEFINE from the XML of one snapshot the test driver created, so their XML is what
libvirt really returns. A counting proxy around the connection checks the cost: one list call per domain, one XML
fetch per snapshot, no lookups by snapshot name, no per-snapshot children or current calls.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import collections

import libvirt
import pytest
from lxml import etree

from ansible_collections.vmsnap.libvirt.plugins.module_utils import _client, _info
from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError
from ansible_collections.vmsnap.libvirt.plugins.module_utils._tree import SnapshotTree

# web01's tree: two roots, branches, one external snapshot; 'mid' is current.
TREE = [
    # (name, parent, external)
    ('base', None, False),
    ('mid', 'base', False),
    ('left', 'mid', False),
    ('Right', 'mid', True),
    ('other', 'base', False),
    ('lone', None, False),
]
CURRENT = 'mid'


class Counting:
    """A libvirt object that counts the calls made on it (and on the libvirt objects it returns) by method name."""

    def __init__(self, target, calls):
        self._target = target
        self._calls = calls

    def __getattr__(self, name):
        attribute = getattr(self._target, name)
        if not callable(attribute):
            return attribute

        def call(*args):
            self._calls[name] += 1
            return _wrap(attribute(*args), self._calls)
        return call


def _wrap(value, calls):
    if isinstance(value, list):
        return [_wrap(item, calls) for item in value]
    if isinstance(value, (libvirt.virDomain, libvirt.virDomainSnapshot)):
        return Counting(value, calls)
    return value


@pytest.fixture
def conn(testhost_uri):
    conn = libvirt.open(testhost_uri)
    yield conn
    conn.close()


@pytest.fixture
def calls():
    return collections.Counter()


@pytest.fixture
def client(testhost_uri, conn, calls):
    client = _client.Client(uri=testhost_uri)
    client._conn = Counting(conn, calls)
    yield client
    client._conn = None  # the conn fixture closes the connection


def snapshot_xml(template, name, parent, external):
    root = etree.fromstring(template)
    root.find('name').text = name
    if parent is not None:
        etree.SubElement(root, 'parent').append(etree.Element('name'))
        root.find('parent/name').text = parent
    if external:
        root.find('state').text = 'disk-snapshot'
        root.find('memory').set('snapshot', 'no')
        disk = root.find("disks/disk[@name='vda']")
        disk.set('snapshot', 'external')
        disk.set('type', 'file')
        etree.SubElement(disk, 'source', file='/var/lib/libvirt/images/web01.%s' % name)
    return etree.tostring(root, encoding='unicode')


def make_tree(dom, tree, current):
    """Redefine ``tree`` on ``dom`` (parents first) from the XML of a snapshot the test driver really made."""
    template = dom.snapshotCreateXML('<domainsnapshot><name>template</name></domainsnapshot>', 0)
    xml = template.getXMLDesc(0)
    template.delete(0)
    for name, parent, external in tree:
        flags = libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE
        if name == current:
            flags |= libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT
        dom.snapshotCreateXML(snapshot_xml(xml, name, parent, external), flags)


@pytest.fixture
def web01(conn):
    dom = conn.lookupByName('web01')
    make_tree(dom, TREE, CURRENT)
    return dom


def names(entry):
    return [snapshot['name'] for snapshot in entry['snapshots']]


# -- the report of one domain ----------------------------------------------------------------------------------------

def test_one_domain(client, web01, calls):
    result = _info.gather(client, {'domain': 'web01'})
    assert [entry['domain'] for entry in result['domains']] == ['web01']
    entry = result['domains'][0]
    assert (entry['state'], entry['persistent'], entry['current_snapshot'], entry['count']) == \
        ('running', True, 'mid', 6)
    # each after its parent, siblings in virsh's order
    assert names(entry) == ['base', 'mid', 'left', 'Right', 'other', 'lone']
    by_name = dict((snapshot['name'], snapshot) for snapshot in entry['snapshots'])
    assert by_name['mid']['children'] == ['Right', 'left']
    assert by_name['base']['children'] == ['mid', 'other']
    assert by_name['left']['parent'] == 'mid'
    assert [name for name, snapshot in by_name.items() if snapshot['is_current']] == ['mid']
    assert by_name['Right']['location'] == 'external'
    assert by_name['Right']['disks'][0] == {'name': 'vda', 'snapshot': 'external',
                                            'file': '/var/lib/libvirt/images/web01.Right'}
    assert all('xml' not in snapshot for snapshot in entry['snapshots'])
    assert entry['tree'] == [
        {'name': 'base', 'children': [
            {'name': 'mid', 'children': [{'name': 'left', 'children': []}, {'name': 'Right', 'children': []}]},
            {'name': 'other', 'children': []},
        ]},
        {'name': 'lone', 'children': []},
    ]
    assert entry['tree_truncated'] is False
    assert entry['tree_text'] == ('base\n'
                                  '  |\n'
                                  '  +- mid (current)\n'
                                  '  |   |\n'
                                  '  |   +- left\n'
                                  '  |   +- Right\n'
                                  '  |     \n'
                                  '  +- other\n'
                                  '    \n'
                                  'lone\n')
    assert result['host']['libvirt_version'] == '%d.%d.%d' % (libvirt.getVersion() // 1000000,
                                                              libvirt.getVersion() // 1000 % 1000,
                                                              libvirt.getVersion() % 1000)
    assert result['host']['hypervisor_version'] == '0.0.2'  # what the test driver reports
    assert sorted(result['host']) == ['external_delete', 'external_revert', 'hypervisor_version', 'libvirt_version',
                                      'uri']


def test_the_cost_is_one_list_one_xml_each_and_one_current(client, web01, calls):
    _info.gather(client, {'domain': 'web01'})
    assert calls['lookupByName'] == 1
    assert calls['listAllDomains'] == 0
    assert calls['listAllSnapshots'] == 1
    assert calls['getXMLDesc'] == len(TREE)
    assert calls['snapshotCurrent'] == 1
    for per_snapshot in ('snapshotLookupByName', 'listChildrenNames', 'listAllChildren', 'isCurrent', 'getParent',
                         'hasMetadata', 'snapshotListNames'):
        assert calls[per_snapshot] == 0, per_snapshot


def test_the_snapshot_dicts_are_those_virt_snapshot_returns(client, web01):
    entry = _info.gather(client, {'domain': 'web01'})['domains'][0]
    for snapshot in entry['snapshots']:
        assert snapshot == client.describe_snapshot(client.find_snapshot(web01, snapshot['name']))


def test_include_xml_carries_the_secure_xml(client, web01, calls):
    entry = _info.gather(client, {'domain': 'web01', 'include_xml': True})['domains'][0]
    for snapshot in entry['snapshots']:
        assert snapshot['xml'] == web01.snapshotLookupByName(snapshot['name'], 0).getXMLDesc(
            libvirt.VIR_DOMAIN_SNAPSHOT_XML_SECURE)
    assert calls['getXMLDesc'] == len(TREE)


def test_a_domain_without_snapshots(client, calls):
    entry = _info.gather(client, {'domain': 'db01'})['domains'][0]
    assert entry == {'domain': 'db01', 'state': 'running', 'persistent': True, 'current_snapshot': None, 'count': 0,
                     'snapshots': [], 'tree': [], 'tree_truncated': False, 'tree_text': ''}
    assert calls['snapshotCurrent'] == 0


def test_a_domain_with_snapshots_but_no_current_one(client, conn):
    make_tree(conn.lookupByName('db01'), [('one', None, False)], current=None)
    entry = _info.gather(client, {'domain': 'db01'})['domains'][0]
    assert (entry['current_snapshot'], entry['count'], entry['tree_text']) == (None, 1, 'one\n')
    assert entry['snapshots'][0]['is_current'] is False


# -- filters ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('options, expected', [
    ({}, ['base', 'mid', 'left', 'Right', 'other', 'lone']),
    ({'name': 'left'}, ['left']),
    ({'roots': True}, ['base', 'lone']),
    ({'leaves': True}, ['left', 'Right', 'other', 'lone']),
    ({'roots': True, 'leaves': True}, ['lone']),
    ({'current': True}, ['mid']),
    ({'location': 'external'}, ['Right']),
    ({'location': 'internal'}, ['base', 'mid', 'left', 'other', 'lone']),
    ({'pattern': '*e*'}, ['base', 'left', 'other', 'lone']),
    ({'pattern': '[A-Z]*'}, ['Right']),
    ({'pattern': 'right'}, []),
    ({'leaves': True, 'location': 'internal', 'pattern': 'l*'}, ['left', 'lone']),
    ({'name': 'mid', 'leaves': True}, []),
    ({'current': True, 'roots': True}, []),
])
def test_filters(client, web01, options, expected):
    entry = _info.gather(client, dict(options, domain='web01'))['domains'][0]
    assert names(entry) == expected
    # the rest describes the whole domain, whatever the filters
    assert (entry['count'], entry['current_snapshot'], len(entry['tree'])) == (6, 'mid', 2)


def test_a_missing_snapshot_name_fails_listing_what_exists(client, web01):
    with pytest.raises(SnapshotError) as caught:
        _info.gather(client, {'domain': 'web01', 'name': 'nope'})
    assert caught.value.msg == ("Snapshot 'nope' of domain 'web01' does not exist, so there is nothing to describe. "
                                'The domain has these snapshots: Right, base, left, lone, mid, other. Check the name '
                                '(snapshot names are case-sensitive).')


def test_a_missing_snapshot_name_fails_in_any_domain_described(client, web01):
    with pytest.raises(SnapshotError) as caught:
        _info.gather(client, {'domains': ['web01', 'db01'], 'name': 'mid'})
    assert "Snapshot 'mid' of domain 'db01' does not exist" in caught.value.msg


@pytest.mark.parametrize('filters, expected', [
    ({'roots': True}, {'a': True, 'b': False}),
    ({'leaves': True}, {'a': False, 'b': True}),
    ({'current': True}, {'a': False, 'b': True}),
    ({'location': 'external'}, {'a': False, 'b': True}),
    ({'location': 'internal'}, {'a': False, 'b': False}),
    ({'pattern': '?'}, {'a': True, 'b': True}),
    ({'pattern': 'a*'}, {'a': True, 'b': False}),
    ({'name': 'b'}, {'a': False, 'b': True}),
    ({'roots': False, 'leaves': False, 'current': False, 'location': None, 'pattern': None, 'name': None},
     {'a': True, 'b': True}),
])
def test_matches(filters, expected):
    tree = SnapshotTree({'a': None, 'b': 'a'})
    snapshots = {
        'a': {'name': 'a', 'is_current': False, 'location': 'mixed'},
        'b': {'name': 'b', 'is_current': True, 'location': 'external'},
    }
    assert dict((name, _info.matches(snapshot, tree, filters)) for name, snapshot in snapshots.items()) == expected


# -- choosing domains -------------------------------------------------------------------------------------------------

def test_every_domain_sorted_by_name_from_one_list_call(client, calls):
    result = _info.gather(client, {})
    assert [entry['domain'] for entry in result['domains']] == ['db01', 'web01']
    assert (calls['listAllDomains'], calls['lookupByName']) == (1, 0)


def test_plain_names_are_looked_up_by_name_in_their_order(client, calls):
    result = _info.gather(client, {'domains': ['web01', 'db01', 'web01']})
    assert [entry['domain'] for entry in result['domains']] == ['web01', 'db01']
    assert (calls['listAllDomains'], calls['lookupByName']) == (0, 2)


@pytest.mark.parametrize('domains, expected', [
    (['w*'], ['web01']),
    (['*01'], ['db01', 'web01']),
    (['web01', '*'], ['web01', 'db01']),
    (['[dx]b0?'], ['db01']),
    (['W*'], []),
    (['nothing-*'], []),
    ([], []),
])
def test_globs_list_once(client, calls, domains, expected):
    result = _info.gather(client, {'domains': domains})
    assert [entry['domain'] for entry in result['domains']] == expected
    assert calls['listAllDomains'] == (1 if domains else 0)


@pytest.mark.parametrize('options', [
    {'domain': 'nope'},
    {'domains': ['web01', 'nope']},
    {'domains': ['w*', 'nope']},
])
def test_a_missing_domain_name_fails(client, testhost_uri, options):
    with pytest.raises(SnapshotError) as caught:
        _info.gather(client, options)
    assert caught.value.msg == ("Domain 'nope' does not exist on %s. Check the name with `virsh list --all`; domain "
                                'names are case-sensitive.' % testhost_uri)


# -- client reads ----------------------------------------------------------------------------------------------------

class VanishingSnapshot:
    """A snapshot deleted by someone else after the list call: its XML fetch fails with NO_DOMAIN_SNAPSHOT."""

    def __init__(self, dom, code):
        self._dom = dom
        self._code = code

    def getName(self):
        return 'vanished'

    def getDomain(self):
        return self._dom

    def getXMLDesc(self, flags):
        exc = libvirt.libvirtError('snapshot vanished')
        exc.err = (self._code, libvirt.VIR_FROM_DOMAIN_SNAPSHOT, 'snapshot vanished', libvirt.VIR_ERR_ERROR,
                   'snapshot vanished', None, None, -1, -1)
        raise exc


class DomainWithExtraSnapshot:
    def __init__(self, dom, extra_code):
        self._dom = dom
        self._extra_code = extra_code

    def name(self):
        return self._dom.name()

    def listAllSnapshots(self, flags):
        return [VanishingSnapshot(self, self._extra_code)] + self._dom.listAllSnapshots(flags)


def test_snapshots_xml_leaves_out_a_snapshot_deleted_meanwhile(testhost_uri, web01):
    client = _client.Client(uri=testhost_uri)
    dom = DomainWithExtraSnapshot(web01, libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT)
    assert sorted(name for name, dummy in client.snapshots_xml(dom)) == sorted(name for name, dummy, dummy in TREE)


def test_snapshots_xml_reports_other_errors(testhost_uri, web01):
    client = _client.Client(uri=testhost_uri, lock_timeout=0)
    dom = DomainWithExtraSnapshot(web01, libvirt.VIR_ERR_INTERNAL_ERROR)
    with pytest.raises(SnapshotError) as caught:
        client.snapshots_xml(dom)
    assert caught.value.msg.startswith("Could not read the XML of snapshot 'vanished' of domain 'web01'")


class FlagRecordingSnapshot:
    def __init__(self, dom, flags_seen):
        self._dom = dom
        self._flags_seen = flags_seen

    def getName(self):
        return 'one'

    def getDomain(self):
        return self._dom

    def getXMLDesc(self, flags):
        self._flags_seen.append(flags)
        return '<domainsnapshot><name>one</name></domainsnapshot>'


class DomainWithOneSnapshot:
    def __init__(self):
        self.flags_seen = []

    def name(self):
        return 'fake01'

    def listAllSnapshots(self, flags):
        return [FlagRecordingSnapshot(self, self.flags_seen)]


@pytest.mark.parametrize('secure, flags', [(False, 0), (True, libvirt.VIR_DOMAIN_SNAPSHOT_XML_SECURE)])
def test_snapshots_xml_asks_for_secure_xml_only_when_told(testhost_uri, secure, flags):
    dom = DomainWithOneSnapshot()
    xmls = _client.Client(uri=testhost_uri).snapshots_xml(dom, secure=secure)
    assert xmls == [('one', '<domainsnapshot><name>one</name></domainsnapshot>')]
    assert dom.flags_seen == [flags]


def start_transient(conn, name='tmp01'):
    """A transient copy of db01 (it is gone for good once destroyed)."""
    xml = conn.lookupByName('db01').XMLDesc(0)
    return conn.createXML(xml.replace('<name>db01</name>', '<name>%s</name>' % name)
                          .replace('4dea22b3-1d52-d8f3-2516-782e98ab3fa1', '4dea22b3-1d52-d8f3-2516-782e98ab3fa9'), 0)


def test_is_persistent(client, conn):
    assert client.is_persistent(client.domain('web01')) is True
    assert client.is_persistent(client.domain(start_transient(conn).name())) is False


@pytest.fixture
def vanishing(client, conn, monkeypatch):
    """tmp01, a transient domain that disappears right after the host's domains were listed."""
    transient = start_transient(conn)
    listed = client.list_domains

    def list_then_destroy():
        found = listed()
        transient.destroy()
        return found
    monkeypatch.setattr(client, 'list_domains', list_then_destroy)
    return transient


@pytest.mark.parametrize('options', [{}, {'domains': ['*01']}])
def test_a_listed_domain_that_disappears_is_left_out(client, vanishing, options):
    result = _info.gather(client, options)
    assert [entry['domain'] for entry in result['domains']] == ['db01', 'web01']


def test_a_named_domain_that_disappears_is_a_failure(client, vanishing, testhost_uri):
    with pytest.raises(SnapshotError) as caught:
        _info.gather(client, {'domains': ['*01', 'tmp01']})
    assert caught.value.msg.startswith("Could not read the state of domain 'tmp01' on %s: " % testhost_uri)
    assert caught.value.msg.endswith('Check the domain name with `virsh list --all`.')
