# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""A create run again after the libvirt daemon stopped in the middle of an internal snapshot of a running guest.

libvirt pauses the guest while it saves the memory ("paused (saving)") and, killed at that moment, does not resume it
when it comes back; killed after QEMU finished saving, it reports the pause as the user's. The next create must resume
the guest first, or its snapshot would record a paused guest and a revert to it would leave the guest paused.
tests/reliability kills the real daemon there."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import subprocess

import libvirt
import pytest

from ansible_collections.vmsnap.libvirt.plugins.module_utils import _actions, _client, _create, _journal, _model, _plan, _read
from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError

DOMAIN_XML = ("<domain><name>web01</name><devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
              "<source file='/images/vda.qcow2'/><target dev='vda'/></disk></devices></domain>")


class FakeDomain:
    def __init__(self, state, reason, job):
        self._state = [state, reason]
        self._job = job
        self.resumed = 0

    def name(self):
        return 'web01'

    def state(self, flags):
        return self._state

    def jobInfo(self):
        return [self._job, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]

    def resume(self):
        self.resumed += 1
        self._state = [libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_UNPAUSED]


@pytest.mark.parametrize('state, reason, job, expected', [
    (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_SAVE, libvirt.VIR_DOMAIN_JOB_NONE, 'save'),
    (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_SNAPSHOT, libvirt.VIR_DOMAIN_JOB_NONE, 'snapshot'),
    # a snapshot of another run is under way: its job will resume the guest
    (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_SAVE, libvirt.VIR_DOMAIN_JOB_UNBOUNDED, None),
    # paused by someone, on purpose
    (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_USER, libvirt.VIR_DOMAIN_JOB_NONE, None),
    (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_BOOTED, libvirt.VIR_DOMAIN_JOB_NONE, None),
])
def test_interrupted_pause(state, reason, job, expected):
    assert _client.Client('test:///default').interrupted_pause(FakeDomain(state, reason, job)) == expected


def create_params():
    return dict(name='snap', description=None, memory=None, location='internal', memory_file=None, disks=None,
                quiesce=False)


def test_create_resumes_a_guest_a_libvirt_job_left_paused_and_records_it_running():
    domain = dict(_model.parse_domain(DOMAIN_XML, 'paused'), interrupted_pause='save')
    plan = _create.plan_present(create_params(), domain=domain, existing=None, existing_xml=None, current_name=None, host={})
    assert [action.kind for action in plan.actions] == ['resume', 'create']
    assert plan.actions[0].params == {'interrupted_pause': 'save'}
    assert (plan.snapshot['state'], plan.snapshot['memory']['snapshot'], plan.domain_state) == \
        ('running', 'internal', 'running')
    assert plan.warnings == ["Domain 'web01' was paused by a libvirt save job that no longer runs (the daemon stopped "
                             'in the middle of it); it was resumed before the snapshot was taken.']


def test_create_leaves_a_guest_paused_on_purpose_as_it_is():
    domain = dict(_model.parse_domain(DOMAIN_XML, 'paused'), interrupted_pause=None)
    plan = _create.plan_present(create_params(), domain=domain, existing=None, existing_xml=None, current_name=None, host={})
    assert [action.kind for action in plan.actions] == ['create']
    assert (plan.snapshot['state'], plan.domain_state, plan.warnings) == ('paused', 'paused', [])


@pytest.mark.parametrize('still_paused, resumed', [(True, 1), (False, 0)])
def test_runner_resumes_only_while_the_guest_still_is_left_paused(still_paused, resumed):
    dom = FakeDomain(libvirt.VIR_DOMAIN_PAUSED if still_paused else libvirt.VIR_DOMAIN_RUNNING,
                     libvirt.VIR_DOMAIN_PAUSED_SAVE, libvirt.VIR_DOMAIN_JOB_NONE)
    client = _client.Client('test:///default')
    plan = _plan.Plan([_plan.Action('resume', interrupted_pause='save')], {}, {}, None, 'running')
    _actions.Runner(client, dom).execute(None, plan)
    assert dom.resumed == resumed


# -- QEMU saved, libvirt died before it resumed the guest: it reports the pause as the user's ----------------------

@pytest.mark.parametrize('reason, as_user, expected', [
    (libvirt.VIR_DOMAIN_PAUSED_USER, False, None),
    (libvirt.VIR_DOMAIN_PAUSED_USER, True, 'user'),
    (libvirt.VIR_DOMAIN_PAUSED_UNKNOWN, True, 'unknown'),
    (libvirt.VIR_DOMAIN_PAUSED_IOERROR, True, None),
])
def test_interrupted_pause_reported_as_the_users(reason, as_user, expected):
    dom = FakeDomain(libvirt.VIR_DOMAIN_PAUSED, reason, libvirt.VIR_DOMAIN_JOB_NONE)
    assert _client.Client('test:///default').interrupted_pause(dom, as_user=as_user) == expected


def qemu_img_info(snapshots_by_image):
    def command(argv):
        assert argv[:3] == ['info', '--output=json', '-U']
        return 0, json.dumps({'snapshots': [{'name': name} for name in snapshots_by_image[argv[3]]]}), ''
    return command


@pytest.mark.parametrize('tags, found', [
    (['snap'], True),                 # QEMU saved 'snap' and libvirt never recorded it: the trace of the job
    (['other'], False),
    ([], False),
])
def test_the_trace_of_an_interrupted_snapshot_in_the_images(tags, found):
    domain = _model.parse_domain(DOMAIN_XML, 'paused')
    command = qemu_img_info({'/images/vda.qcow2': tags})
    assert _read.images_hold_internal_snapshot(command, domain, 'snap') is found


def test_create_resumes_a_guest_left_paused_that_libvirt_calls_paused_by_the_user():
    domain = dict(_model.parse_domain(DOMAIN_XML, 'paused'), interrupted_pause='user')
    plan = _create.plan_present(create_params(), domain=domain, existing=None, existing_xml=None, current_name=None, host={})
    assert [action.kind for action in plan.actions] == ['resume', 'create']
    assert plan.snapshot['state'] == 'running'
    assert "its images already hold an internal snapshot 'snap' that libvirt does not list" in plan.warnings[0]


def test_runner_checks_a_pause_reported_as_the_users_as_such():
    dom = FakeDomain(libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_USER, libvirt.VIR_DOMAIN_JOB_NONE)
    plan = _plan.Plan([_plan.Action('resume', interrupted_pause='user')], {}, {}, None, 'running')
    _actions.Runner(_client.Client('test:///default'), dom).execute(None, plan)
    assert dom.resumed == 1


# -- another run's snapshot pauses the guest too, and its job ends while this run looks ------------------------------

class RacingDomain(FakeDomain):
    """Paused by another run's snapshot job, which ends (and resumes the guest) while jobInfo waits for it."""

    def jobInfo(self):
        self._state = [libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_UNPAUSED]
        return super(RacingDomain, self).jobInfo()

    def resume(self):
        raise libvirt.libvirtError('Requested operation is not valid: domain is already running')


def test_a_pause_that_ends_while_the_job_is_read_is_no_leftover():
    dom = RacingDomain(libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_SAVE, libvirt.VIR_DOMAIN_JOB_NONE)
    assert _client.Client('test:///default').interrupted_pause(dom) is None


class ResumedMeanwhile(FakeDomain):
    """Still a leftover when checked, but another run resumed it before this run's resume."""

    def resume(self):
        self._state = [libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_UNPAUSED]
        raise libvirt.libvirtError('Requested operation is not valid: domain is already running')


def test_runner_takes_a_guest_running_again_as_the_resume_done():
    dom = ResumedMeanwhile(libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_SAVE, libvirt.VIR_DOMAIN_JOB_NONE)
    plan = _plan.Plan([_plan.Action('resume', interrupted_pause='save')], {}, {}, None, 'running')
    _actions.Runner(_client.Client('test:///default'), dom).execute(None, plan)
    assert dom.state(0)[0] == libvirt.VIR_DOMAIN_RUNNING


# -- libvirt killed after QEMU's "stop" and before it handled the STOP event ----------------------------------------
# It comes back with nothing of its own to say why the guest is paused: QEMU says "paused", libvirt reports the pause as
# the user's, no job runs, and the images hold no snapshot yet (QEMU had not started saving). The trace is the pause
# journal entry that the interrupted run left.

class GuestOfThisHost(FakeDomain):
    def UUIDString(self):
        return '6f1e2d3c-0000-4000-8000-000000000001'

    def ID(self):
        return 7


@pytest.fixture
def journal_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(_journal, 'default_folder', lambda: str(tmp_path))
    return str(tmp_path)


def ended_pid():
    child = subprocess.Popen(['true'])
    child.wait()
    return child.pid


def no_qemu_img(argv):
    raise AssertionError('the journal answers first; qemu-img need not run: %r' % (argv,))


def test_a_pause_the_journal_explains_is_found(journal_folder):
    dom = GuestOfThisHost(libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_USER, libvirt.VIR_DOMAIN_JOB_NONE)
    client = _client.Client('test:///default')
    _journal.PauseJournal(client.uri, dom.UUIDString(), pid=ended_pid()).begin(7, 'c10')
    domain = _model.parse_domain(DOMAIN_XML, 'paused')
    assert _read.interrupted_pause(client, dom, domain, 'c10', no_qemu_img) == 'user'
    assert domain['interrupted_create'] == 'c10'


@pytest.mark.parametrize('entry_pid, entry_domain_id', [
    (None, 7),       # the run that wrote it still goes on (this process)
    ('ended', 8),    # written for an earlier QEMU process of the domain
])
def test_a_users_pause_without_a_matching_entry_is_left_alone(journal_folder, entry_pid, entry_domain_id):
    dom = GuestOfThisHost(libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_USER, libvirt.VIR_DOMAIN_JOB_NONE)
    client = _client.Client('test:///default')
    pid = ended_pid() if entry_pid == 'ended' else None
    _journal.PauseJournal(client.uri, dom.UUIDString(), pid=pid).begin(entry_domain_id, 'c10')
    domain = _model.parse_domain(DOMAIN_XML, 'paused')
    assert _read.interrupted_pause(client, dom, domain, 'c10', qemu_img_info({'/images/vda.qcow2': []})) is None
    assert 'interrupted_create' not in domain


def test_create_resumes_a_guest_the_journal_says_an_interrupted_create_paused():
    domain = dict(_model.parse_domain(DOMAIN_XML, 'paused'), interrupted_pause='user', interrupted_create='c10')
    plan = _create.plan_present(create_params(), domain=domain, existing=None, existing_xml=None, current_name=None, host={})
    assert [action.kind for action in plan.actions] == ['resume', 'create']
    assert (plan.snapshot['state'], plan.domain_state, plan.actions[1].params['journal']) == ('running', 'running', True)
    assert plan.warnings == ["Domain 'web01' was left paused by an interrupted snapshot: a run of this collection on "
                             "this host was creating snapshot 'c10' of it when libvirt stopped, after QEMU paused the "
                             'guest and before libvirt recorded why (libvirt now calls the pause user); it was resumed '
                             'before the snapshot was taken.']


class DaemonDiesDuringCreate(GuestOfThisHost):
    """The create fails as when libvirtd is killed: the connection is gone, nothing can be read."""

    def __init__(self):
        super(DaemonDiesDuringCreate, self).__init__(libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_BOOTED,
                                                     libvirt.VIR_DOMAIN_JOB_NONE)
        self.gone = False

    def snapshotCreateXML(self, xml, flags):
        self.gone = True
        raise libvirt.libvirtError('End of file while reading data: Input/output error')

    def state(self, flags):
        if self.gone:
            raise libvirt.libvirtError('internal error: client socket is closed')
        return super(DaemonDiesDuringCreate, self).state(flags)


class CreateSucceeds(GuestOfThisHost):
    def __init__(self):
        super(CreateSucceeds, self).__init__(libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_BOOTED,
                                             libvirt.VIR_DOMAIN_JOB_NONE)

    def snapshotCreateXML(self, xml, flags):
        return 'made'


def create_plan():
    return _plan.Plan([_plan.Action('create', name='c10', xml='<domainsnapshot/>', flags=['atomic'], files=[], journal=True)],
                      {}, {}, None, 'running')


def test_a_create_the_daemon_died_in_keeps_its_journal_entry(journal_folder):
    dom = DaemonDiesDuringCreate()
    client = _client.Client('test:///default', lock_timeout=0)
    with pytest.raises(SnapshotError) as caught:
        _actions.Runner(client, dom).execute(None, create_plan())
    # the create's failure, not that of the state read after it
    assert caught.value.msg.startswith("Could not create snapshot 'c10' of domain 'web01'")
    assert 'End of file while reading data' in caught.value.msg
    entries = [json.load(open(os.path.join(journal_folder, name))) for name in os.listdir(journal_folder)]
    assert [(entry['snapshot'], entry['domain_id'], entry['pid']) for entry in entries] == [('c10', 7, os.getpid())]


def test_a_create_libvirt_answered_leaves_no_entry_and_clears_those_it_explained(journal_folder):
    dom = CreateSucceeds()
    client = _client.Client('test:///default')
    _journal.PauseJournal(client.uri, dom.UUIDString(), pid=ended_pid()).begin(7, 'c9')
    assert _actions.Runner(client, dom).execute(None, create_plan()) is None
    assert os.listdir(journal_folder) == []


class CreateRefused(CreateSucceeds):
    """libvirt answers and refuses (another run made the snapshot meanwhile): its job resumed what it paused."""

    def snapshotCreateXML(self, xml, flags):
        self._state = [libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_SAVE]  # another run's snapshot job
        raise libvirt.libvirtError("operation failed: domain moment c10 already exists")


def test_a_create_libvirt_refused_leaves_no_entry(journal_folder):
    client = _client.Client('test:///default')
    with pytest.raises(SnapshotError) as caught:
        _actions.Runner(client, CreateRefused()).execute(None, create_plan())
    assert 'domain moment c10 already exists' in caught.value.msg
    assert os.listdir(journal_folder) == []
