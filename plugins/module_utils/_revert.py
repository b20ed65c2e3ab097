# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils file is private to the vmsnap.libvirt collection. It can change at any time,
# without a deprecation period. Do not use it outside this collection.

"""state=reverted (plan_revert) and virt_start_from_snapshot (plan_start), which reverts, starts and waits."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os.path

from ansible_collections.vmsnap.libvirt.plugins.module_utils._create import plan_present
from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError
from ansible_collections.vmsnap.libvirt.plugins.module_utils._model import EXTERNAL, INTERNAL, NO, diff_view
from ansible_collections.vmsnap.libvirt.plugins.module_utils._plan import (
    state_after_power,
    Action,
    MEMORY_STATES,
    Plan,
    require_force,
)


# After a revert to a memory snapshot, or a start from one, the guest runs on with the clock it had when the snapshot
# was taken: behind the host by the time since. The guest agent can set it from the host's (virDomainSetTime, SYNC).
def plan_clock(params, snapshot, state_after, operation='revert'):
    """The action that brings the guest's clock in line after ``snapshot``'s memory is loaded into a guest that is
    ``state_after`` then (None when none is due), and the clock result predicted for it.

    Only a running guest resumed from saved memory needs it: a guest booted from disks reads the host's clock at boot,
    and a paused one has no agent to answer until it runs (its clock is behind when it is resumed later).
    """
    mode = params.get('clock_sync') or 'auto'
    attempted = (mode != 'skip' and state_after == 'running' and snapshot['state'] in MEMORY_STATES
                 and snapshot['memory']['snapshot'] != NO)
    predicted = {'mode': mode, 'attempted': attempted, 'synced': None, 'behind_seconds': None, 'message': None}
    if not attempted:
        return None, predicted
    timeout = params.get('clock_sync_timeout')
    return Action('sync_clock', mode=mode, snapshot=snapshot['name'], timeout=15 if timeout is None else timeout,
                  operation=operation), predicted


def plan_revert(params, domain, existing, host, descendants=()):
    """Revert to an existing snapshot: always a change; fails before acting where the host cannot do it."""
    if existing['state'] == 'crashed':
        # libvirt (9.0, measured on a real guest) reverts such a snapshot as if it were shut off: it restores the disks
        # and starts a fresh QEMU at the reset vector, without the crashed guest's memory.
        raise SnapshotError("Snapshot '%s' of domain '%s' holds a crashed guest, and libvirt does not load a crashed "
                            "guest's memory when it reverts: it would start a fresh QEMU from the snapshot's disks "
                            'instead. Nothing was changed. Examine the crashed state where it is: its disks with '
                            "`qemu-img convert -l snapshot.name=%s` (internal) or the overlay files, its memory from "
                            'the image (`qemu-img snapshot -l` lists it); or dump a crashed guest\'s memory with '
                            '`virsh dump --memory-only` before starting it from a good snapshot.'
                            % (existing['name'], domain['name'], existing['name']))
    if existing['location'] in (EXTERNAL, 'mixed') and not host.get('external_revert'):
        raise SnapshotError("Snapshot '%s' of domain '%s' is external, and this host (libvirt %s) cannot revert to "
                            'external snapshots: its capabilities do not advertise <externalSnapshot/> (libvirt 9.9 '
                            'and later do). Nothing was changed. Revert on a newer libvirt, or merge or delete the '
                            'snapshot instead.' % (existing['name'], domain['name'], host.get('libvirt_version')))
    if existing['location'] == INTERNAL and descendants:
        external = [item['name'] for item in descendants if item['location'] != INTERNAL]
        require_force(params, external, "Reverting to internal snapshot '%s' drops the external overlays below it, "
                                        'which' % existing['name'])
    revert_state = params.get('revert_state') or 'snapshot'
    flags = []
    warnings = []
    if revert_state == 'running':
        flags.append('running')
        state_after = 'running'
    elif revert_state == 'paused':
        flags.append('paused')
        state_after = 'paused'
    else:
        state_after = state_after_power(existing['state'])
        if existing['state'] == 'disk-snapshot' and domain['state'] in MEMORY_STATES:
            warnings.append("Snapshot '%s' holds no memory state, so domain '%s' is shut off after the revert. Set "
                            'revert_state: running to boot it from the reverted disks.'
                            % (existing['name'], domain['name']))
    if params.get('force'):
        flags.append('force')
    if params.get('reset_nvram'):
        flags.append('reset_nvram')
    before = dict(diff_view(existing), domain_state=domain['state'])
    reverted = dict(existing, is_current=True)
    after = dict(diff_view(reverted), domain_state=state_after)
    clock_action, clock = plan_clock(params, existing, state_after)
    params = dict(name=existing['name'], flags=flags)
    external = set(disk['name'] for disk in existing.get('disks') or [] if disk['snapshot'] == EXTERNAL)
    if external:
        # libvirt puts each of these disks on a new overlay: the runner makes it private, as it does a snapshot's own.
        params['fresh_overlays'] = dict((disk['name'], disk['source']) for disk in domain.get('disks') or []
                                        if disk['name'] in external)
    plan = Plan([Action('revert', **params)] + ([clock_action] if clock_action else []), before, after, reverted,
                state_after, warnings=warnings)
    plan.clock = clock
    return plan


# The domain states that count as each state a domain can be started in ('blocked' runs, waiting for a resource).
START_STATES = {'running': ('running', 'blocked'), 'paused': ('paused',)}


class StartPlan(Plan):
    """A Plan that starts a domain from a snapshot; it also predicts the preserved snapshot and the domain's ID."""

    def __init__(self, actions, before, after, snapshot, domain_state, *, preserved, domain_id, warnings=None):
        super(StartPlan, self).__init__(actions, before, after, snapshot, domain_state, warnings=warnings)
        self.preserved = preserved
        self.domain_id = domain_id


def started_from(domain):
    """The domain's start record if it describes the domain as it runs now (the same ID), else None."""
    record = domain.get('start_record')
    if record is None or domain['id'] is None or record['domain_id'] != domain['id']:
        return None
    return record


def _start_view(domain_state, started_name, preserved):
    return {'domain_state': domain_state, 'started_from': started_name, 'preserved': preserved}


def plan_start(params, domain, target, *, preserved, current_name, host, descendants=(), path_exists=os.path.exists):
    """Start the domain from snapshot ``target`` in params['state'], saving its current state first as the snapshot
    params['preserve_current'] when asked.

    ``domain`` is parse_domain's dict (with the domain's ID and start record), ``preserved`` the existing snapshot named
    preserve_current (or None), ``current_name`` the current snapshot (the parent a preserved snapshot gets), and
    ``descendants`` the snapshots below ``target``. A domain that was started from ``target`` and still runs under the
    ID it got then is left as it is (only resumed or paused to match the state asked for); starting any other running
    or paused domain would lose its state, so that needs force or preserve_current.
    """
    name = target['name']
    wanted = params.get('state') or 'running'
    preserve = params.get('preserve_current')
    record = started_from(domain)
    before = _start_view(domain['state'], record['snapshot'] if record else None,
                         diff_view(preserved) if preserve else None)

    if record is not None and record['snapshot'] == name:
        kept = preserved if preserve and record['preserved'] == preserve else None
        plan = None
        if domain['state'] in START_STATES[wanted]:
            plan = StartPlan([], before, before, target, domain['state'], preserved=kept, domain_id=domain['id'])
        elif domain['state'] in START_STATES['running'] + START_STATES['paused']:
            actions = [Action('resume' if wanted == 'running' else 'suspend'), _wait_action(params, name, wanted)]
            plan = StartPlan(actions, before, dict(before, domain_state=wanted), target, wanted, preserved=kept,
                             domain_id=domain['id'])
        if plan is not None:
            # It keeps running on the clock it has: nothing is loaded from the snapshot now.
            plan.clock = plan_clock(params, target, None)[1]
            return plan

    # The clock is set once the domain is in the state asked for and its start is recorded, not right after the revert.
    revert = plan_revert({'revert_state': wanted, 'force': params.get('force'), 'reset_nvram': params.get('reset_nvram'),
                          'clock_sync': 'skip'}, domain, target, host, descendants)
    clock_action, clock = plan_clock(params, target, wanted, 'start from the snapshot')
    if domain['id'] is not None and not params.get('force') and not preserve:
        raise SnapshotError(_would_lose_message(domain, name), domain_state=domain['state'], domain_id=domain['id'])
    actions = []
    started = revert.snapshot
    saved = None
    if preserve:
        if preserved is not None:
            raise SnapshotError(_preserve_exists_message(domain, preserve))
        keep = _plan_preserve(preserve, domain, target, current_name=current_name, host=host, path_exists=path_exists)
        actions.extend(keep.actions)
        # The revert makes the target current; a snapshot taken while the target was current is its child.
        saved = dict(keep.snapshot, is_current=False)
        if current_name == name:
            started = dict(started, children=sorted(started['children'] + [preserve]))
    actions.extend(revert.actions)
    actions.append(_wait_action(params, name, wanted))
    actions.append(Action('record_start', snapshot=name, preserved=preserve))
    if clock_action is not None:
        actions.append(clock_action)
    after = _start_view(wanted, name, diff_view(saved) if preserve else None)
    # libvirt gives the domain a new ID when it starts it, so no ID can be predicted.
    plan = StartPlan(actions, before, after, started, wanted, preserved=saved, domain_id=None, warnings=revert.warnings)
    plan.clock = clock
    return plan


def _wait_action(params, name, wanted):
    timeout = params.get('wait')
    return Action('wait', snapshot=name, states=START_STATES[wanted], timeout=60 if timeout is None else timeout)


def _plan_preserve(preserve, domain, target, *, current_name, host, path_exists):
    """Snapshot the current state (with memory if the domain runs or is paused), as virt_snapshot would by default,
    but internal when ``target`` has internal parts: reverting to it loads its state into the qcow2 images, which an
    external snapshot of the current state would keep as the base of its overlays, so that state would be lost."""
    name = target['name']
    params = {
        'name': preserve,
        'description': "The state of domain '%s' (%s) before vmsnap.libvirt.virt_start_from_snapshot started it from "
                       "snapshot '%s'." % (domain['name'], domain['state'], name),
        'memory': None,
        'location': 'auto' if target['location'] == EXTERNAL else INTERNAL,
    }
    try:
        return plan_present(params, domain=domain, existing=None, existing_xml=None, current_name=current_name, host=host, path_exists=path_exists)
    except SnapshotError as exc:
        raise SnapshotError("Cannot save the current state of domain '%s' as snapshot '%s' (preserve_current), so it "
                            "was not started from snapshot '%s'. Nothing was changed. %s"
                            % (domain['name'], preserve, name, exc.msg), **exc.details)


def _would_lose_message(domain, name):
    history = ''
    record = domain.get('start_record')
    if record is not None and record['snapshot'] == name:
        history = ("It was started from that snapshot before (as ID %s), but it has been restarted since. "
                   % record['domain_id'])
    elif started_from(domain) is not None:
        history = "It was started from snapshot '%s'. " % record['snapshot']
    return ("Domain '%s' is %s (ID %s), so starting it from snapshot '%s' would discard its current state: the memory "
            'of the %s guest and everything written to its disks since that snapshot. %sNothing was changed. Set '
            'preserve_current: NAME to save that state first as a snapshot (with its memory) that can be examined or '
            'reverted to later, or set force: true to discard it.'
            % (domain['name'], domain['state'], domain['id'], name, domain['state'], history))


def _preserve_exists_message(domain, preserve):
    record = domain.get('start_record')
    holds = ''
    if record is not None and record['preserved'] == preserve:
        holds = (" (it holds the state the domain had before it was started from snapshot '%s' earlier)"
                 % record['snapshot'])
    return ("preserve_current names snapshot '%s' of domain '%s', which already exists%s, so the current state cannot "
            "be saved in it. Nothing was changed. Choose a new preserve_current name (for example with the date and "
            "time in it), or delete snapshot '%s' if it is no longer needed. If it already holds the state to keep (an "
            'earlier run saved it and then failed to start the domain), run the task without preserve_current%s.'
            % (preserve, domain['name'], holds, preserve, ' and with force: true' if domain['id'] is not None else ''))
