# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Part faults: the libvirt daemon killed (SIGKILL, as in a crash) or the connection cut in the middle of a create, a
delete, a merge and a revert, ITERATIONS times each (playbooks/faults.yml).

Each faulted task must succeed or fail with a clear message (never a Python stack); the same task run again once the
daemon answers must succeed. Afterwards the domain runs, holds exactly the snapshots expected, its folder holds no
overlay or memory file that no snapshot owns, QEMU's internal snapshots match libvirt's, every image passes
`qemu-img check` once the domain is shut off, and the data written into the guest is where it must be.

The fault strikes at a different moment in each iteration: a fraction (0 to STRIKE_UNTIL) of the hooked libvirt call's
duration after it started, the duration learned from the iterations before; merges also move the hooked call along
the merge (start of the block commit, the pivot, dropping the snapshot's record).
"""

import concurrent.futures
import json
import os
import socket
import subprocess
import time
import traceback

import libvirt
import libvirt_qemu

from vmsnap_reliability import state
from vmsnap_reliability.control import DroppingProxy, FaultPolicy
from vmsnap_reliability.runner import record_tracebacks

# What makes a failure message clear: it says what could not be done and that the connection or daemon is at fault.
CLEAR_MESSAGES = ('The connection to libvirt failed', 'Could not connect to libvirt')

OPERATIONS = ('create', 'delete', 'merge', 'revert')
KINDS = ('kill', 'drop')
# Where a merge is interrupted: the start of the block commit, the pivot, the drop of the snapshot's record.
# libvirt 9.0 killed during a pivot can save a status file it cannot read back ("unknown mirror job type ''") and then
# loses the running domain altogether (see README): daemon kills leave the pivot out, cut connections do not.
MERGE_TARGETS = {
    'kill': ('virDomain.blockCommit', 'virDomainSnapshot.delete'),
    'drop': ('virDomain.blockCommit', 'virDomain.blockJobAbort', 'virDomainSnapshot.delete'),
}
LIBVIRT_LOST_DOMAIN = "Failed to load config for domain '%s'"
# When the fault strikes: from the start of the hooked call up to this fraction of its duration, evenly spread over the
# iterations; and the duration expected before the first call was measured (seconds). A merge's calls are quick and
# the pivot follows the commit's start within milliseconds: a kill must not reach it (see MERGE_TARGETS).
STRIKE_UNTIL = 0.9
EXPECTED_DURATION = {'create': 0.05, 'delete': 0.01, 'merge': 0.003, 'revert': 1.5}
REVERT_SNAPSHOT = 'r0'
REVERT_PATTERN = 0x11
MiB = 1 << 20


def spread(first, last, count):
    if count == 1:
        return [first]
    return [first + (last - first) * index / (count - 1) for index in range(count)]


class Scenario:
    """One operation under one kind of fault, on a domain of its own."""

    def __init__(self, ctx, part, operation, kind):
        self.ctx = ctx
        self.part = part
        self.operation = operation
        self.kind = kind
        self.key = 'f-%s-%s' % (operation, kind)
        self.domain = ctx.fixtures.name(self.key)
        self.folder = ctx.fixtures.folder(self.key)
        self.proxy = None
        self.outcomes = []  # (tag, fault event, faulted task's record) of each fault that struck

    # -- the run -------------------------------------------------------------------------------------------------

    def iterations(self):
        found = []
        for index, fraction in enumerate(spread(0.0, STRIKE_UNTIL, self.ctx.iterations), 1):
            item = {'tag': '%s-%s-%d' % (self.operation, self.kind, index), 'fraction': fraction}
            if self.operation == 'create':
                item.update(snapshot='c%d' % index, target='virDomain.snapshotCreateXML')
            elif self.operation == 'delete':
                item.update(snapshot='d%d' % index, target='virDomainSnapshot.delete')
            elif self.operation == 'merge':
                targets = MERGE_TARGETS[self.kind]
                item.update(snapshot='m%d' % index, target=targets[(index - 1) % len(targets)],
                            pattern=0x20 + index, offset=index * MiB)
            else:
                item.update(snapshot=REVERT_SNAPSHOT, target='virDomain.revertToSnapshot', pattern=0x40 + index,
                            offset=0)
            found.append(item)
        return found

    def inject(self, dummy_tag):
        if self.kind == 'kill':
            self.ctx.daemon.kill()
            self.ctx.daemon.start()
        else:
            self.proxy.drop()

    def setup(self):
        self.ctx.fixtures.create(self.key)
        if self.operation == 'revert':
            hmp_write(self.ctx.conn.lookupByName(self.domain), REVERT_PATTERN, 0)
            self.ctx.fixtures.snapshot(self.key, REVERT_SNAPSHOT)
        uri = self.ctx.daemon.user_uri
        if self.kind == 'drop':
            path = os.path.join(self.ctx.daemon.work, 'proxy-%s.sock' % self.key)
            self.proxy = DroppingProxy(path, self.ctx.daemon.socket_path, self.ctx.uid, self.ctx.gid)
            uri = 'qemu+unix:///session?socket=' + path
        return uri

    def libvirt_lost_domain(self, log_offset):
        """The line of the daemon's log, written since ``log_offset``, that says libvirt could not load the domain's
        state after a restart, or None."""
        with open(self.ctx.daemon.log_file, errors='replace') as stream:
            stream.seek(log_offset)
            for line in stream:
                if LIBVIRT_LOST_DOMAIN % self.domain in line:
                    return line.strip()
        return None

    def run(self):
        log_offset = os.path.getsize(self.ctx.daemon.log_file)
        uri = self.setup()
        iterations = self.iterations()
        # A daemon killed while it pivots a block commit can lose the domain (libvirt 9.0, see MERGE_TARGETS): a merge's
        # hooked call that returns before its kill struck waits for it, so the kill never reaches the pivot however
        # late it comes on a loaded machine.
        policy = FaultPolicy(dict((item['tag'], item['fraction']) for item in iterations),
                             EXPECTED_DURATION[self.operation], self.inject,
                             hold=self.operation == 'merge' and self.kind == 'kill')
        prefix = '%s-%s' % (self.operation, self.kind)
        self.ctx.control.policies[prefix] = policy
        try:
            run = self.ctx.ansible.run('faults.yml', {
                'rel_op': self.operation, 'rel_domain': self.domain, 'rel_uri': uri, 'rel_hook': self.ctx.hook_env,
                'rel_iterations': iterations}, 'faults-%s-%s' % (self.operation, self.kind))
            policy.wait_idle()
        finally:
            del self.ctx.control.policies[prefix]
            if self.proxy is not None:
                self.proxy.close()
        lost = self.libvirt_lost_domain(log_offset)
        if lost is not None:
            self.part.case('%s: libvirt kept the domain' % self.key, [
                'libvirtd, restarted after a kill, could not read back the state it had saved and lost the running '
                'domain (a libvirt defect, not the module\'s; its QEMU process is orphaned): %s' % lost])
        self.judge(run, iterations, policy)

    # -- the verdict ---------------------------------------------------------------------------------------------

    def judge(self, run, iterations, policy):
        faulted = run.results(tag='faulted')
        reruns = run.results(tag='rerun')
        if len(faulted) != len(iterations) or len(reruns) != len(iterations):
            self.part.case('%s: the playbook' % self.key,
                           ['%d faulted and %d rerun results for %d iterations: %s'
                            % (len(faulted), len(reruns), len(iterations), run.describe(30))])
        stray = run.failures()
        if stray:
            self.part.case('%s: set-up tasks' % self.key, ['%s: %s' % (record['task'], record['result'].get('msg'))
                                                           for record in stray])
        dom = self.ctx.conn.lookupByName(self.domain)
        snapshots = sorted(dom.snapshotListNames(0))
        files = sorted(os.listdir(self.folder))
        for item, fault_record, rerun in zip(iterations, faulted, reruns):
            event = policy.events.get(item['tag'])
            problems = self.iteration_problems(item, fault_record, rerun, snapshots, files)
            struck = event is not None and event['fault'] is not None
            if struck and event['fault_error']:
                problems.append('the fault could not be injected cleanly: %s' % event['fault_error'])
            if struck:
                self.part.fault(survived=not problems)
                self.outcomes.append((item['tag'], event, fault_record))
            else:
                problems.append('no fault was injected: the hooked call %s never started' % item['target'])
            self.part.case(item['tag'], problems)
        self.check_domain(dom, snapshots, files, iterations, reruns)

    def iteration_problems(self, item, fault_record, rerun, snapshots, files):
        problems = []
        if fault_record['status'] == 'failed':
            msg = str(fault_record['result'].get('msg', ''))
            if not any(text in msg for text in CLEAR_MESSAGES):
                problems.append('faulted task failed without a clear message: %r' % msg[:500])
        problems.extend('Python stack: ' + line for line in record_tracebacks(fault_record) + record_tracebacks(rerun))
        if rerun['status'] != 'ok':
            problems.append('the rerun failed: %r' % str(rerun['result'].get('msg', ''))[:600])
        name = item['snapshot']
        if self.operation == 'create' and name not in snapshots:
            problems.append('snapshot %s is missing' % name)
        if self.operation in ('delete', 'merge') and name in snapshots:
            problems.append('snapshot %s still exists' % name)
        orphans = [entry for entry in files if entry.endswith('.' + name) or '.%s.' % name in entry]
        if orphans and self.operation != 'revert':
            problems.append('orphan files: %s' % ', '.join(orphans))
        return problems

    def check_domain(self, dom, snapshots, files, iterations, reruns):
        expected = {'create': sorted(item['snapshot'] for item in iterations), 'delete': [], 'merge': [],
                    'revert': [REVERT_SNAPSHOT]}[self.operation]
        problems = []
        if snapshots != expected:
            problems.append('snapshots %s, expected %s' % (snapshots, expected))
        lost = len(set(expected) - set(snapshots))
        if files != ['vda.qcow2']:
            problems.append('files in %s: %s, expected only vda.qcow2' % (self.folder, ', '.join(files)))
        if dom.state(0)[0] != libvirt.VIR_DOMAIN_RUNNING:
            problems.append('domain state %s, expected running' % dom.state(0)[0])
        if self.operation == 'revert':
            current = dom.snapshotCurrent(0).getName() if dom.hasCurrentSnapshot(0) else None
            if current != REVERT_SNAPSHOT:
                problems.append('current snapshot %s, expected %s' % (current, REVERT_SNAPSHOT))
        base = os.path.join(self.folder, 'vda.qcow2')
        for flags, which in ((0, 'live'), (libvirt.VIR_DOMAIN_XML_INACTIVE, 'inactive')):
            sources = disk_sources(dom.XMLDesc(flags))
            if sources != [base]:
                problems.append('%s XML: disk vda runs on %s, expected %s' % (which, ' <- '.join(sources), base))
        internal = state.internal_snapshot_tags(base)
        if internal != expected:
            problems.append('QEMU holds internal snapshots %s, libvirt lists %s' % (internal, expected))
        self.part.case('%s: snapshots, files, state' % self.key, problems, lost=lost)

        # Shut off, so that QEMU has written everything and qemu-img may look.
        if dom.isActive():
            dom.destroy()
        problems = []
        for path in state.images(self.folder):
            passed, report = state.qemu_img_check(path)
            if not passed:
                problems.append(report)
        lost = len(problems)
        if self.operation == 'merge':
            for item in iterations[:len(reruns)]:
                if not state.pattern_at(base, item['pattern'], item['offset'], 64 << 10):
                    problems.append('%s: the data written into the overlay (0x%02x at %d) is not in the base'
                                    % (item['tag'], item['pattern'], item['offset']))
                    lost += 1
        if self.operation == 'revert' and not state.pattern_at(base, REVERT_PATTERN, 0, 64 << 10):
            problems.append('after the last revert vda does not hold the data of %s (0x%02x at 0)'
                            % (REVERT_SNAPSHOT, REVERT_PATTERN))
            lost += 1
        self.part.case('%s: images and data' % self.key, problems, lost=lost)


class PauseWindow:
    """The window a kill of the daemon can leave during a create, made on purpose rather than by chance.

    libvirt pauses the guest with QEMU's "stop" and records the pause (reason "save") only when it handles QEMU's STOP
    event; killed in between, it comes back to a paused QEMU that says just "paused", and reports the pause as the
    user's, with no job and (QEMU had not begun saving) no trace in the images. Here the daemon is killed first, the
    guest stopped through QEMU's own monitor while no libvirt listens, and the daemon started again: the same state.

    With the pause journal entry the interrupted run leaves, the create must resume the guest and record it running
    (a warning says so); without one (somebody paused the guest on purpose) it must leave the pause alone.
    """

    def __init__(self, ctx, part):
        self.ctx = ctx
        self.part = part

    def run(self):
        for key, journal in (('f-create-window', True), ('f-create-window-users', False)):
            self.ctx.fixtures.create(key)
            try:
                self.case(key, journal)
            finally:
                self.ctx.daemon.start()  # when the case failed with the daemon down
                if self.ctx.fixtures.domain(key).isActive():
                    self.ctx.fixtures.domain(key).destroy()

    def case(self, key, journal):
        name = self.ctx.fixtures.name(key)
        dom = self.ctx.conn.lookupByName(name)
        uri = self.ctx.daemon.user_uri
        if journal:
            self.leave_journal_entry(uri, dom.UUIDString(), dom.ID(), 'w1')
        self.ctx.daemon.kill()
        qmp_stop(self.monitor_socket(dom.ID()))
        self.ctx.daemon.start()
        dom = self.ctx.conn.lookupByName(name)
        # The daemon answers before it has reconnected to its QEMU processes (a thread each) and read their state.
        deadline = time.monotonic() + 30
        made = dom.state(0)
        while made[0] == libvirt.VIR_DOMAIN_RUNNING and time.monotonic() < deadline:
            time.sleep(0.1)
            made = dom.state(0)
        if made != [libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_USER]:
            problem = ('libvirt reports %r after the restart, not paused by the user: the case does not make the '
                       'state it is about' % (made,))
            self.part.case('%s: the window' % key, [problem])
            return
        run = self.ctx.ansible.run('window_create.yml', {'rel_domain': name, 'rel_uri': uri, 'rel_snapshot': 'w1'},
                                   key)
        records = run.results(tag='window')
        problems = ['no result: %s' % run.describe(20)] if len(records) != 1 else []
        result = records[0]['result'] if records else {}
        problems.extend('Python stack: ' + line for line in (record_tracebacks(records[0]) if records else []))
        if records and records[0]['status'] != 'ok':
            problems.append('the create failed: %r' % str(result.get('msg', ''))[:600])
        state_now = dom.state(0)[0]
        recorded = (result.get('snapshot') or {}).get('state')
        warned = any('left paused by an interrupted snapshot' in text for text in result.get('warnings', []))
        if journal:
            expected = (libvirt.VIR_DOMAIN_RUNNING, 'running', True)
        else:
            expected = (libvirt.VIR_DOMAIN_PAUSED, 'paused', False)
        if (state_now, recorded, warned) != expected:
            problems.append('domain state %s, snapshot state %s, warned %s; expected %s, %s, %s'
                            % ((state_now, recorded, warned) + expected))
        if journal and 'w1' in dom.snapshotListNames(0):
            xml_state = dom.snapshotLookupByName('w1', 0).getXMLDesc(0).split('<state>', 1)[-1].split('<', 1)[0]
            if xml_state != 'running':
                problems.append('snapshot w1 records the guest %s, expected running' % xml_state)
        if state_now == libvirt.VIR_DOMAIN_PAUSED:
            dom.resume()
        self.part.case('%s: %s' % (key, 'journal entry: resumed, recorded running' if journal
                                   else 'a pause on purpose: left alone, recorded paused'), problems)

    def leave_journal_entry(self, uri, uuid, domain_id, snapshot):
        """What the interrupted run leaves: its journal entry, written as the private user by a process that ended."""
        ended = subprocess.Popen(['true'])
        ended.wait()
        code = ('import sys; sys.path.insert(0, %r); '
                'from ansible_collections.vmsnap.libvirt.plugins.module_utils._journal import PauseJournal; '
                'PauseJournal(%r, %r, pid=%d).begin(%d, %r)'
                % (self.ctx.ansible.collections_path, uri, uuid, ended.pid, domain_id, snapshot))
        from vmsnap_reliability.daemon import MODULE_PYTHON  # pylint: disable=import-outside-toplevel
        self.ctx.daemon.run_as_user([MODULE_PYTHON, '-c', code])

    def monitor_socket(self, domain_id):
        """QEMU's monitor socket of the running domain (libvirt's session daemon keeps it in the domain's folder under
        ~/.config/libvirt/qemu/lib)."""
        found = [os.path.join(folder, 'monitor.sock') for folder, dummy, files in os.walk(self.ctx.daemon.home)
                 if os.path.basename(folder).startswith('domain-%d-' % domain_id) and 'monitor.sock' in files]
        if len(found) != 1:
            raise RuntimeError('the QEMU monitor socket of domain %d: found %r' % (domain_id, found))
        return found[0]


def qmp_stop(path):
    """Stop the guest's vCPUs through QEMU's monitor (QMP) while libvirt is not connected to it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(10)
        connection.connect(path)
        stream = connection.makefile('rw')
        json.loads(stream.readline())  # the greeting
        for command in ('qmp_capabilities', 'stop'):
            stream.write(json.dumps({'execute': command}) + '\n')
            stream.flush()
            while True:
                reply = json.loads(stream.readline())
                if 'error' in reply:
                    raise RuntimeError('QMP %s: %s' % (command, reply['error']))
                if 'return' in reply:
                    break  # other lines are events (STOP)


def disk_sources(xml):
    """The files of disk vda's backing chain in a domain XML, top first."""
    from lxml import etree  # pylint: disable=import-outside-toplevel
    root = etree.fromstring(xml)
    disks = root.xpath("devices/disk[target/@dev='vda']")
    disk = disks[0] if disks else None
    chain = []
    while disk is not None and disk.find('source') is not None:
        chain.append(disk.find('source').get('file'))
        disk = disk.find('backingStore')
    return chain


def hmp_write(dom, pattern, offset):
    """Write 64 KiB of ``pattern`` at ``offset`` on the running domain's vda, through QEMU (HMP qemu-io)."""
    command = 'qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend "write -P %d %d 64k"' % (pattern, offset)
    reply = libvirt_qemu.qemuMonitorCommand(dom, command, libvirt_qemu.VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP)
    if reply.strip():
        raise RuntimeError('HMP %s: %s' % (command, reply))


def run(ctx, part):
    operations = [name for name in OPERATIONS if name in ctx.options.fault_operations.split(',')]
    kinds = [name for name in KINDS if name in ctx.options.fault_kinds.split(',')]
    scenarios = [Scenario(ctx, part, operation, kind) for kind in kinds for operation in operations]

    def run_scenario(scenario):
        fault = 'daemon killed' if scenario.kind == 'kill' else 'connection cut'
        ctx.log('faults: %s, %s x%d' % (scenario.operation, fault, ctx.iterations))
        try:
            scenario.run()
        except Exception:  # pylint: disable=broad-except  # one broken scenario must not hide the others
            part.case('%s: the scenario itself' % scenario.key, [traceback.format_exc()])

    # A cut connection is that scenario's own (its proxy's): those scenarios run side by side. A killed daemon is
    # everybody's: those run one after another, alone.
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(len(operations), 1)) as pool:
        for job in [pool.submit(run_scenario, item) for item in scenarios if item.kind == 'drop']:
            job.result()
    for scenario in scenarios:
        if scenario.kind == 'kill':
            run_scenario(scenario)
    if 'create' in operations and 'kill' in kinds:
        ctx.log('faults: create, the window between QEMU pausing the guest and libvirt recording it')
        try:
            PauseWindow(ctx, part).run()
        except Exception:  # pylint: disable=broad-except  # one broken scenario must not hide the others
            part.case('f-create-window: the scenario itself', [traceback.format_exc()])
    summarize(part, scenarios)


def summarize(part, scenarios):
    """Notes on where the faults struck, how long the hooked calls take, and what the faulted tasks said."""
    landed = {}
    messages = {}
    durations = {}
    for scenario in scenarios:
        for dummy_tag, event, record in scenario.outcomes:
            during = event['returned'] is None or event['fault'] < event['returned']
            if not during:
                durations.setdefault(scenario.operation, []).append(event['returned'] - event['called'])
            key = (scenario.operation, scenario.kind, during)
            landed[key] = landed.get(key, 0) + 1
            if record['status'] == 'failed':
                text = str(record['result'].get('msg', ''))
                messages.setdefault(' '.join(text.split()[:4]), text)
    for (operation, kind, during), count in sorted(landed.items()):
        when = 'while the libvirt call ran' if during else 'after it returned'
        part.note('faults: %s/%s: %d struck %s' % (operation, kind, count, when))
    for operation, seconds in sorted(durations.items()):
        part.note('faults: %s: the hooked calls that were not interrupted took %.0f ms (median)'
                  % (operation, 1000 * sorted(seconds)[len(seconds) // 2]))
    for text in sorted(messages.values()):
        part.note('faults: for example, a faulted task said: %s' % text[:400])
