#!/usr/bin/env python
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How long a real guest stops for each kind of snapshot with memory (issue 14, item 3).

On one real Debian 12 guest (vmsnap_testctl guest create, 1 GiB, software emulation), in turns:

  baseline        no snapshot: the probe alone for a few seconds (the noise floor of the measurement)
  internal        virt_snapshot location: internal (memory unset: saved), what a guard snapshot is on libvirt 9.0
  external        virt_snapshot location: external, live: false (libvirt pauses the guest for the whole save)
  external live   virt_snapshot location: external, live: true (VIR_DOMAIN_SNAPSHOT_CREATE_LIVE)
  virsh --live    virsh snapshot-create-as DOMAIN NAME --live --memspec file=...,snapshot=external
                  --diskspec vda,snapshot=external,file=...  (the floor)

The module runs in this process (its main(), as bench/suite.py does) from the staged collection
(hacking/stage-collection.sh: the work tree as it is, uncommitted changes included).

What is measured: the guest's unreachable time, from the host. A TCP echo server runs inside the guest; a probe process
on the host holds one connection to it through a second user-network port forward on 127.0.0.1 (added to the guest's
QEMU with the HMP command hostfwd_add; an `ssh -L` tunnel if that fails), sends 16 bytes every 10 ms and logs when
each answer arrives. A run's "guest stop" is the longest gap between two answers from the last answer before the
snapshot call to the first one after it. The same probe process logs libvirt's lifecycle events (suspended, resumed),
so each run also says how long libvirt itself had the guest paused.

Before each run the guest's memory is dirtied: a process in the guest rewrites a buffer of DIRTY MiB with a pattern of
that run (asked over a second forward), so that the saved memory is mostly not zero pages, which QEMU would skip; and
another process rewrites a BUSY MiB buffer 4 times a second the whole time (the pages a live save has to send again).
After each run its snapshot is deleted with virt_snapshot state: absent (internal: libvirt deletes it from the image;
external: libvirt 9.0 deletes it, committing the overlay back into the disk, and the module removes the memory file),
so every run starts from the same single-image disk; the benchmark checks that.

The guest is throwaway (vmsnap-bench-downtime-<pid>-guest) and is removed however the script ends.
Timings live here and in bench/results/, never in tests. Run with the project's virtual environment:
    .venv/bin/python bench/downtime_bench.py [--quick] [--repeat N] [--no-save]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

import libvirt
from lxml import etree

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path.insert(0, BENCH)
import info_bench  # noqa: E402  (machine description and the test tool's path)

RESULTS = os.path.join(BENCH, 'results')
TESTCTL = info_bench.TESTCTL
PREFIX = 'vmsnap-bench-downtime-'
ECHO_PORT = 7777
DIRT_PORT = 7778
RECORD = struct.Struct('!QQ')  # sequence number, send time (ns, CLOCK_MONOTONIC)

BASELINE, INTERNAL, EXTERNAL, LIVE, VIRSH = (
    'baseline (no snapshot)', 'internal (module)', 'external (module, live: false)',
    'external live (module, live: true)', 'virsh snapshot-create-as --live')
METHODS = (BASELINE, INTERNAL, EXTERNAL, LIVE, VIRSH)
EVENT_NAMES = {libvirt.VIR_DOMAIN_EVENT_SUSPENDED: 'suspended', libvirt.VIR_DOMAIN_EVENT_RESUMED: 'resumed',
               libvirt.VIR_DOMAIN_EVENT_STARTED: 'started', libvirt.VIR_DOMAIN_EVENT_STOPPED: 'stopped'}
JOB_KEYS = ('operation', 'time_elapsed', 'downtime', 'memory_iteration', 'memory_dirty_rate', 'memory_processed',
            'memory_total', 'memory_bps', 'setup_time')
SHORT = {BASELINE: 'base', INTERNAL: 'int', EXTERNAL: 'ext', LIVE: 'live', VIRSH: 'virsh'}

libvirt.registerErrorHandler(lambda context, error: None, None)

# -- what runs in the guest -------------------------------------------------------------------------------------------

# The guest's end of the measurement, one process: an echo server on ECHO_PORT (the probe's answers), and on DIRT_PORT
# a request "RUN\n" rewrites a buffer of DIRTY MiB with a pattern of that run (no zero pages, which QEMU would skip)
# and answers "done\n". The buffer is anonymous memory that this process keeps for the whole benchmark: the first
# request makes its pages, each later one dirties the same pages again.
GUEST_SERVER = r'''
import socket, sys, threading
echo_port, dirt_port, mib = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
step = 1 << 20
view = memoryview(bytearray(mib * step))

def listen(port, serve):
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(('0.0.0.0', port))
    server.listen(4)
    while True:
        conn, peer = server.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve, args=(conn,), daemon=True).start()

def echo(conn):
    while True:
        data = conn.recv(65536)
        if not data:
            break
        conn.sendall(data)
    conn.close()

def dirt(conn):
    for line in conn.makefile('r'):
        run = int(line)
        chunk = bytes([run % 251 + 1]) * step
        for index in range(mib):
            view[index * step:(index + 1) * step] = chunk
            view[index * step:index * step + 16] = run.to_bytes(8, 'little') + index.to_bytes(8, 'little')
        conn.sendall(b'done\n')
    conn.close()

threading.Thread(target=listen, args=(dirt_port, dirt), daemon=True).start()
listen(echo_port, echo)
'''

# Rewrites a buffer of MiB several times a second: pages that a live save must send again.
BUSY_WRITER = r'''
import sys, time
size, rate = int(sys.argv[1]) << 20, float(sys.argv[2])
buffer = bytearray(size)
view = memoryview(buffer)
step = 1 << 20
turn = 0
while True:
    started = time.monotonic()
    turn += 1
    chunk = bytes([turn % 251 + 1]) * step
    for offset in range(0, size, step):
        view[offset:offset + step] = chunk
    time.sleep(max(0.0, 1.0 / rate - (time.monotonic() - started)))
'''


# -- the probe: its own process, so that nothing in this one (the module, the GIL) delays its timestamps -------------

def probe_main(host, port, log_path, uri, domain, interval):
    """Send a record every interval seconds over one TCP connection; log each answer and libvirt's lifecycle events
    of the domain, each line stamped with CLOCK_MONOTONIC in ns (the clock the parent reads too). Ends when its stdin
    closes (the parent ended) or the connection breaks."""
    out = open(log_path, 'w', buffering=1)
    lock = threading.Lock()

    def log(line):
        with lock:
            out.write(line + '\n')

    libvirt.virEventRegisterDefaultImpl()
    conn = libvirt.open(uri)
    dom = conn.lookupByName(domain)

    def lifecycle(conn_, dom_, event, detail, opaque):
        log('e %d %d %d' % (time.monotonic_ns(), event, detail))

    conn.domainEventRegisterAny(dom, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, lifecycle, None)

    def events():
        while True:
            libvirt.virEventRunDefaultImpl()
    threading.Thread(target=events, daemon=True).start()

    def parent_gone():
        sys.stdin.read()
        os._exit(0)
    threading.Thread(target=parent_gone, daemon=True).start()

    sock = socket.create_connection((host, port), timeout=30)
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def receive():
        pending = b''
        while True:
            data = sock.recv(65536)
            now = time.monotonic_ns()
            if not data:
                log('x %d closed' % now)
                os._exit(3)
            pending += data
            while len(pending) >= RECORD.size:
                seq, sent = RECORD.unpack(pending[:RECORD.size])
                pending = pending[RECORD.size:]
                log('a %d %d %d' % (now, seq, sent))
    threading.Thread(target=receive, daemon=True).start()

    seq = 0
    due = time.monotonic()
    while True:
        sock.sendall(RECORD.pack(seq, time.monotonic_ns()))
        seq += 1
        due += interval
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            due = time.monotonic()  # late (this process was not scheduled): no burst to catch up


class Probe:
    """The probe process and what it logged."""

    def __init__(self, host, port, uri, domain, interval, work):
        self.log_path = os.path.join(work, 'probe.log')
        self.process = subprocess.Popen([sys.executable, os.path.abspath(__file__), '_probe', host, str(port),
                                         self.log_path, uri, domain, str(interval)], stdin=subprocess.PIPE)
        self.answers = []   # (received ns, sent ns)
        self.events = []    # (ns, event, detail)
        self.closed = None
        self._offset = 0
        self._rest = ''

    def read(self):
        if not os.path.exists(self.log_path):
            return
        with open(self.log_path) as source:
            source.seek(self._offset)
            text = self._rest + source.read()
            self._offset = source.tell()
        lines = text.split('\n')
        self._rest = lines.pop()
        for line in lines:
            fields = line.split()
            if fields[0] == 'a':
                self.answers.append((int(fields[1]), int(fields[3])))
            elif fields[0] == 'e':
                self.events.append((int(fields[1]), int(fields[2]), int(fields[3])))
            elif fields[0] == 'x':
                self.closed = int(fields[1])

    def wait_for_answer_after(self, moment, timeout):
        """Wait until an answer received after moment (ns) is logged; False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            self.read()
            if self.answers and self.answers[-1][0] > moment:
                return True
            if self.closed is not None or self.process.poll() is not None:
                raise SystemExit('the probe lost its connection to the echo server in the guest (see %s)'
                                 % self.log_path)
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)

    def measure(self, started, ended):
        """The longest gap between answers from the last answer before started to the first after ended (ns in,
        seconds out), when it began after started, the longest answer time, and how long libvirt had the guest
        paused in the window (lifecycle events)."""
        self.read()
        received = [item[0] for item in self.answers]
        first = max([index for index, value in enumerate(received) if value <= started] or [0])
        last = next(index for index, value in enumerate(received) if value >= ended)
        window = received[first:last + 1]
        gaps = [(later - earlier, earlier) for earlier, later in zip(window, window[1:])]
        gap, gap_start = max(gaps) if gaps else (0, started)
        answer_times = [answer - sent for answer, sent in self.answers[first:last + 1] if sent >= started]
        return {
            'stop_s': gap / 1e9,
            'stop_began_after_call_start_s': (gap_start - started) / 1e9,
            'answers_in_window': len(window),
            'longest_answer_time_s': max(answer_times) / 1e9 if answer_times else None,
            'paused_by_libvirt_s': self.paused_between(started, received[last]) / 1e9,
            'events': [(round((moment - started) / 1e9, 3), EVENT_NAMES.get(event, str(event)), detail)
                       for moment, event, detail in self.events if started <= moment <= received[last]],
        }

    def paused_between(self, started, ended):
        paused_at, total = None, 0
        for moment, event, dummy in self.events:
            if event == libvirt.VIR_DOMAIN_EVENT_SUSPENDED and paused_at is None:
                paused_at = moment
            elif event in (libvirt.VIR_DOMAIN_EVENT_RESUMED, libvirt.VIR_DOMAIN_EVENT_STARTED) and paused_at:
                total += max(0, min(moment, ended) - max(paused_at, started))
                paused_at = None
        if paused_at is not None:
            total += max(0, ended - max(paused_at, started))
        return total

    def idle_baseline(self):
        """Median answer time over the last 200 answers, for the report."""
        self.read()
        return statistics.median((answer - sent) / 1e9 for answer, sent in self.answers[-200:])

    def stop(self):
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# -- the guest --------------------------------------------------------------------------------------------------------

def testctl(uri, *args, timeout=None):
    done = subprocess.run([sys.executable, TESTCTL, '--uri', uri] + list(args), check=False, capture_output=True,
                          text=True, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit('vmsnap_testctl %s failed (%d): %s' % (' '.join(args), done.returncode,
                                                                (done.stderr or done.stdout)[-3000:]))
    return done.stdout


class Guest:
    def __init__(self, uri, name, settings):
        self.uri = uri
        self.name = name
        self.settings = settings
        self.tunnel = None

    def ssh_argv(self):
        return ['ssh', '-i', self.settings['ansible_ssh_private_key_file'], '-p', str(self.settings['ansible_port']),
                '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
                '-o', 'ConnectTimeout=30', '-o', 'LogLevel=ERROR', 'root@127.0.0.1']

    def ssh(self, command, stdin=None, timeout=600):
        done = subprocess.run(self.ssh_argv() + [command], input=stdin, capture_output=True, text=True,
                              timeout=timeout, check=False)
        if done.returncode != 0:
            raise SystemExit('in the guest, %r failed (%d): %s' % (command, done.returncode, done.stderr[-2000:]))
        return done.stdout

    def start_background(self, path, script, *args):
        self.ssh('cat > %s' % path, stdin=script)
        self.ssh('setsid nohup python3 %s %s >/dev/null 2>&1 </dev/null &' % (path, ' '.join(args)))

    def forward(self, dom, guest_ports):
        """Forwards 127.0.0.1:PORT -> guest:GUEST_PORT on the guest's user network (netdev n0, whose only forward
        vmsnap_testctl makes is SSH's), added to the running QEMU with HMP hostfwd_add; an ssh -L tunnel when that
        fails. Returns ({guest port: host port}, how)."""
        ports = dict((guest_port, free_port()) for guest_port in guest_ports)
        try:
            import libvirt_qemu
            for guest_port, port in ports.items():
                reply = libvirt_qemu.qemuMonitorCommand(dom, 'hostfwd_add n0 tcp:127.0.0.1:%d-:%d' % (port, guest_port),
                                                        libvirt_qemu.VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP)
                if reply.strip():
                    raise libvirt.libvirtError(reply.strip())
            return ports, 'a user-network forward added to QEMU with HMP hostfwd_add'
        except (ImportError, libvirt.libvirtError) as exc:
            print('  hostfwd_add failed (%s): tunnelling through SSH instead' % exc, flush=True)
        ports = dict((guest_port, free_port()) for guest_port in guest_ports)
        argv = self.ssh_argv()[:-1] + ['-N']
        for guest_port, port in ports.items():
            argv += ['-L', '127.0.0.1:%d:127.0.0.1:%d' % (port, guest_port)]
        self.tunnel = subprocess.Popen(argv + ['root@127.0.0.1'])
        return ports, 'an ssh -L tunnel (the guest sshd relays every probe message: more CPU in the guest)'

    def dirty(self, port, run, timeout=600):
        """Have the guest rewrite its buffer with the pattern of run; returns when it is done."""
        with socket.create_connection(('127.0.0.1', port), timeout=timeout) as conn:
            conn.sendall(b'%d\n' % run)
            if conn.makefile('rb').readline() != b'done\n':
                raise SystemExit('the guest did not dirty its memory for run %d' % run)

    def close(self):
        if self.tunnel is not None and self.tunnel.poll() is None:
            self.tunnel.terminate()
            self.tunnel.wait()


def free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


# -- the methods ------------------------------------------------------------------------------------------------------

class Module:
    """virt_snapshot's main() in this process, from the staged collection."""

    def __init__(self, uri):
        self.uri = uri

    def run(self, args):
        return info_bench.virt_snapshot_in_process(self.uri, args)


def disk_of(conn, name):
    """(target, source) of the guest's one disk."""
    root = etree.fromstring(conn.lookupByName(name).XMLDesc(0))
    disk = root.find('devices/disk')
    return disk.find('target').get('dev'), disk.find('source').get('file')


def snapshot_record(conn, domain, name):
    root = etree.fromstring(conn.lookupByName(domain).snapshotLookupByName(name, 0).getXMLDesc(0))
    memory = root.find('memory')
    return {'state': root.findtext('state'), 'memory': memory.get('snapshot') if memory is not None else None,
            'memory_file': memory.get('file') if memory is not None else None,
            'disks': [(disk.get('name'), disk.get('snapshot')) for disk in root.findall('disks/disk')]}


class ModeWatcher:
    """Polls the mode of the memory file while the snapshot is being made (every 20 ms): is it ever readable by
    others?"""

    def __init__(self, path):
        self.path = path
        self.seen = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self):
        while not self._stop.is_set():
            with contextlib.suppress(OSError):
                self.seen.add(oct(os.stat(self.path).st_mode & 0o777))
            self._stop.wait(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *dummy):
        self._stop.set()
        self._thread.join()


class Bench:
    def __init__(self, args, conn, guest, probe, module, dirt_port):
        self.args = args
        self.dirt_port = dirt_port
        self.conn = conn
        self.guest = guest
        self.probe = probe
        self.module = module
        self.target, self.source = disk_of(conn, guest.name)
        self.directory = os.path.dirname(self.source)

    def take(self, method, name):
        """Make the snapshot of method called name (nothing for the baseline)."""
        domain = self.guest.name
        if method == BASELINE:
            time.sleep(self.args.baseline_seconds)
        elif method == INTERNAL:
            self.module.run({'domain': domain, 'name': name, 'location': 'internal'})
        elif method == EXTERNAL:
            self.module.run({'domain': domain, 'name': name, 'location': 'external', 'live': False})
        elif method == LIVE:
            self.module.run({'domain': domain, 'name': name, 'location': 'external', 'live': True})
        elif method == VIRSH:
            # The files where the module puts its own (next to the disk, same names): same file system, same work.
            memory = os.path.join(self.directory, '%s.%s.mem' % (domain, name))
            overlay = os.path.join(self.directory, '%s.%s' % (os.path.splitext(os.path.basename(self.source))[0],
                                                              name))
            subprocess.run(['virsh', '-q', '-c', self.args.uri, 'snapshot-create-as', domain, name, '--live',
                            '--memspec', 'file=%s,snapshot=external' % memory,
                            '--diskspec', '%s,snapshot=external,file=%s' % (self.target, overlay)],
                           check=True, stdout=subprocess.DEVNULL, timeout=self.args.snapshot_timeout + 60)

    def abort_after(self, seconds):
        """A watchdog: a snapshot that has not ended after seconds (a live save that never converges) is aborted."""
        def abort():
            print('  the snapshot takes more than %d s: aborting its job' % seconds, flush=True)
            with contextlib.suppress(libvirt.libvirtError):
                self.conn.lookupByName(self.guest.name).abortJob()
        timer = threading.Timer(seconds, abort)
        timer.daemon = True
        timer.start()
        return timer

    def run_once(self, method, run):
        name = 'dt-%s-%02d' % (SHORT[method], run)
        dirtying = time.monotonic()
        self.guest.dirty(self.dirt_port, run)
        dirty_s = time.monotonic() - dirtying
        time.sleep(self.args.settle)
        memory_file = os.path.join(self.directory, '%s.%s.mem' % (self.guest.name, name))
        load = os.getloadavg()[0]
        watcher = ModeWatcher(memory_file) if method in (EXTERNAL, LIVE, VIRSH) else contextlib.nullcontext()
        timer = self.abort_after(self.args.snapshot_timeout)
        try:
            with watcher:
                started = time.monotonic_ns()
                self.take(method, name)
                ended = time.monotonic_ns()
        finally:
            timer.cancel()
        if not self.probe.wait_for_answer_after(ended + int(self.args.tail * 1e9), timeout=120):
            raise SystemExit('the guest did not answer the probe within 120 s after %s' % method)
        job = {}
        if method != BASELINE:
            # What libvirt kept of the snapshot's job: QEMU's own figures for the memory save (downtime: the part of
            # the stop QEMU counts, without libvirt's disk work and resume; memory_iteration: passes over the RAM).
            with contextlib.suppress(libvirt.libvirtError):
                stats = self.conn.lookupByName(self.guest.name).jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
                job = dict((key, stats[key]) for key in JOB_KEYS if key in stats)
        result = dict(self.probe.measure(started, ended), method=method, run=run, snapshot=name, job=job,
                      call_s=(ended - started) / 1e9, load1=round(load, 2), dirty_s=round(dirty_s, 2))
        if method != BASELINE:
            result.update(self.check_and_delete(method, name, memory_file, watcher))
        return result

    def check_and_delete(self, method, name, memory_file, watcher):
        domain = self.guest.name
        record = snapshot_record(self.conn, domain, name)
        expected_memory = 'internal' if method == INTERNAL else 'external'
        if record['memory'] != expected_memory:
            raise SystemExit('snapshot %s has memory %r, not %s' % (name, record['memory'], expected_memory))
        checks = {'recorded_state': record['state'], 'memory': record['memory']}
        if method != INTERNAL:
            if record['memory_file'] != memory_file:
                raise SystemExit('snapshot %s keeps its memory in %s, not %s' % (name, record['memory_file'],
                                                                                 memory_file))
            status = os.stat(memory_file)
            checks.update(memory_file_mode=oct(status.st_mode & 0o777), memory_file_mib=round(status.st_size / 2**20),
                          memory_file_modes_while_saved=sorted(watcher.seen))
        state = self.conn.lookupByName(domain).state()[0]
        if state != libvirt.VIR_DOMAIN_RUNNING:
            raise SystemExit('after %s the guest is not running (state %d)' % (name, state))
        started = time.monotonic()
        self.module.run({'domain': domain, 'name': name, 'state': 'absent'})
        checks['delete_s'] = time.monotonic() - started
        if os.path.exists(memory_file):
            raise SystemExit('deleting %s left its memory file %s' % (name, memory_file))
        if disk_of(self.conn, domain)[1] != self.source:
            raise SystemExit('after deleting %s the disk is on %s, not on %s again' % (
                name, disk_of(self.conn, domain)[1], self.source))
        return checks


# -- the run ----------------------------------------------------------------------------------------------------------

def job_text(job):
    if not job:
        return '-'
    return 'downtime %s ms, %s passes, %s MiB saved in %s ms' % (
        job.get('downtime', '?'), job.get('memory_iteration', '?'), job.get('memory_processed', 0) >> 20,
        job.get('time_elapsed', '?'))


def summarize(results):
    summary = {}
    for method in METHODS:
        runs = [item for item in results if item['method'] == method]
        if not runs:
            continue
        stops = [item['stop_s'] for item in runs]
        entry = {'median': statistics.median(stops), 'min': min(stops), 'max': max(stops), 'runs': len(runs),
                 'paused_median': statistics.median(item['paused_by_libvirt_s'] for item in runs),
                 'call_median': statistics.median(item['call_s'] for item in runs)}
        if method != BASELINE:
            entry['delete_median'] = statistics.median(item['delete_s'] for item in runs)
        downtimes = [item['job']['downtime'] / 1000.0 for item in runs if 'downtime' in item.get('job', {})]
        if downtimes:
            entry['qemu_downtime_median'] = statistics.median(downtimes)
        if method in (EXTERNAL, LIVE, VIRSH):
            entry['memory_file_modes'] = sorted(set(item['memory_file_mode'] for item in runs))
            entry['memory_file_modes_while_saved'] = sorted(set(mode for item in runs
                                                                for mode in item['memory_file_modes_while_saved']))
            entry['memory_file_mib'] = statistics.median(item['memory_file_mib'] for item in runs)
        entry['recorded_states'] = sorted(set(item.get('recorded_state') or '-' for item in runs))
        summary[method] = entry
    return summary


def table(summary):
    base = summary[INTERNAL]['median'] if INTERNAL in summary else None
    lines = ['| method | guest stop, median s | min s | max s | paused by libvirt, median s | QEMU downtime, median s | '
             'call, median s | delete, median s | runs | stop vs internal |', '|---|---|---|---|---|---|---|---|---|---|']
    for method, entry in summary.items():
        lines.append('| %s | %.3f | %.3f | %.3f | %.3f | %s | %.2f | %s | %d | %s |' % (
            method, entry['median'], entry['min'], entry['max'], entry['paused_median'],
            '%.3f' % entry['qemu_downtime_median'] if 'qemu_downtime_median' in entry else '-', entry['call_median'],
            '%.2f' % entry['delete_median'] if 'delete_median' in entry else '-', entry['runs'],
            '%.2fx' % (entry['median'] / base) if method != BASELINE and base else '-'))
    return '\n'.join(lines)


def verdicts(summary, results, interval):
    """Target 1: live median <= half the internal median. Target 2: live median <= the virsh median plus the noise
    tolerance, the largest of two probe intervals, 10% of the virsh median, and the baseline's median stop (the
    longest gap the guest shows with no snapshot at all)."""
    if not all(method in summary for method in (INTERNAL, LIVE, VIRSH)):
        return []
    live, internal, virsh = summary[LIVE]['median'], summary[INTERNAL]['median'], summary[VIRSH]['median']
    noise = summary[BASELINE]['median'] if BASELINE in summary else 0.0
    tolerance = max(2 * interval, 0.1 * virsh, noise)
    paired = [item['stop_s'] - other['stop_s'] for item in results if item['method'] == LIVE
              for other in results if other['method'] == VIRSH and other['run'] == item['run']]
    lines = [
        {'label': 'live / internal', 'value': round(live / internal, 3), 'target': '<= 0.5', 'met': live <= 0.5 * internal,
         'text': 'external live / internal = %.3f s / %.3f s = %.2fx (target <= 0.50x: %s)' % (
             live, internal, live / internal, 'met' if live <= 0.5 * internal else 'MISSED')},
        {'label': 'live - virsh', 'value': round(live - virsh, 3), 'target': '<= %.3f s (noise)' % tolerance,
         'met': live <= virsh + tolerance,
         'text': 'external live - virsh --live = %.3f s - %.3f s = %+.3f s, paired by round median %+.3f s (target: no '
                 'longer than virsh within the noise, %.3f s: %s)' % (
                     live, virsh, live - virsh, statistics.median(paired) if paired else float('nan'), tolerance,
                     'met' if live <= virsh + tolerance else 'MISSED')},
    ]
    return lines


def save(report, title, extra, text, notes):
    """bench/results/<benchmark>_bench-<date>-<host>.json (the whole report) and .md (title, machine, the extra lines,
    the table and the notes under it); returns that path without its extension."""
    os.makedirs(RESULTS, exist_ok=True)
    stem = os.path.join(RESULTS, '%s_bench-%s-%s' % (report['benchmark'], report['date'].replace('-', '').replace(':', ''),
                                                     platform.node()))
    with open(stem + '.json', 'w') as out:
        json.dump(report, out, indent=2, sort_keys=True)
        out.write('\n')
    with open(stem + '.md', 'w') as out:
        out.write('# %s, %s\n\n' % (title, report['date']))
        out.write('%s, load_average_at_start: %s\n\n' % (
            ', '.join('%s: %s' % item for item in sorted(report['machine'].items())), report['load_average_at_start']))
        out.write('\n'.join('- ' + line for line in extra) + '\n\n')
        out.write(text + '\n\n' + '\n'.join('- ' + line for line in notes) + '\n')
    return stem


def stage_collection():
    """hacking/stage-collection.sh: .build/ansible_collections/vmsnap/libvirt; returns the collections root."""
    staged = subprocess.run([os.path.join(REPO, 'hacking', 'stage-collection.sh')], check=True, capture_output=True,
                            text=True).stdout.strip().splitlines()[-1]
    return os.path.dirname(os.path.dirname(os.path.dirname(staged)))


def code_version():
    """The commit, and whether the module's files differ from it (the staged collection is the work tree)."""
    head = subprocess.run(['git', '-C', REPO, 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True,
                          check=False).stdout.strip()
    dirty = subprocess.run(['git', '-C', REPO, 'status', '--porcelain', '--', 'plugins'], capture_output=True,
                           text=True, check=False).stdout.split('\n')
    return {'commit': head, 'plugins_changed_in_work_tree': sorted(line[3:] for line in dirty if line.strip())}


def begin_run():
    """What a benchmark of real guests does before its first guest: a signal ends it through its clean-up (SystemExit),
    the venv's tools on PATH, the collection staged and importable; returns when it started (UTC), the load average then,
    a monotonic clock and the code's version."""
    def terminated(signum, dummy):
        raise SystemExit('stopped by signal %d' % signum)
    signal.signal(signal.SIGTERM, terminated)
    signal.signal(signal.SIGHUP, terminated)
    os.environ['PATH'] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get('PATH', '')
    started_at = datetime.datetime.now(datetime.timezone.utc)
    load_at_start = [round(load, 2) for load in os.getloadavg()]
    clock = time.monotonic()
    sys.path.insert(0, stage_collection())
    return started_at, load_at_start, clock, code_version()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--uri', default=os.environ.get('VMSNAP_URI', 'qemu:///system'))
    parser.add_argument('--quick', action='store_true',
                        help='a 512 MiB guest, 192 MiB dirtied, one run of each method: checks that the benchmark '
                             'works (a few minutes), measures little')
    parser.add_argument('--repeat', type=int, help='runs of each method, in turns (default 7, --quick 1)')
    parser.add_argument('--memory', type=int, help='guest memory in MiB (default 1024, --quick 512)')
    parser.add_argument('--dirty', type=int, help='MiB a guest process rewrites before each run (default 480, '
                                                  '--quick 192)')
    parser.add_argument('--busy', type=int, help='MiB a guest process rewrites 4 times a second meanwhile (default 64, '
                                                 '--quick 16; 0: none)')
    parser.add_argument('--interval', type=float, default=0.01, help='seconds between probe messages (0.01)')
    parser.add_argument('--baseline-seconds', type=float, default=3.0, help='length of a baseline run (3 s)')
    parser.add_argument('--settle', type=float, default=1.0, help='seconds between dirtying and the snapshot (1)')
    parser.add_argument('--tail', type=float, default=0.5, help='seconds of probing after each call (0.5)')
    parser.add_argument('--snapshot-timeout', type=int, default=300,
                        help='abort a snapshot job that runs longer (300 s)')
    parser.add_argument('--boot-timeout', type=int, default=900, help='seconds the guest may take to boot (900)')
    parser.add_argument('--only', action='append', choices=[SHORT[method] for method in METHODS],
                        help='run only these methods (repeatable; the targets need int, live and virsh)')
    parser.add_argument('--no-save', action='store_true', help='print the table only, write nothing to bench/results')
    args = parser.parse_args(argv)
    methods = tuple(method for method in METHODS if not args.only or SHORT[method] in args.only)
    quick = args.quick
    args.repeat = args.repeat or (1 if quick else 7)
    args.memory = args.memory or (512 if quick else 1024)
    args.dirty = args.dirty if args.dirty is not None else (192 if quick else 480)
    args.busy = args.busy if args.busy is not None else (16 if quick else 64)
    if args.dirty > args.memory * 0.6:
        parser.error('--dirty %d MiB does not leave the guest enough of its %d MiB' % (args.dirty, args.memory))

    prefix = '%s%d-' % (PREFIX, os.getpid())
    name = prefix + 'guest'
    work = tempfile.mkdtemp(prefix='vmsnap-bench-downtime-')
    started_at, load_at_start, clock, version = begin_run()
    results, guest, probe, conn = [], None, None, None
    extra = {}
    try:
        print('creating guest %s (%d MiB) ...' % (name, args.memory), flush=True)
        boot = time.monotonic()
        settings = json.loads(testctl(args.uri, 'guest', 'create', name, '--memory', str(args.memory),
                                      '--timeout', str(args.boot_timeout), timeout=args.boot_timeout + 120))
        extra['boot_s'] = round(time.monotonic() - boot, 1)
        print('  booted in %.0f s (load %.2f)' % (extra['boot_s'], os.getloadavg()[0]), flush=True)
        guest = Guest(args.uri, name, settings)
        conn = libvirt.open(args.uri)
        guest.start_background('/root/vmsnap_bench_server.py', GUEST_SERVER, str(ECHO_PORT), str(DIRT_PORT),
                               str(args.dirty))
        if args.busy:
            guest.start_background('/root/busy.py', BUSY_WRITER, str(args.busy), '4')
        ports, how = guest.forward(conn.lookupByName(name), (ECHO_PORT, DIRT_PORT))
        port = ports[ECHO_PORT]
        extra['probe_path'] = '%s (guest port %d)' % (how, ECHO_PORT)
        for dummy in range(100):  # the server may need a moment to listen, a tunnel to connect
            with contextlib.suppress(OSError), socket.create_connection(('127.0.0.1', port), timeout=2) as test:
                test.sendall(RECORD.pack(0, 0))
                test.settimeout(10)
                if test.recv(RECORD.size):
                    break
            time.sleep(0.2)
        probe = Probe('127.0.0.1', port, args.uri, name, args.interval, work)
        if not probe.wait_for_answer_after(time.monotonic_ns() + int(2e9), timeout=60):
            raise SystemExit('the echo server in the guest does not answer the probe')
        extra['idle_answer_time_median_s'] = round(probe.idle_baseline(), 4)
        bench = Bench(args, conn, guest, probe, Module(args.uri), ports[DIRT_PORT])
        for run in range(1, args.repeat + 1):
            turn = (run - 1) % len(methods)
            for method in methods[turn:] + methods[:turn]:
                result = bench.run_once(method, run)
                results.append(result)
                print('  run %d %-36s stop %.3f s at +%.2f s (libvirt paused %.3f s), call %.2f s, dirtying %.1f s, '
                      'load %.2f, QEMU job %s' % (run, method, result['stop_s'], result['stop_began_after_call_start_s'],
                                                  result['paused_by_libvirt_s'], result['call_s'], result['dirty_s'],
                                                  result['load1'], job_text(result['job'])), flush=True)
        left = conn.lookupByName(name).listAllSnapshots(0)
        if left:
            raise SystemExit('snapshots left on the guest: %s' % [snap.getName() for snap in left])
    finally:
        if probe is not None:
            probe.stop()
        if guest is not None:
            guest.close()
        if conn is not None:
            conn.close()
        with contextlib.suppress(SystemExit, subprocess.SubprocessError):
            testctl(args.uri, 'destroy', name)
        testctl(args.uri, 'cleanup', '--prefix', prefix)
        with contextlib.suppress(OSError):
            for entry in os.listdir(work):
                os.unlink(os.path.join(work, entry))
            os.rmdir(work)

    summary = summarize(results)
    text = table(summary)
    verdict_items = verdicts(summary, results, args.interval)
    if quick:
        for item in verdict_items:
            item['text'] += ' [--quick: a small guest, one run: checks that the benchmark works, not a measurement]'
    verdict_lines = [item['text'] for item in verdict_items]
    modes = dict((method, summary[method]['memory_file_modes']) for method in (EXTERNAL, LIVE, VIRSH)
                 if method in summary)
    extra_lines = [
        'guest: %d MiB, 1 vCPU, type=qemu (software emulation); %d MiB rewritten before each run, a process '
        'rewriting %d MiB 4 times a second throughout; boot took %.0f s'
        % (args.memory, args.dirty, args.busy, extra['boot_s']),
        'probe: %s, a 16-byte message every %.0f ms, idle answer time %.1f ms (median)' % (
            extra['probe_path'], args.interval * 1000, extra['idle_answer_time_median_s'] * 1000),
        'memory file mode after the create: %s; modes seen while it was written: %s' % (
            ', '.join('%s %s' % (SHORT[method], '/'.join(value)) for method, value in modes.items()),
            ', '.join('%s %s' % (SHORT[method], '/'.join(summary[method]['memory_file_modes_while_saved']))
                      for method in modes)),
        'memory file size (median MiB): %s'
        % ', '.join('%s %d' % (SHORT[method], summary[method]['memory_file_mib']) for method in modes),
        'snapshot state recorded by libvirt: %s' % ', '.join('%s %s' % (SHORT[method], '/'.join(
            summary[method]['recorded_states'])) for method in (INTERNAL, EXTERNAL, LIVE, VIRSH) if method in summary),
        'code: %s, work tree changes in %s' % (version['commit'],
                                               ', '.join(version['plugins_changed_in_work_tree']) or 'none'),
        'dirtying before each run took %.1f s (median)' % statistics.median(item['dirty_s'] for item in results),
        'load average (1 min) during the runs: median %.2f, %.2f to %.2f' % (
            statistics.median(item['load1'] for item in results), min(item['load1'] for item in results),
            max(item['load1'] for item in results)),
        'wall time of the benchmark: %.0f s' % (time.monotonic() - clock),
    ]
    print(text)
    print('\n'.join(extra_lines))
    print('\n'.join(verdict_lines))
    if not args.no_save:
        report = {
            'benchmark': 'downtime', 'date': started_at.strftime('%Y-%m-%dT%H:%M:%SZ'), 'uri': args.uri,
            'machine': info_bench.machine(args.uri), 'load_average_at_start': load_at_start, 'quick': quick,
            'settings': {'methods': [SHORT[method] for method in methods], 'memory_mib': args.memory, 'dirty_mib': args.dirty, 'busy_mib': args.busy,
                         'busy_rewrites_per_second': 4, 'repeat': args.repeat, 'probe_interval_s': args.interval,
                         'baseline_seconds': args.baseline_seconds, 'settle_s': args.settle, 'tail_s': args.tail},
            'code': version, 'details': extra, 'summary': summary, 'verdicts': verdict_items, 'runs': results,
        }
        stem = save(report, 'Guest stop per memory snapshot (bench/downtime_bench.py)', extra_lines, text, verdict_lines)
        print('written: %s.json, %s.md' % (stem, stem))
    return 0


if __name__ == '__main__':
    if len(sys.argv) > 1 and sys.argv[1] == '_probe':
        probe_main(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6], float(sys.argv[7]))
    else:
        sys.exit(main())
