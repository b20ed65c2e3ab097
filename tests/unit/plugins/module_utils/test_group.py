# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Unit tests of _group.hold_still: a group held still by pauses, or by freezes of the guests' file systems, and let
go of however it ends, with failures injected through a fake client."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import threading

import pytest

from ansible_collections.vmsnap.libvirt.plugins.module_utils import _group
from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError


class FakeDomain:
    def __init__(self, name):
        self._name = name

    def name(self):
        return self._name


class Clock:
    """A clock that each call moves on by one second, and whose sleeps add up."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        self.now += 1.0
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class FakeClient:
    """Pauses, resumes, freezes and thaws; ``fail_*`` name domains whose call fails (``busy_thaws``: how many thaws of
    a domain fail before one succeeds)."""

    def __init__(self, fail_pause=(), fail_resume=(), fail_freeze=(), busy_thaws=None):
        self.calls = []
        self.paused = set()
        self.frozen = set()
        self.fail_pause = set(fail_pause)
        self.fail_resume = set(fail_resume)
        self.fail_freeze = set(fail_freeze)
        self.busy_thaws = dict(busy_thaws or {})

    def suspend(self, dom):
        self.calls.append(('pause', dom.name()))
        if dom.name() in self.fail_pause:
            raise SnapshotError("Could not pause domain '%s'." % dom.name())
        self.paused.add(dom.name())

    def resume(self, dom):
        self.calls.append(('resume', dom.name()))
        if dom.name() in self.fail_resume:
            raise SnapshotError("Could not resume domain '%s'." % dom.name())
        self.paused.discard(dom.name())

    def bound_agent(self, dom, timeout):
        self.calls.append(('bound', dom.name(), timeout))

    def freeze_guest(self, dom):
        self.calls.append(('freeze', dom.name()))
        if dom.name() in self.fail_freeze:
            raise SnapshotError("Could not freeze the file systems of domain '%s': agent timeout." % dom.name())
        self.frozen.add(dom.name())
        return 1

    def thaw_guest(self, dom):
        self.calls.append(('thaw', dom.name()))
        if self.busy_thaws.get(dom.name()):
            self.busy_thaws[dom.name()] -= 1
            raise SnapshotError("Could not thaw the file systems of domain '%s': agent busy." % dom.name())
        self.frozen.discard(dom.name())
        return 1


def pauses(*names):
    clock = Clock()
    return [_group.Hold(FakeDomain(name), 'nightly', None, clock, clock.sleep) for name in names]


def freezes(*names, mode='true', timeout=10.0):
    clock = Clock()
    return [_group.Hold(FakeDomain(name), 'nightly', {'mode': mode, 'timeout': timeout}, clock, clock.sleep)
            for name in names]


def names(record):
    return dict((key, value) for key, value in record.items() if key != 'seconds')


# -- pauses -----------------------------------------------------------------------------------------------------------

def test_hold_still_pauses_runs_and_resumes_everything():
    client = FakeClient()

    def work():
        assert client.paused == set(['db', 'app1', 'app2'])
        return 'taken'

    done, record = _group.hold_still(client, pauses('db', 'app1', 'app2'), work, clock=Clock())
    assert done == 'taken'
    assert names(record) == {'paused': ['db', 'app1', 'app2'], 'resumed': ['db', 'app1', 'app2'], 'frozen': [],
                             'thawed': []}
    # how long each domain was held, from its pause to its resume
    assert sorted(record['seconds']) == ['app1', 'app2', 'db']
    assert all(seconds > 0 for seconds in record['seconds'].values())
    assert client.paused == set()


def test_hold_still_resumes_everything_when_the_work_fails():
    client = FakeClient()

    def work():
        raise SnapshotError('The snapshot of app1 failed.')

    with pytest.raises(SnapshotError) as caught:
        _group.hold_still(client, pauses('db', 'app1'), work)
    assert client.paused == set()
    assert caught.value.msg == ('The snapshot of app1 failed. Nothing is left paused or frozen: every domain held still '
                                'for the group (db, app1) was let go.')
    assert names(caught.value.details['group']) == {'paused': ['db', 'app1'], 'resumed': ['db', 'app1'], 'frozen': [],
                                                    'thawed': []}


def test_hold_still_resumes_everything_when_the_work_has_a_bug():
    client = FakeClient()

    def work():
        raise ZeroDivisionError()

    with pytest.raises(ZeroDivisionError):
        _group.hold_still(client, pauses('db', 'app'), work)
    assert client.paused == set()


def test_hold_still_undoes_the_pauses_when_a_pause_fails_and_does_not_work():
    client = FakeClient(fail_pause=['app2'])
    worked = []
    with pytest.raises(SnapshotError) as caught:
        _group.hold_still(client, pauses('db', 'app1', 'app2', 'app3'), lambda: worked.append(True))
    assert worked == []
    assert client.paused == set()
    assert ('pause', 'app3') not in client.calls
    assert names(caught.value.details['group'])['resumed'] == ['db', 'app1']
    assert caught.value.msg.startswith("Could not pause domain 'app2'. Nothing is left paused or frozen")


def test_hold_still_tries_every_resume_and_names_what_it_left_paused():
    client = FakeClient(fail_resume=['app1'])

    def work():
        raise SnapshotError('The snapshot of db failed.')

    with pytest.raises(SnapshotError) as caught:
        _group.hold_still(client, pauses('db', 'app1', 'app2'), work)
    assert client.paused == set(['app1'])
    assert names(caught.value.details['group']) == {'paused': ['db', 'app1', 'app2'], 'resumed': ['db', 'app2'],
                                                    'frozen': [], 'thawed': []}
    assert caught.value.msg == ("Could not resume domain 'app1'. Domain app1 is left paused: resume it with "
                                '`virsh resume app1`. Before that: The snapshot of db failed.')


# -- freezes ----------------------------------------------------------------------------------------------------------

def test_a_disk_only_group_freezes_instead_of_pausing_and_thaws_everything():
    client = FakeClient()

    def work():
        assert client.frozen == set(['db', 'app']) and client.paused == set()
        return 'taken'

    done, record = _group.hold_still(client, freezes('db', 'app'), work)
    assert done == 'taken'
    assert names(record) == {'paused': [], 'resumed': [], 'frozen': ['db', 'app'], 'thawed': ['db', 'app']}
    assert client.frozen == set()
    # libvirt waits at most the quiesce timeout for the agent while the group holds it, as long as it takes after
    assert client.calls == [('bound', 'db', 10.0), ('freeze', 'db'), ('bound', 'app', 10.0), ('freeze', 'app'),
                            ('thaw', 'db'), ('bound', 'db', None), ('thaw', 'app'), ('bound', 'app', None)]


def test_a_thaw_that_finds_the_agent_busy_is_tried_again():
    client = FakeClient(busy_thaws={'db': 2})
    dummy, record = _group.hold_still(client, freezes('db'), lambda: None)
    assert record['thawed'] == ['db'] and client.frozen == set()
    assert [call for call in client.calls if call[0] == 'thaw'] == [('thaw', 'db')] * 3


def test_a_thaw_that_never_succeeds_names_the_guest_and_how_to_thaw_it():
    client = FakeClient(busy_thaws={'app': 1000})
    with pytest.raises(SnapshotError) as caught:
        _group.hold_still(client, freezes('db', 'app'), lambda: None)
    assert names(caught.value.details['group'])['thawed'] == ['db']
    assert ("Domain app may be left with frozen file systems: thaw them with `virsh domfsthaw app`."
            in caught.value.msg)


def test_quiesce_true_stops_the_group_at_a_failed_freeze_and_lets_go_of_the_others():
    client = FakeClient(fail_freeze=['app'])
    worked = []
    with pytest.raises(SnapshotError) as caught:
        _group.hold_still(client, freezes('db', 'app', 'web'), lambda: worked.append(True))
    assert worked == []
    assert ('freeze', 'web') not in client.calls
    assert client.frozen == set()
    # the failed freeze was thawed too: its agent may still freeze when it answers
    assert ('thaw', 'app') in client.calls
    assert caught.value.msg.startswith("Could not freeze the file systems of domain 'app' for the group (Could not "
                                       "freeze the file systems of domain 'app': agent timeout); they are thawed.")
    assert names(caught.value.details['group']) == {'paused': [], 'resumed': [], 'frozen': ['db'], 'thawed': ['db']}


def test_quiesce_auto_pauses_a_domain_whose_freeze_failed():
    client = FakeClient(fail_freeze=['app'])
    holds = freezes('db', 'app', mode='auto')

    def work():
        assert client.frozen == set(['db']) and client.paused == set(['app'])

    dummy, record = _group.hold_still(client, holds, work)
    assert names(record) == {'paused': ['app'], 'resumed': ['app'], 'frozen': ['db'], 'thawed': ['db']}
    assert holds[1].fallback == ("the guest agent did not freeze its file systems (Could not freeze the file systems "
                                 "of domain 'app': agent timeout); they were thawed.")
    assert holds[0].fallback is None


# -- several at a time ------------------------------------------------------------------------------------------------

class MeetingClient(FakeClient):
    """A FakeClient whose freezes and thaws each wait until ``count`` of them are under way at once: a group that
    froze or thawed its guests one after the other would break the barrier (threading.BrokenBarrierError)."""

    def __init__(self, count, **kwargs):
        super(MeetingClient, self).__init__(**kwargs)
        self.freezes = threading.Barrier(count, timeout=10)
        self.thaws = threading.Barrier(count, timeout=10)

    def freeze_guest(self, dom):
        self.freezes.wait()
        return super(MeetingClient, self).freeze_guest(dom)

    def thaw_guest(self, dom):
        self.thaws.wait()
        return super(MeetingClient, self).thaw_guest(dom)


def test_a_group_freezes_and_thaws_its_guests_at_the_same_time():
    client = MeetingClient(3)

    def work():
        assert client.frozen == set(['db', 'app1', 'app2'])
        return 'taken'

    done, record = _group.hold_still(client, freezes('db', 'app1', 'app2'), work, parallel=4)
    assert done == 'taken'
    assert client.frozen == set()
    # the record names the domains in the group's order, however the workers finished
    assert names(record) == {'paused': [], 'resumed': [], 'frozen': ['db', 'app1', 'app2'],
                             'thawed': ['db', 'app1', 'app2']}
    assert list(record['seconds']) == ['db', 'app1', 'app2']
    assert all(seconds >= 0 for seconds in record['seconds'].values())


def test_a_freeze_that_fails_beside_others_lets_go_of_every_guest_frozen_meanwhile():
    client = FakeClient(fail_freeze=['app1'])
    worked = []
    with pytest.raises(SnapshotError) as caught:
        _group.hold_still(client, freezes('db', 'app1', 'app2'), lambda: worked.append(True), parallel=3)
    assert worked == []
    assert client.frozen == set() and client.paused == set()
    record = names(caught.value.details['group'])
    assert record['frozen'] == record['thawed']
    assert 'app1' not in record['frozen']
    assert "Could not freeze the file systems of domain 'app1' for the group" in caught.value.msg
    assert 'Nothing is left paused or frozen' in caught.value.msg
