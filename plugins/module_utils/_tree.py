# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils file is private to the vmsnap.libvirt collection. It can change at any time,
# without a deprecation period. Do not use it outside this collection.

"""The snapshot tree of one domain, built from parent links, and its text rendering.

Pure: no libvirt, no XML. Every walk here uses an explicit stack instead of recursion, so a chain of thousands of
snapshots (each the child of the one before) never reaches Python's recursion limit.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

CURRENT_MARK = ' (current)'

# Ansible cannot carry nested data much deeper than about a hundred levels: its controller decodes, copies and
# templates results recursively, and a nested tree deeper than that fails the task (measured with ansible-core 2.19).
# The nested tree stops at this depth; the flat parent/children links and the text rendering stay complete.
NESTED_MAX_DEPTH = 64

_ASCII_UPPER = ''.join(chr(code) for code in range(ord('A'), ord('Z') + 1))
_ASCII_FOLD = dict((ord(char), ord(char.lower())) for char in _ASCII_UPPER)


def sort_key(name):
    """virsh's order of snapshot names: ASCII letters compared without case, ties broken by the exact name."""
    return (name.translate(_ASCII_FOLD), name)


class SnapshotTree:
    """The snapshots of one domain as a forest: roots and, for each snapshot, its children, in virsh's order.

    ``parents`` maps every snapshot name to its parent's name (or None). A snapshot whose parent is not among the
    names (it was deleted while the snapshots were being read) counts as a root. Parent links that form a cycle
    (libvirt never records one) are broken at the first name of the cycle, so every snapshot appears exactly once.
    """

    def __init__(self, parents):
        self.children = {}
        roots = []
        for name in sorted(parents, key=sort_key):
            parent = parents[name]
            if parent is None or parent not in parents:
                roots.append(name)
            else:
                self.children.setdefault(parent, []).append(name)
        self.roots = roots
        self._order = self._preorder(parents)

    def _preorder(self, parents):
        order = []
        seen = set()
        pending = list(self.roots)
        names = sorted(parents, key=sort_key)
        while True:
            stack = list(reversed(pending))
            while stack:
                name = stack.pop()
                seen.add(name)
                order.append(name)
                stack.extend(reversed(self.children.get(name, ())))
            if len(order) == len(parents):
                return order
            # Only a cycle leaves names unreached: make its first name a root and walk on from there.
            cut = next(name for name in names if name not in seen)
            parent = parents[cut]
            self.children[parent] = [child for child in self.children[parent] if child != cut]
            self.roots = sorted(self.roots + [cut], key=sort_key)
            pending = [cut]

    def preorder(self):
        """Every name, each after its parent: the order in which snapshots can be redefined."""
        return list(self._order)

    def children_of(self, name):
        return list(self.children.get(name, ()))

    def is_root(self, name):
        return name in self.roots

    def is_leaf(self, name):
        return not self.children.get(name)

    def nested(self, max_depth=NESTED_MAX_DEPTH):
        """The forest as nested ``{name, children}`` dicts, and whether it was cut at ``max_depth`` levels.

        A snapshot at ``max_depth`` keeps an empty ``children`` list even when it has children. ``None`` means
        no limit.
        """
        forest = []
        truncated = False
        stack = [(root, forest, 1) for root in reversed(self.roots)]
        while stack:
            name, siblings, depth = stack.pop()
            node = {'name': name, 'children': []}
            siblings.append(node)
            children = self.children.get(name, ())
            if children and max_depth is not None and depth >= max_depth:
                truncated = True
                continue
            stack.extend((child, node['children'], depth + 1) for child in reversed(children))
        return forest, truncated

    def lines(self, current=None):
        """The lines ``virsh snapshot-list --tree`` prints (without its final empty line), the current snapshot
        marked with `` (current)``.

        Each root starts at the left edge; a child is drawn with ``+-`` under a ``|`` line, and the last leaf of a
        branch is followed by a line of its indentation. A generator, so a deep chain need not be held in memory.
        """
        for root in self.roots:
            stack = [(root, '', True, True)]
            while stack:
                name, indent, is_root, is_last = stack.pop()
                label = name + CURRENT_MARK if name == current else name
                yield label if is_root else indent + '+- ' + label
                if not is_root:
                    indent += '  ' if is_last else '| '
                children = self.children.get(name, ())
                if children:
                    yield indent + '  |'
                    last = len(children) - 1
                    stack.extend((children[index], indent + '  ', False, index == last)
                                 for index in range(last, -1, -1))
                elif is_last:
                    yield indent

    def text(self, current=None):
        return '\n'.join(self.lines(current))
