# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The guest's clock after a resume from saved memory: set through the guest agent, within a bounded wait."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import time

import libvirt
import pytest

from ansible_collections.vmsnap.libvirt.plugins.module_utils import _actions, _client, _plan
from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError


def agent_error(code, message):
    error = libvirt.libvirtError(message)
    error.err = (code, 0, message, 2, None, None, None, 0, 0)
    return error


class Guest:
    """A running guest whose agent answers from the ``answers_after``-th try on, with its clock ``behind`` seconds
    behind the host's (or never, or has no agent channel at all)."""

    def __init__(self, behind=97.0, answers_after=0, channel=True):
        self.behind = behind
        self.answers_after = answers_after
        self.channel = channel
        self.tries = 0
        self.set_calls = []

    def name(self):
        return 'web01'

    def getTime(self, flags):
        self.tries += 1
        if not self.channel:
            raise agent_error(libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED, 'argument unsupported: QEMU guest agent is not '
                                                                    'configured')
        if self.answers_after is None or self.tries <= self.answers_after:
            raise agent_error(libvirt.VIR_ERR_AGENT_UNRESPONSIVE, 'Guest agent is not responding: QEMU guest agent is '
                                                                  'not connected')
        now = time.time() - self.behind
        return {'seconds': int(now), 'nseconds': int((now % 1) * 1e9)}

    def setTime(self, value, flags):
        self.set_calls.append((value, flags))
        return 0


class Clock:
    def __init__(self):
        self.now = 0.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def sync(guest, mode='auto', timeout=15):
    clock = Clock()
    runner = _actions.Runner(_client.Client('test:///default'), guest, sleep=clock.sleep, clock=clock)
    plan = _plan.Plan([_plan.Action('sync_clock', mode=mode, snapshot='good', timeout=timeout, operation='revert')],
                      {}, {}, None, 'running')
    runner.execute(None, plan)
    return runner.clock, clock


def test_the_agent_sets_the_clock_and_says_how_far_behind_it_was():
    guest = Guest(behind=97.0)
    result, dummy = sync(guest)
    assert (result['synced'], result['attempted'], result['message']) == (True, True, None)
    assert 96.0 < result['behind_seconds'] < 98.5
    assert guest.set_calls == [({'seconds': 0, 'nseconds': 0}, libvirt.VIR_DOMAIN_TIME_SYNC)]


def test_an_agent_that_answers_late_is_waited_for_within_the_timeout():
    guest = Guest(answers_after=3)
    result, clock = sync(guest)
    assert result['synced'] is True
    assert len(clock.slept) == 3 and clock.now <= 15


def test_an_agent_that_never_answers_is_given_up_after_the_timeout_with_a_way_out():
    guest = Guest(answers_after=None)
    result, clock = sync(guest, timeout=5)
    assert (result['synced'], result['behind_seconds']) == (False, None)
    assert clock.now <= 5 and guest.set_calls == []
    assert "The clock of domain 'web01' was not set" in result['message']
    assert 'virsh domtime web01 --sync' in result['message']


def test_a_guest_without_an_agent_channel_is_not_waited_for():
    guest = Guest(channel=False)
    result, clock = sync(guest)
    assert (result['synced'], clock.slept) == (False, [])
    assert 'no QEMU guest agent channel' in result['message']


def test_required_fails_saying_the_revert_itself_succeeded():
    with pytest.raises(SnapshotError) as caught:
        sync(Guest(channel=False), mode='required')
    assert 'The revert itself succeeded' in caught.value.msg
    assert caught.value.details['changed'] is True
    assert caught.value.details['clock']['synced'] is False
