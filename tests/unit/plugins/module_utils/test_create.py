# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Unit tests of _create (state=present): the decisions, as tables. Nothing here touches libvirt."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.vmsnap.libvirt.plugins.module_utils import _create, _model
from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError

# What the client's host() reports: stock Debian 12 (no external revert) and bookworm-backports.
HOST_9_0 = {'uri': 'qemu:///system', 'libvirt_version': '9.0.0', 'external_revert': False, 'external_delete': True}
HOST_11_3 = {'uri': 'qemu:///system', 'libvirt_version': '11.3.0', 'external_revert': True, 'external_delete': True}


def nothing_exists(path):
    return False


# -- domains, built from XML so they have exactly the shape parse_domain gives the plans ------------------------------

def qcow2(dev):
    return ("<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
            "<source file='/images/web01-%s.qcow2'/><target dev='%s'/></disk>" % (dev, dev))


def raw(dev):
    return ("<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
            "<source file='/images/web01-%s.img'/><target dev='%s'/></disk>" % (dev, dev))


def block(dev):
    return ("<disk type='block' device='disk'><driver name='qemu' type='raw'/>"
            "<source dev='/dev/vg/%s'/><target dev='%s'/></disk>" % (dev, dev))


def network(dev, fmt='raw'):
    return ("<disk type='network' device='disk'><driver name='qemu' type='%s'/>"
            "<source protocol='rbd' name='pool/%s'/><target dev='%s'/></disk>" % (fmt, dev, dev))


EMPTY_CDROM = ("<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><target dev='hdc'/>"
               "<readonly/></disk>")


def domain(state, *disks):
    return _model.parse_domain('<domain><name>web01</name><devices>%s</devices></domain>' % ''.join(disks), state)


def present(**options):
    """The module's parameters for state=present, with its defaults."""
    params = dict(name='snap', description=None, memory=None, location='auto', memory_file=None, disks=None,
                  quiesce=False)
    params.update(options)
    return params


def plan_create(params, dom, host=None, path_exists=nothing_exists, current_name=None):
    return _create.plan_present(params, domain=dom, existing=None, existing_xml=None, current_name=current_name,
                                host=HOST_9_0 if host is None else host, path_exists=path_exists)


def refusal(params, dom, host=None, path_exists=nothing_exists):
    with pytest.raises(SnapshotError) as caught:
        plan_create(params, dom, host, path_exists)
    return caught.value.msg


# -- memory defaults by domain state ----------------------------------------------------------------------------------

@pytest.mark.parametrize('state, memory, snapshot_state', [
    ('running', 'internal', 'running'),
    ('paused', 'internal', 'paused'),
    ('blocked', 'internal', 'blocked'),
    ('shutoff', 'no', 'shutoff'),
    # on_crash preserve keeps the QEMU process of a crashed guest: its memory is saved as well (virt_snapshot_guests,
    # the post-mortem case, found libvirt refusing a memory-less internal snapshot of it)
    ('crashed', 'internal', 'crashed'),
])
def test_memory_default_by_domain_state(state, memory, snapshot_state):
    plan = plan_create(present(), domain(state, qcow2('vda'), EMPTY_CDROM))
    assert plan.snapshot['memory'] == {'snapshot': memory, 'file': None}
    assert plan.snapshot['state'] == snapshot_state  # what libvirt records: the domain's state as it is
    assert plan.snapshot['disks'] == [{'name': 'vda', 'snapshot': 'internal', 'file': None},
                                      {'name': 'hdc', 'snapshot': 'no', 'file': None}]
    assert plan.domain_state == state


@pytest.mark.parametrize('state, memory, snapshot_state, flags', [
    ('running', {'snapshot': 'external', 'file': '/images/web01.snap.mem'}, 'running', ['atomic']),
    ('paused', {'snapshot': 'external', 'file': '/images/web01.snap.mem'}, 'paused', ['atomic']),
    # libvirt records a disk-only snapshot of a shut-off domain as shutoff, of an active one as disk-snapshot
    ('shutoff', {'snapshot': 'no', 'file': None}, 'shutoff', ['atomic', 'disk_only']),
])
def test_memory_default_by_domain_state_on_a_host_with_external_revert(state, memory, snapshot_state, flags):
    plan = plan_create(present(), domain(state, qcow2('vda')), HOST_11_3)
    assert (plan.snapshot['memory'], plan.snapshot['state'], plan.actions[0].params['flags']) == \
        (memory, snapshot_state, flags)
    assert plan.snapshot['disks'] == [{'name': 'vda', 'snapshot': 'external', 'file': '/images/web01-vda.snap'}]


def test_memory_false_on_a_running_domain_is_disk_only():
    plan = plan_create(present(memory=False, location='external'), domain('running', qcow2('vda')))
    assert (plan.snapshot['state'], plan.snapshot['memory']['snapshot'], plan.actions[0].params['flags']) == \
        ('disk-snapshot', 'no', ['atomic', 'disk_only'])


# -- location=auto: host capability x disk formats and types ----------------------------------------------------------

@pytest.mark.parametrize('host, disks, location', [
    (HOST_9_0, [qcow2('vda')], 'internal'),
    (HOST_11_3, [qcow2('vda')], 'external'),
    (HOST_9_0, [qcow2('vda'), qcow2('vdb'), EMPTY_CDROM], 'internal'),
    (HOST_11_3, [qcow2('vda'), raw('vdb')], 'external'),
    (HOST_11_3, [qcow2('vda'), block('sda')], 'external'),
    # a network disk cannot take an external snapshot: qcow2 everywhere makes it internal even where external works
    (HOST_11_3, [qcow2('vda'), network('vdb', 'qcow2')], 'internal'),
    (HOST_9_0, [qcow2('vda'), network('vdb', 'qcow2')], 'internal'),
])
def test_location_auto_chooses(host, disks, location):
    plan = plan_create(present(), domain('running', *disks), host)
    assert plan.snapshot['location'] == location
    assert set(disk['snapshot'] for disk in plan.snapshot['disks'] if disk['name'] != 'hdc') == set([location])


@pytest.mark.parametrize('host, disks, fragments', [
    (HOST_9_0, [qcow2('vda'), raw('vdb')],
     ["disk 'vdb' (raw /images/web01-vdb.img) cannot take an internal snapshot (that needs qcow2)",
      'this host (libvirt 9.0.0) cannot revert external snapshots']),
    (HOST_9_0, [block('sda')],
     ["disk 'sda' (raw /dev/vg/sda) cannot take an internal snapshot"]),
    (HOST_11_3, [qcow2('vda'), network('vdb')],
     ["disk 'vdb' (raw rbd:pool/vdb) cannot take an internal snapshot",
      "disk 'vdb' (raw rbd:pool/vdb) cannot take an external one (that needs a file or block device)"]),
    (HOST_9_0, [raw('vda'), network('vdb')],
     ["disk 'vda' (raw /images/web01-vda.img), disk 'vdb' (raw rbd:pool/vdb) cannot take an internal snapshot",
      "and disk 'vdb' (raw rbd:pool/vdb) cannot take an external one"]),
])
def test_location_auto_refuses_naming_the_disks(host, disks, fragments):
    message = refusal(present(), domain('running', *disks), host)
    assert message.startswith("location=auto found no kind of snapshot that suits every disk of domain 'web01': ")
    for fragment in fragments:
        assert fragment in message
    assert 'disks: [{name: DISK, snapshot: "no"}]' in message


def test_location_auto_ignores_disks_left_out():
    plan = plan_create(present(disks=[{'name': 'vdb', 'snapshot': 'no', 'file': None}]),
                       domain('running', qcow2('vda'), network('vdb')), HOST_11_3)
    assert plan.snapshot['disks'] == [{'name': 'vda', 'snapshot': 'external', 'file': '/images/web01-vda.snap'},
                                      {'name': 'vdb', 'snapshot': 'no', 'file': None}]


def test_internal_snapshot_leaves_out_disks_the_domain_marks_snapshot_no():
    marked = block('sda').replace("<disk type='block'", "<disk type='block' snapshot='no'")
    plan = plan_create(present(), domain('running', qcow2('vda'), marked, EMPTY_CDROM))
    assert plan.snapshot['disks'] == [{'name': 'vda', 'snapshot': 'internal', 'file': None},
                                      {'name': 'sda', 'snapshot': 'no', 'file': None},
                                      {'name': 'hdc', 'snapshot': 'no', 'file': None}]


@pytest.mark.parametrize('kind', ['internal', 'external'])
def test_location_auto_follows_disks_that_all_say_the_same(kind):
    requested = [{'name': 'vda', 'snapshot': kind, 'file': None}, {'name': 'vdb', 'snapshot': kind, 'file': None}]
    plan = plan_create(present(disks=requested), domain('running', qcow2('vda'), qcow2('vdb')), HOST_9_0)
    assert plan.snapshot['location'] == kind


# -- refusals, before anything changes --------------------------------------------------------------------------------

@pytest.mark.parametrize('params, dom, path_exists, expected', [
    # raw + internal
    (present(location='internal'), domain('running', qcow2('vda'), raw('vdb')), nothing_exists,
     "Cannot snapshot domain 'web01': disk 'vdb' (raw /images/web01-vdb.img) cannot take an internal snapshot: "
     'internal snapshots live inside qcow2 images. Use location: external, which can also leave a disk out with '
     'disks: [{name: DISK, snapshot: "no"}]; libvirt cannot leave a writable disk out of an internal snapshot.'),
    # network + external
    (present(location='external'), domain('running', qcow2('vda'), network('vdb')), nothing_exists,
     "Cannot snapshot domain 'web01': disk 'vdb' (raw rbd:pool/vdb) cannot take an external snapshot: the overlay "
     'must be a local file or block device. Leave the disk out of the external snapshot with disks: [{name: DISK, '
     'snapshot: "no"}], or use location: internal if every disk is qcow2.'),
    # memory on a shut-off domain
    (present(memory=True), domain('shutoff', qcow2('vda')), nothing_exists,
     "Domain 'web01' is shutoff, so it has no memory state to save. Leave memory unset or set memory: false for a "
     'disk-only snapshot, or start the domain first.'),
    # internal without memory on a running domain (libvirt refuses it)
    (present(memory=False, location='internal'), domain('running', qcow2('vda')), nothing_exists,
     "An internal snapshot of the running domain 'web01' must include its memory (libvirt refuses otherwise). Leave "
     'memory unset or set memory: true, or set location: external for a disk-only snapshot.'),
    (present(memory=False), domain('paused', qcow2('vda')), nothing_exists,
     "An internal snapshot of the running domain 'web01' must include its memory"),
    # libvirt refuses a disk-only internal snapshot of any active domain, pmsuspended included
    (present(), domain('pmsuspended', qcow2('vda')), nothing_exists,
     "An internal snapshot of the running domain 'web01' must include its memory"),
    # quiesce with memory, and quiesce where the snapshot is not disk-only external
    (present(quiesce=True), domain('running', qcow2('vda')), nothing_exists,
     'quiesce freezes the guest file systems for a disk-only snapshot; it cannot be combined with memory. '
     'Set memory: false.'),
    (present(quiesce=True, location='internal'), domain('shutoff', qcow2('vda')), nothing_exists,
     'quiesce needs a disk-only external snapshot. Set location: external and memory: false.'),
    # memory_file misuse
    (present(memory=False, memory_file='/images/m.mem', location='external'), domain('running', qcow2('vda')),
     nothing_exists, 'memory_file names where the memory of a snapshot goes, but this snapshot holds no memory.'),
    (present(memory_file='/images/m.mem'), domain('shutoff', qcow2('vda')), nothing_exists,
     'memory_file names where the memory of a snapshot goes, but this snapshot holds no memory.'),
    (present(memory_file='/images/m.mem', location='internal'), domain('running', qcow2('vda')), nothing_exists,
     'memory_file applies to external snapshots; internal ones keep memory inside the qcow2 image.'),
    # unknown and duplicate disks
    (present(disks=[{'name': 'vdz', 'snapshot': 'no', 'file': None}]), domain('running', qcow2('vda'), EMPTY_CDROM),
     nothing_exists, "disks names 'vdz', but domain 'web01' has no such disk; its disks are: vda, hdc."),
    (present(disks=[{'name': 'vda', 'snapshot': None, 'file': None}, {'name': 'vda', 'snapshot': 'no', 'file': None}]),
     domain('running', qcow2('vda')), nothing_exists, "disks names 'vda' twice; give each disk once."),
    # mixed internal and external
    (present(memory=False, disks=[{'name': 'vda', 'snapshot': 'internal', 'file': None},
                                  {'name': 'vdb', 'snapshot': 'external', 'file': None}]),
     domain('shutoff', qcow2('vda'), qcow2('vdb')), nothing_exists,
     'libvirt cannot mix internal and external parts in one snapshot; the request gives vda internal, vdb external.'),
    (present(location='external', disks=[{'name': 'vda', 'snapshot': 'internal', 'file': None}]),
     domain('running', qcow2('vda')), nothing_exists,
     'libvirt cannot mix internal and external parts in one snapshot'),
    # a file for a disk that does not take an external snapshot
    (present(location='internal', disks=[{'name': 'vda', 'snapshot': None, 'file': '/images/o.qcow2'}]),
     domain('running', qcow2('vda')), nothing_exists,
     "disks[].file applies to external snapshots, but disk 'vda' is to take an internal one."),
    # a disk that cannot be snapshotted at all
    (present(disks=[{'name': 'hdc', 'snapshot': 'internal', 'file': None}]),
     domain('running', qcow2('vda'), EMPTY_CDROM), nothing_exists,
     "Disk 'hdc' of domain 'web01' cannot be snapshotted: it is a read-only drive without media. "
     'Set its snapshot to no.'),
    # libvirt refuses to leave a writable disk out of an internal snapshot, running or shut off
    (present(disks=[{'name': 'vdb', 'snapshot': 'no', 'file': None}]), domain('running', qcow2('vda'), raw('vdb')),
     nothing_exists,
     "libvirt cannot leave disk 'vdb' out of an internal snapshot of domain 'web01': every writable disk takes part "
     "unless the domain definition marks it snapshot='no'. Set location: external, or mark the disk in the domain "
     'definition.'),
    (present(location='internal', disks=[{'name': 'vdb', 'snapshot': 'no', 'file': None}]),
     domain('shutoff', qcow2('vda'), qcow2('vdb')), nothing_exists,
     "libvirt cannot leave disk 'vdb' out of an internal snapshot of domain 'web01'"),
    # nothing left to snapshot
    (present(disks=[{'name': 'vda', 'snapshot': 'no', 'file': None}]), domain('shutoff', qcow2('vda')),
     nothing_exists, "Nothing to snapshot on domain 'web01': every disk is excluded and memory is not saved."),
    # existing files: libvirt will not overwrite them
    (present(location='external'), domain('running', qcow2('vda')),
     lambda path: path == '/images/web01-vda.snap',
     "The overlay of disk vda '/images/web01-vda.snap' already exists; libvirt will not overwrite it. Choose another "
     'snapshot name, give another file, or remove the file if nothing uses it.'),
    (present(location='external'), domain('running', qcow2('vda')),
     lambda path: path == '/images/web01.snap.mem',
     "The memory file '/images/web01.snap.mem' already exists"),
    # relative and colliding paths
    (present(location='external', memory=False, disks=[{'name': 'vda', 'snapshot': None, 'file': 'overlays/x'}]),
     domain('running', qcow2('vda')), nothing_exists,
     "The overlay of disk vda path 'overlays/x' is not absolute. Give a full path."),
    (present(location='external', memory_file='/images/same',
             disks=[{'name': 'vda', 'snapshot': None, 'file': '/images/same'}]),
     domain('running', qcow2('vda')), nothing_exists,
     "The overlay of disk vda and the memory file would both be '/images/same'. Give them different files."),
])
def test_refusals(params, dom, path_exists, expected):
    assert expected in refusal(params, dom, path_exists=path_exists)


def test_existing_files_are_checked_by_the_injected_path_exists():
    asked = []

    def path_exists(path):
        asked.append(path)
        return False

    plan_create(present(location='external'), domain('running', qcow2('vda'), qcow2('vdb')), path_exists=path_exists)
    assert asked == ['/images/web01-vda.snap', '/images/web01-vdb.snap', '/images/web01.snap.mem']


# -- flags ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('params, state, flags', [
    (present(), 'running', ['atomic']),
    (present(), 'shutoff', ['atomic']),
    (present(location='external'), 'running', ['atomic']),
    (present(location='external', memory=False), 'running', ['atomic', 'disk_only']),
    (present(location='external'), 'shutoff', ['atomic', 'disk_only']),
    (present(location='external', memory=False, quiesce=True), 'running', ['atomic', 'disk_only', 'quiesce']),
    (present(location='external', live=True), 'running', ['atomic', 'live']),
])
def test_flags(params, state, flags):
    plan = plan_create(params, domain(state, qcow2('vda')))
    assert [action.kind for action in plan.actions] == ['create']
    assert plan.actions[0].params['flags'] == flags


# -- the predicted snapshot and the diff ------------------------------------------------------------------------------

def test_predicted_internal_snapshot_and_diff():
    plan = plan_create(present(name=u'n\u00e4me <&>', description='why'), domain('running', qcow2('vda'), EMPTY_CDROM),
                       current_name='base')
    expected = {
        'name': u'n\u00e4me <&>',
        'domain': 'web01',
        'description': 'why',
        'state': 'running',
        'creation_time': None,
        'creation_time_iso': None,
        'parent': 'base',
        'children': [],
        'is_current': True,
        'location': 'internal',
        'memory': {'snapshot': 'internal', 'file': None},
        'disks': [{'name': 'vda', 'snapshot': 'internal', 'file': None},
                  {'name': 'hdc', 'snapshot': 'no', 'file': None}],
        'consistency': 'memory',
    }
    assert plan.snapshot == expected
    assert plan.changed is True
    assert plan.before == {'exists': False}
    assert plan.after == _model.diff_view(expected)
    assert plan.deleted == [] and plan.warnings == []
    action = plan.actions[0]
    assert (action.kind, action.params['name'], action.params['files']) == ('create', u'n\u00e4me <&>', [])
    # the XML to create is the prediction, written out
    built = _model.parse_snapshot(action.params['xml'], 'web01')
    assert (built['name'], built['description'], built['memory'], built['disks']) == \
        (expected['name'], expected['description'], expected['memory'], expected['disks'])


def test_predicted_external_snapshot_names_its_files():
    plan = plan_create(present(location='external', disks=[{'name': 'vdb', 'snapshot': None, 'file': '/fast/vdb.ov'}]),
                       domain('running', qcow2('vda'), raw('vdb'), EMPTY_CDROM))
    assert plan.snapshot['memory'] == {'snapshot': 'external', 'file': '/images/web01.snap.mem'}
    assert plan.snapshot['disks'] == [{'name': 'vda', 'snapshot': 'external', 'file': '/images/web01-vda.snap'},
                                      {'name': 'vdb', 'snapshot': 'external', 'file': '/fast/vdb.ov'},
                                      {'name': 'hdc', 'snapshot': 'no', 'file': None}]
    assert plan.actions[0].params['files'] == ['/images/web01-vda.snap', '/fast/vdb.ov', '/images/web01.snap.mem']
    assert _model.parse_snapshot(plan.actions[0].params['xml'], 'web01')['disks'] == plan.snapshot['disks']


def test_empty_description_on_create_is_none():
    plan = plan_create(present(description=''), domain('running', qcow2('vda')))
    assert plan.snapshot['description'] is None
    assert _model.parse_xml(plan.actions[0].params['xml'], 'test').find('description') is None


# -- an existing snapshot: description update and creation-only options -----------------------------------------------

EXISTING_XML = ('<domainsnapshot><name>snap</name><description>old</description><state>running</state>'
                '<creationTime>1795633778</creationTime><memory snapshot="internal"/>'
                '<disks><disk name="vda" snapshot="internal"/></disks></domainsnapshot>')


def existing(is_current=True, xml=EXISTING_XML):
    return _model.parse_snapshot(xml, 'web01', is_current=is_current, children=['child'])


def plan_update(params, snapshot=None, xml=EXISTING_XML):
    return _create.plan_present(params, domain=None, existing=snapshot or existing(), existing_xml=xml, current_name=None, host={})


@pytest.mark.parametrize('is_current', [True, False])
def test_description_change_is_a_redefine(is_current):
    before = existing(is_current)
    plan = plan_update(present(description=u'new <\u00e9>'), before)
    assert plan.changed is True
    assert [(action.kind, action.params['name'], action.params['current']) for action in plan.actions] == \
        [('redefine', 'snap', is_current)]
    redefined = _model.parse_snapshot(plan.actions[0].params['xml'], 'web01')
    assert redefined == dict(_model.parse_snapshot(EXISTING_XML, 'web01'), description=u'new <\u00e9>')
    assert plan.snapshot == dict(before, description=u'new <\u00e9>')
    assert plan.before == _model.diff_view(before)
    assert plan.after == dict(_model.diff_view(before), description=u'new <\u00e9>')
    assert plan.domain_state is None


def test_empty_description_removes_it():
    plan = plan_update(present(description=''))
    assert [action.kind for action in plan.actions] == ['redefine']
    assert _model.parse_snapshot(plan.actions[0].params['xml'], 'web01')['description'] is None
    assert (plan.before['description'], plan.after['description'], plan.snapshot['description']) == ('old', None, None)


@pytest.mark.parametrize('description, xml', [
    ('old', EXISTING_XML),
    (None, EXISTING_XML),
    ('', EXISTING_XML.replace('<description>old</description>', '')),
])
def test_same_or_unset_description_is_no_change(description, xml):
    before = existing(xml=xml)
    plan = plan_update(present(description=description), before, xml)
    assert (plan.changed, plan.actions, plan.warnings) == (False, [], [])
    assert plan.before == plan.after == _model.diff_view(before)
    assert plan.snapshot == before


@pytest.mark.parametrize('options, mention', [
    ({'memory': False}, 'memory=False (it has memory)'),
    ({'location': 'external'}, 'location=external (it is internal)'),
    ({'memory': False, 'location': 'external'}, 'memory=False (it has memory), location=external (it is internal)'),
])
def test_creation_only_options_warn_and_change_nothing(options, mention):
    plan = plan_update(present(**options))
    assert plan.changed is False
    assert plan.warnings == ["Snapshot 'snap' of domain 'web01' already exists; %s only apply when a snapshot is "
                             'created, so it was left as it is. Delete it first (state=absent) or choose another name '
                             'to take a new one.' % mention]


@pytest.mark.parametrize('options', [{'memory': True}, {'location': 'internal'}, {'location': 'auto'}, {}])
def test_creation_only_options_that_match_do_not_warn(options):
    assert plan_update(present(**options)).warnings == []


def test_description_change_still_warns_about_creation_only_options():
    plan = plan_update(present(description='new', memory=False))
    assert [action.kind for action in plan.actions] == ['redefine']
    assert len(plan.warnings) == 1 and 'memory=False (it has memory)' in plan.warnings[0]


# -- live: an external snapshot with memory of a running guest, saved while it runs -----------------------------------

def test_live_external_memory_snapshot_records_running_and_its_memory_file():
    plan = plan_create(present(location='external', live=True), domain('running', qcow2('vda')))
    create = plan.actions[-1]
    assert create.params['flags'] == ['atomic', 'live']
    assert plan.snapshot['state'] == 'running'
    assert plan.snapshot['memory'] == {'snapshot': 'external', 'file': '/images/web01.snap.mem'}
    # the memory file is among the files made private after the create
    assert '/images/web01.snap.mem' in create.params['files']


def test_live_with_auto_on_a_host_that_reverts_external_snapshots():
    plan = plan_create(present(live=True), domain('running', qcow2('vda')), HOST_11_3)
    assert plan.actions[-1].params['flags'] == ['atomic', 'live']
    assert plan.snapshot['location'] == 'external'


@pytest.mark.parametrize('params, state, host, expected', [
    (present(location='external', live=True), 'shutoff', HOST_11_3,
     "live keeps the guest running while an external snapshot saves its memory, but domain 'web01' is shutoff. "
     'Drop live, or start (or resume) the domain first.'),
    (present(location='external', live=True), 'paused', HOST_11_3, "but domain 'web01' is paused."),
    (present(location='external', live=True, memory=False), 'running', HOST_11_3,
     'but this snapshot saves no memory. Drop live, or leave memory unset (or set it to true).'),
    (present(live=True), 'running', HOST_9_0,
     'but this snapshot is internal (location: auto picks internal on a host that cannot revert external snapshots). '
     'Set location: external'),
    (present(live=True, location='internal'), 'running', HOST_11_3,
     'but this snapshot is internal. Set location: external for an external snapshot with memory, or drop live.'),
])
def test_live_refusals(params, state, host, expected):
    assert expected in refusal(params, domain(state, qcow2('vda')), host)
