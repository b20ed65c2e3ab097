# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""A merge that the libvirt daemon's death (or a dropped connection) interrupted, and the run after it.

libvirt keeps a started block commit across its restarts (<mirror job='active-commit' ready='yes'> on the disk), so
the next run must pivot that job instead of starting another ("disk 'vda' already in active block job"). A merge
interrupted after the pivot leaves the disk on the base and only the snapshot's record to drop; the next run must
recognise it instead of calling it a revert elsewhere. tests/reliability kills the real daemon at these points."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.vmsnap.libvirt.plugins.module_utils import _actions, _merge, _model
from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError

BASE = '/images/vda.qcow2'
OVERLAY = '/images/vda.m1'


def domain(state, chain, mirror=''):
    backing = ''
    for path in reversed(chain[1:]):
        backing = "<backingStore type='file'><format type='qcow2'/><source file='%s'/>%s</backingStore>" % (path, backing)
    xml = ("<domain><name>web01</name><devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
           "<source file='%s'/>%s%s<target dev='vda'/></disk></devices></domain>" % (chain[0], backing, mirror))
    return _model.parse_domain(xml, state)


def mirror(job='active-commit', target=BASE, ready='yes'):
    return ("<mirror type='file' job='%s' ready='%s'><format type='qcow2'/><source file='%s' index='1'/></mirror>"
            % (job, ready, target))


def snapshot(name='m1', is_current=True, parent=None):
    xml = ('<domainsnapshot><name>%s</name>%s<memory snapshot="no"/><disks><disk name="vda" snapshot="external">'
           '<source file="/images/vda.%s"/></disk></disks></domainsnapshot>'
           % (name, '<parent><name>%s</name></parent>' % parent if parent else '', name))
    return _model.parse_snapshot(xml, 'web01', is_current=is_current)


def params():
    return dict(name='m1', state='merged', children=False, children_only=False, metadata_only=False, force=False)


def merge_plan(dom, current='m1', existing=None):
    return _merge.plan_merge(params(), dom, existing or snapshot(), bases={'vda': BASE}, descendants=[], current_name=current)


def test_the_mirror_of_a_disk_in_a_block_job():
    assert domain('running', [OVERLAY, BASE], mirror())['disks'][0]['mirror'] == \
        {'job': 'active-commit', 'file': BASE, 'ready': True}
    assert domain('running', [OVERLAY, BASE])['disks'][0]['mirror'] is None
    old_style = "<mirror type='file' file='/images/copy.qcow2' format='qcow2' job='copy'/>"
    assert domain('running', [BASE], old_style)['disks'][0]['mirror'] == \
        {'job': 'copy', 'file': '/images/copy.qcow2', 'ready': False}


@pytest.mark.parametrize('dom, resume, done', [
    (domain('running', [OVERLAY, BASE]), False, False),            # nothing started: commit and pivot
    (domain('running', [OVERLAY, BASE], mirror()), True, False),   # a commit into the base runs: pivot only
    (domain('running', [BASE]), False, True),                      # pivoted already: drop the record only
    (domain('shutoff', [BASE]), False, True),                      # committed offline and defined already
])
def test_merge_picks_up_where_an_interrupted_one_stopped(dom, resume, done):
    plan = merge_plan(dom)
    disk = plan.actions[0].params['disks'][0]
    assert (bool(disk.get('resume')), bool(disk.get('done'))) == (resume, done)
    assert plan.actions[0].params['remove_files'] == [OVERLAY]
    assert plan.deleted == ['m1'] and plan.changed
    # the result keeps its documented keys
    assert set(plan.merged[0]) == set(['disk', 'top', 'base', 'base_format', 'overlays', 'job_size'])


def test_a_disk_on_its_base_after_a_revert_elsewhere_is_still_refused():
    # the current snapshot moved (a revert to another snapshot): this is no interrupted merge
    with pytest.raises(SnapshotError) as caught:
        merge_plan(domain('running', [BASE]), current='i0')
    assert 'the domain was reverted elsewhere' in caught.value.msg


@pytest.mark.parametrize('job, target', [('copy', '/images/copy.qcow2'), ('active-commit', '/images/other.qcow2')])
def test_a_disk_busy_with_another_block_job_is_refused(job, target):
    with pytest.raises(SnapshotError) as caught:
        merge_plan(domain('running', [OVERLAY, BASE], mirror(job, target)))
    assert caught.value.msg == (
        "Cannot merge snapshot 'm1': disk vda is busy with another block job (%s into '%s'). Nothing was changed. "
        'Wait until it ends, or stop it with `virsh blockjob web01 vda --abort`, then run the task again.'
        % (job, target))


def with_undescribed_job(dom, job='active-commit'):
    """The domain as the module completes it when libvirt runs a job on vda that its XML does not show."""
    dom['disks'][0]['mirror'] = {'job': job, 'file': None, 'ready': True}
    return dom


def test_an_undescribed_commit_right_above_the_base_is_taken_over():
    plan = merge_plan(with_undescribed_job(domain('running', [OVERLAY, BASE])))
    assert plan.actions[0].params['disks'][0].get('resume') is True


@pytest.mark.parametrize('chain, job', [
    (['/images/vda.m2', OVERLAY, BASE], 'active-commit'),   # it might commit into vda.m1 instead
    ([OVERLAY, BASE], 'copy'),
])
def test_an_undescribed_job_that_may_write_elsewhere_is_refused(chain, job):
    m2 = snapshot('m2', parent='m1')
    m1 = _model.parse_snapshot(
        '<domainsnapshot><name>m1</name><memory snapshot="no"/><disks><disk name="vda" snapshot="external">'
        '<source file="%s"/></disk></disks></domainsnapshot>' % OVERLAY, 'web01', children=['m2'])
    with pytest.raises(SnapshotError) as caught:
        _merge.plan_merge(dict(params(), force=True), with_undescribed_job(domain('running', chain), job), m1,
                          bases={'vda': BASE}, descendants=[m2], current_name='m2')
    assert '(%s into an image libvirt does not name)' % job in caught.value.msg


class RecordingClient:
    """The client calls a merge makes, recorded; block jobs are ready at once."""

    def __init__(self):
        self.calls = []

    def is_local(self):
        return True

    def block_commit(self, dom, disk, base):
        self.calls.append(('block_commit', disk, base))

    def block_job(self, dom, disk):
        return {'cur': 1, 'end': 1}

    def pivot(self, dom, disk):
        self.calls.append(('pivot', disk))
        return True

    def delete_snapshot(self, snap, flags):
        self.calls.append(('delete_snapshot', flags))


@pytest.mark.parametrize('dom, calls', [
    (domain('running', [OVERLAY, BASE]), [('block_commit', 'vda', BASE), ('pivot', 'vda')]),
    (domain('running', [OVERLAY, BASE], mirror()), [('pivot', 'vda')]),
    (domain('running', [BASE]), []),
])
def test_runner_commits_only_what_is_left_and_removes_files_before_the_record(dom, calls, monkeypatch):
    removed = []
    monkeypatch.setattr(_actions.os, 'unlink', lambda path: removed.append((path, list(client.calls))))
    client = RecordingClient()
    _actions.Runner(client, dom=None).execute(object(), merge_plan(dom))
    assert client.calls == calls + [('delete_snapshot', ['metadata_only'])]
    # the overlay went before the snapshot's record, after every pivot
    assert removed == [(OVERLAY, calls)]
