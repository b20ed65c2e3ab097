# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils file is private to the vmsnap.libvirt collection. It can change at any time,
# without a deprecation period. Do not use it outside this collection.

"""What a virt_snapshot task does to one domain (DomainRun: prepare, act, report; a group of them is _group);
plan_for reads what the planner of the task's state needs, once, and decides."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.vmsnap.libvirt.plugins.module_utils._actions import Runner, execute_or_decide_again, missing_snapshot_error
from ansible_collections.vmsnap.libvirt.plugins.module_utils._bulk import BulkPlan, plan_bulk_absent, select_removals
from ansible_collections.vmsnap.libvirt.plugins.module_utils._client import is_missing
from ansible_collections.vmsnap.libvirt.plugins.module_utils._create import plan_present
from ansible_collections.vmsnap.libvirt.plugins.module_utils._delete import plan_absent
from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError
from ansible_collections.vmsnap.libvirt.plugins.module_utils._merge import plan_merge
from ansible_collections.vmsnap.libvirt.plugins.module_utils._model import EXTERNAL, NO, parse_snapshot, snapshot_disk_bases, with_state
from ansible_collections.vmsnap.libvirt.plugins.module_utils._options import is_bulk, quiesce_mode
from ansible_collections.vmsnap.libvirt.plugins.module_utils._records import plan_redefine, plan_rename
from ansible_collections.vmsnap.libvirt.plugins.module_utils._read import interrupted_pause, tree_context, undescribed_block_jobs, read_domain_with_chains
from ansible_collections.vmsnap.libvirt.plugins.module_utils._revert import plan_revert


def plan_for(params, client, dom, *, snap, existing, existing_xml, command):
    """Read what the decision needs, once, and decide."""
    state = params['state']
    if state == 'present' and params['redefine']:
        return plan_redefine(params, dom.name(), existing)
    if state == 'present' and params['new_name'] is not None:
        new = client.find_snapshot(dom, params['new_name'])
        children = {}
        if snap is not None and new is None and existing['location'] == EXTERNAL:
            for child_name in existing['children']:
                child = client.find_snapshot(dom, child_name)
                if child is not None:  # else deleted by another run since: no longer a child to re-parent
                    children[child_name] = (client.snapshot_xml(child), client.is_current(child))
        return plan_rename(params, existing, existing_xml, client.describe_snapshot(new) if new is not None else None,
                           children)
    if state == 'present':
        if existing is not None:
            return plan_present(params, domain=None, existing=existing, existing_xml=existing_xml, current_name=None, host={})
        host = client.host() if params['location'] == 'auto' else {}
        domain = client.read_domain(dom)
        domain['interrupted_pause'] = interrupted_pause(client, dom, domain, params['name'], command)
        if quiesce_mode(params) != 'false' and params['memory'] is False and domain['state'] == 'running':
            # Whether the agent answers decides quiesced or crash-consistent (auto), or a refusal (true).
            domain['agent_silence'] = client.agent_silence(dom, params['quiesce_timeout'])
        return plan_present(params, domain=domain, existing=None, existing_xml=None, current_name=client.current_snapshot_name(dom), host=host)
    if state == 'reverted':
        if snap is None:
            raise missing_snapshot_error(client, dom, params['name'], 'revert to')
        domain = {'name': params['domain'], 'state': client.domain_state(dom)}
        host = client.host() if existing['location'] != 'internal' else {}
        descendants = client.describe_descendants(snap) if existing['children'] else []
        return plan_revert(params, domain, existing, host, descendants)
    if snap is None:
        return plan_absent(params, None, [])
    descendants = client.describe_descendants(snap) if existing['children'] else []
    if params['metadata_only'] or params['children_only']:
        current = client.current_snapshot_name(dom) if params['children_only'] and descendants else None
        return plan_absent(params, existing, descendants, current_name=current)
    domain, parent, current = tree_context(client, dom, snap, existing, command)
    bases = snapshot_disk_bases(existing_xml)
    if state == 'merged':
        undescribed_block_jobs(client, dom, domain, existing)
        return plan_merge(params, domain, existing, bases=bases, descendants=descendants, current_name=current, local=client.is_local())
    return plan_absent(params, existing, descendants, domain=domain, bases=bases, parent=parent, current_name=current, host=client.host(),
                       local=client.is_local())


def plan_bulk_for(params, client, dom, command):
    """Read what deleting the snapshots all or pattern select needs (one list call, one XML fetch per snapshot; the
    domain only when something is to go), and decide."""
    xmls = client.snapshots_xml(dom)
    snapshots = [parse_snapshot(xml, dom.name()) for dummy, xml in xmls]
    current = client.current_snapshot_name(dom) if xmls else None
    doomed = select_removals(snapshots, None if params['all'] else params['pattern'], params['keep_newest'])[0]
    domain = host = None
    if doomed and not params['metadata_only']:
        domain = read_domain_with_chains(client, dom, command)
        host = client.host()
    bases = dict((name, snapshot_disk_bases(xml)) for name, xml in xmls if name in set(doomed))
    return plan_bulk_absent(params, snapshots, current, domain=domain, bases=bases, host=host, local=client.is_local())


class DomainRun:
    """What a task does to one domain, in three steps: prepare (read once and decide), act, and report.

    It never calls the module (warnings are returned), so the workers of a task with domains can run it.
    """

    def __init__(self, params, client, dom=None, command=None):
        self.params = params
        self.client = client
        self.dom = dom
        self.command = command
        self.snap = None
        self.plan = None
        self.acted = False
        self.runner = None

    def prepare(self):
        if self.dom is None:
            self.dom = self.client.domain(self.params['domain'])
        if is_bulk(self.params):
            self.plan = plan_bulk_for(self.params, self.client, self.dom, self.command)
            return self.plan
        self.snap = self.client.find_snapshot(self.dom, self.params['name'])
        try:
            self.plan = self.decide(self.snap)
        except SnapshotError as exc:
            if self.snap is None or not is_missing(exc, 'snapshot'):
                raise
            # Another run deleted it while this one read it: decide about what is there now.
            self.snap = self.client.find_snapshot(self.dom, self.params['name'])
            self.plan = self.decide(self.snap)
        return self.plan

    def decide(self, snap):
        """Read what the decision about ``snap`` (the snapshot object, or None) needs, and decide."""
        existing_xml = self.client.snapshot_xml(snap) if snap is not None else None
        existing = self.client.describe_snapshot(snap, existing_xml) if snap is not None else None
        return plan_for(self.params, self.client, self.dom, snap=snap, existing=existing, existing_xml=existing_xml, command=self.command)

    @property
    def creates(self):
        return any(action.kind == 'create' for action in self.plan.actions)

    @property
    def saves_memory(self):
        return self.creates and self.plan.snapshot['memory']['snapshot'] != NO

    def act(self, recorded_state=None):
        """Carry the plan out. ``recorded_state`` replaces the domain state a new snapshot records."""
        if not self.plan.changed:
            return
        runner = self.runner = Runner(self.client, self.dom, command=self.command,
                                      merge_timeout=self.params['merge_timeout'])
        if isinstance(self.plan, BulkPlan):
            self._delete_each(runner)
        else:
            self.snap, self.plan = execute_or_decide_again(runner, self.snap, self.plan, self.params['name'],
                                                           self.decide)
        self.acted = True
        # A plan decided again after another run took the snapshot first creates nothing: that snapshot stays as it is.
        if recorded_state is not None and self.creates:
            xml = with_state(self.client.snapshot_xml(self.snap), recorded_state)
            self.snap = self.client.create_snapshot(self.dom, xml, ['redefine', 'current'], self.params['name'])

    def _delete_each(self, runner):
        done = []
        for name, step in self.plan.steps:
            snap = self.client.find_snapshot(self.dom, name)
            if snap is None:
                continue  # deleted by someone else since it was read: gone, as the step wanted
            try:
                runner.execute(snap, step)
            except SnapshotError as exc:
                if not done:
                    raise
                details = dict(exc.details, changed=True, deleted=done)
                raise SnapshotError('%s The snapshots deleted before this failure: %s.' % (exc.msg, ', '.join(done)),
                                    **details)
            done.extend(step.deleted)

    def report(self, diff=False):
        """The domain's result (as the module returns it for one domain) and its warnings."""
        plan = self.plan
        if self.acted:
            snapshot = self.client.describe_snapshot(self.snap) if self.snap is not None else None
            domain_state = self.client.domain_state(self.dom)
        else:
            snapshot = plan.snapshot
            domain_state = plan.domain_state or self.client.domain_state(self.dom)
        result = dict(changed=plan.changed, snapshot=snapshot, domain_state=domain_state, deleted=plan.deleted,
                      merged=plan.merged)
        if isinstance(plan, BulkPlan):
            result['kept'] = plan.kept
        warnings = list(plan.warnings) + (self.runner.warnings if self.runner is not None else [])
        if plan.clock is not None:
            result['clock'] = self.runner.clock if self.acted and self.runner.clock is not None else plan.clock
            if result['clock']['message']:
                warnings.append(result['clock']['message'])
        if plan.quiesce is not None:
            result['quiesce'] = plan.quiesce
            if self.acted and self.runner.unquiesced:
                result['quiesce'] = dict(plan.quiesce, quiesced=False, reason=self.runner.unquiesced)
        if diff:
            result['diff'] = dict(before=plan.before, after=plan.after)
        return result, warnings


def manage_domain(params, client, *, check_mode=False, diff=False, command=None, dom=None):
    """Everything the module does for one domain: (result, warnings). ``dom`` saves the lookup of a domain the
    caller already holds."""
    run = DomainRun(params, client, dom, command)
    run.prepare()
    if not check_mode:
        run.act()
    return run.report(diff)
