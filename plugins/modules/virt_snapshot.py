#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: virt_snapshot
short_description: Create, describe, update, delete and revert snapshots of libvirt domains
version_added: 0.1.0
description:
  - Makes a named snapshot of a libvirt domain exist (O(state=present)), not exist (O(state=absent)), or be the
    state the domain is reverted to (O(state=reverted)).
  - The snapshot name is the key. A second run with the same options reports no change, in check mode too.
  - A new snapshot of a running or paused domain includes its memory by default, so that reverting to it resumes the
    guest instead of leaving it powered off.
  - Snapshots are created atomically (libvirt's C(VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC)): either every disk is
    snapshotted, or nothing changes.
  - Before anything changes, requests that cannot work fail with a message naming the disk, file or option at fault,
    for example an internal snapshot of a raw disk or an overlay file that already exists.
author:
  - vmsnap.libvirt contributors
extends_documentation_fragment:
  - vmsnap.libvirt.connection
  - vmsnap.libvirt.attributes
attributes:
  check_mode:
    support: full
    details:
      - Check mode reads the domain and its snapshots, computes the same plan as a real run, and changes nothing.
        Its result has the same keys; the predicted RV(snapshot) has no creation time yet.
  diff_mode:
    support: full
    details:
      - The diff shows the snapshot before and after as a small dict, not XML. For O(state=reverted) it also shows
        the domain state.
  idempotent:
    support: partial
    details:
      - O(state=present) and O(state=absent) are idempotent.
      - O(state=reverted) always reverts and always reports a change.
options:
  domain:
    description:
      - Name of the libvirt domain (guest).
    type: str
    required: true
    aliases: [guest]
  name:
    description:
      - Name of the snapshot. It is the idempotency key within the domain.
      - Printable characters, at most 255, no C(/), not starting with C(.) and without leading or trailing white space.
        XML special characters and any Unicode are stored exactly.
    type: str
    required: true
    aliases: [snapshot]
  state:
    description:
      - V(present) creates the snapshot if it does not exist, and updates its O(description) if it differs.
      - V(absent) deletes it (see O(children), O(children_only), O(metadata_only)). A snapshot that does not exist is
        left alone and reported unchanged.
      - V(reverted) reverts the domain to the snapshot. A snapshot that does not exist is a failure.
    type: str
    choices: [present, absent, reverted]
    default: present
  description:
    description:
      - Description of the snapshot. Set when the snapshot is created.
      - If the snapshot exists with another description, it is updated in place (libvirt's redefine) and the task
        reports a change. An empty string removes the description. When not set, an existing description is kept.
      - Only with O(state=present).
    type: str
  memory:
    description:
      - Whether the snapshot includes the domain's memory (RAM and device state).
      - Defaults to V(true) for a running or paused domain, so that reverting resumes it, and to V(false) for a domain
        that is shut off (which has no memory to save; V(true) is then an error).
      - V(false) on a running domain takes a disk-only snapshot, which must be external.
      - Only with O(state=present); has no effect on an existing snapshot (a warning says so).
    type: bool
  location:
    description:
      - V(internal) keeps the snapshot inside the qcow2 images (every snapshotted disk must be qcow2).
      - V(external) puts new writes into overlay files (the snapshot keeps the current images as they are) and the
        memory into a separate file. Every snapshotted disk must be a local file or block device.
      - V(auto) picks V(external) when the host can revert external snapshots (libvirt 9.9 and later advertise
        C(<externalSnapshot/>) in their capabilities) and every disk is a file or block device; otherwise
        V(internal) when every disk is qcow2; otherwise it fails and names the disks.
      - Disks that are read-only, CD-ROMs or empty drives are left out automatically.
      - Only with O(state=present).
    type: str
    choices: [auto, internal, external]
    default: auto
  memory_file:
    description:
      - Where an external snapshot saves the memory. Must not exist yet.
      - Defaults to C(<directory of the first disk>/<domain>.<snapshot>.mem).
      - Only with O(state=present), O(memory=true) and an external snapshot. The file is made readable only by its owner.
    type: path
  disks:
    description:
      - Per-disk control of a new snapshot. Disks not listed follow O(location).
      - Only with O(state=present).
    type: list
    elements: dict
    suboptions:
      name:
        description: The disk's target device, as in the domain XML (for example V(vda)).
        type: str
        required: true
      snapshot:
        description:
          - How this disk takes part; V(no) leaves it out of the snapshot.
          - libvirt cannot mix internal and external disks in one snapshot.
        type: str
        choices: [internal, external, 'no']
      file:
        description:
          - The overlay file of an external disk snapshot. Must not exist yet.
          - Defaults to the disk's current file without its extension, then C(.<snapshot name>), as libvirt names it.
          - The file is made readable only by its owner.
        type: path
  quiesce:
    description:
      - Freeze the guest's file systems while a disk-only snapshot is taken (libvirt's C(QUIESCE)). Needs the QEMU
        guest agent in the guest, O(memory=false) and an external snapshot.
      - Only with O(state=present).
    type: bool
    default: false
  children:
    description:
      - With O(state=absent), also delete every snapshot below this one (its whole subtree).
      - Without it, only this snapshot is deleted and its children are re-parented to its parent.
    type: bool
    default: false
  children_only:
    description:
      - With O(state=absent), keep this snapshot and delete every snapshot below it.
      - Mutually exclusive with O(children).
    type: bool
    default: false
  metadata_only:
    description:
      - With O(state=absent), make libvirt forget the snapshot but keep its data (the internal snapshot in the qcow2
        image, or the external overlay and memory files). The metadata can be re-created later.
    type: bool
    default: false
  revert_state:
    description:
      - With O(state=reverted), the state the domain is left in.
      - V(snapshot) is the state recorded in the snapshot (a snapshot with memory of a running domain resumes it; a
        disk-only one leaves the domain shut off).
      - V(running) and V(paused) override it (libvirt's C(REVERT_RUNNING) and C(REVERT_PAUSED)).
    type: str
    choices: [snapshot, running, paused]
    default: snapshot
  force:
    description:
      - With O(state=reverted), revert even where libvirt considers it risky (libvirt's C(REVERT_FORCE)), for example
        when the snapshot's configuration cannot be checked against the running domain.
    type: bool
    default: false
notes:
  - Reverting discards the domain's current state. To keep it for later examination, take a snapshot first, or use
    M(vmsnap.libvirt.virt_start_from_snapshot) with its C(preserve_current) option.
  - External snapshots leave the domain writing to overlay files. On libvirt 9.0 and later, O(state=absent) merges them
    back; reverting to them needs libvirt 9.9 or later.
seealso:
  - name: libvirt snapshot XML format
    description: What libvirt records about a snapshot.
    link: https://libvirt.org/formatsnapshot.html
  - name: Domain state capture
    description: libvirt's overview of snapshots, checkpoints and saves.
    link: https://libvirt.org/kbase/domainstatecapture.html
'''

EXAMPLES = r'''
- name: Snapshot a guest before an upgrade (with memory if it runs)
  vmsnap.libvirt.virt_snapshot:
    domain: web01
    name: before-upgrade
    description: Taken by Ansible before the kernel upgrade

- name: Take an external, disk-only snapshot with the file systems frozen
  vmsnap.libvirt.virt_snapshot:
    domain: db01
    name: nightly
    location: external
    memory: false
    quiesce: true

- name: Leave the scratch disk out of an internal snapshot
  vmsnap.libvirt.virt_snapshot:
    domain: build01
    name: clean
    location: internal
    disks:
      - name: vdb
        snapshot: "no"

- name: Revert to the snapshot and make sure the guest runs afterwards
  vmsnap.libvirt.virt_snapshot:
    domain: web01
    name: before-upgrade
    state: reverted
    revert_state: running

- name: Delete a snapshot and every snapshot below it
  vmsnap.libvirt.virt_snapshot:
    domain: web01
    name: before-upgrade
    state: absent
    children: true

- name: Set the connection once for every module of the collection
  hosts: hypervisors
  module_defaults:
    group/vmsnap.libvirt.libvirt:
      uri: qemu:///system
  tasks:
    - name: Snapshot a guest
      vmsnap.libvirt.virt_snapshot:
        domain: web01
        name: before-upgrade
'''

RETURN = r'''
snapshot:
  description:
    - The snapshot after the task; in check mode, as it is predicted to be.
    - V(null) when it does not exist afterwards (O(state=absent)).
  returned: always
  type: dict
  contains:
    name:
      description: The snapshot's name.
      type: str
      sample: before-upgrade
    domain:
      description: The domain's name.
      type: str
      sample: web01
    description:
      description: The description, or V(null).
      type: str
      sample: Taken by Ansible before the kernel upgrade
    state:
      description:
        - The domain state the snapshot recorded, as libvirt names it (V(running), V(paused), V(shutoff), or
          V(disk-snapshot) for a disk-only snapshot of a running domain).
      type: str
      sample: running
    creation_time:
      description: When the snapshot was taken, in seconds since the epoch. V(null) in check mode for a new snapshot.
      type: int
      sample: 1795633778
    creation_time_iso:
      description: The same time in ISO 8601, UTC.
      type: str
      sample: '2026-11-25T19:49:38Z'
    parent:
      description: The parent snapshot (the one that was current when this one was taken), or V(null).
      type: str
      sample: base
    children:
      description: Names of the direct children.
      type: list
      elements: str
      sample: []
    is_current:
      description: Whether this is the domain's current snapshot.
      type: bool
      sample: true
    location:
      description: V(internal), V(external), or V(mixed) when parts of both exist.
      type: str
      sample: internal
    memory:
      description: How the memory was saved.
      type: dict
      contains:
        snapshot:
          description: V(internal), V(external) or V(no).
          type: str
          sample: internal
        file:
          description: The memory file of an external snapshot, otherwise V(null).
          type: str
          sample: null
    disks:
      description: Each disk of the domain and how it is part of the snapshot.
      type: list
      elements: dict
      contains:
        name:
          description: The disk's target device.
          type: str
          sample: vda
        snapshot:
          description: V(internal), V(external) or V(no).
          type: str
          sample: internal
        file:
          description: The overlay file of an external disk snapshot, otherwise V(null).
          type: str
          sample: null
domain_state:
  description: The domain's state after the task (predicted in check mode).
  returned: always
  type: str
  sample: running
deleted:
  description: Names of the snapshots deleted (or that would be, in check mode), the named one first.
  returned: always
  type: list
  elements: str
  sample: [before-upgrade, after-upgrade]
'''

from ansible_collections.vmsnap.libvirt.plugins.module_utils import _common
from ansible_collections.vmsnap.libvirt.plugins.module_utils._actions import execute, missing_snapshot_error
from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError
from ansible_collections.vmsnap.libvirt.plugins.module_utils._model import validate_description, validate_snapshot_name
from ansible_collections.vmsnap.libvirt.plugins.module_utils._plan import plan_absent, plan_present, plan_revert

# Options that only mean something for one state, and the value that means "not given".
STATE_OPTIONS = {
    'present': {'description': None, 'memory': None, 'location': 'auto', 'memory_file': None, 'disks': None,
                'quiesce': False},
    'absent': {'children': False, 'children_only': False, 'metadata_only': False},
    'reverted': {'revert_state': 'snapshot', 'force': False},
}


def check_options(params):
    state = params['state']
    for other, options in STATE_OPTIONS.items():
        if other == state:
            continue
        given = sorted(option for option, unset in options.items() if params[option] != unset)
        if given:
            raise SnapshotError('%s only appl%s to state=%s, not to state=%s. Remove %s from the task.'
                                % (', '.join(given), 'ies' if len(given) == 1 else 'y', other, state,
                                   'it' if len(given) == 1 else 'them'))
    validate_snapshot_name(params['name'])
    validate_description(params['description'])


def manage(module, client):
    params = module.params
    check_options(params)
    dom = client.domain(params['domain'])
    snap = client.find_snapshot(dom, params['name'])
    existing = client.describe_snapshot(snap) if snap is not None else None

    if params['state'] == 'present':
        if existing is None:
            domain = client.read_domain(dom)
            host = client.host() if params['location'] == 'auto' else {}
            plan = plan_present(params, domain, None, None, client.current_snapshot_name(dom), host)
        else:
            plan = plan_present(params, None, existing, client.snapshot_xml(snap), None, {})
    elif params['state'] == 'absent':
        wants_subtree = params['children'] or params['children_only']
        descendants = client.descendant_names(snap) if snap is not None and wants_subtree else []
        plan = plan_absent(params, existing, descendants)
    else:
        if snap is None:
            raise missing_snapshot_error(client, dom, params['name'], 'revert to')
        domain = {'name': params['domain'], 'state': client.domain_state(dom)}
        host = client.host() if existing['location'] != 'internal' else {}
        plan = plan_revert(params, domain, existing, host)

    for warning in plan.warnings:
        module.warn(warning)
    if plan.changed and not module.check_mode:
        snap = execute(client, dom, snap, plan)
        snapshot = client.describe_snapshot(snap) if snap is not None else None
        domain_state = client.domain_state(dom)
    else:
        snapshot = plan.snapshot
        domain_state = plan.domain_state or client.domain_state(dom)

    result = dict(changed=plan.changed, snapshot=snapshot, domain_state=domain_state, deleted=plan.deleted)
    if module._diff:
        result['diff'] = dict(before=plan.before, after=plan.after)
    return result


def main():
    argument_spec = _common.argument_spec(
        domain=dict(type='str', required=True, aliases=['guest']),
        name=dict(type='str', required=True, aliases=['snapshot']),
        state=dict(type='str', default='present', choices=['present', 'absent', 'reverted']),
        description=dict(type='str'),
        memory=dict(type='bool'),
        location=dict(type='str', default='auto', choices=['auto', 'internal', 'external']),
        memory_file=dict(type='path'),
        disks=dict(type='list', elements='dict', options=dict(
            name=dict(type='str', required=True),
            snapshot=dict(type='str', choices=['internal', 'external', 'no']),
            file=dict(type='path'),
        )),
        quiesce=dict(type='bool', default=False),
        children=dict(type='bool', default=False),
        children_only=dict(type='bool', default=False),
        metadata_only=dict(type='bool', default=False),
        revert_state=dict(type='str', default='snapshot', choices=['snapshot', 'running', 'paused']),
        force=dict(type='bool', default=False),
    )
    module = _common.new_module(argument_spec, supports_check_mode=True,
                                mutually_exclusive=[('children', 'children_only')])
    _common.run(module, manage)


if __name__ == '__main__':
    main()
