# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Unit tests of _batch: choosing domains by name and glob, the worker pool and the summary of a partial failure,
with failures injected through a fake client."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import threading

import pytest

from ansible_collections.vmsnap.libvirt.plugins.module_utils import _batch
from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError


class FakeDomain:
    def __init__(self, name):
        self._name = name

    def name(self):
        return self._name


class FakeClient:
    """Lists domains and pauses/resumes them; ``fail_pause``/``fail_resume`` name domains whose call fails."""

    uri = 'qemu:///system'

    def __init__(self, names=(), fail_pause=(), fail_resume=()):
        self.domains = [FakeDomain(name) for name in names]
        self.list_calls = 0
        self.calls = []
        self.paused = set()
        self.fail_pause = set(fail_pause)
        self.fail_resume = set(fail_resume)

    def list_domains(self):
        self.list_calls += 1
        return list(self.domains)

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


FLEET = ['web10', 'web02', 'Web03', 'db01', 'db02', 'cache[1]', 'app?']


# -- choosing domains ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize('entries, names, lists', [
    # plain names are not looked up or listed here: the worker looks each up by name
    (['db01', 'nosuch'], ['db01', 'nosuch'], 0),
    (['web*'], ['web02', 'web10'], 1),
    # case-sensitive; ? is one character; [...] a class; [[] matches a literal [
    (['?eb*'], ['web02', 'Web03', 'web10'], 1),
    (['db0[2-9]'], ['db02'], 1),
    (['cache[[]1]'], ['cache[1]'], 1),
    (['[!w]*'], ['app?', 'cache[1]', 'db01', 'db02', 'Web03'], 1),
    # order of first mention, each domain once, a plain name among globs taken from the one list
    (['db02', 'db*', 'web02', 'web*'], ['db02', 'db01', 'web02', 'web10'], 1),
    (['*'], ['app?', 'cache[1]', 'db01', 'db02', 'web02', 'Web03', 'web10'], 1),
])
def test_resolve(entries, names, lists):
    client = FakeClient(FLEET)
    targets, warnings = _batch.resolve(client, entries)
    assert [name for name, dummy in targets] == names
    assert client.list_calls == lists
    assert warnings == []
    for name, dom in targets:
        assert dom is None if lists == 0 else dom.name() == name


def test_resolve_warns_about_a_glob_that_matches_nothing_and_keeps_plain_names_without_a_domain():
    client = FakeClient(FLEET)
    targets, warnings = _batch.resolve(client, ['mail*', 'web1*', 'gone'])
    assert targets[0][0] == 'web10' and targets[1] == ('gone', None)
    assert warnings == ["The pattern 'mail*' in domains matches no domain on qemu:///system; it was skipped. Check it "
                        'with `virsh list --all`; patterns are case-sensitive.']


# -- the pool -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('parallel', [1, 2, 4, 16])
def test_run_each_keeps_order_isolates_failures_and_bounds_concurrency(parallel):
    lock = threading.Lock()
    running = []
    peak = []
    release = threading.Event()

    def work(name, item):
        with lock:
            running.append(name)
            peak.append(len(running))
            if len(running) >= min(parallel, 8):
                release.set()
        # Wait (briefly) until the pool is full, so the test sees the real bound, not luck of scheduling.
        release.wait(2)
        with lock:
            running.remove(name)
        if item % 3 == 0:
            raise SnapshotError('%s failed' % name)
        return {'changed': item % 2 == 0, 'n': item}, ['note %d' % item]

    items = [('d%d' % index, index) for index in range(1, 9)]
    outcomes = _batch.run_each(items, work, parallel)
    assert [outcome.name for outcome in outcomes] == ['d%d' % index for index in range(1, 9)]
    assert [outcome.ok for outcome in outcomes] == [index % 3 != 0 for index in range(1, 9)]
    assert [outcome.error.msg for outcome in outcomes if not outcome.ok] == ['d3 failed', 'd6 failed']
    assert outcomes[0].result == {'changed': False, 'n': 1} and outcomes[0].warnings == ['note 1']
    assert max(peak) == min(parallel, 8)


def test_run_each_lets_a_bug_through():
    def work(name, item):
        raise KeyError(name)

    with pytest.raises(KeyError):
        _batch.run_each([('a', 1), ('b', 2)], work, 2)


# -- the summary ----------------------------------------------------------------------------------------------------

def ok(name, changed=True, diff=True):
    result = {'changed': changed, 'snapshot': {'name': 's'}, 'domain_state': 'running', 'deleted': [], 'merged': []}
    if diff:
        result['diff'] = {'before': {'exists': not changed}, 'after': {'exists': True}}
    return _batch.Outcome(name, result, ['careful'] if name == 'b' else [])


def test_summary_of_a_partial_failure_names_each_failed_domain_and_why():
    raw = SnapshotError('b has a raw disk.', code=8, affected=['x'])
    outcomes = [ok('a'), _batch.Outcome('b', error=raw), ok('c', changed=False),
                _batch.Outcome('d', error=SnapshotError('d is gone.'))]
    result, warnings, failure = _batch.summarize(outcomes, diff=True)
    assert failure.msg == ('Failed on 2 of 4 domains (b, d); the other 2 were handled, see results. '
                           'b: b has a raw disk. d: d is gone.')
    assert failure.details == result
    assert result['changed'] is True
    assert result['results'][1] == {'domain': 'b', 'failed': True, 'changed': False, 'msg': 'b has a raw disk.',
                                    'affected': ['x']}
    assert result['results'][0] == dict(outcomes[0].result, domain='a')
    assert result['diff'] == {'before': {'a': {'exists': False}, 'c': {'exists': True}},
                              'after': {'a': {'exists': True}, 'c': {'exists': True}}}
    assert warnings == []


def test_summary_without_failure():
    unchanged = [ok('a', changed=False, diff=False), ok('b', changed=False, diff=False)]
    result, warnings, failure = _batch.summarize(unchanged)
    assert failure is None
    assert result == {'changed': False, 'results': [dict(ok('a', False, False).result, domain='a'),
                                                    dict(ok('b', False, False).result, domain='b')]}
    assert warnings == ["Domain 'b': careful"]


def test_summary_of_a_failure_that_changed_something_before_it_failed():
    outcomes = [_batch.Outcome('a', error=SnapshotError('half done.', changed=True, deleted=['s1']))]
    result, dummy, failure = _batch.summarize(outcomes)
    assert result['changed'] is True
    assert result['results'][0]['deleted'] == ['s1']
    assert failure.msg == 'Failed on 1 of 1 domains (a); no other domain was handled. a: half done.'


def test_summary_of_skipped_domains():
    outcomes = [_batch.Outcome('a', error=SnapshotError('a cannot.')), _batch.Outcome('b', skipped='Not taken.')]
    result, dummy, failure = _batch.summarize(outcomes)
    assert result['results'][1] == {'domain': 'b', 'changed': False, 'skipped': True, 'msg': 'Not taken.'}
    assert failure.msg == 'Failed on 1 of 2 domains (a); no other domain was handled. Skipped b: Not taken. a: a cannot.'
