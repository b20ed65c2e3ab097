# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils file is private to the vmsnap.libvirt collection. It can change at any time,
# without a deprecation period. Do not use it outside this collection.

"""Actions: how a Plan's changes are made, through the client. Decisions stay in _plan."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import time

from ansible_collections.vmsnap.libvirt.plugins.module_utils._backoff import Backoff
from ansible_collections.vmsnap.libvirt.plugins.module_utils._client import AgentAbsent, AgentUnavailable, is_failed_freeze
from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError
from ansible_collections.vmsnap.libvirt.plugins.module_utils._journal import PauseJournal
from ansible_collections.vmsnap.libvirt.plugins.module_utils._model import with_disk_sources, with_quiesced_note, with_start_record

# Overlay and memory files hold the guest's disk and RAM: only their owner may read them.
PRIVATE_FILE_MODE = 0o600
# How long a thaw after a failed freeze is tried, at least, while the agent does not answer: a freeze still under way
# in the guest (a slow freeze hook) freezes its file systems when it ends, and only a thaw after that brings them back.
THAW_TIMEOUT = 30


def missing_snapshot_error(client, dom, name, what):
    """The failure for an operation whose snapshot does not exist, listing the ones that do."""
    names = client.snapshot_names(dom)
    listing = ', '.join(names[:20]) + (' and %d more' % (len(names) - 20) if len(names) > 20 else '')
    return SnapshotError("Snapshot '%s' of domain '%s' does not exist, so there is nothing to %s. The domain has %s. "
                         'Check the name (snapshot names are case-sensitive).'
                         % (name, dom.name(), what, ('these snapshots: ' + listing) if names else 'no snapshots'))


def _make_private(client, paths, done='The snapshot was created'):
    """Tighten the mode of files a snapshot created, where they live on this host. ``done`` says what succeeded."""
    if not client.is_local():
        return
    for path in paths:
        try:
            os.chmod(path, PRIVATE_FILE_MODE)
        except OSError as exc:
            if not os.path.exists(path):
                continue  # a block device overlay or a file libvirt placed elsewhere
            raise SnapshotError("%s, but its file '%s' could not be made private (mode 0600): "
                                '%s. Fix its mode by hand; it holds guest data.' % (done, path, exc))


def execute_or_decide_again(runner, snap, plan, name, decide):
    """Perform ``plan`` on ``snap``, the snapshot called ``name`` as this run found it (None when it did not exist).

    Another run can create or delete the same snapshot between this run's lookup and its action; libvirt then refuses
    ("domain moment NAME already exists", "no domain snapshot with matching name"). When the plan fails and the
    snapshot's existence is no longer what this run found, ``decide(snapshot object or None)`` decides again from what
    exists now, and that plan is performed instead: the task ends as if it had started a moment later, so a request the
    other run already fulfilled changes nothing. Any other failure is raised as it was.

    Returns (the snapshot object after the plan, or None; the plan performed).
    """
    try:
        return runner.execute(snap, plan), plan
    except SnapshotError as failure:
        try:
            now = runner.client.find_snapshot(runner.dom, name)
        except SnapshotError:
            raise failure from None  # the connection failed: the action's own error says more than the lookup's
        if (now is None) == (snap is None):
            raise
    plan = decide(now)
    return (runner.execute(now, plan) if plan.changed else now), plan


def thaw_within(client, dom, backoff):
    """Thaw the guest's file systems, trying again while its agent does not answer, as long as ``backoff`` (a
    Backoff) allows. None once thawed, else the last failure."""
    while True:
        try:
            client.thaw_guest(dom)
            return None
        except SnapshotError as exc:
            if not backoff.wait():
                return exc


def thaw_after_failed_freeze(client, dom, snapshot, failure, backoff):
    """Thaw the guest's file systems after a freeze for ``snapshot`` failed (``failure``), while ``backoff`` allows;
    a thaw that never succeeds fails loudly."""
    last = thaw_within(client, dom, backoff)
    if last is None:
        return
    raise SnapshotError("Domain '%s' may have frozen file systems: its guest agent did not freeze them for snapshot "
                        "'%s' in time (%s), and did not answer a thaw within %g s either (%s). A freeze still under "
                        'way in the guest (a slow freeze hook) freezes them when it ends. Thaw them with `virsh '
                        'domfsthaw %s` as soon as the agent answers (`virsh domfsinfo %s` shows them); no snapshot '
                        'was taken.' % (dom.name(), snapshot, failure.msg.rstrip('.'), backoff.timeout,
                                        last.msg.rstrip('.'), dom.name(), dom.name()), code=failure.code)


class Runner:
    """Performs plans for one domain. ``command`` runs a program without a shell: (argv) -> (rc, stdout, stderr)."""

    def __init__(self, client, dom, *, command=None, merge_timeout=3600, sleep=time.sleep, clock=time.monotonic):
        self.client = client
        self.dom = dom
        self.command = command
        self.merge_timeout = merge_timeout
        self._sleep = sleep
        self._clock = clock
        # What the last sync_clock action found and did (the plan's clock result, made real); None without one.
        self.clock = None
        # What happened while acting that the plan could not foresee: under quiesce: auto, why the freeze failed
        # (the snapshot was then taken without), and the warning that says so.
        self.unquiesced = None
        self.warnings = []

    def execute(self, snap, plan):
        """Perform the plan's actions on ``snap`` (the snapshot object the plan is about, or None).

        Returns the snapshot object named like the plan's resulting snapshot, or None when there is none.
        """
        result = snap
        for action in plan.actions:
            perform = self._PERFORM.get(action.kind)
            if perform is None:  # pragma: no cover - plans only hold the kinds of _PERFORM
                raise SnapshotError('Internal error: unknown action %r.' % action.kind)
            result = perform(self, snap, plan, action.params, result)
        return result

    # Each kind of action: (snapshot the plan is about, the plan, the action's params, the snapshot object so far)
    # -> the snapshot object named like the plan's resulting snapshot, or None.

    def _perform_create(self, snap, plan, params, result):
        if params.get('quiesce') and params['quiesce'].get('frozen'):
            made = self._create_frozen(params)
        elif params.get('quiesce'):
            made = self._create_quiesced(params)
        else:
            made = self._create(params['xml'], params['flags'], params['name'], params.get('journal'))
        _make_private(self.client, params['files'])
        return made if plan.snapshot is not None and params['name'] == plan.snapshot['name'] else result

    def _perform_redefine(self, snap, plan, params, result):
        flags = params.get('flags') or (['redefine', 'current'] if params['current'] else ['redefine'])
        made = self._create(params['xml'], flags, params['name'], params.get('journal'))
        return made if plan.snapshot is not None and params['name'] == plan.snapshot['name'] else result

    def _perform_delete(self, snap, plan, params, result):
        target = self.client.find_snapshot(self.dom, params['name']) if params.get('lookup') else snap
        if target is None:
            return result  # looked up now and gone: another run deleted it since this one read it
        self.client.delete_snapshot(target, params['flags'])
        self._remove_files(params.get('remove_files') or [])
        return None if not params['keeps_snapshot'] and target is result else result

    def _perform_revert(self, snap, plan, params, result):
        self.client.revert_to_snapshot(snap, params['flags'])
        if params.get('fresh_overlays'):
            self._make_fresh_overlays_private(params['fresh_overlays'])
        return result

    def _perform_merge(self, snap, plan, params, result):
        self._merge(snap, params, plan.merged)
        return None

    def _perform_resume(self, snap, plan, params, result):
        if params.get('interrupted_pause'):
            self._resume_left_paused(params['interrupted_pause'])
        else:
            self.client.resume(self.dom)
        return result

    def _perform_suspend(self, snap, plan, params, result):
        self.client.suspend(self.dom)
        return result

    def _perform_wait(self, snap, plan, params, result):
        self._wait_for_state(params)
        return result

    def _perform_record_start(self, snap, plan, params, result):
        self._record_start(params)
        return result

    def _perform_sync_clock(self, snap, plan, params, result):
        self.clock = self._sync_clock(params)
        return result

    def _create(self, xml, flags, name, journal):
        """Create the snapshot; with ``journal`` (the guest runs), noted in the pause journal while libvirt works.

        The entry stays only when the create fails and the daemon no longer answers (it or the connection went away):
        then the next run knows who paused the guest (_journal). A daemon that answers resumes what its job paused.
        """
        if not journal:
            return self.client.create_snapshot(self.dom, xml, flags, name)
        entries = PauseJournal.for_domain(self.client, self.dom)
        entries.begin(self.dom.ID(), name)
        try:
            made = self.client.create_snapshot(self.dom, xml, flags, name)
        except SnapshotError as failure:
            try:
                self.client.domain_state(self.dom)
            except SnapshotError:
                raise failure from None  # the daemon is gone: the entry stays for the run after its return
            entries.end()
            raise
        entries.end()
        entries.forget(entries.left_by_ended_runs(self.dom.ID()))
        return made

    def _create_quiesced(self, params):
        """Create with the guest's file systems frozen (libvirt's QUIESCE: libvirt freezes, takes the disk-only
        snapshot and thaws), libvirt waiting at most params['quiesce']['timeout'] seconds for each answer of the agent.

        A note in the domain's metadata, copied by libvirt into the snapshot, records that it was quiesced (_model).
        libvirt thaws only a freeze it saw succeed; after a failed freeze the file systems are thawed here (a freeze
        that ran out of time can still happen in the guest), and a thaw that does not succeed in time fails loudly.
        quiesce: auto then takes the snapshot without freezing, with a warning.
        """
        try:
            made = self._freeze_and_create(params)
        except SnapshotError:
            self._end_quiesce(quietly=True)  # the failure says more than a failed clean-up would
            raise
        self._end_quiesce()
        return made

    def _freeze_and_create(self, params):
        name, quiesce = params['name'], params['quiesce']
        self._note_quiesced(name)
        self.client.bound_agent(self.dom, quiesce['timeout'])
        try:
            return self._create(params['xml'], params['flags'], name, params.get('journal'))
        except SnapshotError as failure:
            if not is_failed_freeze(failure):
                raise
            thaw_after_failed_freeze(self.client, self.dom, name, failure,
                                     self._backoff(max(THAW_TIMEOUT, quiesce['timeout']), first=0.5, cap=2.0))
            reason = failure.msg.rstrip('.')
            if quiesce['mode'] != 'auto':
                raise SnapshotError("Snapshot '%s' of domain '%s' was not taken: the guest agent did not freeze its "
                                    'file systems (%s). They are thawed; nothing was changed. Check qemu-guest-agent '
                                    'in the guest (its freeze hooks, `journalctl -t qemu-ga`), give it more time with '
                                    'quiesce_timeout, or set quiesce: auto to take a crash-consistent snapshot when '
                                    'the freeze fails.' % (name, self.dom.name(), reason), code=failure.code)
        self._note_quiesced(None)
        self.unquiesced = 'the guest agent did not freeze its file systems (%s); they were thawed.' % reason
        self.warnings.append("Snapshot '%s' of domain '%s' is crash-consistent, not quiesced: the guest agent did not "
                             'freeze its file systems (%s); they were thawed, and the snapshot was taken without '
                             'freezing (quiesce: auto).' % (name, self.dom.name(), reason))
        return self._create(params['xml'], [flag for flag in params['flags'] if flag != 'quiesce'], name,
                            params.get('journal'))

    def _end_quiesce(self, quietly=False):
        """libvirt waits for the agent as long as it takes again, and the quiesce note goes."""
        try:
            self.client.bound_agent(self.dom, None)
            self._note_quiesced(None)
        except SnapshotError:
            if not quietly:
                raise

    def _create_frozen(self, params):
        """Create while the group holds the guest's file systems frozen (_group): noted as quiesced, without
        freezing again."""
        self._note_quiesced(params['name'])
        try:
            made = self._create(params['xml'], [flag for flag in params['flags'] if flag != 'quiesce'],
                                params['name'], params.get('journal'))
        except SnapshotError:
            self._end_quiesce(quietly=True)
            raise
        self._note_quiesced(None)
        return made

    def _note_quiesced(self, name):
        """Set (``name``) or clear (None) the note that the snapshot being taken is quiesced."""
        self.client.set_domain_metadata(self.dom, with_quiesced_note(self.client.domain_metadata(self.dom), name))

    def _make_fresh_overlays_private(self, sources_before):
        """A revert to an external snapshot puts its disks on new overlays (<image>.<epoch seconds>) that libvirt
        creates with its daemon's umask (mode 0644 for a shut-off domain, measured on libvirt 11.3). Make the images
        the disks use now private, where they changed; ``sources_before`` maps each disk to its image before."""
        domain = self.client.read_domain(self.dom)
        _make_private(self.client, [disk['source'] for disk in domain['disks']
                                    if disk['name'] in sources_before and disk['source']
                                    and disk['source'] != sources_before[disk['name']]],
                      done='The domain was reverted')

    def _resume_left_paused(self, reason):
        """Resume a guest that a libvirt job left paused, while it still is: a job of another run, which resumes the
        guest itself, may have paused it and ended meanwhile."""
        if not self.client.interrupted_pause(self.dom, reason in ('user', 'unknown')):
            return
        try:
            self.client.resume(self.dom)
        except SnapshotError:
            if self.client.domain_state(self.dom) != 'running':
                raise

    # -- start from a snapshot ----------------------------------------------------------------------------------

    def _wait_for_state(self, params):
        """Poll the domain's state until it is one of params['states'], for at most params['timeout'] seconds."""
        backoff = self._backoff(params['timeout'], first=0.05)
        while True:
            state = self.client.domain_state(self.dom)
            if state in params['states']:
                return
            if not backoff.wait():
                raise SnapshotError("Domain '%s' was started from snapshot '%s' but is %s, not %s, after waiting %s s "
                                    '(wait). Read its log (/var/log/libvirt/qemu/%s.log on the hypervisor) to see why, '
                                    'then run the task again, with a longer wait if it was only slow.'
                                    % (self.dom.name(), params['snapshot'], state, params['states'][0],
                                       params['timeout'], self.dom.name()))

    def _sync_clock(self, params):
        """Set the clock of a guest just resumed from saved memory from the host's, through the guest agent, waiting
        up to params['timeout'] seconds for the agent to answer. With mode 'required' a clock left unset fails the
        task (the revert or start itself is done and stays done); with 'auto' the result says why it was not set."""
        backoff = self._backoff(params['timeout'], first=0.25, cap=2.0)
        while True:
            try:
                behind = self.client.sync_guest_clock(self.dom)
                return {'mode': params['mode'], 'attempted': True, 'synced': True, 'behind_seconds': round(behind, 3),
                        'message': None}
            except AgentAbsent as exc:
                reason = exc.msg
                break
            except AgentUnavailable as exc:
                reason = exc.msg
                if not backoff.wait():
                    break
        message = ("The clock of domain '%s' was not set: %s The guest runs with the clock it had when snapshot '%s' "
                   'was taken. Set it with `virsh domtime %s --sync` once its agent answers.'
                   % (self.dom.name(), reason.rstrip('.') + '.', params['snapshot'], self.dom.name()))
        clock = {'mode': params['mode'], 'attempted': True, 'synced': False, 'behind_seconds': None, 'message': message}
        if params['mode'] == 'required':
            raise SnapshotError('%s The %s itself succeeded; clock_sync: required made the task fail (clock_sync: '
                                'auto only warns).' % (message, params['operation']), changed=True, clock=clock)
        return clock

    def _backoff(self, timeout, first, cap=1.0):
        return Backoff(timeout=timeout, first=first, cap=cap, clock=self._clock, sleep=self._sleep)

    def _record_start(self, params):
        """Record in the running domain's metadata which snapshot it was started from, under which ID."""
        metadata = with_start_record(self.client.domain_metadata(self.dom), params['snapshot'],
                                     self.client.domain_id(self.dom), params['preserved'])
        self.client.set_domain_metadata(self.dom, metadata)

    # -- merge ---------------------------------------------------------------------------------------------------

    def _merge(self, snap, params, merged):
        # A disk an interrupted merge already pivoted ('done') needs nothing more; one whose commit it started
        # ('resume') only the pivot.
        pending = [(disk, merge) for disk, merge in zip(params['disks'], merged) if not disk.get('done')]
        if params['running']:
            for disk, merge in pending:
                if not disk.get('resume'):
                    self.client.block_commit(self.dom, merge['disk'], merge['base'])
                merge['job_size'] = self._pivot_when_ready(merge['disk'])
        elif pending:
            for dummy, merge in pending:
                merge['job_size'] = self._commit_offline(merge)
            inactive = self.client.domain_xml(self.dom, inactive=True)
            sources = dict((merge['disk'], (merge['base'], merge['base_format'])) for dummy, merge in pending)
            self.client.define_domain(with_disk_sources(inactive, sources), self.dom.name())
        # Only now, with every disk on its base, are the snapshot's files unused: remove them before its record, so
        # that a run interrupted in between leaves a merge that the next run recognises as done.
        self._remove_files(params['remove_files'])
        self.client.delete_snapshot(snap, params['drop_flags'])

    def _remove_files(self, paths):
        """Remove files a deleted snapshot leaves behind, where they live on this host."""
        if not self.client.is_local():
            return
        for path in paths:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass  # never created, or removed by another run that deleted the same snapshot

    def _pivot_when_ready(self, disk):
        backoff = self._backoff(self.merge_timeout, first=0.02)
        while True:
            job = self.client.block_job(self.dom, disk)
            if job is None:
                raise SnapshotError("The merge of disk %s of domain '%s' ended before it could be completed; the disk "
                                    'still runs on its overlay. Check the domain log, then run the task again.'
                                    % (disk, self.dom.name()))
            if job['cur'] == job['end'] and self.client.pivot(self.dom, disk):
                return job['end']
            if not backoff.wait():
                self.client.abort_block_job(self.dom, disk)
                raise SnapshotError("The merge of disk %s of domain '%s' did not finish within merge_timeout (%s s) and "
                                    'was stopped; the disk still runs on its overlay and nothing was lost. Raise '
                                    'merge_timeout and run the task again.' % (disk, self.dom.name(), self.merge_timeout))

    def _commit_offline(self, merge):
        rc, dummy_out, err = self.command(['commit', '-b', merge['base'], merge['top']])
        if rc != 0:
            raise SnapshotError("qemu-img could not merge '%s' into '%s' for disk %s of domain '%s': %s. The domain "
                                'definition was not changed.' % (merge['top'], merge['base'], merge['disk'],
                                                                 self.dom.name(), (err or '').strip()))
        return None  # qemu-img does not report how much it wrote

    _PERFORM = {
        'create': _perform_create,
        'redefine': _perform_redefine,
        'delete': _perform_delete,
        'revert': _perform_revert,
        'merge': _perform_merge,
        'resume': _perform_resume,
        'suspend': _perform_suspend,
        'wait': _perform_wait,
        'record_start': _perform_record_start,
        'sync_clock': _perform_sync_clock,
    }
