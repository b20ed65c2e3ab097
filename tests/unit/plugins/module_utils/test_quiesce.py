# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""quiesce: true (quiesced or nothing changes), auto (quiesced where the agent answers, else crash-consistent with a
warning) and false; the bounded freeze, the thaw after a failed one, and the consistency every snapshot reports."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import libvirt
import pytest

from ansible_collections.vmsnap.libvirt.plugins.module_utils import _actions, _client, _create, _model, _plan
from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError
from ansible_collections.vmsnap.libvirt.plugins.module_utils._options import quiesce_mode

DOMAIN_XML = ("<domain><name>db01</name><devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
              "<source file='/images/db01.qcow2'/><target dev='vda'/></disk></devices></domain>")
HOST = {'uri': 'qemu:///system', 'libvirt_version': '9.0.0', 'external_revert': False, 'external_delete': True}


def params(**options):
    values = dict(name='nightly', description=None, memory=False, location='external', memory_file=None, disks=None,
                  quiesce='false', quiesce_timeout=20.0, live=False)
    values.update(options)
    return values


def domain(state='running', agent_silence=None):
    return dict(_model.parse_domain(DOMAIN_XML, state), agent_silence=agent_silence)


def plan(options, dom):
    return _create.plan_present(options, domain=dom, existing=None, existing_xml=None, current_name=None, host=HOST,
                                path_exists=lambda path: False)


def refusal(options, dom):
    with pytest.raises(SnapshotError) as caught:
        plan(options, dom)
    return caught.value.msg


@pytest.mark.parametrize('value, mode', [
    (True, 'true'), ('true', 'true'), (False, 'false'), ('false', 'false'), (None, 'false'), ('auto', 'auto'),
])
def test_quiesce_mode(value, mode):
    assert quiesce_mode({'quiesce': value}) == mode


# -- the plan: which consistency, which flags, which warning ----------------------------------------------------------

@pytest.mark.parametrize('mode, state, memory, silence, consistency, quiesced, warned', [
    ('true', 'running', False, None, 'quiesced', True, False),
    ('auto', 'running', False, None, 'quiesced', True, False),
    ('auto', 'running', False, 'it did not answer within 20 s.', 'crash', False, True),
    ('auto', 'paused', False, None, 'crash', False, True),
    ('auto', 'shutoff', False, None, 'shutoff', False, False),
    # with memory nothing needs freezing: the snapshot holds the whole state
    ('auto', 'running', None, None, 'memory', False, False),
    ('false', 'running', False, None, 'crash', False, False),
    ('false', 'paused', False, None, 'crash', False, False),
    ('false', 'shutoff', False, None, 'shutoff', False, False),
    ('false', 'running', None, None, 'memory', False, False),
])
def test_consistency_of_the_plan(mode, state, memory, silence, consistency, quiesced, warned):
    made = plan(params(quiesce=mode, memory=memory), domain(state, silence))
    create = made.actions[-1]
    assert made.snapshot['consistency'] == consistency
    assert ('quiesce' in create.params['flags']) is quiesced
    assert create.params['quiesce'] == ({'mode': mode, 'timeout': 20.0} if quiesced else None)
    assert bool(made.warnings) is warned
    assert made.quiesce == (None if mode == 'false' else
                            {'mode': mode, 'quiesced': quiesced, 'reason': made.warnings[0].split('not quiesced: ')[1]
                             .split(' (quiesce: auto goes on')[0] if warned else None})
    if warned:
        assert made.warnings[0].startswith("Snapshot 'nightly' of domain 'db01' is crash-consistent, not quiesced: ")
        assert '(quiesce: auto goes on without freezing; quiesce: true would have refused.)' in made.warnings[0]


def test_auto_warning_names_the_silent_agent():
    made = plan(params(quiesce='auto'), domain('running', "Could not read the guest clock of domain 'db01': ..."))
    assert "the guest agent of domain 'db01' did not answer: Could not read the guest clock" in made.warnings[0]


@pytest.mark.parametrize('state, silence, expected', [
    ('running', 'it did not answer within 20 s.',
     "quiesce: true takes the snapshot only with the guest file systems frozen, but the guest agent of domain 'db01' "
     'did not answer: it did not answer within 20 s. Nothing was changed. Start qemu-guest-agent in the guest'),
    ('paused', None,
     "but domain 'db01' is paused, and a guest that does not run cannot freeze its file systems (libvirt does not ask "
     'the agent of a paused guest). Nothing was changed. Resume the domain first, or set quiesce: auto'),
    ('shutoff', None,
     "quiesce freezes a running guest's file systems, but domain 'db01' is shutoff: its disks are as its shutdown left "
     'them, with nothing to freeze. Drop quiesce'),
])
def test_quiesce_true_refuses_before_acting(state, silence, expected):
    assert expected in refusal(params(quiesce='true'), domain(state, silence))


def test_quiesce_true_with_memory_is_refused():
    assert refusal(params(quiesce='true', memory=None), domain()).startswith('quiesce freezes the guest file systems '
                                                                             'for a disk-only snapshot')


# -- the consistency a snapshot reports -------------------------------------------------------------------------------

def snapshot_xml(name='nightly', state='disk-snapshot', memory='no', note=None):
    metadata = ''
    if note is not None:
        metadata = ("<metadata><vmsnap:vmsnap xmlns:vmsnap='%s'><vmsnap:quiesced snapshot='%s'/></vmsnap:vmsnap>"
                    '</metadata>' % (_model.VMSNAP_NAMESPACE, note))
    return ("<domainsnapshot><name>%s</name><state>%s</state><memory snapshot='%s'/><disks><disk name='vda' "
            "snapshot='external'><source file='/images/db01.%s'/></disk></disks><domain><name>db01</name>%s</domain>"
            '</domainsnapshot>' % (name, state, memory, name, metadata))


@pytest.mark.parametrize('xml, consistency', [
    (snapshot_xml(note='nightly'), 'quiesced'),
    (snapshot_xml(), 'crash'),
    # a note left for another snapshot (an interrupted run, or the state a revert brought back) says nothing here
    (snapshot_xml(note='yesterday'), 'crash'),
    (snapshot_xml(state='shutoff'), 'shutoff'),
    (snapshot_xml(state='running', memory='external', note='nightly'), 'memory'),
])
def test_consistency_of_a_snapshot(xml, consistency):
    assert _model.parse_snapshot(xml, 'db01')['consistency'] == consistency


@pytest.mark.parametrize('metadata, snapshot, expected', [
    (None, 'nightly', "<vmsnap><quiesced snapshot=\"nightly\"/></vmsnap>"),
    # nothing else in the element: it goes
    ("<vmsnap><quiesced snapshot=\"old\"/></vmsnap>", None, None),
    ("<vmsnap><started-from snapshot=\"good\" domain-id=\"7\"/><quiesced snapshot=\"old\"/></vmsnap>", None,
     "<vmsnap><started-from snapshot=\"good\" domain-id=\"7\"/></vmsnap>"),
    # the start record of virt_start_from_snapshot stays
    ("<vmsnap><started-from snapshot=\"good\" domain-id=\"7\"/></vmsnap>", 'nightly',
     "<vmsnap><started-from snapshot=\"good\" domain-id=\"7\"/><quiesced snapshot=\"nightly\"/></vmsnap>"),
])
def test_with_quiesced_note(metadata, snapshot, expected):
    assert _model.with_quiesced_note(metadata, snapshot) == expected


# -- the runner: the bounded freeze, the thaw after a failed one ------------------------------------------------------

def libvirt_error(code, message):
    error = libvirt.libvirtError(message)
    error.err = (code, 0, message, 2, None, None, None, 0, 0)
    return error


FREEZE_TIMEOUT = (libvirt.VIR_ERR_AGENT_UNRESPONSIVE, 'Guest agent is not responding: Guest agent not available for now')
# libvirt 11.3 (seen on a real guest): a code of its own, which a libvirt-python built against 9.0 does not name
FREEZE_TIMEOUT_11 = (107, "guest agent command timed out: guest agent didn't respond to command within '3' seconds")
FREEZE_REFUSED = (libvirt.VIR_ERR_INTERNAL_ERROR, "unable to execute QEMU agent command 'guest-fsfreeze-freeze': "
                                                  'fsfreeze hook failed')


class Guest:
    """A running domain whose creates fail as ``create_failures`` says (in order; then succeed), whose agent answers a
    thaw from the ``thaw_answers_after``-th try (None: never). It records every call that matters."""

    def __init__(self, create_failures=(), thaw_answers_after=0):
        self.create_failures = list(create_failures)
        self.thaw_answers_after = thaw_answers_after
        self.calls = []
        self.metadata_xml = None

    def name(self):
        return 'db01'

    def ID(self):
        return 7

    def UUIDString(self):
        return '00000000-0000-0000-0000-000000000007'

    def snapshotCreateXML(self, xml, flags):
        quiesced = bool(flags & libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE)
        self.calls.append(('create', quiesced, self.metadata_xml))
        if self.create_failures:
            raise libvirt_error(*self.create_failures.pop(0))
        return 'made'

    def agentSetResponseTimeout(self, seconds, flags):
        self.calls.append(('agent timeout', seconds))
        return 0

    def fsThaw(self, mountpoints, flags):
        tries = len([call for call in self.calls if call[0] == 'thaw'])
        self.calls.append(('thaw',))
        if self.thaw_answers_after is None or tries < self.thaw_answers_after:
            raise libvirt_error(*FREEZE_TIMEOUT)
        return 1

    def metadata(self, kind, uri, flags):
        if self.metadata_xml is None:
            raise libvirt_error(libvirt.VIR_ERR_NO_DOMAIN_METADATA, 'metadata not found')
        return self.metadata_xml

    def setMetadata(self, kind, xml, key, uri, flags):
        self.metadata_xml = xml
        return 0


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def run(guest, mode='true', timeout=20.0):
    client = _client.Client('test:///default')
    clock = Clock()
    runner = _actions.Runner(client, guest, sleep=clock.sleep, clock=clock)
    action = _plan.Action('create', name='nightly', xml='<domainsnapshot/>', flags=['atomic', 'disk_only', 'quiesce'],
                          files=[], journal=False, quiesce={'mode': mode, 'timeout': timeout})
    plan_ = _plan.Plan([action], {}, {}, {'name': 'nightly'}, 'running')
    return runner, runner.execute(None, plan_)


NOTED = '<vmsnap><quiesced snapshot="nightly"/></vmsnap>'


def test_a_thaw_is_tried_for_30_s_at_least():
    guest = Guest(create_failures=[FREEZE_TIMEOUT], thaw_answers_after=None)
    with pytest.raises(SnapshotError) as caught:
        run(guest, mode='true', timeout=2.0)
    assert 'did not answer a thaw within 30 s either' in caught.value.msg


def test_a_quiesced_create_is_noted_bounded_and_unbound_again():
    guest = Guest()
    runner, made = run(guest)
    assert made == 'made'
    assert guest.calls == [('agent timeout', 20), ('create', True, NOTED), ('agent timeout', -2)]
    assert guest.metadata_xml is None  # the note is gone once the snapshot has it
    assert runner.warnings == []


@pytest.mark.parametrize('failure', [FREEZE_TIMEOUT, FREEZE_TIMEOUT_11, FREEZE_REFUSED])
def test_quiesce_true_thaws_after_a_failed_freeze_and_fails(failure):
    guest = Guest(create_failures=[failure], thaw_answers_after=2)
    with pytest.raises(SnapshotError) as caught:
        run(guest, mode='true')
    assert caught.value.msg.startswith("Snapshot 'nightly' of domain 'db01' was not taken: the guest agent did not "
                                       'freeze its file systems (')
    assert 'They are thawed; nothing was changed.' in caught.value.msg
    assert [call[0] for call in guest.calls] == ['agent timeout', 'create', 'thaw', 'thaw', 'thaw', 'agent timeout']
    assert guest.calls[-1] == ('agent timeout', -2)
    assert guest.metadata_xml is None


def test_quiesce_auto_thaws_then_takes_it_crash_consistent_with_a_warning():
    guest = Guest(create_failures=[FREEZE_TIMEOUT])
    runner, made = run(guest, mode='auto')
    assert made == 'made'
    assert guest.calls == [('agent timeout', 20), ('create', True, NOTED), ('thaw',),
                           ('create', False, None), ('agent timeout', -2)]
    assert runner.unquiesced.startswith('the guest agent did not freeze its file systems (Could not create snapshot')
    assert runner.warnings == [
        "Snapshot 'nightly' of domain 'db01' is crash-consistent, not quiesced: the guest agent did not freeze its "
        "file systems (Could not create snapshot 'nightly' of domain 'db01' on test:///default: Guest agent is not "
        'responding: Guest agent not available for now. The QEMU guest agent in the guest did not answer (it is not '
        'running, or took longer than allowed)); they were thawed, and the snapshot was taken without freezing '
        '(quiesce: auto).']


def test_a_thaw_that_never_answers_fails_loudly_naming_the_guest():
    guest = Guest(create_failures=[FREEZE_TIMEOUT], thaw_answers_after=None)
    with pytest.raises(SnapshotError) as caught:
        run(guest, mode='auto', timeout=45.0)
    message = caught.value.msg
    assert message.startswith("Domain 'db01' may have frozen file systems: its guest agent did not freeze them for "
                              "snapshot 'nightly' in time")
    assert 'did not answer a thaw within 45 s either' in message
    assert '`virsh domfsthaw db01`' in message
    # no fallback snapshot after a thaw that did not succeed, and libvirt waits without a bound again
    assert [call for call in guest.calls if call[0] == 'create'] == [('create', True, NOTED)]
    assert guest.calls[-1] == ('agent timeout', -2)


def test_a_create_failure_that_is_not_the_freeze_is_not_thawed_or_retried():
    guest = Guest(create_failures=[(libvirt.VIR_ERR_OPERATION_INVALID, "overlay '/images/db01.nightly' exists")])
    with pytest.raises(SnapshotError) as caught:
        run(guest, mode='auto')
    assert "overlay '/images/db01.nightly' exists" in caught.value.msg
    assert [call[0] for call in guest.calls] == ['agent timeout', 'create', 'agent timeout']
