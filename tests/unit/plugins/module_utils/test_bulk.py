# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Unit tests of _bulk: the bulk removal (state=absent with all or pattern, and keep_newest), as tables. No libvirt."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.vmsnap.libvirt.plugins.module_utils import _bulk, _model
from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError

HOST_9_0 = {'uri': 'qemu:///system', 'libvirt_version': '9.0.0', 'external_revert': False, 'external_delete': True}
HOST_8_0 = {'uri': 'qemu:///system', 'libvirt_version': '8.0.0', 'external_revert': False, 'external_delete': False}


def snap(name, parent=None, created=100, location='internal', overlay=None):
    """A snapshot dict as parse_snapshot gives it; an external one has disk vda on ``overlay``."""
    if location == 'external':
        disks = [{'name': 'vda', 'snapshot': 'external', 'file': overlay or '/img/vda.' + name}]
    else:
        disks = [{'name': 'vda', 'snapshot': location, 'file': None}]
    return {'name': name, 'domain': 'web01', 'description': None, 'state': 'shutoff', 'creation_time': created,
            'creation_time_iso': _model.iso_utc(created), 'parent': parent, 'children': [], 'is_current': False,
            'location': location, 'memory': {'snapshot': 'no', 'file': None}, 'disks': disks}


def chain_domain(state, *files):
    """A domain whose disk vda writes to files[0], on top of files[1], ..."""
    return {'name': 'web01', 'state': state, 'active': state != 'shutoff',
            'disks': [{'name': 'vda', 'type': 'file', 'device': 'disk', 'format': 'qcow2', 'source': files[0],
                       'readonly': False, 'chain': [{'file': path, 'format': 'qcow2'} for path in files]}]}


def bulk(**options):
    params = {'all': False, 'pattern': None, 'keep_newest': None, 'metadata_only': False}
    params.update(options)
    return params


# -- which snapshots: glob matching and retention ---------------------------------------------------------------------

NIGHTLIES = [snap('nightly-1', None, 100), snap('nightly-2', 'nightly-1', 200), snap('by-hand', 'nightly-2', 250),
             snap('nightly-3', 'by-hand', 300), snap('Nightly-4', 'nightly-3', 400), snap('nightly-10', 'Nightly-4', 500)]


@pytest.mark.parametrize('pattern, keep, deleted, kept', [
    # no pattern (all: true) selects every snapshot; both lists are newest first (the deletion order comes later)
    (None, None, ['nightly-10', 'Nightly-4', 'nightly-3', 'by-hand', 'nightly-2', 'nightly-1'], []),
    ('nightly-*', None, ['nightly-10', 'nightly-3', 'nightly-2', 'nightly-1'], []),
    # case-sensitive, and ? is one character, [..] a class
    ('Nightly-*', None, ['Nightly-4'], []),
    ('nightly-?', None, ['nightly-3', 'nightly-2', 'nightly-1'], []),
    ('nightly-[12]', None, ['nightly-2', 'nightly-1'], []),
    ('[!n]*', None, ['Nightly-4', 'by-hand'], []),
    ('no-such-*', None, [], []),
    ('by-hand', None, ['by-hand'], []),
    # retention keeps the newest matches by creation time and never counts or touches others
    ('nightly-*', 2, ['nightly-2', 'nightly-1'], ['nightly-10', 'nightly-3']),
    ('nightly-*', 0, ['nightly-10', 'nightly-3', 'nightly-2', 'nightly-1'], []),
    ('nightly-*', 4, [], ['nightly-10', 'nightly-3', 'nightly-2', 'nightly-1']),
    ('nightly-*', 9, [], ['nightly-10', 'nightly-3', 'nightly-2', 'nightly-1']),
    (None, 1, ['Nightly-4', 'nightly-3', 'by-hand', 'nightly-2', 'nightly-1'], ['nightly-10']),
])
def test_select_removals(pattern, keep, deleted, kept):
    assert _bulk.select_removals(NIGHTLIES, pattern, keep) == (deleted, kept)


@pytest.mark.parametrize('snapshots, newest', [
    # the same second: a child is newer than its parent, whatever the names
    ([snap('z', None, 100), snap('a', 'z', 100)], ['a', 'z']),
    ([snap('a', None, 100), snap('z', 'a', 100)], ['z', 'a']),
    # a whole chain in one second: deepest first
    ([snap('c', None, 7), snap('b', 'c', 7), snap('a', 'b', 7)], ['a', 'b', 'c']),
    # unrelated snapshots in the same second: the later name in virsh's order (case folded) is newer
    ([snap('b', None, 100), snap('A', None, 100), snap('c', None, 100)], ['c', 'b', 'A']),
    # time wins over depth and name
    ([snap('old', None, 50), snap('older-child', 'old', 40)], ['old', 'older-child']),
    # no creation time counts as oldest
    ([snap('none', None, None), snap('some', None, 1)], ['some', 'none']),
])
def test_newest_first_breaks_ties_by_depth_then_name(snapshots, newest):
    assert [item['name'] for item in _bulk.newest_first(snapshots)] == newest


@pytest.mark.parametrize('snapshots', [
    [snap('auto-b', None, 100), snap('auto-a', 'auto-b', 100)],
    # a snapshot the pattern does not match still makes its child deeper
    [snap('auto-b', None, 100), snap('by-hand', 'auto-b', 100), snap('auto-a', 'by-hand', 100)],
    [snap('base', None, 100), snap('auto-b', 'base', 100), snap('by-hand', 'auto-b', 100),
     snap('auto-a', 'by-hand', 100)],
])
def test_keep_newest_with_ties_keeps_the_child(snapshots):
    assert _bulk.select_removals(snapshots, 'auto-*', 1) == (['auto-b'], ['auto-a'])


# -- order: children before parents -----------------------------------------------------------------------------------

TREE = {'root': None, 'a': 'root', 'a1': 'a', 'a1x': 'a1', 'a2': 'a', 'b': 'root', 'other-root': None}


@pytest.mark.parametrize('names, order', [
    (list(TREE), ['b', 'a2', 'a1x', 'a1', 'a', 'root', 'other-root']),
    (['root', 'a1x', 'a'], ['a1x', 'a', 'root']),
    (['a', 'a1'], ['a1', 'a']),
    (['b', 'a2'], ['b', 'a2']),
    ([], []),
])
def test_removal_order_puts_children_before_parents(names, order):
    result = _bulk.removal_order(TREE, names)
    assert result == order
    for name in result:
        ancestor = TREE[name]
        while ancestor is not None:
            if ancestor in names:
                assert result.index(ancestor) > result.index(name)
            ancestor = TREE[ancestor]


def test_removal_order_of_a_long_chain_needs_no_recursion():
    chain = dict(('s%05d' % index, 's%05d' % (index - 1) if index else None) for index in range(5000))
    order = _bulk.removal_order(chain, list(chain))
    assert order[0] == 's04999' and order[-1] == 's00000' and len(order) == 5000


# -- the plan ---------------------------------------------------------------------------------------------------------

def test_internal_tree_is_deleted_leaf_first_and_keeps_what_the_pattern_does_not_match():
    plan = _bulk.plan_bulk_absent(bulk(pattern='nightly-*', keep_newest=1), NIGHTLIES, 'nightly-10',
                                  domain=chain_domain('shutoff', '/img/vda.qcow2'), bases={}, host=HOST_9_0)
    assert plan.deleted == ['nightly-3', 'nightly-2', 'nightly-1']
    assert plan.kept == ['nightly-10']
    assert [(action.kind, action.params['name'], action.params['flags']) for action in plan.actions] == [
        ('delete', 'nightly-3', []), ('delete', 'nightly-2', []), ('delete', 'nightly-1', [])]
    assert [name for name, dummy in plan.steps] == plan.deleted
    assert plan.before == {'snapshots': ['nightly-1', 'nightly-2', 'by-hand', 'nightly-3', 'Nightly-4', 'nightly-10']}
    assert plan.after == {'snapshots': ['by-hand', 'Nightly-4', 'nightly-10']}
    assert plan.changed and plan.snapshot is None and plan.domain_state is None


def test_nothing_selected_is_no_change():
    plan = _bulk.plan_bulk_absent(bulk(pattern='weekly-*'), NIGHTLIES, 'nightly-10')
    assert not plan.changed
    assert plan.deleted == [] and plan.kept == []
    assert plan.before == plan.after


def test_everything_retained_is_no_change():
    plan = _bulk.plan_bulk_absent(bulk(all=True, keep_newest=len(NIGHTLIES)), NIGHTLIES, 'nightly-10')
    assert not plan.changed
    assert plan.kept == ['nightly-10', 'Nightly-4', 'nightly-3', 'by-hand', 'nightly-2', 'nightly-1']


def external_chain():
    """base <- e1 <- e2 <- e3 (current), all external on disk vda: vda writes to e3's overlay."""
    snapshots = [snap('e1', None, 10, 'external', '/img/vda.e1'), snap('e2', 'e1', 20, 'external', '/img/vda.e2'),
                 snap('e3', 'e2', 30, 'external', '/img/vda.e3')]
    bases = {'e1': {'vda': '/img/vda.qcow2'}, 'e2': {'vda': '/img/vda.e1'}, 'e3': {'vda': '/img/vda.e2'}}
    domain = chain_domain('running', '/img/vda.e3', '/img/vda.e2', '/img/vda.e1', '/img/vda.qcow2')
    return snapshots, bases, domain


def test_external_chain_is_merged_from_the_top_layer_down():
    snapshots, bases, domain = external_chain()
    plan = _bulk.plan_bulk_absent(bulk(all=True), snapshots, 'e3', domain=domain, bases=bases, host=HOST_9_0)
    assert plan.deleted == ['e3', 'e2', 'e1']
    assert [action.kind for action in plan.actions] == ['delete'] * 3
    assert all(action.params['flags'] == [] for action in plan.actions)


def test_external_keep_newest_deletes_below_the_kept_one_on_the_current_branch():
    snapshots, bases, domain = external_chain()
    plan = _bulk.plan_bulk_absent(bulk(all=True, keep_newest=1), snapshots, 'e3', domain=domain, bases=bases, host=HOST_9_0)
    assert plan.deleted == ['e2', 'e1']
    assert plan.kept == ['e3']


def test_external_with_a_kept_child_off_the_current_branch_is_refused_before_anything():
    # e1 <- e2 (kept, by hand), and the domain runs on another branch (current: 'side')
    snapshots = [snap('auto-1', None, 10, 'external', '/img/vda.auto-1'), snap('hand', 'auto-1', 20, 'external'),
                 snap('side', None, 30, 'internal')]
    domain = chain_domain('running', '/img/vda.qcow2')
    with pytest.raises(SnapshotError) as caught:
        _bulk.plan_bulk_absent(bulk(pattern='auto-*'), snapshots, 'side', domain=domain,
                               bases={'auto-1': {'vda': '/img/vda.qcow2'}}, host=HOST_9_0)
    assert "the 1 snapshot of domain 'web01' that match pattern 'auto-*'" in caught.value.msg
    assert "at snapshot 'auto-1'" in caught.value.msg
    assert 'Nothing was changed' in caught.value.msg


def test_merge_that_would_fold_a_kept_snapshot_is_refused_without_asking_for_force():
    # Before libvirt 9.0 an external delete is a merge, which folds the layers above: the kept child's too.
    snapshots, bases, domain = external_chain()
    with pytest.raises(SnapshotError) as caught:
        _bulk.plan_bulk_absent(bulk(pattern='e[12]'), snapshots, 'e3', domain=domain, bases=bases, host=HOST_8_0)
    message = caught.value.msg
    assert "deleting snapshot 'e2' would also remove or invalidate e3, which the selection leaves out" in message
    assert 'Nothing was changed' in message
    assert 'force: true' not in message.split('Select those too')[0]
    assert caught.value.details['affected'] == ['e3']


def test_merge_of_a_whole_chain_before_libvirt_9_goes_leaf_first():
    snapshots, bases, domain = external_chain()
    plan = _bulk.plan_bulk_absent(bulk(all=True), snapshots, 'e3', domain=domain, bases=bases, host=HOST_8_0)
    assert [(action.kind, action.params['name']) for action in plan.actions] == [
        ('merge', 'e3'), ('merge', 'e2'), ('merge', 'e1')]
    # each merge sees the chain the merges before it leave
    assert [merge['top'] for merge in plan.merged] == ['/img/vda.e3', '/img/vda.e2', '/img/vda.e1']
    assert [merge['base'] for merge in plan.merged] == ['/img/vda.e2', '/img/vda.e1', '/img/vda.qcow2']


def test_the_current_snapshot_moves_to_the_parent_as_libvirt_moves_it():
    # e1 <- hand <- e3 (current): deleting e3 makes 'hand' current, so e1, below the kept 'hand', is on the current
    # branch when its turn comes, and libvirt can merge it. Had the plan not moved the marker, it would refuse.
    snapshots, bases, domain = external_chain()
    snapshots[1] = snap('hand', 'e1', 20, 'external', '/img/vda.e2')
    snapshots[2]['parent'] = 'hand'
    bases['hand'] = bases.pop('e2')
    plan = _bulk.plan_bulk_absent(bulk(pattern='e*'), snapshots, 'e3', domain=domain, bases=bases, host=HOST_9_0)
    assert plan.deleted == ['e3', 'e1']
    assert plan.after == {'snapshots': ['hand']}


def test_internal_below_a_kept_external_is_refused():
    # internal 'i' lives in vda.qcow2, but the kept external 'x' on top made the disk write to an overlay
    snapshots = [snap('i', None, 10), snap('x', 'i', 20, 'external', '/img/vda.x')]
    domain = chain_domain('running', '/img/vda.x', '/img/vda.qcow2')
    with pytest.raises(SnapshotError) as caught:
        _bulk.plan_bulk_absent(bulk(pattern='i'), snapshots, 'x', domain=domain, bases={'i': {'vda': '/img/vda.qcow2'}}, host=HOST_9_0)
    assert "at snapshot 'i'" in caught.value.msg


def test_metadata_only_forgets_each_without_reading_the_disks():
    snapshots, dummy_bases, dummy_domain = external_chain()
    plan = _bulk.plan_bulk_absent(bulk(all=True, metadata_only=True), snapshots, 'e3')
    assert plan.deleted == ['e3', 'e2', 'e1']
    assert all(action.params['flags'] == ['metadata_only'] and action.params['remove_files'] == []
               for action in plan.actions)
