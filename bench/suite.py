#!/usr/bin/env python
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The benchmark suite of vmsnap.libvirt, against the real libvirt daemon: `make bench`.

  1. fleet    50 shut-off domains, one disk-only snapshot each: one virt_snapshot task with domains (a glob) vs a loop
              of 50 virt_snapshot tasks vs a plain libvirt-python loop in one process (the floor).
              Targets: the task within 2x of the floor, and at least 10x faster than the loop.
  2. no-op    20 virt_snapshot tasks whose snapshot exists vs 20 ansible.builtin.ping tasks. Target: within 1.5x.
  3. info     virt_snapshot_info on 1,000 snapshots: bench/info_bench.py (its own benchmark, run from here).
  4. parallel 8 running domains, a snapshot with memory each: one task with parallel 4 vs parallel 1.
  5. connections  the choice made in plugins/module_utils/_batch.py: 20 shut-off domains, the module's per-domain code
              in this process with 4 workers sharing one libvirt connection vs a connection each (and 1 worker).
  6. downtime how long a real guest stops for each kind of snapshot with memory: bench/downtime_bench.py (its own
              benchmark, run from here; a real Debian guest, about 5 minutes).
  7. group    the longest stop in a consistent group of 3 real guests (frozen, paused, with memory) against one
              guest's snapshot: bench/group_bench.py (its own benchmark, run from here; about 5 minutes).

Every method runs as its own process (ansible-playbook, or python for the floor) and is timed by the wall clock, the
way a user meets it. Fleet and parallel also time "in-process": the module's main() called in this process, which
is the module's own cost without Ansible's (a process per task, the module's zip compiled on each run, the result
sent back). Methods of one benchmark run in turns, so that a change in the machine's load affects them alike; the
table gives medians and the ratios measured in the same run.

The domains are throwaway (vmsnap_testctl, names starting with vmsnap-bench-fleet-<pid>-) and are removed at the end,
whatever happened. Results, with the machine, the versions, the load and the date, go to bench/results/.
Timings live here and in bench/results/, never in tests. Run with the project's virtual environment:
    .venv/bin/python bench/suite.py [--quick] [--skip-info] [--skip-downtime] [--skip-group] [--no-save]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import importlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

import libvirt

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
import info_bench  # noqa: E402  (its machine description, collection path, test tool and round-robin timer)

RESULTS = os.path.join(BENCH, 'results')
FLEET_SIZE = 50
RUNNING_SIZE = 8
NOOP_TASKS = 20
CONNECTION_DOMAINS = 20

libvirt.registerErrorHandler(lambda context, error: None, None)

# The floor: what the fleet task does, in plain libvirt-python, one process, one domain after the other. The XML and
# flags are the ones virt_snapshot sends for a shut-off qcow2 domain here (location auto on libvirt 9.0: internal).
FLOOR = r'''
import sys, libvirt
uri, prefix, count, name = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
xml = ("<domainsnapshot><name>%s</name><memory snapshot='no'/><disks><disk name='vda' snapshot='internal'/></disks>"
       "</domainsnapshot>" % name)
conn = libvirt.open(uri)
for index in range(1, count + 1):
    conn.lookupByName('%soff-%02d' % (prefix, index)).snapshotCreateXML(xml, libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC)
conn.close()
'''


class Runner:
    """Runs playbooks and the module's main() with the collection of this repository."""

    def __init__(self, uri, prefix, collections, work):
        self.uri = uri
        self.prefix = prefix
        self.work = work
        self.env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_HOST_KEY_CHECKING='False',
                        ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_NOCOLOR='1',
                        PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get('PATH', ''))
        self.counter = 0

    def fresh_name(self, what):
        self.counter += 1
        return '%s-%03d' % (what, self.counter)

    def playbook(self, name, tasks):
        path = os.path.join(self.work, name + '.yml')
        with open(path, 'w') as out:
            json.dump([{'hosts': 'localhost', 'gather_facts': False, 'tasks': tasks}], out, indent=1)
        return path

    def play(self, path, **extra):
        argv = ['ansible-playbook', '-i', 'localhost,', '-c', 'local', path,
                '-e', json.dumps(dict(extra, ansible_python_interpreter=sys.executable))]
        done = subprocess.run(argv, check=False, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if done.returncode != 0:
            raise SystemExit('%s failed:\n%s' % (' '.join(argv), done.stdout[-4000:]))

    def in_process(self, args):
        """virt_snapshot's main() in this process: the module without Ansible's per-task cost."""
        info_bench.virt_snapshot_in_process(self.uri, args)

    def floor(self, name):
        subprocess.run([sys.executable, '-c', FLOOR, self.uri, self.prefix, str(FLEET_SIZE), name], check=True)


def create_domains(uri, names, start=False):
    """Create throwaway domains four at a time (vmsnap_testctl takes one name per call)."""
    def create(name):
        info_bench.testctl(uri, 'create', name, *(['--start'] if start else []))
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(create, names))


def ratio(results, slow, fast):
    return results[slow]['median'] / results[fast]['median']


# -- the benchmarks ---------------------------------------------------------------------------------------------------

def bench_fleet(runner, repeat, loop_repeat):
    fleet_glob = runner.prefix + 'off-*'
    names = ['%soff-%02d' % (runner.prefix, index) for index in range(1, FLEET_SIZE + 1)]
    task = runner.playbook('fleet_task', [{'vmsnap.libvirt.virt_snapshot': {
        'uri': runner.uri, 'domains': [fleet_glob], 'name': '{{ snap }}'}}])
    loop = runner.playbook('fleet_loop', [{'vmsnap.libvirt.virt_snapshot': {
        'uri': runner.uri, 'domain': '{{ item }}', 'name': '{{ snap }}'}, 'loop': names}])
    results = info_bench.timed([
        ('floor (libvirt-python loop, 1 process)', lambda: runner.floor(runner.fresh_name('floor'))),
        ('task (domains, 1 task)', lambda: runner.play(task, snap=runner.fresh_name('task'))),
        ('in-process (domains, main() only)', lambda: runner.in_process(
            {'domains': [fleet_glob], 'name': runner.fresh_name('core')})),
    ], repeat)
    results.update(info_bench.timed([
        ('loop (50 tasks)', lambda: runner.play(loop, snap=runner.fresh_name('loop'))),
    ], loop_repeat))
    verify_fleet(runner, names, 3 * repeat + loop_repeat)
    floor, task, loop_name = ('floor (libvirt-python loop, 1 process)', 'task (domains, 1 task)', 'loop (50 tasks)')
    return {
        'name': 'fleet', 'what': '%d shut-off domains, one disk-only snapshot each' % FLEET_SIZE,
        'results': results, 'base': floor,
        'verdicts': [
            verdict('task / floor', ratio(results, task, floor), '<=', 2.0),
            verdict('loop / task', ratio(results, loop_name, task), '>=', 10.0),
            info('in-process / floor', ratio(results, 'in-process (domains, main() only)', floor)),
        ],
    }


def verify_fleet(runner, names, expected):
    """Every run made its snapshot on every domain: the same work was timed each time."""
    conn = libvirt.open(runner.uri)
    try:
        counts = dict((name, len(conn.lookupByName(name).listAllSnapshots(0))) for name in names)
    finally:
        conn.close()
    wrong = dict((name, count) for name, count in counts.items() if count != expected)
    if wrong:
        raise SystemExit('the fleet domains should hold %d snapshots each, but: %s' % (expected, wrong))


def bench_noop(runner, repeat):
    domain = runner.prefix + 'noop'
    runner.in_process({'domain': domain, 'name': 'noop'})
    module = {'vmsnap.libvirt.virt_snapshot': {'uri': runner.uri, 'domain': domain, 'name': 'noop'}}
    noop = runner.playbook('noop', [dict(module, name='no-op %d' % index) for index in range(NOOP_TASKS)])
    ping = runner.playbook('ping', [{'name': 'ping %d' % index, 'ansible.builtin.ping': {}}
                                    for index in range(NOOP_TASKS)])
    startup = runner.playbook('startup', [{'ansible.builtin.meta': 'noop'}])
    results = info_bench.timed([
        ('20 ping tasks', lambda: runner.play(ping)),
        ('20 no-op virt_snapshot tasks', lambda: runner.play(noop)),
        ('playbook without a module run', lambda: runner.play(startup)),
    ], repeat)
    base = results['playbook without a module run']['median']
    per_task = (results['20 no-op virt_snapshot tasks']['median'] - base) / (results['20 ping tasks']['median'] - base)
    return {
        'name': 'no-op', 'what': '%d tasks on a snapshot that exists, vs ping' % NOOP_TASKS,
        'results': results, 'base': '20 ping tasks',
        'verdicts': [
            verdict('no-op / ping', ratio(results, '20 no-op virt_snapshot tasks', '20 ping tasks'), '<=', 1.5),
            info('per task, without the playbook start (no-op - start) / (ping - start)', per_task),
        ],
    }


def bench_parallel(runner, repeat):
    running_glob = runner.prefix + 'run-*'
    tasks = {}
    for parallel in (4, 1):
        tasks[parallel] = runner.playbook('parallel_%d' % parallel, [{'vmsnap.libvirt.virt_snapshot': {
            'uri': runner.uri, 'domains': [running_glob], 'name': '{{ snap }}', 'parallel': parallel}}])
    results = info_bench.timed([
        ('task, parallel 1', lambda: runner.play(tasks[1], snap=runner.fresh_name('p1'))),
        ('task, parallel 4', lambda: runner.play(tasks[4], snap=runner.fresh_name('p4'))),
        ('in-process, parallel 1', lambda: runner.in_process(
            {'domains': [running_glob], 'name': runner.fresh_name('c1'), 'parallel': 1})),
        ('in-process, parallel 4', lambda: runner.in_process(
            {'domains': [running_glob], 'name': runner.fresh_name('c4'), 'parallel': 4})),
    ], repeat)
    return {
        'name': 'parallel', 'what': '%d running domains, one snapshot with memory each' % RUNNING_SIZE,
        'results': results, 'base': 'task, parallel 1',
        'verdicts': [
            info('task: parallel 1 / parallel 4 (speed-up)', ratio(results, 'task, parallel 1', 'task, parallel 4')),
            info('in-process: parallel 1 / parallel 4 (speed-up)',
                 ratio(results, 'in-process, parallel 1', 'in-process, parallel 4')),
        ],
    }


def bench_connections(runner, repeat):
    """The design choice of plugins/module_utils/_batch.py: workers sharing the module's one connection, or opening
    one each. The module's own per-domain code (manage_domain) in this process, 4 workers."""
    import threading
    from ansible_collections.vmsnap.libvirt.plugins.module_utils import _batch, _client, _domain_run
    names = ['%sconn-%02d' % (runner.prefix, index) for index in range(1, CONNECTION_DOMAINS + 1)]
    defaults = {'state': 'present', 'description': None, 'memory': None, 'location': 'auto', 'memory_file': None,
                'disks': None, 'quiesce': False, 'new_name': None, 'xml': None, 'redefine': False, 'current': False,
                'all': False, 'pattern': None, 'keep_newest': None, 'merge_timeout': 3600}

    def run(shared, workers):
        snapshot = runner.fresh_name('conn')
        clients = []
        local = threading.local()
        lock = threading.Lock()

        def client_of_this_thread():
            if shared is not None:
                return shared
            if not hasattr(local, 'client'):
                local.client = _client.Client(uri=runner.uri)
                with lock:
                    clients.append(local.client)
            return local.client

        def work(name, dummy):
            return _domain_run.manage_domain(dict(defaults, domain=name, name=snapshot), client_of_this_thread())

        try:
            outcomes = _batch.run_each([(name, None) for name in names], work, workers)
        finally:
            for client in clients + ([shared] if shared is not None else []):
                client.close()
        failed = [outcome.error.msg for outcome in outcomes if not outcome.ok]
        if failed:
            raise SystemExit('connections benchmark: %s' % failed[0])

    results = info_bench.timed([
        ('1 worker', lambda: run(_client.Client(uri=runner.uri), 1)),
        ('4 workers, one shared connection', lambda: run(_client.Client(uri=runner.uri), 4)),
        ('4 workers, a connection each', lambda: run(None, 4)),
    ], repeat)
    return {
        'name': 'connections', 'what': '%d shut-off domains, in-process: share the connection or not'
        % CONNECTION_DOMAINS, 'results': results, 'base': '4 workers, one shared connection',
        'verdicts': [
            info('a connection each / shared', ratio(results, '4 workers, a connection each',
                                                     '4 workers, one shared connection')),
            info('1 worker / 4 shared (speed-up)', ratio(results, '1 worker', '4 workers, one shared connection')),
        ],
    }


def bench_info(args):
    """bench/info_bench.py, the virt_snapshot_info benchmark, as its own process; its report is read back."""
    argv = [sys.executable, os.path.join(BENCH, 'info_bench.py'), '--uri', args.uri]
    if args.quick:
        argv += ['--repeat', '5', '--ansible-repeat', '3', '--virsh-repeat', '0']
    if args.no_save:
        argv.append('--no-save')
    done = subprocess.run(argv, check=False, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(done.stdout)
    if done.returncode != 0:
        raise SystemExit('bench/info_bench.py failed')
    written = re.search(r'^written: (\S+\.json),', done.stdout, re.MULTILINE)
    report = None
    if written:
        with open(written.group(1)) as source:
            report = json.load(source)
    verdicts = [line for line in done.stdout.splitlines() if re.match(r'^\w+: core/raw = ', line)]
    return {'name': 'info', 'what': 'virt_snapshot_info on %s snapshots (bench/info_bench.py)'
            % (report['runs'][0]['snapshots'] if report else 1000), 'report_file': written.group(1) if written else None,
            'runs': report['runs'] if report else None, 'verdicts': [{'text': line} for line in verdicts]}


def bench_guests(args, name, script, what, base, verdict_prefix):
    """A real-guest benchmark (bench/downtime_bench.py, bench/group_bench.py) as its own process; its report is read
    back. The table rows are guest stops in seconds, not wall-clock times; base: the method the others are set
    against."""
    argv = [sys.executable, os.path.join(BENCH, script), '--uri', args.uri]
    if args.quick:
        argv.append('--quick')
    if args.no_save:
        argv.append('--no-save')
    done = subprocess.run(argv, check=False, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(done.stdout)
    if done.returncode != 0:
        raise SystemExit('bench/%s failed' % script)
    written = re.search(r'^written: (\S+\.json),', done.stdout, re.MULTILINE)
    if not written:  # --no-save: only the verdict lines it printed
        verdicts = [line for line in done.stdout.splitlines() if line.startswith(verdict_prefix)]
        return {'name': name, 'what': what, 'verdicts': [{'text': line} for line in verdicts]}
    with open(written.group(1)) as source:
        report = json.load(source)
    module = importlib.import_module(os.path.splitext(script)[0])  # its methods, in its order
    results = dict((method, dict((key, report['summary'][method][key]) for key in ('median', 'min', 'max', 'runs')))
                   for method in module.METHODS if method in report['summary'])
    verdicts = report.get('verdicts') or [{'text': line} for line in report.get('comparisons', [])]
    return {'name': name, 'what': what, 'report_file': written.group(1), 'results': results, 'base': base,
            'verdicts': verdicts}


# -- reporting --------------------------------------------------------------------------------------------------------

def verdict(label, value, relation, target):
    met = value <= target if relation == '<=' else value >= target
    return {'text': '%s = %.2fx (target %s %.1fx: %s)' % (label, value, relation, target, 'met' if met else 'MISSED'),
            'label': label, 'value': round(value, 3), 'target': '%s %s' % (relation, target), 'met': met}


def info(label, value):
    return {'text': '%s = %.2fx' % (label, value), 'label': label, 'value': round(value, 3)}


def table(benchmarks):
    lines = ['| benchmark | method | median s | min s | max s | runs | vs base |', '|---|---|---|---|---|---|---|']
    for bench in benchmarks:
        if 'results' in bench:
            base = bench['results'][bench['base']]['median']
            for method, numbers in bench['results'].items():
                lines.append('| %s | %s | %.3f | %.3f | %.3f | %d | %.2fx |' % (
                    bench['name'], method, numbers['median'], numbers['min'], numbers['max'], numbers['runs'],
                    numbers['median'] / base))
        for run in bench.get('runs') or []:
            raw = run['results']['raw']['median']
            for method, numbers in run['results'].items():
                lines.append('| info (%s) | %s | %.3f | %.3f | %.3f | %d | %.2fx |' % (
                    run['shape'], method, numbers['median'], numbers['min'], numbers['max'], numbers['runs'],
                    numbers['median'] / raw))
    return '\n'.join(lines)


def verdict_lines(benchmarks):
    return ['%s: %s' % (bench['name'], item['text']) for bench in benchmarks for item in bench['verdicts']]


def save(report, text, verdicts):
    os.makedirs(RESULTS, exist_ok=True)
    stem = os.path.join(RESULTS, 'suite-%s-%s' % (report['date'].replace('-', '').replace(':', ''), platform.node()))
    with open(stem + '.json', 'w') as out:
        json.dump(report, out, indent=2, sort_keys=True)
        out.write('\n')
    with open(stem + '.md', 'w') as out:
        out.write('# vmsnap.libvirt benchmark suite, %s\n\n' % report['date'])
        out.write('%s, load_average_at_start: %s\n\n' % (
            ', '.join('%s: %s' % item for item in sorted(report['machine'].items())), report['load_average_at_start']))
        out.write(text + '\n\n' + '\n'.join('- ' + line for line in verdicts) + '\n')
    return stem


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--uri', default=os.environ.get('VMSNAP_URI', 'qemu:///system'))
    parser.add_argument('--quick', action='store_true', help='fewer runs of each method (3, the loop 1), info without '
                                                             'virsh: a smoke test of the suite, not a measurement')
    parser.add_argument('--only', choices=['fleet', 'noop', 'info', 'parallel', 'connections', 'downtime', 'group'],
                        action='append',
                        help='run only these benchmarks (repeatable)')
    parser.add_argument('--skip-info', action='store_true', help='leave out bench/info_bench.py (about 3 minutes)')
    parser.add_argument('--skip-downtime', action='store_true',
                        help='leave out bench/downtime_bench.py (a real guest, about 5 minutes)')
    parser.add_argument('--skip-group', action='store_true',
                        help='leave out bench/group_bench.py (3 real guests, about 5 minutes)')
    parser.add_argument('--no-save', action='store_true', help='print the table only, write nothing to bench/results')
    args = parser.parse_args(argv)
    chosen = args.only or ['fleet', 'noop', 'info', 'parallel', 'connections', 'downtime', 'group']
    if args.skip_info and 'info' in chosen:
        chosen.remove('info')
    if args.skip_downtime and 'downtime' in chosen:
        chosen.remove('downtime')
    if args.skip_group and 'group' in chosen:
        chosen.remove('group')
    repeat, loop_repeat = (3, 1) if args.quick else (5, 5)

    prefix = 'vmsnap-bench-fleet-%d-' % os.getpid()
    collections = info_bench.collection_path()
    sys.path.insert(0, collections)
    os.environ['PATH'] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get('PATH', '')
    work = tempfile.mkdtemp(prefix='vmsnap-bench-suite-')
    runner = Runner(args.uri, prefix, collections, work)
    started = datetime.datetime.now(datetime.timezone.utc)
    load_at_start = [round(load, 2) for load in os.getloadavg()]
    benchmarks = []
    try:
        for name in chosen:
            print('running %s ...' % name, flush=True)
            if name == 'info':
                benchmarks.append(bench_info(args))
                continue
            if name == 'downtime':
                benchmarks.append(bench_guests(args, 'downtime', 'downtime_bench.py', 'guest stop (s) per snapshot with '
                                               'memory, real guest (bench/downtime_bench.py)', 'internal (module)',
                                               'external live '))
                continue
            if name == 'group':
                benchmarks.append(bench_guests(args, 'group', 'group_bench.py', 'longest guest stop (s) in a group of '
                                               'real guests, against one (bench/group_bench.py)',
                                               'one guest, disk-only, quiesced', 'group, '))
                continue
            # Each benchmark has only its own domains: a running type='qemu' domain keeps a CPU busy (QEMU emulates
            # its idle guest), which would slow the other benchmarks down.
            domains, start, function, repeats = {
                'fleet': (['%soff-%02d' % (prefix, index) for index in range(1, FLEET_SIZE + 1)], False,
                          bench_fleet, (repeat, loop_repeat)),
                'noop': ([prefix + 'noop'], False, bench_noop, (repeat,)),
                'parallel': (['%srun-%d' % (prefix, index) for index in range(1, RUNNING_SIZE + 1)], True,
                             bench_parallel, (repeat,)),
                'connections': (['%sconn-%02d' % (prefix, index) for index in range(1, CONNECTION_DOMAINS + 1)], False,
                                bench_connections, (repeat + 2,)),
            }[name]
            setup_started = time.monotonic()
            create_domains(args.uri, domains, start=start)
            print('  set-up: %d domains in %.1f s' % (len(domains), time.monotonic() - setup_started), flush=True)
            try:
                benchmarks.append(function(runner, *repeats))
            finally:
                info_bench.testctl(args.uri, 'destroy', *domains)
    finally:
        info_bench.testctl(args.uri, 'cleanup', '--prefix', prefix)
        shutil.rmtree(work)
        shutil.rmtree(collections)

    text = table(benchmarks)
    verdicts = verdict_lines(benchmarks)
    print(text)
    print('\n'.join(verdicts))
    if not args.no_save:
        report = {
            'benchmark': 'suite', 'date': started.strftime('%Y-%m-%dT%H:%M:%SZ'), 'uri': args.uri,
            'machine': info_bench.machine(args.uri), 'load_average_at_start': load_at_start, 'quick': args.quick,
            'benchmarks': benchmarks,
        }
        stem = save(report, text, verdicts)
        print('written: %s.json, %s.md' % (stem, stem))
    return 0


if __name__ == '__main__':
    sys.exit(main())
