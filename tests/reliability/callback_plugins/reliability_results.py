# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Record every task result as one JSON line in $VMSNAP_RESULTS_FILE, for the reliability suite's driver.

The driver judges results from these records (the full result dict, ignore_errors, the task's name and tags), not from
the human-readable output, which it only searches for Python stacks and secrets.

A task with the variable reliability_fingerprint ({domain: NAME, folder: PATH}) also gets the differences between the
domain's fingerprint (tests/reliability/vmsnap_reliability/state.py) right before the task started and right after its
result came back, read through $VMSNAP_FINGERPRINT_URI. The linear strategy starts a task only after the previous
one's results were handled here, so the two fingerprints enclose exactly that task.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: reliability_results
type: aggregate
short_description: write each task result as a JSON line to $VMSNAP_RESULTS_FILE
description:
  - Used by tests/reliability/run.py only.
requirements:
  - the environment variable VMSNAP_RESULTS_FILE names the file to append to
'''

import json
import os
import sys

from ansible.plugins.callback import CallbackBase

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'reliability_results'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super(CallbackModule, self).__init__()
        self._path = os.environ.get('VMSNAP_RESULTS_FILE')
        self._conn = None
        self._before = None

    def _fingerprint(self, target):
        import libvirt  # pylint: disable=import-outside-toplevel
        from vmsnap_reliability import state  # pylint: disable=import-outside-toplevel
        if self._conn is None:
            self._conn = libvirt.open(os.environ['VMSNAP_FINGERPRINT_URI'])
        return state.fingerprint(self._conn, target['domain'], target['folder'])

    def v2_playbook_on_task_start(self, task, is_conditional):
        target = task.vars.get('reliability_fingerprint')
        self._before = (task._uuid, target, self._fingerprint(target)) if target else None

    def _record(self, status, result, ignore_errors=False):
        if not self._path:
            return
        task = result._task
        record = {
            'status': status,
            'host': result._host.get_name(),
            'task': task.get_name(),
            'action': task.action,
            'tags': list(task.tags),
            'ignore_errors': bool(ignore_errors),
            'result': result._result,
        }
        if self._before is not None and self._before[0] == task._uuid:
            from vmsnap_reliability import state  # pylint: disable=import-outside-toplevel
            dummy_uuid, target, before = self._before
            record['changes'] = state.differences(before, self._fingerprint(target))
        with open(self._path, 'a') as stream:
            stream.write(json.dumps(record, default=str, sort_keys=True) + '\n')

    def v2_runner_on_ok(self, result):
        self._record('ok', result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record('failed', result, ignore_errors)

    def v2_runner_on_unreachable(self, result):
        self._record('unreachable', result)

    def v2_runner_on_skipped(self, result):
        self._record('skipped', result)
