# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Static checks of the snapshot_guard role's files, for mistakes the integration tests could miss.

The integration tests run the guests and the hypervisor on one machine, so a libvirt task that is not delegated to the
hypervisor, or that ignores snapshot_guard_uri, could still pass there; and a variable left out of the argument spec is
only noticed by a user.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest
import yaml

ROLE = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'roles', 'snapshot_guard')
TASKS = os.path.join(ROLE, 'tasks')
HYPERVISOR = '{{ snapshot_guard_hypervisor }}'
URI = '{{ snapshot_guard_uri | default(omit, true) }}'


def load(*parts):
    with open(os.path.join(ROLE, *parts)) as stream:
        return yaml.safe_load(stream)


def walk(tasks):
    """Every task of a tasks list, including those inside block, rescue and always."""
    for task in tasks or []:
        if 'block' in task:
            for section in ('block', 'rescue', 'always'):
                yield from walk(task.get(section))
        else:
            yield task


def libvirt_tasks():
    found = []
    for filename in sorted(os.listdir(TASKS)):
        for task in walk(load('tasks', filename)):
            modules = [key for key in task if key.startswith('vmsnap.libvirt.')]
            if modules:
                found.append(pytest.param(task, modules[0], id='%s: %s' % (filename, task['name'])))
    return found


def test_the_role_has_libvirt_tasks():
    assert len(libvirt_tasks()) >= 8


@pytest.mark.parametrize('task, module', libvirt_tasks())
def test_libvirt_tasks_run_on_the_hypervisor(task, module):
    assert task.get('delegate_to') == HYPERVISOR


@pytest.mark.parametrize('task, module', libvirt_tasks())
def test_libvirt_tasks_use_the_guard_uri(task, module):
    assert task[module].get('uri') == URI


@pytest.mark.parametrize('task, module', libvirt_tasks())
def test_libvirt_tasks_act_on_the_guard_domain(task, module):
    assert task[module].get('domain') == '{{ snapshot_guard_domain }}'


def test_every_default_is_in_the_argument_spec_and_back():
    defaults = set(load('defaults', 'main.yml'))
    options = set(load('meta', 'argument_specs.yml')['argument_specs']['main']['options'])
    assert defaults == options


def test_argument_spec_defaults_match_defaults_main():
    defaults = load('defaults', 'main.yml')
    options = load('meta', 'argument_specs.yml')['argument_specs']['main']['options']
    for name, spec in options.items():
        # An option without a default in the spec is unset (None) in defaults/main.yml.
        assert spec.get('default') == defaults[name], name
