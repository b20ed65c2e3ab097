# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Unit tests of _plan for external snapshots: the capability decisions (what the host can revert and delete), merge,
the refusals foreseen before libvirt would refuse halfway, force and its lists, and rename. As tables; no libvirt."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.vmsnap.libvirt.plugins.module_utils import _create, _delete, _merge, _model, _plan, _records, _revert
from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError

# What the client's host() reports, by what the host can do with external snapshots.
HOST_8_0 = {'uri': 'qemu:///system', 'libvirt_version': '8.0.0', 'external_revert': False, 'external_delete': False}
HOST_9_0 = {'uri': 'qemu:///system', 'libvirt_version': '9.0.0', 'external_revert': False, 'external_delete': True}
HOST_11_3 = {'uri': 'qemu:///system', 'libvirt_version': '11.3.0', 'external_revert': True, 'external_delete': True}

BASE = '/images/vda.qcow2'


def overlay(name):
    return '/images/vda.%s' % name


def memory_file(name):
    return '/images/web01.%s.mem' % name


def nothing_exists(path):
    return False


# -- domains and snapshots, built from XML so they have exactly the shapes the plans get -------------------------------

def disk(dev, chain, fmt='qcow2', kind='file'):
    """A <disk> whose backing chain is ``chain`` (top first), as libvirt writes it for a running domain."""
    if kind != 'file':
        return ("<disk type='%s' device='disk'><driver name='qemu' type='%s'/><source %s/><target dev='%s'/></disk>"
                % (kind, fmt, "dev='/dev/vg/%s'" % dev if kind == 'block' else "protocol='rbd' name='pool/%s'" % dev,
                   dev))
    backing = ''
    for path in reversed(chain[1:]):
        backing = ("<backingStore type='file'><format type='qcow2'/><source file='%s'/>%s</backingStore>"
                   % (path, backing))
    return ("<disk type='file' device='disk'><driver name='qemu' type='%s'/><source file='%s'/>%s<target dev='%s'/>"
            "</disk>" % (fmt, chain[0], backing, dev))


def domain(state, *disks):
    return _model.parse_domain('<domain><name>web01</name><devices>%s</devices></domain>' % ''.join(disks), state)


def running_on(*chain):
    return domain('running', disk('vda', list(chain)))


def shutoff_on(*chain):
    return domain('shutoff', disk('vda', list(chain)))


def snapshot(name, parent=None, children=(), location='external', memory=False, is_current=False):
    """A snapshot of disk vda: external ones put vda on overlay(name) and, with memory, save it to memory_file(name)."""
    if location == 'external':
        disks = '<disk name="vda" snapshot="external"><source file="%s"/></disk>' % overlay(name)
        mem = '<memory snapshot="external" file="%s"/>' % memory_file(name) if memory else '<memory snapshot="no"/>'
    else:
        disks = '<disk name="vda" snapshot="internal"/>'
        mem = '<memory snapshot="%s"/>' % ('internal' if memory else 'no')
    xml = '<domainsnapshot><name>%s</name>%s%s<disks>%s</disks></domainsnapshot>' % (
        name, '<parent><name>%s</name></parent>' % parent if parent else '', mem, disks)
    return _model.parse_snapshot(xml, 'web01', is_current=is_current, children=children)


def params(state='absent', **options):
    values = dict(name='snap', state=state, children=False, children_only=False, metadata_only=False, force=False,
                  revert_state='snapshot')
    values.update(options)
    return values


def refusal(function, *args, **kwargs):
    with pytest.raises(SnapshotError) as caught:
        function(*args, **kwargs)
    return caught.value


# A chain of three external snapshots on a running domain: base <- a <- b <- c (current), c with memory.
A = snapshot('a', children=['b'])
B = snapshot('b', parent='a', children=['c'])
C = snapshot('c', parent='b', memory=True, is_current=True)
ON_C = running_on(overlay('c'), overlay('b'), overlay('a'), BASE)


# -- location=auto, by what the host can revert ----------------------------------------------------------------------

@pytest.mark.parametrize('host, disks, location', [
    # external where the host reverts external snapshots and every disk is a file or block device
    (HOST_11_3, [disk('vda', [BASE])], 'external'),
    (HOST_11_3, [disk('vda', [BASE]), disk('vdb', ['/images/vdb.img'], fmt='raw')], 'external'),
    (HOST_11_3, [disk('vda', [BASE]), disk('vdb', None, fmt='raw', kind='block')], 'external'),
    # internal where it cannot but every disk is qcow2; deleting external snapshots does not make them revertible
    (HOST_9_0, [disk('vda', [BASE])], 'internal'),
    (HOST_8_0, [disk('vda', [BASE])], 'internal'),
    (HOST_9_0, [disk('vda', [BASE]), disk('vdb', ['/images/vdb.qcow2'])], 'internal'),
    # a network disk cannot take an external snapshot: internal if it is qcow2, even where external reverts work
    (HOST_11_3, [disk('vda', [BASE]), disk('vdb', None, fmt='qcow2', kind='network')], 'internal'),
])
def test_location_auto_by_host_capability(host, disks, location):
    spec = _create.snapshot_spec(dict(name='snap', location='auto', memory=False), domain('shutoff', *disks), host,
                                 nothing_exists)
    assert spec['location'] == location
    assert set(item['snapshot'] for item in spec['disks']) == set([location])


@pytest.mark.parametrize('host, disks, fragments', [
    (HOST_9_0, [disk('vda', ['/images/vda.img'], fmt='raw')],
     ["location=auto found no kind of snapshot that suits every disk of domain 'web01'",
      "disk 'vda' (raw /images/vda.img) cannot take an internal snapshot (that needs qcow2)",
      'this host (libvirt 9.0.0) cannot revert external snapshots (libvirt 9.9 and later can)',
      'Set location: external to take an external snapshot anyway']),
    (HOST_8_0, [disk('vda', [BASE]), disk('vdb', ['/images/vdb.img'], fmt='raw')],
     ["disk 'vdb' (raw /images/vdb.img) cannot take an internal snapshot", 'this host (libvirt 8.0.0)']),
    (HOST_11_3, [disk('vda', None, fmt='raw', kind='network')],
     ["disk 'vda' (raw rbd:pool/vda) cannot take an internal snapshot (that needs qcow2), and disk 'vda' "
      '(raw rbd:pool/vda) cannot take an external one (that needs a file or block device)']),
])
def test_location_auto_refuses_naming_the_disks(host, disks, fragments):
    error = refusal(_create.snapshot_spec, dict(name='snap', location='auto', memory=False),
                    domain('shutoff', *disks), host, nothing_exists)
    assert [fragment for fragment in fragments if fragment not in error.msg] == []


# -- state=absent on external snapshots, by what the host can delete --------------------------------------------------

def test_absent_external_where_libvirt_deletes_it_is_its_delete_and_removes_the_memory_file():
    plan = _delete.plan_absent(params(), C, [], domain=ON_C, bases={'vda': overlay('b')}, parent=B, current_name='c', host=HOST_9_0)
    assert [(action.kind, action.params['name'], action.params['flags'], action.params['remove_files'])
            for action in plan.actions] == [('delete', 'c', [], [memory_file('c')])]
    assert (plan.deleted, plan.merged, plan.snapshot) == (['c'], [], None)


@pytest.mark.parametrize('state, running', [('running', True), ('paused', True), ('shutoff', False)])
def test_absent_external_where_libvirt_cannot_delete_it_is_a_merge(state, running):
    dom = domain(state, disk('vda', [overlay('c'), overlay('b'), overlay('a'), BASE]))
    plan = _delete.plan_absent(params(), C, [], domain=dom, bases={'vda': overlay('b')}, parent=B, current_name='c', host=HOST_8_0)
    expected = _merge.plan_merge(params(state='merged'), dom, C, bases={'vda': overlay('b')}, descendants=[], current_name='c')
    assert [(action.kind, action.params) for action in plan.actions] == \
        [(action.kind, action.params) for action in expected.actions]
    assert [action.kind for action in plan.actions] == ['merge']
    assert plan.actions[0].params['running'] is running
    assert plan.merged == [{'disk': 'vda', 'top': overlay('c'), 'base': overlay('b'), 'base_format': 'qcow2',
                            'overlays': [overlay('c')], 'job_size': None}]
    assert (plan.deleted, plan.snapshot, plan.after) == (['c'], None, {'exists': False})


def test_absent_external_where_libvirt_cannot_delete_it_needs_force_for_snapshots_on_top():
    error = refusal(_delete.plan_absent, params(), A, [B, C], domain=ON_C, bases={'vda': BASE}, parent=None, current_name='c', host=HOST_8_0)
    assert "Merging snapshot 'a' folds every layer above its base and would also remove or invalidate 2 other " \
           'snapshots: b, c. Nothing was changed. Set force: true to go ahead.' in error.msg
    assert error.details == {'affected': ['b', 'c']}


def test_absent_metadata_only_never_merges_nor_foresees():
    internal_parent = snapshot('i1', children=['e1'], location='internal', memory=True)
    e1 = snapshot('e1', parent='i1')
    for host in (HOST_8_0, HOST_9_0):
        plan = _delete.plan_absent(params(metadata_only=True), e1, [], domain=running_on(overlay('e1'), BASE), bases={'vda': BASE},
                                   parent=internal_parent, current_name='e1', host=host)
        assert [(action.kind, action.params['flags'], action.params['remove_files']) for action in plan.actions] == \
            [('delete', ['metadata_only'], [])]


# -- the refusals foreseen before libvirt would refuse halfway --------------------------------------------------------

def test_foresee_external_whose_parent_is_internal():
    parent = snapshot('i1', children=['e1'], location='internal', memory=True)
    e1 = snapshot('e1', parent='i1', memory=True, is_current=True)
    error = refusal(_delete.plan_absent, params(), e1, [], domain=running_on(overlay('e1'), BASE), bases={'vda': BASE}, parent=parent,
                    current_name='e1', host=HOST_9_0)
    assert error.msg == (
        "Cannot delete snapshot 'e1' (external, parent 'i1' (internal), children none): libvirt cannot delete an "
        'external snapshot whose parent is internal. Nothing was changed. Use state: merged to fold its overlay into '
        'the base image, or metadata_only: true to forget it and keep its files.')


@pytest.mark.parametrize('current_name', ['x', None, 'a'])
def test_foresee_non_leaf_external_off_the_running_branch(current_name):
    # the domain does not run on a branch through b: the current snapshot is elsewhere (or none, or above it)
    error = refusal(_delete.plan_absent, params(), B, [C], domain=running_on(overlay('c'), overlay('b'), overlay('a'), BASE),
                    bases={'vda': overlay('a')}, parent=A, current_name=current_name, host=HOST_9_0)
    assert error.msg.startswith("Cannot delete snapshot 'b' (external, parent 'a' (external), children c): it has "
                                'children and the domain does not run on its branch')
    assert "(the current snapshot is '%s')" % current_name in error.msg
    assert 'Nothing was changed.' in error.msg


def test_non_leaf_external_on_the_running_branch_is_deleted():
    plan = _delete.plan_absent(params(), B, [C], domain=ON_C, bases={'vda': overlay('a')}, parent=A, current_name='c', host=HOST_9_0)
    assert [(action.kind, action.params['name'], action.params['flags']) for action in plan.actions] == \
        [('delete', 'b', [])]
    assert plan.deleted == ['b']


def test_foresee_external_whose_base_left_the_disk_chain():
    # after a revert to an internal snapshot taken before it, the disk no longer sits on the snapshot's base
    error = refusal(_delete.plan_absent, params(), C, [], domain=running_on('/images/other.qcow2'), bases={'vda': overlay('b')}, parent=B,
                    current_name='c', host=HOST_9_0)
    assert error.msg.startswith("Cannot delete snapshot 'c' (external, parent 'b' (external), children none): disk "
                                "vda no longer sits on the snapshot's base '%s' (its chain is /images/other.qcow2)"
                                % overlay('b'))
    assert 'Use metadata_only: true to forget the snapshot' in error.msg


def test_foresee_internal_snapshot_below_an_external_overlay():
    i1 = snapshot('i1', children=['e1'], location='internal', memory=True)
    error = refusal(_delete.plan_absent, params(), i1, [snapshot('e1', parent='i1')], domain=running_on(overlay('e1'), BASE),
                    bases={'vda': BASE}, parent=None, current_name='e1', host=HOST_9_0)
    assert error.msg == (
        "Cannot delete internal snapshot 'i1': it lives in '%s', but disk vda now writes to the overlay %s of a later "
        'external snapshot, and libvirt deletes internal snapshots only from the image in use. Nothing was changed. '
        'Merge the external snapshots above it first (state: merged), or use metadata_only: true.'
        % (BASE, overlay('e1')))


def test_internal_snapshot_in_the_image_in_use_is_deleted():
    i1 = snapshot('i1', location='internal', memory=True)
    plan = _delete.plan_absent(params(), i1, [], domain=running_on(BASE), bases={'vda': BASE}, parent=None, current_name='i1', host=HOST_9_0)
    assert [(action.kind, action.params['flags']) for action in plan.actions] == [('delete', [])]


# -- subtrees: libvirt's children flags refuse external snapshots ------------------------------------------------------

def test_children_of_an_external_snapshot_are_merged_with_it():
    plan = _delete.plan_absent(params(children=True), A, [B, C], domain=ON_C, bases={'vda': BASE}, parent=None, current_name='c', host=HOST_9_0)
    assert [action.kind for action in plan.actions] == ['merge']
    assert plan.actions[0].params['drop_flags'] == ['metadata_only', 'children']
    assert plan.actions[0].params['remove_files'] == [overlay('c'), overlay('b'), overlay('a'), memory_file('c')]
    assert plan.merged == [{'disk': 'vda', 'top': overlay('c'), 'base': BASE, 'base_format': 'qcow2',
                            'overlays': [overlay('c'), overlay('b'), overlay('a')], 'job_size': None}]
    assert (plan.deleted, plan.snapshot) == (['a', 'b', 'c'], None)


@pytest.mark.parametrize('force', [False, True])
def test_children_of_an_external_snapshot_need_no_force(force):
    # children names the subtree: the merge that deletes it asks for nothing more.
    plan = _delete.plan_absent(params(children=True, force=force), A, [B, C], domain=ON_C, bases={'vda': BASE}, parent=None, current_name='c', host=HOST_9_0)
    assert [action.kind for action in plan.actions] == ['merge']
    assert (plan.deleted, plan.snapshot) == (['a', 'b', 'c'], None)


def test_merging_an_external_snapshot_with_snapshots_on_top_still_needs_force():
    error = refusal(_merge.plan_merge, params(state='merged'), ON_C, A, bases={'vda': BASE}, descendants=[B, C], current_name='c')
    assert "Merging snapshot 'a' folds every layer above its base and would also remove or invalidate 2 other " \
        'snapshots: b, c. Nothing was changed. Set force: true to go ahead.' in error.msg
    assert error.details == {'affected': ['b', 'c']}


def test_children_on_an_external_leaf_is_a_plain_delete():
    # libvirt refuses its children flag on any external snapshot, even a leaf
    plan = _delete.plan_absent(params(children=True), C, [], domain=ON_C, bases={'vda': overlay('b')}, parent=B, current_name='c', host=HOST_9_0)
    assert [(action.kind, action.params['flags']) for action in plan.actions] == [('delete', [])]
    assert (plan.deleted, plan.merged) == (['c'], [])


def test_children_on_an_external_leaf_is_still_foreseen():
    parent = snapshot('i1', children=['e1'], location='internal', memory=True)
    e1 = snapshot('e1', parent='i1', is_current=True)
    error = refusal(_delete.plan_absent, params(children=True), e1, [], domain=running_on(overlay('e1'), BASE),
                    bases={'vda': BASE}, parent=parent, current_name='e1', host=HOST_9_0)
    assert 'libvirt cannot delete an external snapshot whose parent is internal' in error.msg


@pytest.mark.parametrize('options, what', [
    ({'children': True}, "snapshot 'i1' with its children"),
    ({'children': True, 'force': True}, "snapshot 'i1' with its children"),
    ({'children_only': True}, "the snapshots below 'i1'"),
    ({'children_only': True, 'force': True}, "the snapshots below 'i1'"),
])
def test_subtrees_with_external_snapshots_below_are_refused_naming_the_highest(options, what):
    # i1 (internal) -> i2 (internal) -> e3 (external) -> e4 (external), and i1 -> e5 (external)
    i1 = snapshot('i1', children=['i2', 'e5'], location='internal', memory=True)
    below = [snapshot('i2', parent='i1', children=['e3'], location='internal', memory=True),
             snapshot('e3', parent='i2', children=['e4']), snapshot('e4', parent='e3', is_current=True),
             snapshot('e5', parent='i1')]
    error = refusal(_delete.plan_absent, params(**options), i1, below, domain=running_on(overlay('e4'), overlay('e3'), BASE),
                    bases={'vda': BASE}, parent=None, current_name='e4', host=HOST_9_0)
    assert error.msg == (
        'Cannot delete %s: libvirt deletes external snapshots only one at a time, never with children or '
        'children_only, and e3, e4, e5 are external. Nothing was changed. Merge them instead, which keeps the '
        "domain's current data as deleting them would: state: merged with force: true on 'e3', 'e5', then run this "
        'task again for what is left. Or use metadata_only: true to forget them and keep their files.' % what)
    assert error.details == {'affected': ['i2', 'e3', 'e4', 'e5']}


def test_children_only_below_an_external_snapshot_is_refused():
    error = refusal(_delete.plan_absent, params(children_only=True, force=True), A, [B, C], current_name='c')
    assert "Cannot delete the snapshots below 'a': libvirt deletes external snapshots only one at a time" in error.msg
    assert 'b, c are external.' in error.msg
    assert "state: merged with force: true on 'b'," in error.msg


@pytest.mark.parametrize('options, flags', [
    ({'children': True, 'force': True, 'metadata_only': True}, ['metadata_only', 'children']),
    ({'children_only': True, 'force': True, 'metadata_only': True}, ['metadata_only', 'children_only']),
])
def test_subtrees_of_external_snapshots_with_metadata_only_use_libvirts_flags(options, flags):
    plan = _delete.plan_absent(params(**options), A, [B, C], current_name='c')
    assert [(action.kind, action.params['flags']) for action in plan.actions] == [('delete', flags)]


def test_internal_subtree_keeps_libvirts_children_flag():
    i1 = snapshot('i1', children=['i2'], location='internal', memory=True)
    i2 = snapshot('i2', parent='i1', location='internal', memory=True, is_current=True)
    plan = _delete.plan_absent(params(children=True, force=True), i1, [i2], domain=running_on(BASE), bases={'vda': BASE}, parent=None,
                               current_name='i2', host=HOST_9_0)
    assert [(action.kind, action.params['flags']) for action in plan.actions] == [('delete', ['children'])]
    assert plan.deleted == ['i1', 'i2']


# -- require_force -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('affected, force, expected', [
    ([], False, None),
    ([], True, None),
    (['b'], True, None),
    (['b'], False, 'Doing it would also remove or invalidate 1 other snapshot: b. Nothing was changed. Set force: '
                   'true to go ahead.'),
    (['b', 'c', 'd'], False, 'Doing it would also remove or invalidate 3 other snapshots: b, c, d. Nothing was '
                             'changed. Set force: true to go ahead.'),
])
def test_require_force(affected, force, expected):
    if expected is None:
        assert _plan.require_force({'force': force}, affected, 'Doing it') is None
        return
    error = refusal(_plan.require_force, {'force': force}, affected, 'Doing it')
    assert (error.msg, error.details) == (expected, {'affected': affected})


# -- state=merged -------------------------------------------------------------------------------------------------------

def test_merge_missing_snapshot_is_no_change():
    plan = _merge.plan_merge(params(state='merged'), ON_C, None, bases={}, descendants=[], current_name='c')
    assert (plan.changed, plan.deleted, plan.merged, plan.before, plan.after) == \
        (False, [], [], {'exists': False}, {'exists': False})


@pytest.mark.parametrize('state, running', [('running', True), ('blocked', True), ('paused', True),
                                            ('shutoff', False)])
def test_merge_leaf(state, running):
    dom = domain(state, disk('vda', [overlay('c'), overlay('b'), overlay('a'), BASE]))
    plan = _merge.plan_merge(params(state='merged'), dom, C, bases={'vda': overlay('b')}, descendants=[], current_name='c')
    assert [(action.kind, action.params['name'], action.params['running'], action.params['remove_files'],
             action.params['drop_flags']) for action in plan.actions] == \
        [('merge', 'c', running, [overlay('c'), memory_file('c')], ['metadata_only'])]
    assert plan.actions[0].params['disks'] == [{'disk': 'vda', 'top': overlay('c'), 'base': overlay('b'),
                                                'base_format': 'qcow2', 'overlays': [overlay('c')]}]
    assert (plan.deleted, plan.snapshot, plan.domain_state) == (['c'], None, state)
    assert (plan.before, plan.after) == (_model.diff_view(C), {'exists': False})


def test_merge_with_snapshots_on_top_needs_force_and_lists_them():
    error = refusal(_merge.plan_merge, params(state='merged'), ON_C, A, bases={'vda': BASE}, descendants=[B, C], current_name='c')
    assert error.msg == ("Merging snapshot 'a' folds every layer above its base and would also remove or invalidate "
                         '2 other snapshots: b, c. Nothing was changed. Set force: true to go ahead.')
    assert error.details == {'affected': ['b', 'c']}


def test_merge_with_force_folds_every_layer_above_the_base():
    plan = _merge.plan_merge(params(state='merged', force=True), ON_C, A, bases={'vda': BASE}, descendants=[B, C], current_name='c')
    assert plan.merged == [{'disk': 'vda', 'top': overlay('c'), 'base': BASE, 'base_format': 'qcow2',
                            'overlays': [overlay('c'), overlay('b'), overlay('a')], 'job_size': None}]
    assert plan.actions[0].params['drop_flags'] == ['metadata_only', 'children']
    assert plan.deleted == ['a', 'b', 'c']


def test_merge_with_snapshots_on_two_branches_is_refused():
    a = snapshot('a', children=['b', 'x'])
    error = refusal(_merge.plan_merge, params(state='merged', force=True), ON_C, a, bases={'vda': BASE},
                    descendants=[B, C, snapshot('x', parent='a')], current_name='c')
    assert error.msg.startswith("Cannot merge snapshot 'a': snapshots below it lie on more than one branch "
                                '(b, c, x)')
    assert error.details == {'affected': ['b', 'c', 'x']}


def test_merge_of_an_internal_snapshot_says_to_delete_it():
    i1 = snapshot('i1', location='internal', memory=True)
    error = refusal(_merge.plan_merge, params(state='merged'), running_on(BASE), i1, bases={'vda': BASE}, descendants=[], current_name='i1')
    assert error.msg == ("Snapshot 'i1' of domain 'web01' is internal: it has no overlay to merge, its data lives "
                         'inside the qcow2 image. Delete it with state: absent.')


@pytest.mark.parametrize('chain', [
    [BASE],                                       # reverted past it: the overlay is gone from the chain
    [overlay('c'), '/images/other.qcow2'],        # the base is not in the chain
    [BASE, overlay('c')],                         # base above the overlay (a chain the snapshot did not make)
])
def test_merge_where_the_disk_no_longer_runs_on_the_overlay_is_refused(chain):
    error = refusal(_merge.plan_merge, params(state='merged'), running_on(*chain), C, bases={'vda': overlay('b')}, descendants=[], current_name='c')
    assert error.msg.startswith("Cannot merge snapshot 'c': disk vda no longer runs on its overlay '%s' above '%s'"
                                % (overlay('c'), overlay('b')))
    assert 'Nothing was changed.' in error.msg


def test_merge_of_a_shut_off_domain_needs_a_local_uri():
    error = refusal(_merge.plan_merge, params(state='merged'), shutoff_on(overlay('c'), overlay('b')), C,
                    bases={'vda': overlay('b')}, descendants=[], current_name='c', local=False)
    assert "needs qemu-img on the hypervisor" in error.msg
    plan = _merge.plan_merge(params(state='merged'), running_on(overlay('c'), overlay('b')), C,
                             bases={'vda': overlay('b')}, descendants=[], current_name='c', local=False)
    assert plan.actions[0].params['running'] is True


# -- state=reverted: internal snapshots with external snapshots below ------------------------------------------------

def test_revert_to_internal_with_external_below_needs_force_listing_only_the_external():
    i1 = snapshot('i1', children=['i2'], location='internal', memory=True)
    below = [snapshot('i2', parent='i1', children=['e1'], location='internal', memory=True),
             snapshot('e1', parent='i2', memory=True, is_current=True)]
    dom = {'name': 'web01', 'state': 'running'}
    error = refusal(_revert.plan_revert, params(state='reverted'), dom, i1, HOST_9_0, below)
    assert error.msg == ("Reverting to internal snapshot 'i1' drops the external overlays below it, which would also "
                         'remove or invalidate 1 other snapshot: e1. Nothing was changed. Set force: true to go ahead.')
    assert error.details == {'affected': ['e1']}
    plan = _revert.plan_revert(params(state='reverted', force=True), dom, i1, HOST_9_0, below)
    assert [(action.kind, action.params['flags']) for action in plan.actions] == [('revert', ['force'])]


def test_revert_to_internal_with_only_internal_below_needs_no_force():
    i1 = snapshot('i1', children=['i2'], location='internal', memory=True)
    plan = _revert.plan_revert(params(state='reverted'), {'name': 'web01', 'state': 'running'}, i1, HOST_9_0,
                               [snapshot('i2', parent='i1', location='internal', memory=True)])
    assert [(action.kind, action.params['flags']) for action in plan.actions] == [('revert', [])]


@pytest.mark.parametrize('host, refused', [(HOST_8_0, True), (HOST_9_0, True), (HOST_11_3, False)])
def test_revert_to_external_by_host_capability(host, refused):
    dom = {'name': 'web01', 'state': 'running'}
    if refused:
        error = refusal(_revert.plan_revert, params(state='reverted'), dom, C, host)
        assert "this host (libvirt %s) cannot revert to external snapshots" % host['libvirt_version'] in error.msg
    else:
        assert [action.kind for action in _revert.plan_revert(params(state='reverted'), dom, C, host).actions] == \
            ['revert']


# -- rename -------------------------------------------------------------------------------------------------------------

A_XML = ('<domainsnapshot><name>a</name><memory snapshot="no"/><disks><disk name="vda" snapshot="external">'
         '<source file="%s"/></disk></disks></domainsnapshot>' % overlay('a'))
B_XML = ('<domainsnapshot><name>b</name><parent><name>a</name></parent><memory snapshot="no"/><disks>'
         '<disk name="vda" snapshot="external"><source file="%s"/></disk></disks></domainsnapshot>' % overlay('b'))


def rename(**options):
    values = dict(name='a', new_name='first')
    values.update(options)
    return values


@pytest.mark.parametrize('is_current', [False, True])
def test_rename_external_redefines_it_and_its_children_then_forgets_the_old_name(is_current):
    old = snapshot('a', children=['b'], is_current=is_current)
    plan = _records.plan_rename(rename(), old, A_XML, None, {'b': (B_XML, not is_current)})
    assert [(action.kind, action.params['name'], action.params.get('current'), action.params.get('flags'))
            for action in plan.actions] == [('redefine', 'first', is_current, None),
                                            ('redefine', 'b', not is_current, None),
                                            ('delete', 'a', None, ['metadata_only'])]
    assert _model.parse_snapshot(plan.actions[0].params['xml'], 'web01')['name'] == 'first'
    assert _model.parse_snapshot(plan.actions[0].params['xml'], 'web01')['disks'] == old['disks']
    assert _model.parse_snapshot(plan.actions[1].params['xml'], 'web01')['parent'] == 'first'
    assert plan.actions[2].params['lookup'] is True
    assert plan.snapshot == dict(old, name='first')
    assert (plan.before['name'], plan.after['name']) == ('a', 'first')
    assert (plan.deleted, plan.merged) == ([], [])


def test_rename_done_when_only_the_new_name_exists():
    new = snapshot('first')
    plan = _records.plan_rename(rename(), None, None, new, {})
    assert (plan.changed, plan.snapshot) == (False, new)
    assert plan.before == plan.after == _model.diff_view(new)


@pytest.mark.parametrize('old, new, fragment', [
    (None, None, "Cannot rename snapshot 'a' to 'first': neither exists. Check the names."),
    (A, snapshot('first'), "Cannot rename snapshot 'a' to 'first': both exist. Delete one of them first."),
    (snapshot('a', location='internal', memory=True), None,
     "Cannot rename snapshot 'a': it is internal, and an internal snapshot's name is also the tag inside the qcow2 "
     'image that a revert loads, so libvirt would no longer find it. Take a new snapshot under the new name instead.'),
])
def test_rename_refusals(old, new, fragment):
    error = refusal(_records.plan_rename, rename(), old, A_XML if old else None, new, {})
    assert error.msg == fragment
