#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: virt_snapshot
short_description: Create, describe, update, rename, delete, merge and revert snapshots of libvirt domains
version_added: 0.1.0
description:
  - Makes a named snapshot of a libvirt domain exist (O(state=present)), not exist (O(state=absent) discards it,
    O(state=merged) folds an external snapshot's overlay into its base image), or be the state the domain is reverted
    to (O(state=reverted)).
  - The snapshot name is the key. A second run with the same options reports no change, in check mode too.
  - A new snapshot of a running or paused domain includes its memory by default, so that reverting to it resumes the
    guest instead of leaving it powered off.
  - Snapshots are created atomically (libvirt's C(VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC)); either every disk is
    snapshotted, or nothing changes.
  - Before anything changes, requests that cannot work fail with a message naming the disk, file or option at fault,
    for example an internal snapshot of a raw disk or an overlay file that already exists. The same goes for deletes
    and merges libvirt would refuse in trees that mix internal and external snapshots.
  - An operation that would remove or invalidate other snapshots the task does not name fails unless O(force=true),
    and its message (and the failure's C(affected) list) names them. O(children) and O(children_only) name the
    snapshots below as the ones to delete, so they need no O(force); check mode reports what goes in RV(deleted).
  - With O(domains) instead of O(domain), one task does the same to the same-named snapshot of many domains, several
    at a time (O(parallel)); RV(results) holds each domain's result. A domain that fails does not stop the others;
    the task then fails and its message names each domain that failed and why. O(consistency=group) takes the
    snapshots of the whole set at one instant.
  - O(state=absent) with O(pattern) or O(all=true) deletes many snapshots of each domain in one task, children
    before parents, and O(keep_newest) turns that into retention. It deletes exactly the snapshots it selects.
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
      - Check mode reads the domain and its snapshots, computes the same plan as a real run, and changes nothing.
        Its result has the same keys; the predicted RV(snapshot) has no creation time yet.
      - With O(domains), each domain is planned as in a real run; with O(consistency=group) RV(group) names the
        domains that would be paused. With O(pattern) or O(all=true), RV(deleted) lists exactly what would go.
  diff_mode:
    support: full
    details:
      - The diff shows the snapshot before and after as a small dict, not XML. For O(state=reverted) it also shows
        the domain state.
      - With O(pattern) or O(all=true) it shows the names of the domain's snapshots before and after.
      - With O(domains), each entry of RV(results) has its domain's diff, and the task's diff holds them all, keyed
        by domain name.
  idempotent:
    support: partial
    details:
      - O(state=present), O(state=absent) and O(state=merged) are idempotent; a rename is done when the new name
        exists and the old one does not.
      - A redefine (O(redefine=true)) leaves a snapshot alone when its record already matches O(xml).
      - O(pattern) and O(all=true) are idempotent; a second run finds nothing left to delete (with O(keep_newest),
        until newer matching snapshots are taken). O(domains) is idempotent as far as what it does to each domain is.
      - O(state=reverted) always reverts and always reports a change.
options:
  domain:
    description:
      - Name of the libvirt domain (guest).
      - Exactly one of O(domain) and O(domains) is required.
    type: str
    aliases: [guest]
  domains:
    description:
      - Names of domains, or glob patterns on domain names (C(*), C(?), C([...]), case-sensitive), to do the same to
        each of them in one task. Exactly one of O(domain) and O(domains) is required.
      - Plain names are looked up by name; a missing one fails that domain only. The host's domains are listed (once)
        only when there is a pattern. A pattern that matches no domain is a warning. Each domain is handled once, in
        the order given (the matches of a pattern in name order).
      - Each domain gets exactly what O(domain) would do to it, and its result is an entry of RV(results). The
        top-level RV(snapshot), RV(domain_state), RV(deleted) and RV(merged) are then not returned.
      - A domain that fails does not stop the others. The task fails when any failed, and its message names each
        one and why.
      - Cannot be combined with O(memory_file), O(disks[].file) or O(xml), which each name one domain's file or
        snapshot.
    type: list
    elements: str
  parallel:
    description:
      - With O(domains), how many domains are handled at a time.
      - The workers share one libvirt connection. libvirt serves up to C(max_client_requests) calls of a connection at
        once (5 by default, in C(libvirtd.conf) or C(virtqemud.conf)), so more than that gains little.
    type: int
    default: 4
  consistency:
    description:
      - With O(domains) and O(state=present), V(independent) snapshots each domain on its own.
      - V(group) captures the set at one instant (a database and its application servers). Every domain is planned
        first; if any cannot be snapshotted, nothing is paused or taken. Then every running domain that gets a new
        snapshot is held still, all the snapshots are taken, and the domains are let go, also when a snapshot
        fails, so that nothing is left paused or frozen; RV(group) lists the domains held and let go, and how long
        each was held. Domains that were paused or shut off already are left as they are.
      - A running domain is held still by a pause, unless its snapshot is disk-only and O(quiesce) quiesces it; then
        its file systems are frozen through its agent instead (C(virsh domfsfreeze)), and thawed once every snapshot
        is taken, so the set is application-consistent and no guest stops. The freeze is bounded by
        O(quiesce_timeout); a freeze that fails is thawed, and then fails the task with O(quiesce=true), or pauses
        that domain instead with O(quiesce=auto) (its snapshot is then crash-consistent, with a warning).
      - Paused domains stay paused while the snapshots are taken, which for memory snapshots is as long as saving the
        largest guest's memory takes; frozen ones stay frozen as long as the disk-only snapshots take (well under a
        second each).
      - Up to O(parallel) domains are paused or frozen at a time, and let go at a time. A freeze waits for the guest
        to flush its file systems, and one guest after the other the first one would stay frozen while all the others
        flush theirs. With O(parallel=1) they are held and let go in the order of O(domains).
      - A memory snapshot of a domain the group paused records the state V(running), as libvirt does for a domain it
        pauses itself while it saves the memory; reverting to it resumes the domain.
      - A snapshot that fails while the set is paused leaves the others taken; the task fails and names it. Running
        the task again would take the missing snapshot at another instant; to retake the set, delete it first
        (O(state=absent) with the same O(domains)).
    type: str
    choices: [independent, group]
    default: independent
  name:
    description:
      - Name of the snapshot. It is the idempotency key within the domain.
      - Printable characters, at most 247 bytes in UTF-8 (libvirt stores the snapshot in a file named after it), no
        C(/), not starting with C(.) and without leading or trailing white space.
        XML special characters and any Unicode are stored exactly.
      - Required, except with O(state=absent) and O(pattern) or O(all=true), which choose the snapshots instead.
    type: str
    aliases: [snapshot]
  state:
    description:
      - V(present) creates the snapshot if it does not exist, and updates its O(description) if it differs.
      - V(absent) deletes it (see O(children), O(children_only), O(metadata_only)), or the snapshots O(pattern) or
        O(all=true) select (see O(keep_newest)). A snapshot that does not exist is
        left alone and reported unchanged. An external snapshot is deleted by libvirt, which merges its overlay (libvirt
        9.0 and later); on older libvirt it is merged as with V(merged). Its memory file is removed.
      - V(merged) folds an external snapshot's overlay, and every layer above it, into the image below it, then removes
        the snapshot's record and its overlay and memory files. A running or paused domain keeps running; libvirt
        commits the active layer and pivots to the base, and the overlay files are removed only after the pivot. A
        shut-off domain is merged with C(qemu-img commit) and its definition updated, which needs a local O(uri). Other
        snapshots taken on top of this one are folded too, so they need O(force=true). A snapshot that does not exist
        is left alone and reported unchanged.
      - V(reverted) reverts the domain to the snapshot. A snapshot that does not exist is a failure.
    type: str
    choices: [present, absent, merged, reverted]
    default: present
  description:
    description:
      - Description of the snapshot. Set when the snapshot is created.
      - If the snapshot exists with another description, it is updated in place (libvirt's redefine) and the task
        reports a change. An empty string removes the description. When not set, an existing description is kept.
      - Any text XML can carry, except carriage returns (libvirt would turn them into newlines, so the description
        could never match). Only with O(state=present).
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
  live:
    description:
      - Save the memory of an external snapshot while the guest keeps running (libvirt's C(LIVE)), instead of pausing
        the guest for the whole save. QEMU copies the memory in passes while the guest runs, then pauses it to copy
        what it wrote meanwhile and to put its disks on their overlays; the snapshot records it as running. Measured
        on a 1 GiB guest here, it stopped for 0.58 s against 2.16 s for an internal snapshot and 3.70 s for an
        external one without C(live) (docs/benchmarks.md).
      - The trade-off is time and space. A guest that keeps rewriting its memory makes QEMU copy it again on each
        pass, so the task takes longer and the memory file grows beyond the memory in use (up to several times the
        guest's memory on a guest rewriting hundreds of MiB a second); nothing bounds how long that goes on.
      - Only with O(state=present), a running domain, memory saved (O(memory) unset or V(true)) and an external
        snapshot (O(location=external), or V(auto) on a host that can revert external snapshots). Otherwise the
        task fails before anything changes.
      - Reverting to an external snapshot with memory needs libvirt 9.9 or later; elsewhere it is refused before
        acting, as for every external snapshot.
    type: bool
    default: false
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
  new_name:
    description:
      - With O(state=present), rename the snapshot O(name) to this name. Its children are updated to the new name.
      - Only external snapshots can be renamed, because their name lives only in libvirt's record. An internal snapshot's
        name is also the tag inside the qcow2 image that a revert loads, so renaming one is refused.
      - Done (no change) when O(new_name) exists and O(name) does not; a failure when both or neither exist.
      - Cannot be combined with options that shape a new snapshot.
    type: str
  xml:
    description:
      - The full XML of a snapshot, as M(vmsnap.libvirt.virt_snapshot_info) returns it with
        O(vmsnap.libvirt.virt_snapshot_info#module:include_xml=true), to re-create libvirt's record of a snapshot whose
        data still exists (after the domain was undefined and defined again, or moved to another host with its disks).
      - Needs O(redefine=true) and O(state=present). The name in the XML must equal O(name). Cannot be combined with
        options that shape a new snapshot, nor with O(new_name).
      - A snapshot's parent must exist before it can be redefined, so redefine a domain's snapshots parents first (the
        order in which M(vmsnap.libvirt.virt_snapshot_info) lists them).
      - The XML can hold secrets of the recorded domain definition; use C(no_log) on the task where that matters.
    type: str
  redefine:
    description:
      - Re-create (or update) libvirt's record of the snapshot from O(xml) (libvirt's C(REDEFINE)). No data is
        written; the snapshot's data (inside the qcow2 images, or its overlay and memory files) must still be there
        for a later revert to work.
      - When the snapshot exists with the same description, state, creation time, parent, memory and disks as O(xml),
        nothing changes.
    type: bool
    default: false
  current:
    description:
      - With O(redefine=true), make the snapshot the domain's current snapshot (libvirt's C(REDEFINE_CURRENT)).
      - V(false) leaves the current marker where it is. To restore exported snapshots faithfully, pass each one's
        C(is_current) from M(vmsnap.libvirt.virt_snapshot_info).
    type: bool
    default: false
  quiesce:
    description:
      - Freeze the guest's file systems through its QEMU guest agent while a disk-only snapshot is taken (libvirt's
        C(QUIESCE), which thaws them as soon as the snapshot is taken), so that its disks hold file systems as clean
        as after a C(sync), not as a power cut leaves them. RV(snapshot.consistency) says what each snapshot got.
      - V(true) takes the snapshot quiesced or not at all. It needs a running guest (a paused one cannot freeze),
        O(memory=false), an external snapshot, and an agent that answers; otherwise the task fails before anything
        changes, naming why. A freeze that fails or runs out of O(quiesce_timeout) is thawed and fails the task.
      - V(auto) quiesces where the agent answers, and otherwise takes a crash-consistent snapshot with a warning
        that says why (a paused guest, an agent that does not answer, a freeze that failed and was thawed). With
        memory, or on a shut-off domain, nothing is frozen, since such snapshots are consistent anyway.
      - V(false) never freezes.
      - Whether the agent answers is asked before acting (reading the guest's clock, which changes nothing), so
        check mode predicts V(quiesced) or the refusal.
      - Only with O(state=present).
    type: str
    choices: ['false', 'true', 'auto']
    default: 'false'
  quiesce_timeout:
    description:
      - How many seconds the guest agent has to answer, when O(quiesce) freezes the guest; this bounds the question
        whether it answers, the freeze (the agent's freeze hooks included), and the thaw after a freeze that failed.
      - For the time of the snapshot libvirt waits at most this long for each answer of the domain's agent; afterwards
        it waits as long as it takes again (libvirt's default for a domain, which a timeout set with
        C(virsh guest-agent-timeout) before is not restored to).
      - A freeze that does not answer in time is thawed, trying for O(quiesce_timeout) seconds more (at least 30)
        while the agent stays busy, since a freeze still under way in the guest (a slow freeze hook) freezes the file
        systems when it ends; when the thaw does not succeed either, the task fails saying that the guest's file
        systems may be frozen and how to thaw them (C(virsh domfsthaw)).
      - Only with O(state=present).
    type: float
    default: 60
  children:
    description:
      - With O(state=absent), also delete every snapshot below this one (its whole subtree), as libvirt's
        C(DELETE_CHILDREN) does; naming it is the request, so it needs no O(force). RV(deleted) lists every snapshot
        that goes, in check mode too.
      - Without it, only this snapshot is deleted and its children are re-parented to its parent.
      - libvirt deletes external snapshots only one at a time, so the subtree of an external snapshot is merged as
        with O(state=merged), which keeps the domain's current data just as libvirt's delete does. A subtree that
        holds external snapshots below an internal one is refused before anything changes, naming the external
        snapshots to merge first.
    type: bool
    default: false
  children_only:
    description:
      - With O(state=absent), keep this snapshot and delete every snapshot below it, as libvirt's
        C(DELETE_CHILDREN_ONLY) does; naming it is the request, so it needs no O(force). RV(deleted) lists every
        snapshot that goes, in check mode too.
      - Refused before anything changes when external snapshots are below it (libvirt deletes those only one at a
        time); the message names the snapshot to merge with O(state=merged) and O(force=true) instead.
      - Mutually exclusive with O(children).
    type: bool
    default: false
  metadata_only:
    description:
      - With O(state=absent), make libvirt forget the snapshot but keep its data (the internal snapshot in the qcow2
        image, or the external overlay and memory files). The metadata can be re-created later.
    type: bool
    default: false
  pattern:
    description:
      - With O(state=absent), delete every snapshot whose name matches this glob (C(*), C(?), C([...]),
        case-sensitive), instead of the one snapshot O(name).
      - Snapshots are deleted one at a time, children before parents, so the overlays of external snapshots are
        merged from the top down. The children of a deleted snapshot that the pattern does not match are re-parented,
        never deleted. Before anything changes, the whole sequence is planned on the tree as each delete leaves it; if
        any delete would fail, or would take along a snapshot the pattern does not select, nothing is deleted and the
        message says which snapshot and why.
      - Cannot be combined with O(name), O(all), O(children), O(children_only) or O(force).
    type: str
  all:
    description:
      - With O(state=absent), delete every snapshot of the domain, as O(pattern) does for those it matches.
    type: bool
    default: false
  keep_newest:
    description:
      - With O(pattern) or O(all=true), keep this many of the selected snapshots, the newest by creation time, and
        delete the others. Snapshots the pattern does not match are never deleted, nor counted.
      - Snapshots taken within the same second tie; a child counts as newer than its parent, and otherwise the later
        name (in the order of C(virsh snapshot-list)) counts as newer.
      - V(0) keeps none.
    type: int
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
      - Allow an operation that removes or invalidates other snapshots the task does not name, namely merging a
        snapshot other snapshots were taken on top of, or reverting to an internal snapshot below which external
        snapshots were taken (the revert drops their overlays). Deleting a subtree needs no O(force), since O(children)
        and O(children_only) name it.
      - With O(state=reverted), also revert where libvirt considers it risky (libvirt's C(REVERT_FORCE)), for example
        when the snapshot's configuration cannot be checked against the running domain.
    type: bool
    default: false
  merge_timeout:
    description:
      - With O(state=merged) (or a merge done for O(state=absent) on libvirt before 9.0), how many seconds to wait for
        the block commit of one disk to be ready to pivot. On timeout the job is stopped, the disk stays on its
        overlay, and nothing is lost.
    type: float
    default: 3600
notes:
  - Reverting discards the domain's current state. To keep it for later examination, take a snapshot first, or use
    M(vmsnap.libvirt.virt_start_from_snapshot) with its C(preserve_current) option.
  - External snapshots leave the domain writing to overlay files. On libvirt 9.0 and later, O(state=absent) merges them
    back; reverting to them needs libvirt 9.9 or later.
  - While it creates a snapshot of a running guest, the module keeps a small private note (the pause journal) on the
    host it runs on, in C(/run/vmsnap.libvirt) for root, else in C($XDG_RUNTIME_DIR/vmsnap.libvirt) or a folder of the
    user's own in the temporary directory. The note is removed once libvirt answers. When the libvirt daemon stops in
    the middle of the create, the note stays, and the next create of that guest knows that the pause libvirt then
    reports as the user's is the interrupted snapshot's, resumes the guest first and warns; a guest paused on purpose is
    left paused.
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

- name: Snapshot every web server's disks, quiesced where its agent answers, crash-consistent (with a warning) elsewhere
  vmsnap.libvirt.virt_snapshot:
    domains: ['web*']
    name: nightly
    location: external
    memory: false
    quiesce: auto
    quiesce_timeout: 20
  register: nightly

- name: Name the domains whose snapshot is only crash-consistent
  ansible.builtin.debug:
    msg: "{{ nightly.results | selectattr('snapshot', 'defined') | rejectattr('snapshot', 'none')
             | selectattr('snapshot.consistency', 'equalto', 'crash') | map(attribute='domain') | list }}"

- name: Take an external snapshot with memory while the guest keeps running (libvirt 9.9 and later revert it)
  vmsnap.libvirt.virt_snapshot:
    domain: app01
    name: before-migration
    location: external
    live: true

- name: Leave the scratch disk out of an external snapshot
  vmsnap.libvirt.virt_snapshot:
    domain: build01
    name: clean
    location: external
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

- name: Keep the changes made since an external snapshot and fold its overlay into the base image
  vmsnap.libvirt.virt_snapshot:
    domain: db01
    name: nightly
    state: merged

- name: Rename an external snapshot
  vmsnap.libvirt.virt_snapshot:
    domain: db01
    name: nightly
    new_name: nightly-2026-11-25

- name: Export the snapshot metadata of a domain
  vmsnap.libvirt.virt_snapshot_info:
    domain: web01
    include_xml: true
  register: exported

- name: Re-create it after the domain was undefined and defined again (parents first, the current marker restored)
  vmsnap.libvirt.virt_snapshot:
    domain: web01
    name: "{{ item.name }}"
    xml: "{{ item.xml }}"
    redefine: true
    current: "{{ item.is_current }}"
  loop: "{{ exported.domains[0].snapshots }}"
  loop_control:
    label: "{{ item.name }}"

- name: Snapshot every web server and the database in one task, four at a time
  vmsnap.libvirt.virt_snapshot:
    domains:
      - "web*"
      - db01
    name: before-upgrade

- name: Snapshot the database and its application servers at the same instant
  vmsnap.libvirt.virt_snapshot:
    domains: [db01, "app*"]
    name: consistent-2026-11-25
    consistency: group

- name: Revert the whole fleet to the snapshot
  vmsnap.libvirt.virt_snapshot:
    domains: ["web*", db01]
    name: before-upgrade
    state: reverted

- name: Keep the seven newest nightly snapshots of every web server, and delete the older nightlies
  vmsnap.libvirt.virt_snapshot:
    domains: ["web*"]
    pattern: nightly-*
    keep_newest: 7
    state: absent

- name: Delete every snapshot of a guest, children first
  vmsnap.libvirt.virt_snapshot:
    domain: build01
    all: true
    state: absent

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
    - V(null) when it does not exist afterwards (O(state=absent)), and with O(pattern) or O(all=true).
  returned: with O(domain)
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
domain_state:
  description: The domain's state after the task (predicted in check mode).
  returned: with O(domain)
  type: str
  sample: running
clock:
  description:
    - What was done about the guest's clock after its memory was loaded from the snapshot (see O(clock_sync)).
    - Returned when the task reverts to, or starts from, a snapshot (also in check mode, where RV(clock.synced) and
      RV(clock.behind_seconds) are V(null), since only the guest agent can tell, after the revert).
  returned: with O(domain) and O(state=reverted)
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
quiesce:
  description:
    - What O(quiesce) got the new snapshot; RV(snapshot.consistency) says the same in one word.
    - Check mode predicts it from whether the agent answers now; only a real run can find that a freeze fails (then
      RV(quiesce.quiesced) is V(false) after a V(true) prediction, with the reason).
  returned: with O(domain), when O(quiesce) is V(true) or V(auto) and the task creates a snapshot
  type: dict
  contains:
    mode:
      description: The O(quiesce) in force, V(true) or V(auto).
      type: str
      sample: auto
    quiesced:
      description: Whether the guest's file systems were frozen while the snapshot was taken.
      type: bool
      sample: false
    reason:
      description: Why O(quiesce=auto) took the snapshot without freezing a running or paused guest (also a
        warning), or V(null). With memory, or on a shut-off domain, nothing is frozen and there is no reason to give.
      type: str
      sample: "the guest agent of domain 'db01' did not answer: it did not answer within 20 s."
deleted:
  description:
    - Names of the snapshots deleted (or that would be, in check mode), the named one first.
    - With O(pattern) or O(all=true), in the order they are deleted (children before parents).
  returned: with O(domain)
  type: list
  elements: str
  sample: [before-upgrade, after-upgrade]
merged:
  description:
    - What was merged where, one entry per disk, by O(state=merged) or by an O(state=absent) that merges (the subtree
      of an external snapshot with O(children=true), or an external snapshot on libvirt before 9.0). Empty otherwise.
  returned: with O(domain)
  type: list
  elements: dict
  contains:
    disk:
      description: The disk's target device.
      type: str
      sample: vda
    top:
      description: The layer the disk wrote to before the merge.
      type: str
      sample: /var/lib/libvirt/images/web01.before-upgrade
    base:
      description: The image the layers were merged into, which the disk uses afterwards.
      type: str
      sample: /var/lib/libvirt/images/web01.qcow2
    base_format:
      description: The base image's format.
      type: str
      sample: qcow2
    overlays:
      description: The overlay files folded into the base and removed, top first.
      type: list
      elements: str
      sample: [/var/lib/libvirt/images/web01.before-upgrade]
    job_size:
      description: The size of the block commit job as libvirt reports it (QEMU counts bytes); V(null) in check mode
        and for a shut-off domain.
      type: int
      sample: 1048576
kept:
  description:
    - With O(pattern) or O(all=true), the selected snapshots that O(keep_newest) kept, newest first (empty without
      O(keep_newest)).
  returned: with O(domain) and O(pattern) or O(all=true)
  type: list
  elements: str
  sample: [nightly-2026-11-25, nightly-2026-11-24]
results:
  description:
    - With O(domains), one entry per domain, in the order O(domains) chose them.
    - An entry holds what the task returns with O(domain) for that domain (RV(snapshot), RV(domain_state),
      RV(deleted), RV(merged), RV(kept) with O(pattern) or O(all=true), and C(changed) and C(diff)), and C(domain),
      the domain's name.
    - The entry of a domain that failed has C(domain), C(failed=true), C(changed), and C(msg) saying why, plus the
      failure's details (for example C(affected), the snapshots an operation would have removed).
    - With O(consistency=group), when a domain cannot be snapshotted, the entries of the others have C(skipped=true)
      and a C(msg) saying that nothing was taken.
  returned: with O(domains)
  type: list
  elements: dict
  sample:
    - domain: web01
      changed: true
      snapshot:
        name: before-upgrade
        domain: web01
        description: null
        state: running
        creation_time: 1795633778
        creation_time_iso: '2026-11-25T19:49:38Z'
        parent: null
        children: []
        is_current: true
        location: internal
        memory: {snapshot: internal, file: null}
        disks: [{name: vda, snapshot: internal, file: null}]
        consistency: memory
      domain_state: running
      deleted: []
      merged: []
    - domain: web02
      changed: false
      failed: true
      msg: "Domain 'web02' does not exist on qemu:///system. Check the name with `virsh list --all`; domain names are
        case-sensitive."
group:
  description:
    - With O(consistency=group), the domains held still to take the set at one instant, how, and for how long (in
      check mode, those that would be). RV(group.paused) and RV(group.resumed) are the same unless a resume failed,
      RV(group.frozen) and RV(group.thawed) unless a thaw failed; either fails the task.
  returned: with O(consistency=group)
  type: dict
  contains:
    paused:
      description: Names of the domains paused.
      type: list
      elements: str
      sample: [app01]
    resumed:
      description: Names of the domains resumed.
      type: list
      elements: str
      sample: [app01]
    frozen:
      description: Names of the domains whose file systems were frozen through their agents instead of pausing them.
      type: list
      elements: str
      sample: [db01]
    thawed:
      description: Names of the domains thawed.
      type: list
      elements: str
      sample: [db01]
    seconds:
      description: For each domain held, how many seconds it stayed paused or frozen; V(null) in check mode.
      type: dict
      sample: {db01: 0.412, app01: 0.388}
  sample: {paused: [app01], resumed: [app01], frozen: [db01], thawed: [db01], seconds: {db01: 0.412, app01: 0.388}}
'''

from ansible_collections.vmsnap.libvirt.plugins.module_utils import _common
from ansible_collections.vmsnap.libvirt.plugins.module_utils._domain_run import manage_domain
from ansible_collections.vmsnap.libvirt.plugins.module_utils._group import take_group
from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError
from ansible_collections.vmsnap.libvirt.plugins.module_utils._options import check_options
from ansible_collections.vmsnap.libvirt.plugins.module_utils._read import qemu_img


def manage(module, client):
    params = module.params
    check_options(params, module.argument_spec)
    command = qemu_img(module.get_bin_path('qemu-img'))
    if params['domains'] is None:
        result, warnings = manage_domain(params, client, check_mode=module.check_mode, diff=module._diff, command=command)
        for warning in warnings:
            module.warn(warning)
        return result

    # Imported here, not at the top: Ansible compiles every imported module_utils file from the module's zip on each
    # run, and a task on one domain needs neither the pool nor the glob matching.
    from ansible_collections.vmsnap.libvirt.plugins.module_utils import _batch
    client.connect()
    targets, warnings = _batch.resolve(client, params['domains'])
    group = None
    if params['consistency'] == 'group':
        outcomes, group = take_group(params, client, check_mode=module.check_mode, diff=module._diff, command=command, targets=targets)
    else:
        outcomes = _batch.run_each(targets, lambda name, dom: manage_domain(
            dict(params, domain=name), client, check_mode=module.check_mode, diff=module._diff, command=command, dom=dom), params['parallel'])
    result, domain_warnings, failure = _batch.summarize(outcomes, module._diff)
    for warning in warnings + domain_warnings:
        module.warn(warning)
    if group is not None:
        result['group'] = group
    if failure is not None:
        raise SnapshotError(failure.msg, **result)
    return result


def main():
    argument_spec = _common.argument_spec(
        domain=dict(type='str', aliases=['guest']),
        domains=dict(type='list', elements='str'),
        name=dict(type='str', aliases=['snapshot']),
        state=dict(type='str', default='present', choices=['present', 'absent', 'merged', 'reverted']),
        description=dict(type='str'),
        memory=dict(type='bool'),
        location=dict(type='str', default='auto', choices=['auto', 'internal', 'external']),
        memory_file=dict(type='path'),
        disks=dict(type='list', elements='dict', options=dict(
            name=dict(type='str', required=True),
            snapshot=dict(type='str', choices=['internal', 'external', 'no']),
            file=dict(type='path'),
        )),
        quiesce=dict(type='str', default='false', choices=['false', 'true', 'auto']),
        quiesce_timeout=dict(type='float', default=60),
        live=dict(type='bool', default=False),
        new_name=dict(type='str'),
        xml=dict(type='str'),
        redefine=dict(type='bool', default=False),
        current=dict(type='bool', default=False),
        children=dict(type='bool', default=False),
        children_only=dict(type='bool', default=False),
        metadata_only=dict(type='bool', default=False),
        all=dict(type='bool', default=False),
        pattern=dict(type='str'),
        keep_newest=dict(type='int'),
        revert_state=dict(type='str', default='snapshot', choices=['snapshot', 'running', 'paused']),
        force=dict(type='bool', default=False),
        merge_timeout=dict(type='float', default=3600),
        parallel=dict(type='int', default=4),
        consistency=dict(type='str', default='independent', choices=['independent', 'group']),
    )
    argument_spec.update(_common.CLOCK_ARGUMENT_SPEC)
    module = _common.new_module(argument_spec, supports_check_mode=True,
                                mutually_exclusive=[('children', 'children_only'), ('domain', 'domains')],
                                required_one_of=[('domain', 'domains')])
    _common.run(module, manage)


if __name__ == '__main__':
    main()
