# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Part bad_input: every case of bad_input.yml fails with a message that names the problem, shows no Python stack, and
leaves its domain exactly as it was.

The module cases of one fixture domain run as the tasks of one playbook, written from bad_input.yml into the work
directory (one ansible-playbook start per fixture instead of per case); the results callback fingerprints the domain
around each task. Each role case is a playbook of its own (the role runs many tasks), fingerprinted by the driver.
Fixtures are tested side by side.
"""

import concurrent.futures
import os

import yaml

from vmsnap_reliability import state
from vmsnap_reliability.runner import HERE, TRACEBACK_RE, record_tracebacks

CASES_FILE = os.path.join(HERE, 'bad_input.yml')
ROLE = 'snapshot_guard'


def substitute(value, names, folders, prefix):
    """The case's arguments with the placeholders of bad_input.yml filled in."""
    if isinstance(value, dict):
        return dict((key, substitute(item, names, folders, prefix)) for key, item in value.items())
    if isinstance(value, list):
        return [substitute(item, names, folders, prefix) for item in value]
    if not isinstance(value, str):
        return value
    value = value.replace('{x256}', 'x' * 256).replace('{prefix}', prefix)
    for key in names:
        value = value.replace('{dir:%s}' % key, folders[key]).replace('{%s}' % key, names[key])
    return value


def make_fixtures(ctx, spec):
    """The fixture domains of bad_input.yml, each with its snapshots."""
    fixtures = ctx.fixtures
    for key, wanted in spec.items():
        fixtures.create(key, disk_format=wanted['format'], start=wanted['state'] != 'shutoff')
        if wanted.get('transient'):
            fixtures.make_transient(key)
        for name in wanted.get('snapshots', []):
            fixtures.snapshot(key, name)
        for name in wanted.get('external_snapshots', []):
            fixtures.snapshot(key, name, disk_only_external=True)
        if wanted['state'] == 'paused':
            fixtures.pause(key)


def failure_text(record):
    """What a failed result tells the user: its msg, plus the argument errors of a role's argument validation."""
    result = record['result']
    parts = [str(result.get('msg', ''))]
    parts.extend(str(item) for item in result.get('argument_errors') or [])
    return '\n'.join(parts)


def judge(expected_msg, failure, changes, tracebacks):
    """What is wrong with one case's outcome (empty: it passed)."""
    problems = []
    if failure is None:
        problems.append('did not fail')
    else:
        text = failure_text(failure)
        if expected_msg not in text:
            problems.append('message lacks %r: %r' % (expected_msg, text[:600]))
        if 'MODULE FAILURE' in text:
            problems.append('the module crashed: %r' % text[:600])
    problems.extend('Python stack: ' + line for line in tracebacks[:3])
    problems.extend('changed: ' + line for line in changes)
    return problems


class BadInput:
    def __init__(self, ctx, spec, part):
        self.ctx = ctx
        self.spec = spec
        self.part = part
        self.names = dict((key, ctx.fixtures.name(key)) for key in spec['fixtures'])
        self.folders = dict((key, ctx.fixtures.folder(key)) for key in spec['fixtures'])

    def fill(self, value):
        return substitute(value, self.names, self.folders, self.ctx.prefix)

    def target(self, case):
        return {'domain': self.names[case['domain']], 'folder': self.folders[case['domain']]}

    def module_task(self, case):
        args = dict({'uri': self.ctx.daemon.user_uri}, **self.fill(case['args']))
        return {'name': case['id'], 'vmsnap.libvirt.' + case['module']: args, 'ignore_errors': True,
                'vars': {'reliability_fingerprint': self.target(case)}}

    def run_module_cases(self, fixture, cases):
        playbook = os.path.join(self.ctx.workdir, 'bad_input-%s.yml' % fixture)
        with open(playbook, 'w') as stream:
            stream.write('# Written by tests/reliability/vmsnap_reliability/bad_input.py from bad_input.yml\n')
            yaml.safe_dump([{'name': 'Bad input on fixture %s' % fixture, 'hosts': 'localhost',
                             'gather_facts': False, 'tasks': [self.module_task(case) for case in cases]}],
                           stream, sort_keys=False, allow_unicode=True, width=160)
        run = self.ctx.ansible.run(playbook, {}, 'bad_input-' + fixture)
        outcomes = dict((record['task'], record) for record in run.records)
        for case in cases:
            record = outcomes.get(case['id'])
            if record is None:
                self.count(case, ['no result recorded: %s' % run.describe(15)])
                continue
            failure = record if record['status'] == 'failed' else None
            self.count(case, judge(self.fill(case['msg']), failure, record.get('changes', ['not fingerprinted']),
                                   record_tracebacks(record)))
        # A stack in the output belongs to the playbook as a whole (the results above name their own).
        stray = [line for line in run.output.splitlines() if TRACEBACK_RE.search(line)]
        if stray:
            self.part.problems.append(('output of %s' % run.name, stray[:5]))

    def run_role_case(self, case):
        target = self.target(case)
        before = state.fingerprint(self.ctx.conn, target['domain'], target['folder'])
        extra = dict({'snapshot_guard_uri': self.ctx.daemon.user_uri}, **self.fill(case['args']))
        run = self.ctx.ansible.run('role_case.yml', extra, 'bad_input-' + case['id'])
        after = state.fingerprint(self.ctx.conn, target['domain'], target['folder'])
        failures = run.failures()
        problems = judge(self.fill(case['msg']), failures[0] if failures else None,
                         state.differences(before, after), run.tracebacks())
        if run.returncode == 0:
            problems.append('the play succeeded (exit 0)')
        self.count(case, problems)

    def count(self, case, problems):
        self.part.case(case['id'], problems)
        self.ctx.log('bad_input %-34s %s' % (case['id'], 'ok' if not problems else 'FAILED'))

    def run(self):
        groups = {}
        role_cases = []
        for case in self.spec['cases']:
            if case['module'] == ROLE:
                role_cases.append(case)
            else:
                groups.setdefault(case['domain'], []).append(case)
        everything_before = self.fingerprints()
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.ctx.workers) as pool:
            jobs = [pool.submit(self.run_module_cases, fixture, cases) for fixture, cases in groups.items()]
            jobs.append(pool.submit(lambda: [self.run_role_case(case) for case in role_cases]))
            for job in jobs:
                job.result()
        # The fixtures side by side: no case changed a domain other than its own either.
        everything_after = self.fingerprints()
        for key in self.names:
            changes = state.differences(everything_before[key], everything_after[key])
            if changes:
                self.part.problems.append(('fixture %s over the whole part' % key, changes))
        modules = sorted(set(case['module'] for case in self.spec['cases']))
        self.part.note('bad input: %d cases on %d fixtures over %s'
                       % (len(self.spec['cases']), len(self.names), ', '.join(modules)))

    def fingerprints(self):
        return dict((key, state.fingerprint(self.ctx.conn, self.names[key], self.folders[key])) for key in self.names)


def run(ctx, part):
    with open(CASES_FILE) as stream:
        spec = yaml.safe_load(stream)
    make_fixtures(ctx, spec['fixtures'])
    BadInput(ctx, spec, part).run()
    return part
