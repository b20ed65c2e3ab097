# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Unit tests of _delete (state=absent of one snapshot or its subtree): the decisions, as tables. No libvirt."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.vmsnap.libvirt.plugins.module_utils import _delete, _model


# -- state=absent -----------------------------------------------------------------------------------------------------

def absent(**options):
    params = dict(name='snap', children=False, children_only=False, metadata_only=False, force=False)
    params.update(options)
    return params


def snapshot_dict(name, parent=None, children=(), location='internal'):
    kind = location
    xml = ('<domainsnapshot><name>%s</name>%s<memory snapshot="no"/><disks><disk name="vda" snapshot="%s"/></disks>'
           '</domainsnapshot>') % (name, '<parent><name>%s</name></parent>' % parent if parent else '', kind)
    return _model.parse_snapshot(xml, 'web01', children=children)


SNAP = snapshot_dict('snap', parent='base', children=['c1'])
BELOW = [snapshot_dict('c1', parent='snap', children=['c2']), snapshot_dict('c2', parent='c1')]


def test_absent_missing_is_no_change():
    plan = _delete.plan_absent(absent(), None, [])
    assert (plan.changed, plan.snapshot, plan.deleted, plan.before, plan.after) == \
        (False, None, [], {'exists': False}, {'exists': False})


@pytest.mark.parametrize('options, flags, deleted', [
    ({}, [], ['snap']),
    ({'metadata_only': True}, ['metadata_only'], ['snap']),
    ({'children': True}, ['children'], ['snap', 'c1', 'c2']),
    ({'children': True, 'force': True}, ['children'], ['snap', 'c1', 'c2']),
    ({'children': True, 'metadata_only': True}, ['metadata_only', 'children'], ['snap', 'c1', 'c2']),
])
def test_absent_deletes(options, flags, deleted):
    plan = _delete.plan_absent(absent(**options), SNAP, BELOW)
    assert [(action.kind, action.params['name'], action.params['flags'], action.params['keeps_snapshot'])
            for action in plan.actions] == [('delete', 'snap', flags, False)]
    assert plan.deleted == deleted
    assert (plan.snapshot, plan.before, plan.after) == (None, _model.diff_view(SNAP), {'exists': False})


def test_absent_children_of_a_leaf_deletes_only_it():
    leaf = snapshot_dict('snap', parent='base')
    plan = _delete.plan_absent(absent(children=True), leaf, [])
    assert [action.params['flags'] for action in plan.actions] == [['children']]
    assert plan.deleted == ['snap']


@pytest.mark.parametrize('options, flags, deleted, keeps', [
    ({'children': True}, ['children'], ['snap', 'c1', 'c2'], False),
    ({'children_only': True}, ['children_only'], ['c1', 'c2'], True),
])
def test_absent_with_descendants_needs_no_force_and_lists_them(options, flags, deleted, keeps):
    # Naming children or children_only is the request itself, as with libvirt's DELETE_CHILDREN(_ONLY).
    plan = _delete.plan_absent(absent(**options), SNAP, BELOW)
    assert [(action.kind, action.params['flags'], action.params['keeps_snapshot']) for action in plan.actions] == \
        [('delete', flags, keeps)]
    assert plan.deleted == deleted


@pytest.mark.parametrize('options, flags', [
    ({'children_only': True}, ['children_only']),
    ({'children_only': True, 'force': True}, ['children_only']),
    ({'children_only': True, 'metadata_only': True}, ['metadata_only', 'children_only']),
])
def test_absent_children_only_keeps_the_snapshot(options, flags):
    plan = _delete.plan_absent(absent(**options), SNAP, BELOW)
    assert [(action.kind, action.params['flags'], action.params['keeps_snapshot']) for action in plan.actions] == \
        [('delete', flags, True)]
    assert plan.deleted == ['c1', 'c2']
    assert plan.snapshot == dict(SNAP, children=[])
    assert (plan.before['children'], plan.after['children'], plan.after['exists']) == (['c1'], [], True)


@pytest.mark.parametrize('current_name, is_current_after', [('c2', True), ('c1', True), ('other', False), (None, False)])
def test_absent_children_only_makes_the_kept_snapshot_current_when_the_current_one_goes(current_name, is_current_after):
    # libvirt moves the current marker to the kept snapshot when it deletes the current one below it.
    plan = _delete.plan_absent(absent(children_only=True), SNAP, BELOW, current_name=current_name)
    assert plan.snapshot['is_current'] is is_current_after
    assert plan.after['is_current'] is is_current_after


def test_absent_children_only_on_a_leaf_is_no_change():
    leaf = snapshot_dict('snap', parent='base')
    plan = _delete.plan_absent(absent(children_only=True), leaf, [])
    assert (plan.changed, plan.deleted, plan.snapshot) == (False, [], leaf)
    assert plan.before == plan.after == _model.diff_view(leaf)
