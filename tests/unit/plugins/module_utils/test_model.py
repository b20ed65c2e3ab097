# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Unit tests of _model: name and description validation, snapshot and domain XML, the snapshot dict."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import time

import pytest

from ansible_collections.vmsnap.libvirt.plugins.module_utils import _model
from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError

INTERNAL_MEMORY = {'snapshot': 'internal', 'file': None}
NO_MEMORY = {'snapshot': 'no', 'file': None}

# Names and descriptions that must survive XML unchanged: markup, entities, CDATA ends, quotes, non-ASCII, astral planes.
FAITHFUL_TEXTS = [
    'plain',
    'a<b>&c"d\'e',
    '&amp; &lt; &#38; &unknown;',
    ']]> <![CDATA[x]]>',
    '<!-- not a comment --> <?pi x?>',
    u'\u00fcmlaut \u00e9t\u00e9 \u540d\u524d \u0417\u0438\u043c\u0430',
    u'emoji \U0001F600 and math \U0001D400',
    'inner  double  spaces',
    'x' * 247,
    u'\u00fc' * 123,
]


# -- names ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('name', FAITHFUL_TEXTS + ['before-upgrade', 'a.b', 'trailing.', 'snap 1'])
def test_valid_names_are_accepted(name):
    assert _model.validate_snapshot_name(name) is None


@pytest.mark.parametrize('name, fragments', [
    ('', ['must not be empty', 'name=before-upgrade']),
    (None, ['must not be empty']),
    ('a/b', ["contains '/'"]),
    ('/', ["contains '/'"]),
    ('a\nb', ['control character such as a newline']),
    ('tab\there', ['control character']),
    ('nul\x00', ['control character']),
    ('del\x7f', ['control character']),
    ('x' * 248, ['it is 248 bytes long in UTF-8 (at most 247 are allowed']),
    (u'\u00fc' * 124, ['it is 248 bytes long in UTF-8 (at most 247 are allowed']),
    ('.hidden', ["starts with '.'"]),
    ('..', ["starts with '.'"]),
    (' lead', ['starts or ends with white space']),
    ('trail ', ['starts or ends with white space']),
    (u'non-character \ufffe', ['a character XML cannot carry']),
    (u'lone surrogate \ud800', ['a character XML cannot carry']),
    # every problem is named, not only the first
    ('.a/b\n', ["contains '/'", 'starts or ends with white space', 'control character', "starts with '.'"]),
])
def test_invalid_names_are_refused_with_the_reason(name, fragments):
    with pytest.raises(SnapshotError) as caught:
        _model.validate_snapshot_name(name)
    for fragment in fragments:
        assert fragment in caught.value.msg
    if name:
        assert repr(name) in caught.value.msg


def test_name_error_names_the_option():
    with pytest.raises(SnapshotError, match='^The snapshot new_name .* is not valid'):
        _model.validate_snapshot_name('a/b', option='new_name')


# -- descriptions -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('description', [None, '', 'tabs\tand\nnewlines', '   ', u'\u540d\u524d \U0001F600'])
def test_valid_descriptions_are_accepted(description):
    assert _model.validate_description(description) is None


@pytest.mark.parametrize('description, listed', [
    ('bell\x07', 'U+0007'),
    ('two\x01\x02\x01', 'U+0001, U+0002'),
    (u'\ufffe', 'U+FFFE'),
    # libvirt writes a carriage return back raw, and every XML parser reads it as a line feed: it cannot round-trip.
    ('windows\r\nline', 'U+000D'),
])
def test_descriptions_xml_cannot_carry_are_refused(description, listed):
    with pytest.raises(SnapshotError) as caught:
        _model.validate_description(description)
    assert '(%s)' % listed in caught.value.msg


# -- snapshot XML -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('text', FAITHFUL_TEXTS)
def test_name_and_description_round_trip_byte_for_byte(text):
    description = text + '\nsecond line\twith a tab '
    xml = _model.build_snapshot_xml(text, description, INTERNAL_MEMORY, [{'name': 'vda', 'snapshot': 'internal'}])
    snapshot = _model.parse_snapshot(xml, 'web01')
    assert snapshot['name'].encode('utf-8') == text.encode('utf-8')
    assert snapshot['description'].encode('utf-8') == description.encode('utf-8')


def test_build_snapshot_xml_cannot_be_injected():
    xml = _model.build_snapshot_xml('x</name><parent><name>evil', None, NO_MEMORY, [])
    root = _model.parse_xml(xml, 'test')
    assert root.find('parent') is None
    assert [child.tag for child in root] == ['name', 'memory']


def test_build_external_snapshot_xml():
    xml = _model.build_snapshot_xml(
        'ext', None, {'snapshot': 'external', 'file': '/images/web01.ext.mem'},
        [{'name': 'vda', 'snapshot': 'external', 'file': '/images/web01.ext'},
         {'name': 'vdb', 'snapshot': 'no', 'file': None},
         {'name': 'vdc', 'snapshot': 'internal', 'file': '/ignored'}])
    assert xml == ('<domainsnapshot><name>ext</name>'
                   '<memory snapshot="external" file="/images/web01.ext.mem"/>'
                   '<disks><disk name="vda" snapshot="external" type="file"><source file="/images/web01.ext"/></disk>'
                   '<disk name="vdb" snapshot="no"/><disk name="vdc" snapshot="internal"/></disks>'
                   '</domainsnapshot>')


def test_build_snapshot_xml_leaves_out_an_empty_description_and_no_disks():
    assert _model.build_snapshot_xml('s', '', NO_MEMORY, []) == \
        '<domainsnapshot><name>s</name><memory snapshot="no"/></domainsnapshot>'


SNAPSHOT_XML = '''<domainsnapshot>
  <name>after</name>
  <description>up &amp; running</description>
  <state>disk-snapshot</state>
  <parent><name>before</name></parent>
  <creationTime>1795633778</creationTime>
  <memory snapshot='no'/>
  <disks>
    <disk name='vda' snapshot='external' type='file'><driver type='qcow2'/><source file='/images/web01.after'/></disk>
    <disk name='sda' snapshot='external' type='block'><source dev='/dev/vg/lv.after'/></disk>
    <disk name='hdc' snapshot='no'/>
  </disks>
  <domain type='kvm'><name>web01</name></domain>
</domainsnapshot>'''


def test_parse_snapshot():
    assert _model.parse_snapshot(SNAPSHOT_XML, 'web01', is_current=1, children=('c2', 'c1')) == {
        'name': 'after',
        'domain': 'web01',
        'description': 'up & running',
        'state': 'disk-snapshot',
        'creation_time': 1795633778,
        'creation_time_iso': '2026-11-25T19:09:38Z',
        'parent': 'before',
        'children': ['c2', 'c1'],
        'is_current': True,
        'location': 'external',
        'memory': {'snapshot': 'no', 'file': None},
        'disks': [{'name': 'vda', 'snapshot': 'external', 'file': '/images/web01.after'},
                  {'name': 'sda', 'snapshot': 'external', 'file': '/dev/vg/lv.after'},
                  {'name': 'hdc', 'snapshot': 'no', 'file': None}],
        # a disk-only snapshot of a running guest without this collection's quiesce note
        'consistency': 'crash',
    }


def test_parse_minimal_snapshot():
    snapshot = _model.parse_snapshot('<domainsnapshot><name>s</name></domainsnapshot>', 'web01')
    assert (snapshot['description'], snapshot['parent'], snapshot['creation_time'], snapshot['creation_time_iso'],
            snapshot['children'], snapshot['is_current'], snapshot['memory'], snapshot['disks'], snapshot['location']) == \
        (None, None, None, None, [], False, {'snapshot': 'no', 'file': None}, [], 'none')


def test_parse_xml_reports_broken_xml_without_a_traceback():
    with pytest.raises(SnapshotError, match=r"^Could not parse the XML of a snapshot of domain 'web01': "):
        _model.parse_snapshot('<domainsnapshot><name>s</domainsnapshot>', 'web01')


def test_parse_xml_does_not_expand_entities():
    xml = '<!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]><domainsnapshot><name>&e;</name></domainsnapshot>'
    assert not _model.parse_snapshot(xml, 'web01')['name']


@pytest.mark.parametrize('memory, disks, expected', [
    ('internal', ['internal', 'no'], 'internal'),
    ('no', ['internal'], 'internal'),
    ('external', ['external', 'external'], 'external'),
    ('no', ['external', 'no'], 'external'),
    ('external', [], 'external'),
    ('internal', ['external'], 'mixed'),
    ('no', ['internal', 'external'], 'mixed'),
    ('no', ['no', 'no'], 'none'),
    ('no', [], 'none'),
])
def test_location_of(memory, disks, expected):
    assert _model.location_of({'snapshot': memory}, [{'snapshot': kind} for kind in disks]) == expected


@pytest.mark.parametrize('epoch, expected', [
    (0, '1970-01-01T00:00:00Z'),
    (1795633778, '2026-11-25T19:09:38Z'),
    (951782400, '2000-02-29T00:00:00Z'),
    (None, None),
])
def test_iso_utc(epoch, expected):
    assert _model.iso_utc(epoch) == expected


def test_iso_utc_ignores_the_local_time_zone(monkeypatch):
    monkeypatch.setenv('TZ', 'Pacific/Kiritimati')
    time.tzset()
    try:
        assert _model.iso_utc(1795633778) == '2026-11-25T19:09:38Z'
    finally:
        monkeypatch.undo()
        time.tzset()


# -- with_description -------------------------------------------------------------------------------------------------

def _description_of(xml):
    return _model.parse_snapshot(xml, 'web01')['description']


def test_with_description_replaces_and_keeps_everything_else():
    updated = _model.with_description(SNAPSHOT_XML, u'new <text> & \u540d\u524d')
    assert _description_of(updated) == u'new <text> & \u540d\u524d'
    assert dict(_model.parse_snapshot(updated, 'web01'), description=None) == \
        dict(_model.parse_snapshot(SNAPSHOT_XML, 'web01'), description=None)
    assert _model.parse_xml(updated, 'test').findtext('domain/name') == 'web01'


def test_with_description_adds_one_right_after_the_name():
    xml = '<domainsnapshot><name>s</name><state>running</state></domainsnapshot>'
    updated = _model.with_description(xml, 'added')
    assert [child.tag for child in _model.parse_xml(updated, 'test')] == ['name', 'description', 'state']
    assert _description_of(updated) == 'added'


@pytest.mark.parametrize('empty', ['', None])
def test_with_description_removes_it_when_empty(empty):
    updated = _model.with_description(SNAPSHOT_XML, empty)
    assert _model.parse_xml(updated, 'test').find('description') is None
    assert _model.parse_snapshot(updated, 'web01')['name'] == 'after'


def test_with_description_of_none_on_a_snapshot_without_one_changes_nothing():
    xml = '<domainsnapshot><name>s</name><state>running</state></domainsnapshot>'
    assert _model.with_description(xml, '') == xml


# -- domain XML -------------------------------------------------------------------------------------------------------

DOMAIN_XML = '''<domain type='kvm'>
  <name>web01</name>
  <uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/><source file='/images/web01.qcow2'/><target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/><source file='/images/web01-data.img'/><target dev='vdb' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/><target dev='hdc' bus='ide'/><readonly/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/><source file='/isos/debian.iso'/><target dev='hdd' bus='ide'/><readonly/>
    </disk>
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw'/>
      <source protocol='rbd' name='pool/image'><host name='ceph1' port='6789'/></source>
      <target dev='vdc' bus='virtio'/>
    </disk>
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw'/><source protocol='nbd'><host name='nbd1'/></source><target dev='vdf'/>
    </disk>
    <disk type='block' device='disk' snapshot='no'>
      <driver name='qemu' type='raw'/><source dev='/dev/vg/scratch'/><target dev='sda' bus='scsi'/>
    </disk>
    <disk type='volume' device='disk'>
      <driver name='qemu' type='qcow2'/><source pool='default' volume='vol1.qcow2'/><target dev='vdd'/>
    </disk>
    <disk type='file' device='disk'>
      <source file='/images/nodriver.img'/><target dev='vde'/>
    </disk>
    <interface type='network'><source network='default'/></interface>
  </devices>
</domain>'''

DISK_KEYS = ('name', 'device', 'type', 'format', 'source', 'readonly', 'snapshot_default')
EXPECTED_DISKS = [
    ('vda', 'disk', 'file', 'qcow2', '/images/web01.qcow2', False, None),
    ('vdb', 'disk', 'file', 'raw', '/images/web01-data.img', False, None),
    ('hdc', 'cdrom', 'file', 'raw', None, True, None),
    ('hdd', 'cdrom', 'file', 'raw', '/isos/debian.iso', True, None),
    ('vdc', 'disk', 'network', 'raw', 'rbd:pool/image', False, None),
    ('vdf', 'disk', 'network', 'raw', 'nbd', False, None),
    ('sda', 'disk', 'block', 'raw', '/dev/vg/scratch', False, 'no'),
    ('vdd', 'disk', 'volume', 'qcow2', 'default/vol1.qcow2', False, None),
    ('vde', 'disk', 'file', None, '/images/nodriver.img', False, None),
]


@pytest.mark.parametrize('state, active', [
    ('running', True), ('paused', True), ('blocked', True), ('pmsuspended', True), ('shutdown', True),
    ('crashed', True),  # on_crash preserve: its QEMU process is kept
    ('shutoff', False), ('nostate', False),
])
def test_parse_domain(state, active):
    domain = _model.parse_domain(DOMAIN_XML, state)
    assert (domain['name'], domain['uuid'], domain['state'], domain['active']) == \
        ('web01', '4dea22b3-1d52-d8f3-2516-782e98ab3fa0', state, active)
    assert [tuple(disk[key] for key in DISK_KEYS) for disk in domain['disks']] == EXPECTED_DISKS


@pytest.mark.parametrize('target, candidate', [
    ('vda', True), ('vdb', True), ('hdc', False), ('hdd', False), ('vdc', True), ('sda', False), ('vdd', True),
])
def test_snapshot_candidate(target, candidate):
    disk = [disk for disk in _model.parse_domain(DOMAIN_XML, 'running')['disks'] if disk['name'] == target][0]
    assert _model.snapshot_candidate(disk) is candidate


@pytest.mark.parametrize('source, name, expected', [
    ('/var/lib/libvirt/images/web01.qcow2', 'before', '/var/lib/libvirt/images/web01.before'),
    ('/images/web01.disk.qcow2', 'snap', '/images/web01.disk.snap'),
    ('/images/web01', 'snap', '/images/web01.snap'),
    ('/dev/vg/lv', 'snap', '/dev/vg/lv.snap'),
    ('/images/.hidden', 'snap', '/images/.hidden.snap'),
    ('/images/web01.qcow2', u'\u540d\u524d', u'/images/web01.\u540d\u524d'),
])
def test_default_overlay_path(source, name, expected):
    assert _model.default_overlay_path(source, name) == expected


def test_default_memory_path_is_beside_the_first_snapshotted_file_disk():
    domain = _model.parse_domain(DOMAIN_XML, 'running')
    assert _model.default_memory_path(domain, 'snap') == '/images/web01.snap.mem'


def test_default_memory_path_without_a_file_disk():
    domain = {'name': 'web01', 'disks': [
        {'name': 'vda', 'type': 'network', 'device': 'disk', 'readonly': False, 'source': 'rbd:pool/image',
         'snapshot_default': None}]}
    assert _model.default_memory_path(domain, 'snap') == '/var/lib/libvirt/qemu/snapshot/web01.snap.mem'


# -- diff_view --------------------------------------------------------------------------------------------------------

def test_diff_view():
    snapshot = _model.parse_snapshot(SNAPSHOT_XML, 'web01', is_current=True, children=['c1'])
    view = _model.diff_view(snapshot)
    assert view == {
        'exists': True,
        'description': 'up & running',
        'parent': 'before',
        'children': ['c1'],
        'location': 'external',
        'memory': {'snapshot': 'no', 'file': None},
        'disks': snapshot['disks'],
        'is_current': True,
    }
    view['disks'][0]['file'] = 'changed'
    view['children'].append('c2')
    assert snapshot['disks'][0]['file'] == '/images/web01.after' and snapshot['children'] == ['c1']
    assert _model.diff_view(None) == {'exists': False}
