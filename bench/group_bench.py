#!/usr/bin/env python
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How long a consistent group of real guests stops, against one guest's snapshot (issue 14, item 4).

On N real Debian 12 guests (3 by default; vmsnap_testctl guest create, software emulation, each with its guest agent),
in turns:

  one frozen      virt_snapshot of one guest: location external, memory false, quiesce true (libvirt freezes its file
                  systems through the agent, takes the disk-only snapshot, thaws)
  one memory      virt_snapshot of one guest: location internal, with memory (libvirt pauses it while it saves)
  group frozen    virt_snapshot domains: all, consistency group, location external, memory false, quiesce true: every
                  guest's file systems frozen, all the disk-only snapshots taken, every guest thawed; none paused
  group paused    the same without quiesce: every guest paused while the disk-only snapshots are taken
  group memory    consistency group, location internal, with memory: every guest paused while each memory is saved

What is measured, from the host, per guest: how long the guest could not commit a write. A server in each guest
answers each 16-byte message of a probe only after writing it to a file on its root file system and fsyncing it; a
probe process per guest (bench/downtime_bench.py's) sends one every 20 ms through a second user-network port forward
on 127.0.0.1 and logs each answer. A frozen file system blocks the write and a paused guest answers nothing, so the
longest gap between two answers around the call is the stop a database in that guest would see, either way. The
module's own record (its result's group.seconds: how long each guest was held) and libvirt's lifecycle events (how
long each was paused) are kept beside it. A run's figure is its longest stop among the guests.

Each guest's server also fills a buffer of DIRTY MiB once (no zero pages, which QEMU would skip when it saves memory).
After each run its snapshots are deleted with virt_snapshot state: absent (one task for all the guests), and the
benchmark checks that every guest's disk is its single image again and no snapshot is left.

The guests are throwaway (vmsnap-bench-group-<pid>-N) and are removed however the script ends. Timings live here and
in bench/results/, never in tests. Run with the project's virtual environment:
    .venv/bin/python bench/group_bench.py [--quick] [--guests N] [--repeat N] [--no-save]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import socket
import statistics
import sys
import tempfile
import time

import libvirt

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
import downtime_bench  # noqa: E402  (the probe, the guest's helpers, the staging)
import info_bench  # noqa: E402  (machine description, the module in-process)

PREFIX = 'vmsnap-bench-group-'
FSYNC_PORT = 7779

ONE_FROZEN, ONE_MEMORY, GROUP_FROZEN, GROUP_PAUSED, GROUP_MEMORY = (
    'one guest, disk-only, quiesced', 'one guest, internal with memory', 'group, disk-only, quiesced (frozen)',
    'group, disk-only, not quiesced (paused)', 'group, internal with memory (paused)')
METHODS = (ONE_FROZEN, ONE_MEMORY, GROUP_FROZEN, GROUP_PAUSED, GROUP_MEMORY)
SHORT = {ONE_FROZEN: 'one-frozen', ONE_MEMORY: 'one-memory', GROUP_FROZEN: 'group-frozen', GROUP_PAUSED: 'group-paused',
         GROUP_MEMORY: 'group-memory'}
ARGS = {
    ONE_FROZEN: {'location': 'external', 'memory': False, 'quiesce': 'true'},
    ONE_MEMORY: {'location': 'internal'},
    GROUP_FROZEN: {'location': 'external', 'memory': False, 'quiesce': 'true', 'consistency': 'group'},
    GROUP_PAUSED: {'location': 'external', 'memory': False, 'quiesce': 'false', 'consistency': 'group'},
    GROUP_MEMORY: {'location': 'internal', 'consistency': 'group'},
}

# The guest's end: each record is written to a file of the root file system and fsynced before it is echoed (a frozen
# file system blocks the write, a paused guest answers nothing); a buffer of MiB, filled once, keeps memory in use.
GUEST_SERVER = r'''
import os, socket, sys
port, mib = int(sys.argv[1]), int(sys.argv[2])
keep = [bytes([index % 251 + 1]) * (1 << 20) for index in range(mib)]
fd = os.open('/root/vmsnap-bench-fsync', os.O_WRONLY | os.O_CREAT, 0o600)
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(('0.0.0.0', port))
server.listen(4)
while True:
    conn, peer = server.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    pending = b''
    while True:
        data = conn.recv(65536)
        if not data:
            break
        pending += data
        while len(pending) >= 16:
            record, pending = pending[:16], pending[16:]
            os.pwrite(fd, record, 0)
            os.fsync(fd)
            conn.sendall(record)
    conn.close()
'''

libvirt.registerErrorHandler(lambda context, error: None, None)


def boot(uri, names, memory, timeout):
    """Create the guests, two at a time (software emulation: more at once starves each boot)."""
    def create(name):
        started = time.monotonic()
        settings = json.loads(downtime_bench.testctl(uri, 'guest', 'create', name, '--memory', str(memory), '--timeout',
                                                     str(timeout), timeout=timeout + 120))
        return name, settings, time.monotonic() - started
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(create, names))


def wait_for_echo(port):
    for dummy in range(150):  # the server may need a moment to listen
        with contextlib.suppress(OSError), socket.create_connection(('127.0.0.1', port), timeout=2) as test:
            test.sendall(downtime_bench.RECORD.pack(0, 0))
            test.settimeout(10)
            if test.recv(downtime_bench.RECORD.size):
                return
        time.sleep(0.2)
    raise SystemExit('the fsync echo server on 127.0.0.1:%d does not answer' % port)


class Bench:
    def __init__(self, args, conn, names, probes):
        self.args = args
        self.conn = conn
        self.names = names
        self.probes = probes
        self.sources = dict((name, downtime_bench.disk_of(conn, name)[1]) for name in names)

    def run_once(self, method, run):
        name = 'gb-%s-%02d' % (SHORT[method], run)
        targets = self.names if 'consistency' in ARGS[method] else self.names[:1]
        task = dict(ARGS[method], name=name)
        task.update({'domains': targets} if len(targets) > 1 or 'consistency' in ARGS[method] else {'domain': targets[0]})
        time.sleep(self.args.settle)
        load = os.getloadavg()[0]
        started = time.monotonic_ns()
        result = info_bench.virt_snapshot_in_process(self.args.uri, task)
        ended = time.monotonic_ns()
        per_guest = {}
        for guest in targets:
            probe = self.probes[guest]
            if not probe.wait_for_answer_after(ended + int(self.args.tail * 1e9), timeout=120):
                raise SystemExit('guest %s did not answer the probe within 120 s after %s' % (guest, method))
            measured = probe.measure(started, ended)
            per_guest[guest] = {'stop_s': measured['stop_s'], 'paused_by_libvirt_s': measured['paused_by_libvirt_s']}
        group = result.get('group') or {}
        entry = {'method': method, 'run': run, 'snapshot': name, 'call_s': (ended - started) / 1e9, 'load1': round(load, 2),
                 'guests': per_guest, 'longest_stop_s': max(item['stop_s'] for item in per_guest.values()),
                 'held_s': group.get('seconds') or {}, 'frozen': group.get('frozen', []), 'paused': group.get('paused', [])}
        entry['consistency'] = sorted(set(self.consistency(result, targets)))
        self.check_and_delete(method, name, targets, entry)
        return entry

    @staticmethod
    def consistency(result, targets):
        snapshots = [result.get('snapshot')] if 'snapshot' in result else [
            item.get('snapshot') for item in result.get('results', [])]
        values = [snapshot.get('consistency') for snapshot in snapshots if snapshot]
        if len(values) != len(targets):
            raise SystemExit('the result names %d snapshots for %d guests: %s' % (len(values), len(targets), result))
        return values

    def check_and_delete(self, method, name, targets, entry):
        expected = {ONE_FROZEN: 'quiesced', GROUP_FROZEN: 'quiesced', ONE_MEMORY: 'memory', GROUP_MEMORY: 'memory',
                    GROUP_PAUSED: 'crash'}[method]
        if entry['consistency'] != [expected]:
            raise SystemExit('%s: the snapshots say %s, not %s' % (method, entry['consistency'], expected))
        if method == GROUP_FROZEN and (sorted(entry['frozen']) != sorted(targets) or entry['paused']):
            raise SystemExit('%s froze %s and paused %s' % (method, entry['frozen'], entry['paused']))
        for guest in targets:
            if self.conn.lookupByName(guest).state()[0] != libvirt.VIR_DOMAIN_RUNNING:
                raise SystemExit('after %s guest %s is not running' % (name, guest))
        started = time.monotonic()
        info_bench.virt_snapshot_in_process(self.args.uri, {'domains': targets, 'name': name, 'state': 'absent'})
        entry['delete_s'] = round(time.monotonic() - started, 2)
        for guest in targets:
            dom = self.conn.lookupByName(guest)
            if dom.listAllSnapshots(0) or downtime_bench.disk_of(self.conn, guest)[1] != self.sources[guest]:
                raise SystemExit('after deleting %s guest %s has snapshots %s and its disk on %s (not %s)' % (
                    name, guest, [snap.getName() for snap in dom.listAllSnapshots(0)],
                    downtime_bench.disk_of(self.conn, guest)[1], self.sources[guest]))


def summarize(results):
    summary = {}
    for method in METHODS:
        runs = [item for item in results if item['method'] == method]
        if not runs:
            continue
        longest = [item['longest_stop_s'] for item in runs]
        held = [max(item['held_s'].values()) for item in runs if item['held_s']]
        paused = [max(guest['paused_by_libvirt_s'] for guest in item['guests'].values()) for item in runs]
        summary[method] = {
            # median, min, max: of the run's longest stop among its guests (the keys bench/suite.py reads)
            'guests': len(runs[0]['guests']), 'runs': len(runs), 'median': statistics.median(longest),
            'min': min(longest), 'max': max(longest),
            'held_median': statistics.median(held) if held else None,
            'paused_by_libvirt_median': statistics.median(paused),
            'call_median': statistics.median(item['call_s'] for item in runs),
            'delete_median': statistics.median(item['delete_s'] for item in runs),
            'consistency': runs[0]['consistency'],
        }
    return summary


def table(summary):
    lines = ['| method | guests | longest stop among them, median s | min s | max s | held (module record), longest, '
             'median s | paused by libvirt, longest, median s | call, median s | consistency recorded | runs |',
             '|---|---|---|---|---|---|---|---|---|---|']
    for method, entry in summary.items():
        lines.append('| %s | %d | %.3f | %.3f | %.3f | %s | %.3f | %.2f | %s | %d |' % (
            method, entry['guests'], entry['median'], entry['min'], entry['max'],
            '%.3f' % entry['held_median'] if entry['held_median'] is not None else '-',
            entry['paused_by_libvirt_median'], entry['call_median'], '/'.join(entry['consistency']), entry['runs']))
    return '\n'.join(lines)


def comparisons(summary):
    """The group against one guest: the freeze of the group against one guest's freeze, against the pause of the
    same group, and the memory group against one guest's memory snapshot."""
    pairs = ((GROUP_FROZEN, ONE_FROZEN), (GROUP_FROZEN, GROUP_PAUSED), (GROUP_MEMORY, ONE_MEMORY),
             (GROUP_FROZEN, GROUP_MEMORY))
    lines = []
    for slow, fast in pairs:
        if slow in summary and fast in summary and summary[fast]['median'] > 0:
            lines.append('%s / %s: %.3f s / %.3f s = %.2fx' % (
                slow, fast, summary[slow]['median'], summary[fast]['median'],
                summary[slow]['median'] / summary[fast]['median']))
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--uri', default=os.environ.get('VMSNAP_URI', 'qemu:///system'))
    parser.add_argument('--quick', action='store_true',
                        help='2 guests of 512 MiB, one run of each method: checks that the benchmark works')
    parser.add_argument('--guests', type=int, help='how many guests (default 3, --quick 2)')
    parser.add_argument('--repeat', type=int, help='runs of each method, in turns (default 5, --quick 1)')
    parser.add_argument('--memory', type=int, help='guest memory in MiB (default 1024, --quick 512)')
    parser.add_argument('--dirty', type=int, help='MiB each guest keeps filled (default 384, --quick 128)')
    parser.add_argument('--interval', type=float, default=0.02, help='seconds between probe messages (0.02)')
    parser.add_argument('--settle', type=float, default=1.0, help='seconds before each run (1)')
    parser.add_argument('--tail', type=float, default=0.5, help='seconds of probing after each call (0.5)')
    parser.add_argument('--boot-timeout', type=int, default=900, help='seconds each guest may take to boot (900)')
    parser.add_argument('--only', action='append', choices=[SHORT[method] for method in METHODS],
                        help='run only these methods (repeatable)')
    parser.add_argument('--no-save', action='store_true', help='print the table only, write nothing to bench/results')
    args = parser.parse_args(argv)
    methods = tuple(method for method in METHODS if not args.only or SHORT[method] in args.only)
    quick = args.quick
    args.guests = args.guests or (2 if quick else 3)
    args.repeat = args.repeat or (1 if quick else 5)
    args.memory = args.memory or (512 if quick else 1024)
    args.dirty = args.dirty if args.dirty is not None else (128 if quick else 384)
    if args.guests < 2:
        parser.error('--guests must be 2 or more: a group of one is no group')
    if args.dirty > args.memory * 0.6:
        parser.error('--dirty %d MiB does not leave the guest enough of its %d MiB' % (args.dirty, args.memory))

    prefix = '%s%d-' % (PREFIX, os.getpid())
    names = ['%s%d' % (prefix, index) for index in range(1, args.guests + 1)]
    work = tempfile.mkdtemp(prefix='vmsnap-bench-group-')
    started_at, load_at_start, clock, version = downtime_bench.begin_run()
    results, guests, probes, conn = [], [], {}, None
    extra = {}
    try:
        print('creating %d guests of %d MiB ...' % (args.guests, args.memory), flush=True)
        booted = boot(args.uri, names, args.memory, args.boot_timeout)
        extra['boot_s'] = dict((name, round(seconds, 1)) for name, dummy, seconds in booted)
        print('  booted: %s' % extra['boot_s'], flush=True)
        conn = libvirt.open(args.uri)
        for name, settings, dummy in booted:
            guest = downtime_bench.Guest(args.uri, name, settings)
            guests.append(guest)
            guest.start_background('/root/vmsnap_bench_fsync.py', GUEST_SERVER, str(FSYNC_PORT), str(args.dirty))
            ports, how = guest.forward(conn.lookupByName(name), (FSYNC_PORT,))
            extra['probe_path'] = '%s (guest port %d)' % (how, FSYNC_PORT)
            wait_for_echo(ports[FSYNC_PORT])
            folder = os.path.join(work, name)
            os.makedirs(folder)
            probes[name] = downtime_bench.Probe('127.0.0.1', ports[FSYNC_PORT], args.uri, name, args.interval, folder)
        for name, probe in probes.items():
            if not probe.wait_for_answer_after(time.monotonic_ns() + int(2e9), timeout=60):
                raise SystemExit('the fsync echo server in guest %s does not answer the probe' % name)
        extra['idle_answer_time_median_s'] = dict((name, round(probe.idle_baseline(), 4)) for name, probe in probes.items())
        bench = Bench(args, conn, names, probes)
        for run in range(1, args.repeat + 1):
            turn = (run - 1) % len(methods)
            for method in methods[turn:] + methods[:turn]:
                result = bench.run_once(method, run)
                results.append(result)
                print('  run %d %-42s longest stop %.3f s (%s), held %s, call %.2f s, load %.2f' % (
                    run, method, result['longest_stop_s'],
                    ', '.join('%.3f' % item['stop_s'] for item in result['guests'].values()),
                    result['held_s'] or '-', result['call_s'], result['load1']), flush=True)
    finally:
        for probe in probes.values():
            probe.stop()
        for guest in guests:
            guest.close()
        if conn is not None:
            conn.close()
        downtime_bench.testctl(args.uri, 'cleanup', '--prefix', prefix)
        with contextlib.suppress(OSError):
            for folder, dummy, files in os.walk(work, topdown=False):
                for entry in files:
                    os.unlink(os.path.join(folder, entry))
                os.rmdir(folder)

    summary = summarize(results)
    text = table(summary)
    compared = comparisons(summary)
    if quick:
        compared = [line + ' [--quick: checks that the benchmark works, not a measurement]' for line in compared]
    extra_lines = [
        '%d guests of %d MiB, 1 vCPU each, type=qemu (software emulation), %d MiB of each kept filled; boot took %s s'
        % (args.guests, args.memory, args.dirty, ', '.join('%.0f' % value for value in extra['boot_s'].values())),
        'probe: %s; a 16-byte message every %.0f ms, written and fsynced in the guest before it is echoed; idle answer '
        'time %s ms (median per guest)' % (extra['probe_path'], args.interval * 1000, ', '.join(
            '%.1f' % (value * 1000) for value in extra['idle_answer_time_median_s'].values())),
        'code: %s, work tree changes in %s' % (version['commit'],
                                               ', '.join(version['plugins_changed_in_work_tree']) or 'none'),
        'load average (1 min) during the runs: median %.2f' % statistics.median(item['load1'] for item in results),
        'wall time of the benchmark: %.0f s' % (time.monotonic() - clock),
    ]
    print(text)
    print('\n'.join(extra_lines))
    print('\n'.join(compared))
    if not args.no_save:
        report = {
            'benchmark': 'group', 'date': started_at.strftime('%Y-%m-%dT%H:%M:%SZ'), 'uri': args.uri,
            'machine': info_bench.machine(args.uri), 'load_average_at_start': load_at_start, 'quick': quick,
            'settings': {'methods': [SHORT[method] for method in methods], 'guests': args.guests,
                         'memory_mib': args.memory, 'dirty_mib': args.dirty, 'repeat': args.repeat,
                         'probe_interval_s': args.interval, 'settle_s': args.settle, 'tail_s': args.tail},
            'code': version, 'details': extra, 'summary': summary, 'comparisons': compared, 'runs': results,
        }
        stem = downtime_bench.save(report, 'Group snapshots of real guests (bench/group_bench.py)', extra_lines, text,
                                   compared)
        print('written: %s.json, %s.md' % (stem, stem))
    return 0


if __name__ == '__main__':
    sys.exit(main())
