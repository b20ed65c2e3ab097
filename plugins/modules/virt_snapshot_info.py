#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: virt_snapshot_info
short_description: Describe the snapshots of libvirt domains, their tree, and the current snapshot
version_added: 0.1.0
description:
  - Answers what snapshots exist, how they hang together, and which one is current, for one domain, a list of
    domains (names or glob patterns), or every domain on the host.
  - For each domain it returns the snapshots (the same dicts M(vmsnap.libvirt.virt_snapshot) returns), the snapshot
    tree both as nested data and as text like C(virsh snapshot-list --tree), and the current snapshot. It also
    returns what the host can do with snapshots.
  - Filters (O(name), O(roots), O(leaves), O(current), O(location), O(pattern)) choose which snapshots RV(domains[].snapshots)
    lists; they combine, and a snapshot must pass all that are set. The other keys of a domain always describe all of
    its snapshots.
  - With O(include_xml=true) each snapshot carries its full XML, which
    M(vmsnap.libvirt.virt_snapshot) accepts back (O(vmsnap.libvirt.virt_snapshot#module:xml),
    O(vmsnap.libvirt.virt_snapshot#module:redefine=true)) to re-create libvirt's record of snapshots whose data still
    exists, for example after the domain was undefined and defined again, or moved to another host with its disks.
  - Reading is cheap. Domains are looked up by name; the host's domains are listed only when a glob pattern is given,
    or no domain at all. Each domain then costs one call to list its snapshots, one XML fetch per snapshot, and one
    call for its current snapshot.
author:
  - vmsnap.libvirt contributors (@vmsnap)
extends_documentation_fragment:
  - vmsnap.libvirt.connection
  - vmsnap.libvirt.attributes
attributes:
  check_mode:
    support: full
    details:
      - The module only reads. Check mode runs it unchanged and returns the same result.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - The module changes nothing; C(changed) is always V(false).
options:
  domain:
    description:
      - Name of the one domain to describe. It must exist.
      - Mutually exclusive with O(domains). Without both, every domain of the host is described.
    type: str
    aliases: [guest]
  domains:
    description:
      - Names or glob patterns (C(*), C(?), C([...]), matched case-sensitively) of the domains to describe.
      - A name that does not exist is a failure; a pattern that matches nothing selects nothing. An empty list selects
        no domain.
      - Domains are reported in the order of this list, the matches of each pattern sorted by name, each domain once.
    type: list
    elements: str
  name:
    description:
      - Describe only the snapshot with this name. It must exist in every domain described; use O(pattern) to list it
        only where it exists.
    type: str
    aliases: [snapshot]
  roots:
    description:
      - V(true) lists only snapshots without a parent. V(false) does not filter.
    type: bool
    default: false
  leaves:
    description:
      - V(true) lists only snapshots without children. V(false) does not filter.
    type: bool
    default: false
  current:
    description:
      - V(true) lists only the domain's current snapshot (none when the domain has no current snapshot).
        V(false) does not filter.
    type: bool
    default: false
  location:
    description:
      - List only internal or only external snapshots. A snapshot with both internal and external parts
        (C(mixed)) matches neither.
    type: str
    choices: [internal, external]
  pattern:
    description:
      - List only snapshots whose name matches this glob pattern (C(*), C(?), C([...]), case-sensitive).
      - A plain name lists that snapshot where it exists and nothing elsewhere, without failing.
    type: str
  include_xml:
    description:
      - Add each listed snapshot's full XML as RV(domains[].snapshots[].xml), for
        M(vmsnap.libvirt.virt_snapshot) to redefine it later.
      - The XML is fetched with libvirt's C(VIR_DOMAIN_SNAPSHOT_XML_SECURE), like C(virsh snapshot-dumpxml
        --security-info), so that a redefine is faithful. It can hold secrets of the recorded domain definition, such
        as graphics passwords; use C(no_log) on the task where that matters. It needs a connection that may read
        secure data (not a read-only one).
    type: bool
    default: false
notes:
  - The nested RV(domains[].tree) stops at 64 levels, because Ansible cannot carry nested data much deeper. When it
    was cut, RV(domains[].tree_truncated) is V(true); RV(domains[].tree_text) and the C(parent) and C(children) of each
    snapshot are always complete.
  - RV(domains[].tree_text) indents each level by four characters, as virsh does, so for a long chain of snapshots
    (each the child of the one before) it grows with the square of their number (about 4 MB for a chain of 1,000).
seealso:
  - module: vmsnap.libvirt.virt_snapshot
  - name: libvirt snapshot XML format
    description: What libvirt records about a snapshot.
    link: https://libvirt.org/formatsnapshot.html
'''

EXAMPLES = r'''
- name: Describe the snapshots of one domain
  vmsnap.libvirt.virt_snapshot_info:
    domain: web01
  register: web01_snapshots

- name: Show the snapshot tree
  ansible.builtin.debug:
    msg: "{{ web01_snapshots.domains[0].tree_text.splitlines() }}"

- name: Fail unless the snapshot taken before the upgrade exists
  vmsnap.libvirt.virt_snapshot_info:
    domain: web01
    name: before-upgrade

- name: List the leaf snapshots of every domain whose name starts with web
  vmsnap.libvirt.virt_snapshot_info:
    domains:
      - web*
    leaves: true
  register: leaves

- name: Find every domain on the host that has a snapshot named nightly
  vmsnap.libvirt.virt_snapshot_info:
    pattern: nightly
  register: nightly

- name: Print those domains
  ansible.builtin.debug:
    msg: "{{ nightly.domains | selectattr('snapshots') | map(attribute='domain') | list }}"

- name: Export the snapshot metadata of a domain before undefining it
  vmsnap.libvirt.virt_snapshot_info:
    domain: web01
    include_xml: true
  register: exported
  no_log: true

- name: After defining the domain again, re-create its snapshots' metadata, parents first
  vmsnap.libvirt.virt_snapshot:
    domain: web01
    name: "{{ item.name }}"
    xml: "{{ item.xml }}"
    redefine: true
    current: "{{ item.is_current }}"
  loop: "{{ exported.domains[0].snapshots }}"
  loop_control:
    label: "{{ item.name }}"
  no_log: true
'''

RETURN = r'''
domains:
  description:
    - One entry per domain described.
    - Empty when O(domains) matches no domain.
  returned: always
  type: list
  elements: dict
  contains:
    domain:
      description: The domain's name.
      type: str
      sample: web01
    state:
      description:
        - The domain's state, V(running), V(blocked), V(paused), V(shutdown), V(shutoff), V(crashed), V(pmsuspended)
          or V(nostate).
      type: str
      sample: running
    persistent:
      description: Whether the domain is defined (persistent) rather than transient.
      type: bool
      sample: true
    current_snapshot:
      description: The name of the domain's current snapshot, or V(null) when it has none.
      type: str
      sample: before-upgrade
    count:
      description: How many snapshots the domain has, before any filter.
      type: int
      sample: 3
    snapshots:
      description:
        - The snapshots that pass the filters, each after its parent (so the list can be redefined in order), siblings
          sorted by name as virsh sorts them.
        - Each is the dict M(vmsnap.libvirt.virt_snapshot) returns as its RV(vmsnap.libvirt.virt_snapshot#module:snapshot).
      type: list
      elements: dict
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
          description: When the snapshot was taken, in seconds since the epoch.
          type: int
          sample: 1795633778
        creation_time_iso:
          description: The same time in ISO 8601, UTC.
          type: str
          sample: '2026-11-25T19:49:38Z'
        parent:
          description: The parent snapshot, or V(null) for a root.
          type: str
          sample: base
        children:
          description: Names of the direct children, sorted.
          type: list
          elements: str
          sample: [after-upgrade]
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
        xml:
          description:
            - The snapshot's full XML, security-sensitive parts included, for
              O(vmsnap.libvirt.virt_snapshot#module:xml).
          returned: when O(include_xml=true)
          type: str
          sample: "<domainsnapshot><name>before-upgrade</name>...</domainsnapshot>"
    tree:
      description:
        - The domain's snapshot tree as nested dicts, one per root snapshot, siblings sorted by name as virsh sorts them.
        - Nesting stops at 64 levels (see RV(domains[].tree_truncated)).
      type: list
      elements: dict
      contains:
        name:
          description: The snapshot's name.
          type: str
          sample: base
        children:
          description: The snapshot's children, each again a dict with C(name) and C(children).
          type: list
          elements: dict
          sample: [{name: after-upgrade, children: []}]
    tree_truncated:
      description:
        - Whether RV(domains[].tree) was cut at 64 levels; snapshots there have an empty C(children) list even where
          they have children.
      type: bool
      sample: false
    tree_text:
      description:
        - The snapshot tree as the lines C(virsh snapshot-list --tree) prints, joined by newlines, with
          C( (current)) after the current snapshot's name. Empty when the domain has no snapshots.
      type: str
      sample: "base\n  |\n  +- before-upgrade (current)\n    \n"
host:
  description: What the host can do with snapshots.
  returned: always
  type: dict
  contains:
    uri:
      description: The connection URI, any password in it replaced by C(********).
      type: str
      sample: qemu:///system
    libvirt_version:
      description: The version of the libvirt daemon.
      type: str
      sample: 9.0.0
    hypervisor_version:
      description: The version of the hypervisor (QEMU for C(qemu://) URIs), or V(null) where the driver does not say.
      type: str
      sample: 7.2.22
    external_revert:
      description: Whether the host can revert to external snapshots (it advertises C(<externalSnapshot/>), libvirt 9.9 and later).
      type: bool
      sample: false
    external_delete:
      description: Whether libvirt deletes external snapshots itself, merging their overlays (libvirt 9.0 and later).
      type: bool
      sample: true
'''

from ansible_collections.vmsnap.libvirt.plugins.module_utils import _common
from ansible_collections.vmsnap.libvirt.plugins.module_utils._info import gather


def describe(module, client):
    result = gather(client, module.params)
    result['changed'] = False
    return result


def main():
    argument_spec = _common.argument_spec(
        domain=dict(type='str', aliases=['guest']),
        domains=dict(type='list', elements='str'),
        name=dict(type='str', aliases=['snapshot']),
        roots=dict(type='bool', default=False),
        leaves=dict(type='bool', default=False),
        current=dict(type='bool', default=False),
        location=dict(type='str', choices=['internal', 'external']),
        pattern=dict(type='str'),
        include_xml=dict(type='bool', default=False),
    )
    module = _common.new_module(argument_spec, supports_check_mode=True,
                                mutually_exclusive=[('domain', 'domains')])
    _common.run(module, describe)


if __name__ == '__main__':
    main()
