# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils file is private to the vmsnap.libvirt collection. It can change at any time,
# without a deprecation period. Do not use it outside this collection.

"""consistency=group: the snapshots of a set of domains taken at one instant (take_group), the running guests held
still meanwhile (hold_still): paused, or, for disk-only snapshots quiesced through their agents, their file systems
frozen, so that no guest stops. Whatever was paused is resumed and whatever was frozen is thawed, however it ends."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import threading
import time

from ansible_collections.vmsnap.libvirt.plugins.module_utils import _batch
from ansible_collections.vmsnap.libvirt.plugins.module_utils._actions import THAW_TIMEOUT, thaw_after_failed_freeze, thaw_within
from ansible_collections.vmsnap.libvirt.plugins.module_utils._backoff import Backoff
from ansible_collections.vmsnap.libvirt.plugins.module_utils._domain_run import DomainRun
from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError


class Hold:
    """How one running domain is held still for ``snapshot``: ``freeze`` (a quiesce dict {'mode', 'timeout'}) or
    None to pause it. ``fallback`` is set when quiesce: auto paused it after its freeze failed: why."""

    def __init__(self, dom, snapshot, freeze=None, clock=time.monotonic, sleep=time.sleep):
        self.dom = dom
        self.snapshot = snapshot
        self.freeze = freeze
        self.fallback = None
        self.clock = clock
        self.sleep = sleep

    def backoff(self, timeout):
        return Backoff(timeout=timeout, first=0.5, cap=2.0, clock=self.clock, sleep=self.sleep)

    @property
    def name(self):
        return self.dom.name()


def take_group(params, client, *, check_mode, diff, command, targets, clock=time.monotonic, sleep=time.sleep):
    """Plan every domain; if every plan holds, hold still the running domains that get a new snapshot, take all the
    snapshots, and let them go, also when a snapshot fails. Returns (outcomes, record of hold_still).

    A disk-only snapshot that its plan quiesces is held by freezing the guest's file systems (the snapshot is then
    taken without freezing again, noted as quiesced); every other one is held by a pause. A memory snapshot of a
    domain paused here would record 'paused', and reverting to it would leave the domain paused. libvirt itself pauses
    a running domain while it saves an internal snapshot's memory and records 'running'; the group does the same:
    such a snapshot's record is set to 'running' before the domain resumes.
    """
    runs = [(name, DomainRun(dict(params, domain=name), client, dom, command)) for name, dom in targets]
    planned = _batch.run_each(runs, lambda name, run: (run.prepare(), []), params['parallel'])
    unplanned = [outcome.name for outcome in planned if not outcome.ok]
    if unplanned:
        reason = ('consistency: group takes the snapshots of every domain or of none, and %s cannot be snapshotted; '
                  'nothing was paused or taken.' % ', '.join(unplanned))
        return [outcome if not outcome.ok else _batch.Outcome(outcome.name, skipped=reason)
                for outcome in planned], empty_record()
    held = [run for dummy, run in runs if run.creates and run.plan.domain_state in _batch.RUNNING_STATES]
    holds = dict((id(run), Hold(run.dom, params['name'], _create_action(run).params.get('quiesce'), clock, sleep))
                 for run in held)
    if check_mode:
        record = empty_record()
        for run in held:
            hold = holds[id(run)]
            record['frozen' if hold.freeze else 'paused'].append(hold.name)
            record['thawed' if hold.freeze else 'resumed'].append(hold.name)
            record['seconds'][hold.name] = None
        return _batch.run_each(runs, lambda name, run: run.report(diff), params['parallel']), record

    def take_one(name, run):
        hold = holds.get(id(run))
        if hold is not None and hold.freeze:
            # Frozen already: taken without freezing again, noted as quiesced.
            _create_action(run).params['quiesce'] = dict(hold.freeze, frozen=True)
        elif hold is not None and hold.fallback:
            _unquiesce(run, hold.fallback)
        paused = hold is not None and not hold.freeze
        run.act('running' if paused and run.saves_memory else None)
        return None, []

    def take():
        return _batch.run_each(runs, take_one, params['parallel'])

    taken, record = hold_still(client, [holds[id(run)] for run in held], take, clock=clock, parallel=params['parallel'])
    by_name = dict(runs)
    reported = dict((outcome.name, outcome) for outcome in _batch.run_each(
        [(outcome.name, by_name[outcome.name]) for outcome in taken if outcome.ok],
        lambda name, run: run.report(diff), params['parallel']))
    return [reported.get(outcome.name, outcome) for outcome in taken], record


def _create_action(run):
    return [action for action in run.plan.actions if action.kind == 'create'][0]


def _unquiesce(run, reason):
    """quiesce: auto paused this domain after its freeze failed: its snapshot is taken without freezing."""
    action = _create_action(run)
    action.params['quiesce'] = None
    action.params['flags'] = [flag for flag in action.params['flags'] if flag != 'quiesce']
    run.plan.quiesce = dict(run.plan.quiesce, quiesced=False, reason=reason)
    run.plan.warnings.append("Snapshot '%s' of domain '%s' is crash-consistent, not quiesced: %s It was paused for the "
                             'group instead (quiesce: auto).' % (run.params['name'], run.dom.name(), reason))


def empty_record():
    return {'paused': [], 'resumed': [], 'frozen': [], 'thawed': [], 'seconds': {}}


def hold_still(client, holds, work, clock=time.monotonic, parallel=1):
    """Hold each of ``holds`` (Hold) still, run ``work()``, and let go of everything held here, also when holding or
    the work fails, so that nothing is left paused or frozen. Returns (what work returned, record), where record lists
    the names ``paused``, ``resumed``, ``frozen`` and ``thawed`` (in the order of ``holds``), and the ``seconds`` each
    domain was held.

    Up to ``parallel`` domains are held, and let go, at a time: a freeze waits for the guest to flush its file
    systems, so one after the other the first guest of a group would stay frozen while every other one flushes.
    A freeze is bounded by its quiesce timeout (libvirt's agent timeout for the domain, set back afterwards); a freeze
    that fails is thawed (thaw_after_failed_freeze); quiesce: auto then pauses the domain instead, quiesce: true stops
    the holding. A pause or freeze that fails stops the holding (no domain is held after it; those being held at the
    same time are let go with the rest) and the work is not done. A resume or thaw that fails is tried for the other
    domains all the same, then fails the task naming what is left and how to undo it.
    """
    record = empty_record()
    held = {}  # id(hold) -> (frozen?, since): filled by the workers, as each domain is held
    lock = threading.Lock()
    stopped = threading.Event()
    failure = None
    done = None

    def hold_one(name, hold):
        if stopped.is_set():
            return None, []
        try:
            frozen = _hold(client, hold)
        except SnapshotError:
            stopped.set()
            raise
        with lock:
            held[id(hold)] = (frozen, clock())
        return None, []

    def let_go(name, entry):
        hold, frozen, since = entry
        _let_go(client, hold, frozen)
        return round(clock() - since, 3), []

    try:
        failed = [outcome.error for outcome in _batch.run_each([(hold.name, hold) for hold in holds], hold_one, parallel)
                  if not outcome.ok]
        if failed:
            raise SnapshotError(' '.join(error.msg for error in failed), code=failed[0].code)
        done = work()
    except SnapshotError as exc:
        failure = exc
    finally:
        holding = [(hold,) + held[id(hold)] for hold in holds if id(hold) in held]
        for hold, frozen, dummy in holding:
            record['frozen' if frozen else 'paused'].append(hold.name)
        stuck = []
        for (hold, frozen, dummy), outcome in zip(holding, _batch.run_each(
                [(entry[0].name, entry) for entry in holding], let_go, parallel)):
            if outcome.ok:
                record['thawed' if frozen else 'resumed'].append(hold.name)
                record['seconds'][hold.name] = outcome.result
            else:
                stuck.append((hold.name, frozen, outcome.error.msg))
    if stuck:
        raise SnapshotError('%s %s%s' % (' '.join(message for dummy, dummy, message in stuck), _left_over(stuck),
                                         (' Before that: %s' % failure.msg) if failure else ''), group=record)
    if failure is not None:
        raise SnapshotError('%s Nothing is left paused or frozen: every domain held still for the group (%s) was let go.'
                            % (failure.msg, ', '.join(record['resumed'] + record['thawed']) or 'none'), group=record)
    return done, record


def _hold(client, hold):
    """Freeze or pause one domain; True when frozen."""
    if not hold.freeze:
        client.suspend(hold.dom)
        return False
    client.bound_agent(hold.dom, hold.freeze['timeout'])
    try:
        client.freeze_guest(hold.dom)
        return True
    except SnapshotError as failure:
        reason = failure.msg.rstrip('.')
        try:
            thaw_after_failed_freeze(client, hold.dom, hold.snapshot, failure,
                                     hold.backoff(max(THAW_TIMEOUT, hold.freeze['timeout'])))
        finally:
            client.bound_agent(hold.dom, None)
        if hold.freeze['mode'] != 'auto':
            raise SnapshotError("Could not freeze the file systems of domain '%s' for the group (%s); they are thawed. "
                                'Check qemu-guest-agent in the guest, give it more time with quiesce_timeout, or set '
                                'quiesce: auto, which pauses such a domain for the group instead.'
                                % (hold.name, reason), code=failure.code)
    hold.fallback = 'the guest agent did not freeze its file systems (%s); they were thawed.' % reason
    client.suspend(hold.dom)
    return False


def _let_go(client, hold, frozen):
    """Resume, or thaw (tried again while the agent is busy, for THAW_TIMEOUT seconds at least)."""
    if not frozen:
        client.resume(hold.dom)
        return
    try:
        failure = thaw_within(client, hold.dom, hold.backoff(max(THAW_TIMEOUT, hold.freeze['timeout'])))
    finally:
        client.bound_agent(hold.dom, None)
    if failure is not None:
        raise failure


def _left_over(stuck):
    paused = [name for name, frozen, dummy in stuck if not frozen]
    frozen = [name for name, is_frozen, dummy in stuck if is_frozen]
    parts = []
    if paused:
        parts.append('%s left paused: resume %s with %s.' % (
            ('Domain %s is' if len(paused) == 1 else 'Domains %s are') % ', '.join(paused),
            'it' if len(paused) == 1 else 'them', ', '.join('`virsh resume %s`' % name for name in paused)))
    if frozen:
        parts.append('%s may be left with frozen file systems: thaw %s with %s.' % (
            ('Domain %s' if len(frozen) == 1 else 'Domains %s') % ', '.join(frozen),
            'them' if len(frozen) == 1 else 'theirs', ', '.join('`virsh domfsthaw %s`' % name for name in frozen)))
    return ' '.join(parts)
