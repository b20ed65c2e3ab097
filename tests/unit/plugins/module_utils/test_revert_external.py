# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""A revert to an external snapshot, where the host can do it (libvirt 9.9 and later).

libvirt then puts each of the snapshot's disks on a new overlay named <image>.<epoch seconds>, created with the
daemon's umask: measured on libvirt 11.3, mode 0644 when the domain is shut off. Those overlays hold guest data, so the
runner makes them private (0600) as it does the files of a new snapshot, and touches no other image."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import stat

import pytest

from ansible_collections.vmsnap.libvirt.plugins.module_utils import _actions, _model, _revert
from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError

HOST_11_3 = {'uri': 'qemu:///system', 'libvirt_version': '11.3.0', 'external_revert': True, 'external_delete': True}


def disk_xml(target, source):
    return ("<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='%s'/>"
            "<target dev='%s' bus='virtio'/></disk>" % (source, target))


def domain(sources, state='shutoff'):
    """parse_domain's dict of a domain whose disks (target -> image) are ``sources``."""
    devices = ''.join(disk_xml(target, source) for target, source in sorted(sources.items()))
    return _model.parse_domain("<domain type='qemu'><name>web01</name><devices>%s</devices></domain>" % devices, state)


def snapshot(disks):
    """A disk-only snapshot of a shut-off domain; ``disks`` maps each disk to (kind, overlay file or None)."""
    return {
        'name': 's1', 'domain': 'web01', 'description': None, 'state': 'shutoff', 'creation_time': 1700000000,
        'creation_time_iso': '2023-11-14T22:13:20Z', 'parent': None, 'children': [], 'is_current': True,
        'location': 'external' if all(kind == 'external' for kind, dummy in disks.values()) else 'mixed',
        'memory': {'snapshot': 'no', 'file': None},
        'disks': [{'name': name, 'snapshot': kind, 'file': file} for name, (kind, file) in sorted(disks.items())],
    }


def revert_action(plan):
    (action,) = plan.actions
    assert action.kind == 'revert'
    return action.params


def test_the_plan_names_the_disks_that_get_fresh_overlays_and_their_images_before():
    dom = domain({'vda': '/images/vda.s1', 'vdb': '/images/vdb.qcow2'})
    plan = _revert.plan_revert({}, dom, snapshot({'vda': ('external', '/images/vda.s1'), 'vdb': ('no', None)}),
                               HOST_11_3)
    assert revert_action(plan) == {'name': 's1', 'flags': [], 'fresh_overlays': {'vda': '/images/vda.s1'}}


def test_a_revert_to_an_internal_snapshot_has_no_fresh_overlays():
    internal = dict(snapshot({'vda': ('internal', None)}), location='internal')
    plan = _revert.plan_revert({}, domain({'vda': '/images/vda.qcow2'}), internal, HOST_11_3)
    assert revert_action(plan) == {'name': 's1', 'flags': []}


class FakeClient:
    """What the runner asks of the client for a revert: the revert itself, then the domain as libvirt left it."""

    def __init__(self, sources_after, local=True):
        self.sources_after = sources_after
        self.local = local
        self.reverted = []

    def revert_to_snapshot(self, snap, flags):
        self.reverted.append((snap, flags))

    def read_domain(self, dom):
        return domain(self.sources_after)

    def is_local(self):
        return self.local


def make_file(path, mode):
    path.write_bytes(b'guest data')
    os.chmod(str(path), mode)
    return str(path)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def revert(client, sources_before, disks):
    dom = domain(sources_before)
    plan = _revert.plan_revert({}, dom, snapshot(disks), HOST_11_3)
    return _actions.Runner(client, dom).execute('s1', plan)


def test_the_fresh_overlays_are_made_private_and_nothing_else_is_touched(tmp_path):
    old_overlay = make_file(tmp_path / 'vda.s1', 0o600)
    fresh = make_file(tmp_path / 'vda.1795638626', 0o644)
    shared = make_file(tmp_path / 'vdb.qcow2', 0o644)  # left out of the snapshot: its image stays as it was
    client = FakeClient({'vda': fresh, 'vdb': shared})
    result = revert(client, {'vda': old_overlay, 'vdb': shared},
                    {'vda': ('external', old_overlay), 'vdb': ('no', None)})
    assert result == 's1'
    assert client.reverted == [('s1', [])]
    assert mode(fresh) == 0o600
    assert mode(shared) == 0o644


def test_a_disk_whose_image_did_not_change_is_left_alone(tmp_path):
    image = make_file(tmp_path / 'vda.qcow2', 0o644)
    revert(FakeClient({'vda': image}), {'vda': image}, {'vda': ('external', str(tmp_path / 'vda.s1'))})
    assert mode(image) == 0o644


def test_a_remote_host_is_left_alone(tmp_path):
    fresh = make_file(tmp_path / 'vda.1795638626', 0o644)
    revert(FakeClient({'vda': fresh}, local=False), {'vda': str(tmp_path / 'vda.s1')},
           {'vda': ('external', str(tmp_path / 'vda.s1'))})
    assert mode(fresh) == 0o644


def test_a_fresh_overlay_that_cannot_be_made_private_fails_saying_the_revert_was_done(tmp_path, monkeypatch):
    fresh = make_file(tmp_path / 'vda.1795638626', 0o644)

    def refuse(path, file_mode):
        raise PermissionError(1, 'Operation not permitted', path)

    monkeypatch.setattr(_actions.os, 'chmod', refuse)
    with pytest.raises(SnapshotError) as caught:
        revert(FakeClient({'vda': fresh}), {'vda': str(tmp_path / 'vda.s1')},
               {'vda': ('external', str(tmp_path / 'vda.s1'))})
    assert caught.value.msg.startswith("The domain was reverted, but its file '%s' could not be made private (mode "
                                       '0600): ' % fresh)
    assert caught.value.msg.endswith('Fix its mode by hand; it holds guest data.')
