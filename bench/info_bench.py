#!/usr/bin/env python
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How fast vmsnap.libvirt.virt_snapshot_info reads a domain with many snapshots, against the alternatives.

On a throwaway shut-off qcow2 domain with N snapshots (1,000 by default) for each tree shape, it times:

  raw          the libvirt-python calls that fetch the same data, nothing else: open, lookupByName, state, isPersistent,
               listAllSnapshots, getXMLDesc of each snapshot, snapshotCurrent, and the host's capabilities and versions
  naive        raw plus listChildrenNames and isCurrent per snapshot (what the module avoids), for scale
  core         the module's core in-process (_client.Client + _info.gather): raw plus parsing, the tree and its text
  ansible      `ansible localhost -m vmsnap.libvirt.virt_snapshot_info -a domain=...` (one process, wall clock)
  ansible-ping `ansible localhost -m ansible.builtin.ping`, Ansible's own cost for one module run, for scale
  virsh        `virsh snapshot-list --tree` plus `virsh snapshot-info` for each snapshot, each its own process

The snapshots are made by REDEFINE: one real disk-only internal snapshot is taken, and N - 1 copies of its XML (the
recorded domain definition included, so every XML has a real snapshot's size) are redefined under other names, parents
and creation times. That takes a few seconds instead of minutes, and it lets the benchmark choose the tree's shape.
Only libvirt's metadata exists for the copies (reverting to them would fail), which is all that reading needs.

Shapes: 'tree' gives each snapshot a random earlier parent (seeded, a few levels deep, many branches); 'chain' makes
each the child of the one before (1,000 levels: the worst case for the text rendering, whose indentation grows with
the depth, and for the nested tree, which the module cuts at 64 levels).

Timings live here and in bench/results/, never in tests. Run with the project's virtual environment:
    .venv/bin/python bench/info_bench.py
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import io
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import libvirt
from lxml import etree

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTCTL = os.path.join(REPO, 'tests', 'integration', 'targets', 'setup_libvirt', 'files', 'vmsnap_testctl.py')
RESULTS = os.path.join(REPO, 'bench', 'results')
DOMAIN_PREFIX = 'vmsnap-bench-info-'
TARGET_RATIO = 1.5
IN_PROCESS = ('raw', 'core', 'naive')

libvirt.registerErrorHandler(lambda context, error: None, None)


def collection_path():
    """A folder whose ansible_collections/vmsnap/libvirt is this repository (for imports and for ansible)."""
    root = tempfile.mkdtemp(prefix='vmsnap-bench-')
    os.makedirs(os.path.join(root, 'ansible_collections', 'vmsnap'))
    os.symlink(REPO, os.path.join(root, 'ansible_collections', 'vmsnap', 'libvirt'))
    return root


# -- the throwaway domain ---------------------------------------------------------------------------------------------

def testctl(uri, *args):
    return subprocess.run([sys.executable, TESTCTL, '--uri', uri] + list(args), check=True, capture_output=True,
                          text=True).stdout


def virt_snapshot_in_process(uri, args):
    """virt_snapshot's main() in this process (the module without Ansible's per-task cost): its result, parsed; a
    SystemExit with the module's output when it fails. The collection must be importable (collection_path())."""
    from ansible.module_utils.testing import patch_module_args
    from ansible_collections.vmsnap.libvirt.plugins.modules import virt_snapshot
    output = io.StringIO()
    with patch_module_args(dict(args, uri=uri)), contextlib.redirect_stdout(output):
        try:
            virt_snapshot.main()
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise SystemExit('virt_snapshot %s failed in-process: %s' % (args, output.getvalue()[-4000:])) from None
    return json.loads(output.getvalue())


def parents_for(count, shape, seed=42):
    """Parent index of each snapshot index (None for the root)."""
    if shape == 'chain':
        return [None] + list(range(count - 1))
    rng = random.Random(seed)
    return [None] + [rng.randrange(index) for index in range(1, count)]


def populate(conn, name, count, shape):
    """Take one real snapshot, then redefine count - 1 copies of its XML; the last one is current."""
    dom = conn.lookupByName(name)
    first = dom.snapshotCreateXML('<domainsnapshot><name>s0000</name></domainsnapshot>', 0)
    template = first.getXMLDesc(libvirt.VIR_DOMAIN_SNAPSHOT_XML_SECURE)
    created = int(etree.fromstring(template).findtext('creationTime'))
    parents = parents_for(count, shape)
    started = time.monotonic()
    for index in range(1, count):
        root = etree.fromstring(template)
        root.find('name').text = 's%04d' % index
        root.find('creationTime').text = str(created + index)
        parent = etree.Element('parent')
        etree.SubElement(parent, 'name').text = 's%04d' % parents[index]
        root.find('state').addnext(parent)
        flags = libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE
        if index == count - 1:
            flags |= libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT
        dom.snapshotCreateXML(etree.tostring(root, encoding='unicode'), flags)
    return time.monotonic() - started


# -- what is timed ----------------------------------------------------------------------------------------------------

def raw(uri, name, naive=False):
    conn = libvirt.open(uri)
    try:
        dom = conn.lookupByName(name)
        dom.state(0)
        dom.isPersistent()
        snaps = dom.listAllSnapshots(0)
        xmls = [snap.getXMLDesc(0) for snap in snaps]
        if naive:
            for snap in snaps:
                snap.listChildrenNames(0)
                snap.isCurrent(0)
        current = dom.snapshotCurrent(0).getName()
        conn.getCapabilities()
        conn.getLibVersion()
        conn.getVersion()
        return len(xmls), current
    finally:
        conn.close()


def core(uri, name):
    from ansible_collections.vmsnap.libvirt.plugins.module_utils import _client, _info
    client = _client.Client(uri=uri)
    try:
        result = _info.gather(client, {'domain': name})
    finally:
        client.close()
    entry = result['domains'][0]
    return entry['count'], entry['current_snapshot']


def ansible(env, uri, module, args):
    subprocess.run(['ansible', 'localhost', '-i', 'localhost,', '-c', 'local', '-m', module, '-a', args,
                    '-e', 'ansible_python_interpreter=%s' % sys.executable],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def virsh(uri, name, snapshot_names):
    subprocess.run(['virsh', '-c', uri, 'snapshot-list', '--tree', name], check=True, stdout=subprocess.DEVNULL)
    for snapshot in snapshot_names:
        subprocess.run(['virsh', '-c', uri, 'snapshot-info', name, snapshot], check=True, stdout=subprocess.DEVNULL)


def timed(methods, repeat):
    """{name: {median, min, max, runs}} of each (name, function), run in turns (round-robin) so that a change in
    the machine's load during the run affects every method alike."""
    seconds = dict((name, []) for name, dummy in methods)
    cpu = dict((name, []) for name, dummy in methods)
    for dummy in range(repeat):
        for name, function in methods:
            started, cpu_started = time.perf_counter(), time.process_time()
            function()
            seconds[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - cpu_started)
    return dict((name, {'median': statistics.median(values), 'min': min(values), 'max': max(values),
                        'runs': len(values), 'cpu_median': statistics.median(cpu[name])})
                for name, values in seconds.items())


# -- where it ran -----------------------------------------------------------------------------------------------------

def version_string(number):
    return '%d.%d.%d' % (number // 1000000, number // 1000 % 1000, number % 1000)


def machine(uri):
    cpu = platform.processor()
    try:
        with open('/proc/cpuinfo') as cpuinfo:
            cpu = next((line.split(':', 1)[1].strip() for line in cpuinfo if line.startswith('model name')), cpu)
    except OSError:
        pass
    os_name = platform.platform()
    try:
        with open('/etc/os-release') as release:
            os_name = next((line.split('=', 1)[1].strip().strip('"') for line in release
                            if line.startswith('PRETTY_NAME=')), os_name)
    except OSError:
        pass
    conn = libvirt.open(uri)
    try:
        daemon, hypervisor = conn.getLibVersion(), conn.getVersion()
    finally:
        conn.close()
    ansible_version = subprocess.run(['ansible', '--version'], check=True, capture_output=True,
                                     text=True).stdout.splitlines()[0]
    return {
        'load_average_at_end': [round(load, 2) for load in os.getloadavg()],
        'host': platform.node(),
        'cpu': cpu,
        'cpus': os.cpu_count(),
        'os': os_name,
        'kernel': platform.release(),
        'python': platform.python_version(),
        'libvirt_library': version_string(libvirt.getVersion()),
        'libvirt_daemon': version_string(daemon),
        'qemu': version_string(hypervisor),
        'libvirt_python': importlib.metadata.version('libvirt-python'),
        'lxml': '.'.join(str(part) for part in etree.LXML_VERSION),
        'ansible': ansible_version,
    }


# -- the run ----------------------------------------------------------------------------------------------------------

def bench_shape(args, env, shape):
    name = '%s%s-%d' % (DOMAIN_PREFIX, shape, os.getpid())
    testctl(args.uri, 'create', name)
    try:
        conn = libvirt.open(args.uri)
        try:
            setup_seconds = populate(conn, name, args.snapshots, shape)
            names = sorted(snap.getName() for snap in conn.lookupByName(name).listAllSnapshots(0))
        finally:
            conn.close()
        expected = (args.snapshots, 's%04d' % (args.snapshots - 1))
        # the same answer from both, before anything is timed
        if raw(args.uri, name) != expected or core(args.uri, name) != expected:
            raise SystemExit('raw and core disagree about %s: %r, %r' % (name, raw(args.uri, name),
                                                                         core(args.uri, name)))
        results = timed([
            ('raw', lambda: raw(args.uri, name)),
            ('core', lambda: core(args.uri, name)),
            ('naive', lambda: raw(args.uri, name, naive=True)),
        ], args.repeat)
        results.update(timed([
            ('ansible', lambda: ansible(env, args.uri, 'vmsnap.libvirt.virt_snapshot_info',
                                        'uri=%s domain=%s' % (args.uri, name))),
            ('ansible-ping', lambda: ansible(env, args.uri, 'ansible.builtin.ping', '')),
        ], args.ansible_repeat))
        if args.virsh_repeat:
            results.update(timed([('virsh', lambda: virsh(args.uri, name, names))], args.virsh_repeat))
        return {'shape': shape, 'snapshots': args.snapshots, 'setup_seconds': round(setup_seconds, 2),
                'results': results}
    finally:
        testctl(args.uri, 'destroy', name)


def table(runs):
    """Wall-clock seconds, and the CPU seconds of this process (in-process methods only: the others run in child
    processes, and libvirtd's own work is in neither)."""
    lines = ['| shape | method | median s | min s | max s | runs | vs raw | own CPU s |',
             '|---|---|---|---|---|---|---|---|']
    for run in runs:
        base = run['results']['raw']['median']
        for method, numbers in run['results'].items():
            lines.append('| %s | %s | %.3f | %.3f | %.3f | %d | %.2fx | %s |' % (
                run['shape'], method, numbers['median'], numbers['min'], numbers['max'], numbers['runs'],
                numbers['median'] / base,
                '%.3f' % numbers['cpu_median'] if method in IN_PROCESS else '-'))
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--uri', default=os.environ.get('VMSNAP_URI', 'qemu:///system'))
    parser.add_argument('--snapshots', type=int, default=1000)
    parser.add_argument('--shape', choices=['tree', 'chain', 'both'], default='both')
    parser.add_argument('--repeat', type=int, default=21, help='runs of each in-process method (median)')
    parser.add_argument('--ansible-repeat', type=int, default=5, help='runs of each ansible method (median)')
    parser.add_argument('--virsh-repeat', type=int, default=1,
                        help='runs of the virsh method (about 30 ms per snapshot each); 0 skips it')
    parser.add_argument('--no-save', action='store_true', help='print the table only, write nothing to bench/results')
    args = parser.parse_args(argv)
    if args.snapshots < 2:
        parser.error('--snapshots must be 2 or more')

    collections = collection_path()
    sys.path.insert(0, collections)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_HOST_KEY_CHECKING='False',
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get('PATH', ''))
    os.environ['PATH'] = env['PATH']
    try:
        started = datetime.datetime.now(datetime.timezone.utc)
        load_at_start = [round(load, 2) for load in os.getloadavg()]
        shapes = ['tree', 'chain'] if args.shape == 'both' else [args.shape]
        runs = [bench_shape(args, env, shape) for shape in shapes]
    finally:
        shutil.rmtree(collections)

    report = {
        'benchmark': 'virt_snapshot_info',
        'date': started.strftime('%Y-%m-%dT%H:%M:%SZ'),
        'machine': machine(args.uri),
        'load_average_at_start': load_at_start,
        'uri': args.uri,
        'target': 'core median within %.1fx of raw' % TARGET_RATIO,
        'runs': runs,
    }
    text = table(runs)
    verdicts = ['%s: core/raw = %.2fx (target %.1fx: %s)' % (
        run['shape'], run['results']['core']['median'] / run['results']['raw']['median'], TARGET_RATIO,
        'met' if run['results']['core']['median'] <= TARGET_RATIO * run['results']['raw']['median'] else 'MISSED')
        for run in runs]
    print(text)
    print('\n'.join(verdicts))
    if not args.no_save:
        os.makedirs(RESULTS, exist_ok=True)
        stem = os.path.join(RESULTS, 'info_bench-%s-%s' % (started.strftime('%Y%m%dT%H%M%SZ'), platform.node()))
        with open(stem + '.json', 'w') as out:
            json.dump(report, out, indent=2, sort_keys=True)
            out.write('\n')
        with open(stem + '.md', 'w') as out:
            out.write('# virt_snapshot_info benchmark, %s\n\n' % report['date'])
            out.write('%s, load_average_at_start: %s\n\n' % (
                ', '.join('%s: %s' % item for item in sorted(report['machine'].items())), load_at_start))
            out.write('%d snapshots per domain, made by REDEFINE (see bench/README.md).\n\n' % args.snapshots)
            out.write(text + '\n\n' + '\n'.join('- ' + verdict for verdict in verdicts) + '\n')
        print('written: %s.json, %s.md' % (stem, stem))
    return 0


if __name__ == '__main__':
    sys.exit(main())
