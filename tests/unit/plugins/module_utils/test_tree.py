# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Unit tests of _tree: the snapshot tree from parent links, its order, nesting and virsh-like text."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.vmsnap.libvirt.plugins.module_utils._tree import NESTED_MAX_DEPTH, SnapshotTree, sort_key

# A tree with branches, several roots, names that differ in case, and a root without children.
PARENTS = {
    'root': None, 'B': 'root', 'a': 'B', 'c': 'a', 'd': 'B', 'Z': 'root', 'b2': 'Z', 'alpha': None, 'solo': None,
}

# What `virsh snapshot-list --tree` (libvirt 9.0) printed for a real domain with exactly these parent links, minus
# the one empty line virsh adds after the whole listing.
VIRSH_TREE = (
    'alpha\n'
    '\n'
    'root\n'
    '  |\n'
    '  +- B\n'
    '  |   |\n'
    '  |   +- a\n'
    '  |   |   |\n'
    '  |   |   +- c\n'
    '  |   |     \n'
    '  |   +- d\n'
    '  |     \n'
    '  +- Z\n'
    '      |\n'
    '      +- b2\n'
    '        \n'
    'solo\n'
)


def chain(length):
    """Parent links of a chain: s00000 <- s00001 <- ... (each the child of the one before)."""
    names = ['s%05d' % index for index in range(length)]
    return dict(zip(names, [None] + names[:-1]))


def walk_nested(forest):
    """(name, depth) of every node of a nested forest, without recursion (a deep chain must not need it here either)."""
    found = []
    stack = [(node, 1) for node in reversed(forest)]
    while stack:
        node, depth = stack.pop()
        assert sorted(node) == ['children', 'name']
        found.append((node['name'], depth))
        stack.extend((child, depth + 1) for child in reversed(node['children']))
    return found


# -- order --------------------------------------------------------------------------------------------------------------

def test_sort_key_is_virsh_order_ascii_case_folded_then_exact():
    assert sorted(PARENTS, key=sort_key) == ['a', 'alpha', 'B', 'b2', 'c', 'd', 'root', 'solo', 'Z']
    assert sorted(['b', 'B', 'a', 'A'], key=sort_key) == ['A', 'a', 'B', 'b']


def test_sort_key_folds_only_ascii_letters():
    # virsh compares with an ASCII-only case fold: 'É' does not sort with 'é'.
    assert sort_key('É') != sort_key('é')
    assert sort_key('Snap') < sort_key('snaq')


def test_roots_children_and_preorder():
    tree = SnapshotTree(PARENTS)
    assert tree.roots == ['alpha', 'root', 'solo']
    assert tree.children_of('root') == ['B', 'Z']
    assert tree.children_of('B') == ['a', 'd']
    assert tree.children_of('c') == []
    assert tree.preorder() == ['alpha', 'root', 'B', 'a', 'c', 'd', 'Z', 'b2', 'solo']


def test_preorder_puts_every_snapshot_after_its_parent():
    order = SnapshotTree(PARENTS).preorder()
    for name, parent in PARENTS.items():
        if parent is not None:
            assert order.index(parent) < order.index(name)


@pytest.mark.parametrize('name, root, leaf', [
    ('root', True, False),
    ('alpha', True, True),
    ('B', False, False),
    ('c', False, True),
    ('b2', False, True),
])
def test_roots_and_leaves(name, root, leaf):
    tree = SnapshotTree(PARENTS)
    assert (tree.is_root(name), tree.is_leaf(name)) == (root, leaf)


def test_a_parent_that_is_not_listed_makes_a_root():
    # A parent deleted between the list call and the XML fetches.
    tree = SnapshotTree({'a': 'gone', 'b': 'a'})
    assert tree.roots == ['a']
    assert tree.preorder() == ['a', 'b']


def test_a_cycle_is_broken_so_every_snapshot_appears_once():
    tree = SnapshotTree({'r': None, 'x': 'y', 'y': 'x', 'z': 'y'})
    assert sorted(tree.preorder()) == ['r', 'x', 'y', 'z']
    assert tree.roots == ['r', 'x']
    assert tree.preorder() == ['r', 'x', 'y', 'z']
    assert [name for name, dummy in walk_nested(tree.nested()[0])] == ['r', 'x', 'y', 'z']


def test_no_snapshots():
    tree = SnapshotTree({})
    assert (tree.roots, tree.preorder(), tree.nested(), tree.text()) == ([], [], ([], False), '')


# -- nested -------------------------------------------------------------------------------------------------------------

def test_nested():
    nested, truncated = SnapshotTree({'root': None, 'B': 'root', 'a': 'B', 'Z': 'root', 'solo': None}).nested()
    assert truncated is False
    assert nested == [
        {'name': 'root', 'children': [
            {'name': 'B', 'children': [{'name': 'a', 'children': []}]},
            {'name': 'Z', 'children': []},
        ]},
        {'name': 'solo', 'children': []},
    ]


def test_nested_stops_at_max_depth_and_says_so():
    nested, truncated = SnapshotTree(PARENTS).nested(max_depth=2)
    assert truncated is True
    assert walk_nested(nested) == [('alpha', 1), ('root', 1), ('B', 2), ('Z', 2), ('solo', 1)]
    assert nested[1]['children'][0] == {'name': 'B', 'children': []}


def test_nested_at_exactly_max_depth_is_not_truncated():
    nested, truncated = SnapshotTree(chain(3)).nested(max_depth=3)
    assert truncated is False
    assert walk_nested(nested) == [('s00000', 1), ('s00001', 2), ('s00002', 3)]


# -- text ---------------------------------------------------------------------------------------------------------------

def test_text_is_what_virsh_prints():
    assert SnapshotTree(PARENTS).text() == VIRSH_TREE


def test_text_marks_the_current_snapshot():
    lines = SnapshotTree(PARENTS).text(current='a').split('\n')
    assert '  |   +- a (current)' in lines
    assert [line for line in lines if '(current)' in line] == ['  |   +- a (current)']


def test_text_marks_a_current_root():
    assert SnapshotTree({'only': None}).text(current='only') == 'only (current)\n'


def test_text_of_a_short_chain():
    assert SnapshotTree(chain(3)).text() == ('s00000\n'
                                             '  |\n'
                                             '  +- s00001\n'
                                             '      |\n'
                                             '      +- s00002\n'
                                             '        ')


# -- a chain of 5,000 ---------------------------------------------------------------------------------------------------

DEEP = 5000


@pytest.fixture(scope='module')
def deep_tree():
    return SnapshotTree(chain(DEEP))


def test_deep_chain_order(deep_tree):
    assert deep_tree.roots == ['s00000']
    order = deep_tree.preorder()
    assert len(order) == DEEP
    assert order[0] == 's00000' and order[-1] == 's%05d' % (DEEP - 1)
    assert deep_tree.is_leaf('s%05d' % (DEEP - 1)) and not deep_tree.is_leaf('s%05d' % (DEEP - 2))


def test_deep_chain_nested_in_full(deep_tree):
    nested, truncated = deep_tree.nested(max_depth=None)
    assert truncated is False
    nodes = walk_nested(nested)
    assert len(nodes) == DEEP
    assert nodes[-1] == ('s%05d' % (DEEP - 1), DEEP)


def test_deep_chain_nested_stops_at_the_default_depth(deep_tree):
    nested, truncated = deep_tree.nested()
    assert truncated is True
    nodes = walk_nested(nested)
    assert len(nodes) == NESTED_MAX_DEPTH
    assert nodes[-1] == ('s%05d' % (NESTED_MAX_DEPTH - 1), NESTED_MAX_DEPTH)


def test_deep_chain_text(deep_tree):
    # Streamed: the whole text is about 100 MB (virsh indents each level by four characters).
    count = 0
    marked = None
    last_node = None
    for line in deep_tree.lines(current='s02500'):
        count += 1
        if line.endswith(' (current)'):
            marked = line
        if line.endswith('s%05d' % (DEEP - 1)):
            last_node = line
    # A root line, then per child a '|' line and its own line, then the closing line after the leaf.
    assert count == 1 + 2 * (DEEP - 1) + 1
    assert marked == ' ' * (4 * 2500 - 2) + '+- s02500 (current)'
    assert last_node == ' ' * (4 * (DEEP - 1) - 2) + '+- s%05d' % (DEEP - 1)
