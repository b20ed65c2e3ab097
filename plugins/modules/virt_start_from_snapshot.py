#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: virt_start_from_snapshot
short_description: Start a libvirt domain from a snapshot, optionally keeping its current state for examination
version_added: 0.1.0
description:
  - Starts a libvirt domain from a named snapshot (libvirt's revert with C(REVERT_RUNNING) or C(REVERT_PAUSED)) and
    waits until the domain reports the state asked for. This is libvirt's "start the guest from a snapshot", as
    opposed to starting it from its current disks.
  - A domain that is shut off is started from the snapshot.
  - A domain that is running or paused has state that starting it from the snapshot would discard (the guest's memory
    and everything written to its disks since the snapshot). Such a domain is only started from the snapshot with
    O(force=true), or with O(preserve_current), which first saves that state as a new snapshot (with the memory of a
    running, paused or crashed guest) so that it can be copied elsewhere and examined, for example with C(crash) or
    C(gdb), or reverted to later with M(vmsnap.libvirt.virt_snapshot). A crashed guest's snapshot cannot be reverted
    to, since libvirt would start a fresh QEMU from its disks without its memory, so M(vmsnap.libvirt.virt_snapshot)
    refuses that revert; examine such a snapshot where it is (its disks and memory are in the images).
  - The module records in the running domain's metadata (namespace C(https://vmsnap.dev/xmlns/libvirt/1.0)) which
    snapshot it started the domain from and the domain ID it then had. A domain that still runs under that ID, started
    from the same snapshot, is left as it is and the task reports no change; if it is paused and O(state=running) is
    asked for (or the reverse), it is only resumed (or paused). A domain that was stopped and started again since has
    a new ID, so it counts as running on its own state.
  - The snapshot must exist. Internal snapshots work on every host; external ones need a host that can revert them
    (libvirt 9.9 and later). Otherwise the task fails before anything changes.
author:
  - vmsnap.libvirt contributors (@vmsnap)
extends_documentation_fragment:
  - vmsnap.libvirt.connection
  - vmsnap.libvirt.clock
  - vmsnap.libvirt.attributes
attributes:
  check_mode:
    support: full
    details:
      - Check mode reads the domain and its snapshots, computes the same plan as a real run, changes nothing, and
        returns the same keys. What libvirt only decides while acting is V(null) in check mode, namely the new
        RV(domain_id) and the creation time of the snapshot O(preserve_current) would take.
  diff_mode:
    support: full
    details:
      - The diff shows the domain state, the snapshot the domain runs from (as recorded by this module) and the
        snapshot O(preserve_current) names, before and after, as a small dict.
  idempotent:
    support: full
    details:
      - A domain this module started from O(name), still running under the same ID and in the state asked for, is
        reported unchanged, in check mode too.
options:
  domain:
    description:
      - Name of the libvirt domain (guest).
    type: str
    required: true
    aliases: [guest]
  name:
    description:
      - Name of the snapshot to start the domain from. It must exist.
    type: str
    required: true
    aliases: [snapshot]
  state:
    description:
      - The state the domain is left in.
      - V(running) starts the guest's CPUs (libvirt's C(REVERT_RUNNING)).
      - V(paused) leaves its CPUs stopped (C(REVERT_PAUSED)), for example to attach a debugger first; resume it later
        with C(virsh resume) or by running the task again with V(running).
    type: str
    choices: [running, paused]
    default: running
  force:
    description:
      - Start a domain that is running or paused from the snapshot, discarding its current state (its memory and what
        was written to its disks since the snapshot).
      - Not needed for a domain that is shut off, nor with O(preserve_current), which saves that state first.
      - Also passes libvirt's C(REVERT_FORCE), which older libvirt versions need to restart a running guest from a
        snapshot.
    type: bool
    default: false
  preserve_current:
    description:
      - Name of a new snapshot that saves the domain's current state before it is started from O(name), with its
        memory when it is running or paused, its disks only when it is shut off. It is taken like
        M(vmsnap.libvirt.virt_snapshot) takes one with its defaults (O(vmsnap.libvirt.virt_snapshot#module:location=auto)),
        with a description that says why it was taken.
      - Only taken when the domain is started from the snapshot; an unchanged task takes none.
      - A snapshot of that name must not exist yet, unless this module took it when it started the domain that still
        runs (then the task is unchanged). Otherwise the task fails before anything changes, so that an earlier saved
        state is never overwritten or mistaken for the current one.
      - Must differ from O(name). The same rules as for snapshot names apply.
    type: str
  wait:
    description:
      - How many seconds to wait, after starting the domain, until it reports the state asked for in O(state).
      - The task fails, naming the state the domain is in, if it does not get there in time. V(0) checks once.
    type: float
    default: 60
  reset_nvram:
    description:
      - Discard the domain's UEFI variables (NVRAM) and start with a fresh copy of its template (libvirt's
        C(REVERT_RESET_NVRAM)). Only used when the domain is started from the snapshot.
    type: bool
    default: false
notes:
  - The start record lives in the running domain's live definition only; it disappears when the domain is shut off,
    and a revert with M(vmsnap.libvirt.virt_snapshot) replaces it with whatever the snapshot recorded.
  - A snapshot of a domain started by this module records the start record too; reverting to it restores the record
    of that earlier start, whose ID no longer matches once QEMU has restarted.
seealso:
  - module: vmsnap.libvirt.virt_snapshot
    description: Create, delete and revert snapshots; revert to the snapshot O(preserve_current) took.
  - name: libvirt snapshot XML format
    description: What libvirt records about a snapshot.
    link: https://libvirt.org/formatsnapshot.html
  - name: Domain state capture
    description: libvirt's overview of snapshots, checkpoints and saves.
    link: https://libvirt.org/kbase/domainstatecapture.html
'''

EXAMPLES = r'''
- name: Start a shut-off guest from its known-good snapshot
  vmsnap.libvirt.virt_start_from_snapshot:
    domain: web01
    name: known-good

- name: Restart a crashed production guest from a known-good snapshot, keeping its current state for post-mortem
  vmsnap.libvirt.virt_start_from_snapshot:
    domain: web01
    name: known-good
    preserve_current: "crash-{{ now(utc=true, fmt='%Y%m%dT%H%M%SZ') }}"
  register: restarted

- name: Later, copy the preserved disk out of the image to examine it (an internal snapshot of a crashed guest)
  ansible.builtin.command:
    argv: [qemu-img, convert, -U, -l, "snapshot.name={{ restarted.preserved.name }}", -O, qcow2,
           /var/lib/libvirt/images/web01.qcow2, "/srv/postmortem/{{ restarted.preserved.name }}.qcow2"]
  changed_when: true

- name: Start from the snapshot paused, discarding the current state, so a debugger can attach first
  vmsnap.libvirt.virt_start_from_snapshot:
    domain: web01
    name: known-good
    state: paused
    force: true

- name: Set the connection once for every module of the collection
  hosts: hypervisors
  module_defaults:
    group/vmsnap.libvirt.libvirt:
      uri: qemu:///system
  tasks:
    - name: Start a guest from a snapshot
      vmsnap.libvirt.virt_start_from_snapshot:
        domain: web01
        name: known-good
'''

RETURN = r'''
clock:
  description:
    - What was done about the guest's clock after its memory was loaded from the snapshot (see O(clock_sync)).
    - Returned when the task reverts to, or starts from, a snapshot (also in check mode, where RV(clock.synced) and
      RV(clock.behind_seconds) are V(null), since only the guest agent can tell, after the revert).
  returned: always
  type: dict
  contains:
    mode:
      description: The O(clock_sync) in force.
      type: str
      sample: auto
    attempted:
      description: Whether the clock is set through the agent (a running guest resumed from saved memory, and
        O(clock_sync) not V(skip)). Check mode predicts it exactly.
      type: bool
      sample: true
    synced:
      description: Whether the agent set the clock; V(null) in check mode and when nothing was attempted.
      type: bool
      sample: true
    behind_seconds:
      description: How many seconds the guest's clock was behind the host's before it was set (negative when ahead),
        as read through the agent; V(null) when it was not set.
      type: float
      sample: 97.3
    message:
      description: Why the clock was not set (also a warning), or V(null).
      type: str
      sample: null
domain_state:
  description:
    - The domain's state after the task (V(running), V(blocked) or V(paused)); in check mode, as predicted.
  returned: always
  type: str
  sample: running
domain_id:
  description:
    - The domain's ID after the task, libvirt's number for the running QEMU process, which this module records to
      recognise the domain it started.
    - V(null) in check mode when the domain would be started, because libvirt only assigns the ID then.
  returned: always
  type: int
  sample: 7
started_from:
  description:
    - The snapshot the domain was started from, after the task; in check mode, as predicted.
  returned: always
  type: dict
  contains:
    name:
      description: The snapshot's name.
      type: str
      sample: known-good
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
      sample: shutoff
    creation_time:
      description: When the snapshot was taken, in seconds since the epoch.
      type: int
      sample: 1795633778
    creation_time_iso:
      description: The same time in ISO 8601, UTC.
      type: str
      sample: '2026-11-25T19:49:38Z'
    parent:
      description: The parent snapshot, or V(null).
      type: str
      sample: null
    children:
      description: Names of the direct children (including the snapshot O(preserve_current) took, when it was taken
        while this snapshot was current).
      type: list
      elements: str
      sample: [crash-20261125T194938Z]
    is_current:
      description: Whether this is the domain's current snapshot; starting from it makes it current.
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
          sample: "no"
        file:
          description: The memory file of an external snapshot, otherwise V(null).
          type: str
          sample: null
    consistency:
      description:
        - How consistent the snapshot is. V(memory) holds the whole running state (memory and disks); V(quiesced) the
          disks of a running guest whose file systems its agent froze (O(vmsnap.libvirt.virt_snapshot#module:quiesce));
          V(shutoff) the disks of a domain that did not run; V(crash) the disks of a running or paused guest as a power
          cut would leave them.
        - V(quiesced) is read from the note this collection leaves in the snapshot's domain definition; a disk-only
          snapshot of a running guest taken otherwise (for example with C(virsh snapshot-create --quiesce)) reads
          V(crash).
      type: str
      sample: memory
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
preserved:
  description:
    - The snapshot that holds the state the domain had before it was started from RV(started_from), when
      O(preserve_current) names it and this task (or the earlier one that started the domain) took it; otherwise
      V(null).
    - It has the same keys as RV(started_from). In check mode its creation time is V(null).
  returned: always
  type: dict
  sample:
    name: crash-20261125T194938Z
    domain: web01
    description: The state of domain 'web01' (running) before vmsnap.libvirt.virt_start_from_snapshot started it from
      snapshot 'known-good'.
    state: running
    creation_time: 1795633778
    creation_time_iso: '2026-11-25T19:49:38Z'
    parent: known-good
    children: []
    is_current: false
    location: internal
    memory: {snapshot: internal, file: null}
    disks: [{name: vda, snapshot: internal, file: null}]
    consistency: memory
'''

from ansible_collections.vmsnap.libvirt.plugins.module_utils import _common
from ansible_collections.vmsnap.libvirt.plugins.module_utils._actions import Runner, missing_snapshot_error
from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError
from ansible_collections.vmsnap.libvirt.plugins.module_utils._model import validate_snapshot_name
from ansible_collections.vmsnap.libvirt.plugins.module_utils._revert import plan_start


def check_options(params):
    validate_snapshot_name(params['name'])
    if params['preserve_current'] is not None:
        validate_snapshot_name(params['preserve_current'], option='preserve_current')
        if params['preserve_current'] == params['name']:
            raise SnapshotError("preserve_current names a new snapshot to save the current state in; it cannot be the "
                                "snapshot '%s' the domain is started from. Choose another name." % params['name'])
    if params['wait'] < 0:
        raise SnapshotError('wait must be 0 or more seconds; it is %s.' % params['wait'])


def start(module, client):
    params = module.params
    check_options(params)
    dom = client.domain(params['domain'])
    snap = client.find_snapshot(dom, params['name'])
    if snap is None:
        raise missing_snapshot_error(client, dom, params['name'], 'start from')
    target = client.describe_snapshot(snap)
    domain = client.read_domain(dom)
    preserve = params['preserve_current']
    preserved = current_name = None
    if preserve is not None:
        preserved_snap = client.find_snapshot(dom, preserve)
        preserved = client.describe_snapshot(preserved_snap) if preserved_snap is not None else None
        current_name = client.current_snapshot_name(dom)
    host = client.host() if target['location'] != 'internal' or preserve is not None else {}
    descendants = client.describe_descendants(snap) if target['children'] else []
    plan = plan_start(params, domain, target, preserved=preserved, current_name=current_name, host=host, descendants=descendants)

    for warning in plan.warnings:
        module.warn(warning)
    runner = Runner(client, dom)
    if plan.changed and not module.check_mode:
        snap = runner.execute(snap, plan)
        started = client.describe_snapshot(snap)
        kept = None
        if plan.preserved is not None:
            kept = client.describe_snapshot(client.find_snapshot(dom, plan.preserved['name']))
        domain_state = client.domain_state(dom)
        domain_id = client.domain_id(dom)
    else:
        started, kept, domain_state, domain_id = plan.snapshot, plan.preserved, plan.domain_state, plan.domain_id

    result = dict(changed=plan.changed, domain_state=domain_state, domain_id=domain_id, started_from=started,
                  preserved=kept, clock=runner.clock or plan.clock)
    if result['clock']['message']:
        module.warn(result['clock']['message'])
    if module._diff:
        result['diff'] = dict(before=plan.before, after=plan.after)
    return result


def main():
    argument_spec = _common.argument_spec(
        domain=dict(type='str', required=True, aliases=['guest']),
        name=dict(type='str', required=True, aliases=['snapshot']),
        state=dict(type='str', default='running', choices=['running', 'paused']),
        force=dict(type='bool', default=False),
        preserve_current=dict(type='str'),
        wait=dict(type='float', default=60),
        reset_nvram=dict(type='bool', default=False),
        **_common.CLOCK_ARGUMENT_SPEC
    )
    module = _common.new_module(argument_spec, supports_check_mode=True)
    _common.run(module, start)


if __name__ == '__main__':
    main()
