# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils file is private to the vmsnap.libvirt collection. It can change at any time,
# without a deprecation period. Do not use it outside this collection.

"""What virt_snapshot reads about a domain beyond the client's plain reads: backing chains of shut-off disks
(qemu-img), the parent and current snapshot around one, a pause an interrupted snapshot left, block jobs the XML
does not describe."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import subprocess

from ansible_collections.vmsnap.libvirt.plugins.module_utils._client import unless_missing
from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError
from ansible_collections.vmsnap.libvirt.plugins.module_utils._journal import PauseJournal
from ansible_collections.vmsnap.libvirt.plugins.module_utils._model import EXTERNAL, chain_from_qemu_img, parse_snapshot, snapshot_candidate


def read_domain_with_chains(client, dom, command):
    """The parsed domain, with the backing chains of a shut-off domain's disks completed by qemu-img."""
    domain = client.read_domain(dom)
    if not domain['active'] and client.is_local():
        # libvirt records the backing chain of a shut-off domain's disks only sometimes; qemu-img knows it.
        for disk in domain['disks']:
            if disk['type'] == 'file' and disk['source'] and len(disk['chain']) == 1:
                disk['chain'] = backing_chain(command, disk['source'])
    return domain


def tree_context(client, dom, snap, existing, command):
    """What foreseeing a delete or merge needs: the domain (with its disks' backing chains), the snapshot's parent,
    and the current snapshot's name."""
    domain = read_domain_with_chains(client, dom, command)
    return domain, parent_of(client, dom, snap, existing['parent']), client.current_snapshot_name(dom)


def parent_of(client, dom, snap, name):
    """The dict of the parent called ``name`` of ``snap`` (None for a root).

    Another run may delete the parent after this run read the snapshot; libvirt then gives the snapshot the parent's
    parent, so the snapshot's parent is read again.
    """
    while name is not None:
        parent = client.find_snapshot(dom, name)
        # None as well when it was deleted between its lookup and its description.
        described = None if parent is None else unless_missing('snapshot', client.describe_snapshot, parent)
        if described is not None:
            return described
        renewed = parse_snapshot(client.snapshot_xml(snap), dom.name())['parent']
        if renewed == name:
            raise SnapshotError("Snapshot '%s' of domain '%s' names '%s' as its parent, which libvirt cannot find. "
                                'Check the tree with `virsh snapshot-list %s --tree`.'
                                % (snap.getName(), dom.name(), name, dom.name()))
        name = renewed
    return None


def interrupted_pause(client, dom, domain, name, command):
    """How libvirt calls the pause of a guest that an interrupted save or snapshot job left paused, else None.

    libvirt stopped in the middle of a snapshot job can come back calling the pause the user's: when it stopped
    before it recorded the pause, and when QEMU had saved an internal snapshot and libvirt had not resumed the guest.
    The traces of such a job are an entry of the run that started it in the pause journal (``domain`` then gets the
    snapshot's name as ``interrupted_create``), or an internal snapshot called ``name`` in the images that libvirt does
    not list.
    """
    if domain['state'] != 'paused':
        return None
    reason = client.interrupted_pause(dom)
    if reason is not None:
        return reason
    left = PauseJournal.for_domain(client, dom).left_by_ended_runs(dom.ID())
    if left:
        reason = client.interrupted_pause(dom, as_user=True)
        if reason is not None:
            domain['interrupted_create'] = left[-1]['snapshot']
            return reason
    if client.is_local() and images_hold_internal_snapshot(command, domain, name):
        reason = client.interrupted_pause(dom, as_user=True)
    return reason


def images_hold_internal_snapshot(command, domain, name):
    """Whether every qcow2 disk of the domain holds an internal snapshot called ``name`` (QEMU's view)."""
    images = [disk['source'] for disk in domain['disks']
              if disk['type'] == 'file' and disk['format'] == 'qcow2' and disk['source'] and snapshot_candidate(disk)]
    for image in images:
        try:
            rc, out, dummy_err = command(['info', '--output=json', '-U', image])
        except SnapshotError:
            return False  # no qemu-img on this host: no trace to read
        if rc != 0 or name not in [item.get('name') for item in json.loads(out).get('snapshots', [])]:
            return False
    return bool(images)


def undescribed_block_jobs(client, dom, domain, existing):
    """Add to the parsed domain the block jobs libvirt runs on the snapshot's disks without describing them in the
    domain XML: after a restart it can run a commit that an interrupted merge started and show no <mirror> for it."""
    if not domain['active']:
        return
    names = set(disk['name'] for disk in existing['disks'] if disk['snapshot'] == EXTERNAL)
    for disk in domain['disks']:
        if disk['name'] in names and disk['mirror'] is None:
            job = client.block_job(dom, disk['name'])
            if job is not None:
                disk['mirror'] = {'job': job['job'], 'file': None, 'ready': job['cur'] == job['end']}


def backing_chain(command, path):
    rc, out, err = command(['info', '--backing-chain', '--output=json', '-U', path])
    if rc != 0:
        raise SnapshotError("qemu-img could not read the backing chain of '%s': %s" % (path, (err or '').strip()))
    return chain_from_qemu_img(out)


def qemu_img(path):
    """Run qemu-img (at ``path``, None when it is not installed) without a shell: (argv) -> (rc, stdout, stderr), for
    merges and backing chains of shut-off domains.

    Workers of a task with domains run it, so it does not use the module's run_command, which may end the module.
    """
    def run(args):
        if path is None:
            raise SnapshotError('qemu-img is needed to merge a shut-off domain, but it is not installed on this host '
                                '(Debian/Ubuntu: qemu-utils, Fedora/RHEL: qemu-img).')
        try:
            done = subprocess.run([path] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  universal_newlines=True, check=False)
        except OSError as exc:
            raise SnapshotError('Could not run %s: %s.' % (path, exc))
        return done.returncode, done.stdout, done.stderr
    return run
