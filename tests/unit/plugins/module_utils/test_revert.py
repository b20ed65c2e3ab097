# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Unit tests of _revert.plan_start (virt_start_from_snapshot): the decisions, as tables. Nothing here touches libvirt."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.vmsnap.libvirt.plugins.module_utils import _model, _revert
from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError

HOST_9_0 = {'uri': 'qemu:///system', 'libvirt_version': '9.0.0', 'external_revert': False, 'external_delete': True}
HOST_11_3 = {'uri': 'qemu:///system', 'libvirt_version': '11.3.0', 'external_revert': True, 'external_delete': True}

QCOW2 = ("<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
         "<source file='/images/web01.qcow2'/><target dev='vda'/></disk>")
RAW = ("<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
       "<source file='/images/web01.img'/><target dev='vda'/></disk>")
INTERNAL_DISKS = [{'name': 'vda', 'snapshot': 'internal', 'file': None}]
NO_MEMORY = {'snapshot': 'no', 'file': None}
INTERNAL_MEMORY = {'snapshot': 'internal', 'file': None}


def nothing_exists(path):
    return False


def record(snapshot, domain_id, preserved=None):
    """The start record element as libvirt writes it into the live domain XML."""
    element = ("<vmsnap:started-from snapshot='%s' domain-id='%s'%s/>"
               % (snapshot, domain_id, " preserved='%s'" % preserved if preserved else ''))
    return ("<metadata><vmsnap:vmsnap xmlns:vmsnap='%s'>%s</vmsnap:vmsnap></metadata>"
            % (_model.VMSNAP_NAMESPACE, element))


def domain(state='shutoff', domain_id=None, metadata='', disk=QCOW2):
    """A domain as parse_domain gives it, from XML, so the plans see exactly the client's shape."""
    id_attribute = " id='%d'" % domain_id if domain_id is not None else ''
    return _model.parse_domain("<domain type='qemu'%s><name>web01</name>%s<devices>%s</devices></domain>"
                               % (id_attribute, metadata, disk), state)


def snapshot(name='good', state='shutoff', location='internal', children=(), parent=None, is_current=False):
    memory = INTERNAL_MEMORY if state in ('running', 'paused') else NO_MEMORY
    return {
        'name': name, 'domain': 'web01', 'description': None, 'state': state, 'creation_time': 1700000000,
        'creation_time_iso': '2023-11-14T22:13:20Z', 'parent': parent, 'children': list(children),
        'is_current': is_current, 'location': location,
        'memory': memory if location == 'internal' else {'snapshot': 'external', 'file': '/images/web01.mem'},
        'disks': INTERNAL_DISKS if location == 'internal' else
        [{'name': 'vda', 'snapshot': 'external', 'file': '/images/web01.good'}],
    }


def options(**given):
    """The module's parameters with its defaults."""
    params = dict(name='good', state='running', force=False, preserve_current=None, wait=60, reset_nvram=False)
    params.update(given)
    return params


def plan(params, dom, target=None, preserved=None, current_name=None, host=None, descendants=()):
    return _revert.plan_start(params, dom, target or snapshot(), preserved=preserved, current_name=current_name, host=host or HOST_9_0, descendants=descendants,
                              path_exists=nothing_exists)


def refusal(params, dom, **kwargs):
    with pytest.raises(SnapshotError) as caught:
        plan(params, dom, **kwargs)
    return caught.value


def kinds(a_plan):
    return [action.kind for action in a_plan.actions]


def action(a_plan, kind):
    found = [item for item in a_plan.actions if item.kind == kind]
    assert len(found) == 1, a_plan.actions
    return found[0].params


# -- starting a shut-off domain ---------------------------------------------------------------------------------------

@pytest.mark.parametrize('params, flags, states', [
    (options(), ['running'], ('running', 'blocked')),
    (options(state='paused'), ['paused'], ('paused',)),
    (options(reset_nvram=True), ['running', 'reset_nvram'], ('running', 'blocked')),
    # force is not needed for a shut-off domain, but passes libvirt's REVERT_FORCE when given
    (options(force=True), ['running', 'force'], ('running', 'blocked')),
])
def test_a_shut_off_domain_is_started(params, flags, states):
    started = plan(params, domain())
    assert kinds(started) == ['revert', 'wait', 'record_start']
    assert action(started, 'revert') == {'name': 'good', 'flags': flags}
    assert action(started, 'wait') == {'snapshot': 'good', 'states': states, 'timeout': 60}
    assert action(started, 'record_start') == {'snapshot': 'good', 'preserved': None}
    assert started.changed
    assert started.domain_state == params['state']
    assert started.domain_id is None  # libvirt assigns it when it starts the domain
    assert started.snapshot == dict(snapshot(), is_current=True)
    assert started.preserved is None
    assert started.before == {'domain_state': 'shutoff', 'started_from': None, 'preserved': None}
    assert started.after == {'domain_state': params['state'], 'started_from': 'good', 'preserved': None}


def test_wait_is_passed_to_the_wait_action():
    assert action(plan(options(wait=0), domain()), 'wait')['timeout'] == 0
    assert action(plan(options(wait=2.5), domain()), 'wait')['timeout'] == 2.5


def test_a_shut_off_domain_with_preserve_current_takes_a_disk_only_snapshot_first():
    started = plan(options(preserve_current='before'), domain(), current_name='other')
    assert kinds(started) == ['create', 'revert', 'wait', 'record_start']
    create = action(started, 'create')
    assert create['name'] == 'before'
    assert "<memory snapshot=\"no\"/>" in create['xml']
    assert 'vmsnap.libvirt.virt_start_from_snapshot started it from snapshot' in create['xml']
    assert action(started, 'record_start') == {'snapshot': 'good', 'preserved': 'before'}
    assert started.preserved['name'] == 'before'
    assert started.preserved['state'] == 'shutoff'
    assert started.preserved['memory'] == NO_MEMORY
    assert started.preserved['parent'] == 'other'
    assert started.preserved['is_current'] is False  # the start makes 'good' current
    # 'good' was not current, so the new snapshot is not its child
    assert started.snapshot['children'] == []


# -- a running or paused domain: its state would be lost --------------------------------------------------------------

@pytest.mark.parametrize('dom, fragments', [
    (domain('running', 7), ["Domain 'web01' is running (ID 7)", "starting it from snapshot 'good' would discard",
                            'the memory of the running guest', 'Nothing was changed', 'preserve_current: NAME',
                            'force: true']),
    (domain('paused', 7), ["Domain 'web01' is paused (ID 7)", 'the memory of the paused guest']),
    # a crashed domain whose QEMU process was kept (on_crash preserve) has state worth keeping too
    (domain('crashed', 7), ["Domain 'web01' is crashed (ID 7)"]),
    (domain('running', 8, record('good', 7)), ['It was started from that snapshot before (as ID 7), but it has been '
                                               'restarted since.']),
    (domain('running', 7, record('other', 7)), ["It was started from snapshot 'other'."]),
    # the record of another run of the domain says nothing about this one
    (domain('running', 8, record('other', 7)), ['Nothing was changed']),
])
def test_a_running_domain_needs_force_or_preserve_current(dom, fragments):
    refused = refusal(options(), dom)
    for fragment in fragments:
        assert fragment in refused.msg
    assert refused.details == {'domain_state': dom['state'], 'domain_id': dom['id']}
    assert 'It was started from snapshot' not in refused.msg or dom['start_record']['domain_id'] == dom['id']


@pytest.mark.parametrize('state, wanted, flags', [
    ('running', 'running', ['running', 'force']),
    ('paused', 'running', ['running', 'force']),
    ('running', 'paused', ['paused', 'force']),
    ('crashed', 'running', ['running', 'force']),
])
def test_force_starts_a_running_domain_from_the_snapshot(state, wanted, flags):
    started = plan(options(force=True, state=wanted), domain(state, 7))
    assert kinds(started) == ['revert', 'wait', 'record_start']
    assert action(started, 'revert')['flags'] == flags
    assert started.domain_id is None
    assert started.before['domain_state'] == state
    assert started.after['domain_state'] == wanted


def test_preserve_current_saves_a_running_domain_with_memory_then_starts_it():
    target = snapshot(is_current=True, children=['later'])
    started = plan(options(preserve_current='crash-1'), domain('running', 7), target=target, current_name='good')
    assert kinds(started) == ['create', 'revert', 'wait', 'record_start']
    assert action(started, 'create')['flags'] == ['atomic']
    assert "<memory snapshot=\"internal\"/>" in action(started, 'create')['xml']
    # the state is saved, so libvirt's REVERT_FORCE is not asked for
    assert action(started, 'revert')['flags'] == ['running']
    assert started.preserved == {
        'name': 'crash-1', 'domain': 'web01',
        'description': "The state of domain 'web01' (running) before vmsnap.libvirt.virt_start_from_snapshot started "
                       "it from snapshot 'good'.",
        'state': 'running', 'creation_time': None, 'creation_time_iso': None, 'parent': 'good', 'children': [],
        'is_current': False, 'location': 'internal', 'memory': INTERNAL_MEMORY, 'disks': INTERNAL_DISKS,
        'consistency': 'memory',
    }
    # taken while 'good' was current, the preserved snapshot becomes its child
    assert started.snapshot == dict(target, is_current=True, children=['crash-1', 'later'])
    assert started.before == {'domain_state': 'running', 'started_from': None, 'preserved': {'exists': False}}
    assert started.after == {'domain_state': 'running', 'started_from': 'good',
                             'preserved': _model.diff_view(started.preserved)}


def test_preserve_current_on_a_host_with_external_revert_takes_an_external_snapshot():
    started = plan(options(preserve_current='crash-1'), domain('running', 7), target=snapshot(location='external'),
                   host=HOST_11_3)
    assert started.preserved['location'] == 'external'
    assert started.preserved['memory'] == {'snapshot': 'external', 'file': '/images/web01.crash-1.mem'}
    assert action(started, 'create')['files'] == ['/images/web01.crash-1', '/images/web01.crash-1.mem']


@pytest.mark.parametrize('host', [HOST_9_0, HOST_11_3])
def test_preserve_current_before_a_start_from_an_internal_snapshot_is_internal_on_every_host(host):
    # The revert loads 'good' into the qcow2 image; an external crash-1 would keep that image as the base of its
    # overlay and lose the state it saved (measured on libvirt 11.3, where location=auto prefers external).
    started = plan(options(preserve_current='crash-1'), domain('running', 7), host=host)
    assert started.preserved['location'] == 'internal'
    assert started.preserved['memory'] == {'snapshot': 'internal', 'file': None}
    assert action(started, 'create')['files'] == []
    assert kinds(started)[:2] == ['create', 'revert']


def test_preserve_current_that_cannot_be_taken_fails_before_anything():
    refused = refusal(options(preserve_current='crash-1'), domain('running', 7, disk=RAW))
    assert refused.msg.startswith("Cannot save the current state of domain 'web01' as snapshot 'crash-1' "
                                  "(preserve_current), so it was not started from snapshot 'good'. Nothing was "
                                  "changed. Cannot snapshot domain 'web01': disk 'vda' (raw")


@pytest.mark.parametrize('dom, fragments, absent', [
    (domain('running', 8, record('good', 7, 'crash-1')),
     ["preserve_current names snapshot 'crash-1' of domain 'web01', which already exists (it holds the state the "
      "domain had before it was started from snapshot 'good' earlier)", 'Nothing was changed',
      'Choose a new preserve_current name', 'without preserve_current and with force: true'], []),
    (domain('running', 7), ['which already exists, so the current state', 'and with force: true'], ['it holds']),
    # a shut-off domain needs no force
    (domain(), ['run the task without preserve_current.'], ['force']),
])
def test_preserve_current_that_exists_is_never_overwritten(dom, fragments, absent):
    refused = refusal(options(preserve_current='crash-1'), dom, preserved=snapshot('crash-1', state=dom['state']))
    for fragment in fragments:
        assert fragment in refused.msg
    for fragment in absent:
        assert fragment not in refused.msg


# -- idempotency: the domain this module started from the snapshot ----------------------------------------------------

@pytest.mark.parametrize('state, wanted', [
    ('running', 'running'),
    ('blocked', 'running'),
    ('paused', 'paused'),
])
def test_the_domain_started_from_the_snapshot_is_left_alone(state, wanted):
    target = snapshot(is_current=True)
    # force does not restart a domain that already is what was asked for
    for params in (options(state=wanted), options(state=wanted, force=True)):
        kept = plan(params, domain(state, 7, record('good', 7)), target=target)
        assert kept.actions == []
        assert not kept.changed
        assert kept.domain_state == state
        assert kept.domain_id == 7
        assert kept.snapshot == target
        assert kept.preserved is None
        assert kept.before == kept.after == {'domain_state': state, 'started_from': 'good', 'preserved': None}


def test_the_snapshot_preserved_when_the_domain_was_started_is_reported_again():
    preserved = snapshot('crash-1', state='running', parent='good')
    dom = domain('running', 7, record('good', 7, 'crash-1'))
    kept = plan(options(preserve_current='crash-1'), dom, preserved=preserved)
    assert kept.actions == []
    assert kept.preserved == preserved
    assert kept.before == kept.after == {'domain_state': 'running', 'started_from': 'good',
                                         'preserved': _model.diff_view(preserved)}
    # another preserve_current name: nothing to save, since nothing is started; nothing was preserved into it
    other = plan(options(preserve_current='crash-2'), dom)
    assert other.actions == []
    assert other.preserved is None
    assert other.after['preserved'] == {'exists': False}


@pytest.mark.parametrize('state, wanted, kind', [
    ('paused', 'running', 'resume'),
    ('running', 'paused', 'suspend'),
    ('blocked', 'paused', 'suspend'),
])
def test_the_domain_started_from_the_snapshot_is_only_resumed_or_paused(state, wanted, kind):
    changed = plan(options(state=wanted, preserve_current='crash-1'), domain(state, 7, record('good', 7)))
    assert kinds(changed) == [kind, 'wait']
    assert action(changed, 'wait')['states'] == _revert.START_STATES[wanted]
    assert changed.domain_state == wanted
    assert changed.domain_id == 7  # resuming or pausing keeps the QEMU process
    assert changed.before['domain_state'] == state
    assert changed.after == dict(changed.before, domain_state=wanted)


@pytest.mark.parametrize('dom', [
    domain('running', 8, record('good', 7)),           # restarted since
    domain('running', 7, record('other', 7)),          # started from another snapshot
    domain('pmsuspended', 7, record('good', 7)),       # suspended by the guest: neither running nor paused
    domain('shutoff', None, record('good', 7)),        # a stale record cannot be in a live XML, but must not count
])
def test_a_record_that_does_not_match_is_a_new_start(dom):
    started = plan(options(force=True), dom)
    assert kinds(started) == ['revert', 'wait', 'record_start']


def test_the_first_run_and_its_repeat_agree():
    """What the first run predicts the domain will be is what the repeat reads, and the repeat changes nothing."""
    first = plan(options(preserve_current='crash-1'), domain('running', 7), current_name='good',
                 target=snapshot(is_current=True))
    repeat = plan(options(preserve_current='crash-1'), domain('running', 9, record('good', 9, 'crash-1')),
                  target=first.snapshot, preserved=first.preserved)
    assert repeat.actions == []
    assert repeat.snapshot == first.snapshot
    assert repeat.preserved == first.preserved
    assert repeat.before == repeat.after == first.after


# -- what the host can do ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize('dom, params', [
    (domain(), options()),
    (domain('running', 7), options(force=True)),
    (domain('running', 7), options(preserve_current='crash-1')),
    (domain('running', 7), options()),  # the more basic refusal comes first
])
def test_an_external_snapshot_is_refused_where_the_host_cannot_revert_it(dom, params):
    refused = refusal(params, dom, target=snapshot(location='external'))
    assert "Snapshot 'good' of domain 'web01' is external, and this host (libvirt 9.0.0) cannot revert" in refused.msg
    assert 'Nothing was changed' in refused.msg


def test_an_external_snapshot_is_started_where_the_host_can_revert_it():
    started = plan(options(), domain(), target=snapshot(location='external'), host=HOST_11_3)
    assert kinds(started) == ['revert', 'wait', 'record_start']


def test_the_revert_checks_of_virt_snapshot_apply():
    """Starting from an internal snapshot drops external overlays below it: the shared revert plan asks for force."""
    target = snapshot(children=['ext'])
    below = [snapshot('ext', location='external', parent='good')]
    refused = refusal(options(), domain(), target=target, descendants=below)
    assert 'ext' in refused.msg and 'force: true' in refused.msg
    assert kinds(plan(options(force=True), domain(), target=target, descendants=below)) == \
        ['revert', 'wait', 'record_start']


# -- state=reverted ---------------------------------------------------------------------------------------------------

def reverted(**options):
    params = dict(name='snap', revert_state='snapshot', force=False)
    params.update(options)
    return params


def recorded(state, location='internal', memory='internal'):
    xml = ('<domainsnapshot><name>snap</name><state>%s</state><memory snapshot="%s"/>'
           '<disks><disk name="vda" snapshot="%s"/></disks></domainsnapshot>' % (state, memory, location))
    return _model.parse_snapshot(xml, 'web01', is_current=False)


# clock: whether the guest's clock is set after the revert (a running guest resumed from saved memory).
@pytest.mark.parametrize('revert_state, snapshot_state, flags, state_after, clock', [
    ('snapshot', 'running', [], 'running', True),
    ('snapshot', 'paused', [], 'paused', False),
    ('snapshot', 'shutoff', [], 'shutoff', False),
    ('snapshot', 'disk-snapshot', [], 'shutoff', False),
    ('running', 'shutoff', ['running'], 'running', False),
    ('running', 'paused', ['running'], 'running', True),
    ('paused', 'running', ['paused'], 'paused', False),
    ('paused', 'shutoff', ['paused'], 'paused', False),
])
def test_revert_flags_and_predicted_domain_state(revert_state, snapshot_state, flags, state_after, clock):
    snapshot = recorded(snapshot_state)
    plan = _revert.plan_revert(reverted(revert_state=revert_state), {'name': 'web01', 'state': 'shutoff'}, snapshot,
                               HOST_9_0)
    assert [(action.kind, action.params['name'], action.params['flags']) for action in plan.actions[:1]] == \
        [('revert', 'snap', flags)]
    assert [action.kind for action in plan.actions[1:]] == (['sync_clock'] if clock else [])
    assert (plan.clock['attempted'], plan.clock['synced']) == (clock, None)
    assert plan.domain_state == state_after
    assert plan.snapshot == dict(snapshot, is_current=True)
    assert plan.before == dict(_model.diff_view(snapshot), domain_state='shutoff')
    assert plan.after == dict(_model.diff_view(snapshot), is_current=True, domain_state=state_after)
    assert plan.changed is True


def test_revert_force():
    plan = _revert.plan_revert(reverted(force=True, revert_state='running'), {'name': 'web01', 'state': 'running'},
                               recorded('running'), HOST_9_0)
    assert plan.actions[0].params['flags'] == ['running', 'force']


@pytest.mark.parametrize('location, memory', [('external', 'external'), ('external', 'no'), ('mixed', 'internal')])
def test_revert_to_external_refused_where_the_host_cannot(location, memory):
    disk = 'external' if location == 'mixed' else location
    snapshot = recorded('running', disk, memory)
    with pytest.raises(SnapshotError) as caught:
        _revert.plan_revert(reverted(), {'name': 'web01', 'state': 'running'}, snapshot, HOST_9_0)
    assert caught.value.msg.startswith(
        "Snapshot 'snap' of domain 'web01' is external, and this host (libvirt 9.0.0) cannot revert to external "
        'snapshots: its capabilities do not advertise <externalSnapshot/>')
    assert 'Nothing was changed.' in caught.value.msg


def test_revert_to_external_where_the_host_can():
    plan = _revert.plan_revert(reverted(), {'name': 'web01', 'state': 'running'},
                               recorded('running', 'external', 'external'), HOST_11_3)
    assert [action.kind for action in plan.actions] == ['revert', 'sync_clock']
    assert plan.domain_state == 'running'


@pytest.mark.parametrize('domain_state, warned', [('running', True), ('paused', True), ('shutoff', False)])
def test_revert_to_a_disk_snapshot_warns_that_a_running_domain_ends_shut_off(domain_state, warned):
    plan = _revert.plan_revert(reverted(), {'name': 'web01', 'state': domain_state},
                               recorded('disk-snapshot', 'external', 'no'), HOST_11_3)
    expected = ["Snapshot 'snap' holds no memory state, so domain 'web01' is shut off after the revert. Set "
                'revert_state: running to boot it from the reverted disks.'] if warned else []
    assert plan.warnings == expected
    assert plan.domain_state == 'shutoff'


def test_revert_to_a_disk_snapshot_with_revert_state_running_does_not_warn():
    plan = _revert.plan_revert(reverted(revert_state='running'), {'name': 'web01', 'state': 'running'},
                               recorded('disk-snapshot', 'external', 'no'), HOST_11_3)
    assert (plan.warnings, plan.domain_state) == ([], 'running')


# -- the guest's clock after a start from saved memory ---------------------------------------------------------------

@pytest.mark.parametrize('state, wanted, clock_sync, synced', [
    ('running', 'running', None, True),        # default auto: set once the domain runs and its start is recorded
    ('running', 'running', 'required', True),
    ('running', 'running', 'skip', False),
    ('paused', 'running', None, True),
    ('running', 'paused', None, False),        # no agent answers in a paused guest
    ('shutoff', 'running', None, False),       # booted from disks: the clock comes from the host at boot
])
def test_the_clock_is_set_after_a_start_from_saved_memory(state, wanted, clock_sync, synced):
    given = {'state': wanted}
    if clock_sync:
        given['clock_sync'] = clock_sync
    started = plan(options(**given), domain(), target=snapshot(state=state))
    tail = ['wait', 'record_start'] + (['sync_clock'] if synced else [])
    assert kinds(started)[-len(tail):] == tail
    assert started.clock == {'mode': clock_sync or 'auto', 'attempted': synced, 'synced': None,
                             'behind_seconds': None, 'message': None}
    if synced:
        assert action(started, 'sync_clock') == {'mode': clock_sync or 'auto', 'snapshot': 'good', 'timeout': 15,
                                                 'operation': 'start from the snapshot'}


def test_a_revert_to_a_crashed_guests_snapshot_is_refused_before_anything_changes():
    """libvirt reverts it as if shut off: a fresh QEMU from the disks, without the crashed guest's memory."""
    with pytest.raises(SnapshotError) as caught:
        _revert.plan_revert(reverted(revert_state='paused'), {'name': 'web01', 'state': 'running'}, recorded('crashed'),
                            HOST_9_0)
    assert "Snapshot 'snap' of domain 'web01' holds a crashed guest" in caught.value.msg
    assert 'Nothing was changed' in caught.value.msg and 'snapshot.name=snap' in caught.value.msg
