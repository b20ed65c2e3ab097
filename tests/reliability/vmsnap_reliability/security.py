# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Part security: files that hold guest data are private, secrets never show, names and descriptions cannot inject
XML, and the modules run no shell.

- Modes: the overlay and memory files of external snapshots, taken on a running and on a shut-off domain, are 0600 and
  another user (nobody) cannot read them; a rename and a merge (live and offline) loosen no mode, and a merge leaves the
  base image's mode as it was.
- Secrets: every module (and the role) with a password in auth_password and one in the uri, against an unreachable
  uri and against a working one, run with -vvv: neither password appears anywhere in the output or in the results,
  and the messages show the uri redacted.
- XML: a description that closes its element and adds a <memory> element with a file, and a name full of XML's special
  characters, are stored as text, read back exactly, and create no file.
- No shell: the plugins' source is parsed; no os.system/os.popen/shell=True/use_unsafe_shell, and every program run
  (run_command, subprocess) gets an argv list, never a command string.
"""

import ast
import concurrent.futures
import glob
import os
import secrets
import stat
import subprocess

from lxml import etree

from vmsnap_reliability.runner import HERE

PLUGINS = os.path.join(os.path.dirname(os.path.dirname(HERE)), 'plugins')
PROGRAM_RUNNERS = ('run_command', 'run', 'Popen', 'call', 'check_call', 'check_output')


class Security:
    """Each check on a domain of its own (``key``), so that the checks can run side by side."""

    def __init__(self, ctx, part, key):
        self.ctx = ctx
        self.part = part
        self.key = key
        self.domain = ctx.fixtures.name(key)
        self.folder = ctx.fixtures.folder(key)

    def call(self, module, label, verbosity=0, **args):
        """One task of ``module`` (playbooks/module_case.yml); its recorded result and the run."""
        args.setdefault('uri', self.ctx.daemon.user_uri)
        run = self.ctx.ansible.run('module_case.yml', {'case_module': module, 'case_args': args},
                                   'security-' + label, verbosity=verbosity)
        records = [record for record in run.records if record['status'] in ('ok', 'failed')]
        return (records[0] if records else None), run

    def succeeded(self, record, run, problems):
        if record is None or record['status'] != 'ok':
            problems.append('the task failed: %s' % (record['result'].get('msg') if record else run.describe(20)))
            return False
        return True

    # -- modes -------------------------------------------------------------------------------------------------

    def modes(self):
        """{file name: mode} of the domain's folder."""
        return dict((name, stat.S_IMODE(os.stat(os.path.join(self.folder, name)).st_mode))
                    for name in os.listdir(self.folder))

    def private_file_problems(self, names):
        problems = []
        for name in names:
            path = os.path.join(self.folder, name)
            mode = stat.S_IMODE(os.stat(path).st_mode)
            if mode & 0o077:
                problems.append('%s has mode %04o: others or the group may read it' % (name, mode))
            attempt = subprocess.run(['runuser', '-u', 'nobody', '--', 'head', '-c', '1', path], capture_output=True,
                                     check=False)
            if attempt.returncode == 0:
                problems.append('user nobody could read %s' % name)
        return problems

    def file_modes(self):
        fixtures = self.ctx.fixtures
        fixtures.create(self.key)
        base_mode = self.modes()['vda.qcow2']

        def step(label, module, expect_new, **args):
            before = self.modes()
            problems = []
            record, run = self.call(module, 'modes-' + label, domain=self.domain, **args)
            if self.succeeded(record, run, problems):
                after = self.modes()
                created = sorted(set(after) - set(before))
                if created != sorted(expect_new):
                    problems.append('files created: %s, expected %s' % (created, sorted(expect_new)))
                problems.extend(self.private_file_problems(created))
                for name in sorted(set(before) & set(after)):
                    if after[name] != before[name]:
                        problems.append('%s changed its mode from %04o to %04o' % (name, before[name], after[name]))
            self.part.case('modes: ' + label, problems)

        mem = '%s.s1.mem' % self.domain
        step('external snapshot with memory of a running domain', 'virt_snapshot', ['vda.s1', mem], name='s1',
             location='external')
        step('external disk-only snapshot on top', 'virt_snapshot', ['vda.s2'], name='s2', location='external',
             memory=False)
        step('rename of the external snapshot', 'virt_snapshot', [], name='s2', new_name='s2-renamed')
        step('live merge of the renamed snapshot', 'virt_snapshot', [], name='s2-renamed', state='merged')
        step('live merge of the snapshot with memory', 'virt_snapshot', [], name='s1', state='merged')
        fixtures.destroy_domain(self.key)
        step('external snapshot of the shut-off domain', 'virt_snapshot', ['vda.s3'], name='s3', location='external')
        step('offline merge (qemu-img commit)', 'virt_snapshot', [], name='s3', state='merged')
        left = self.modes()
        problems = []
        if sorted(left) != ['vda.qcow2']:
            problems.append('files left: %s, expected only vda.qcow2' % ', '.join(sorted(left)))
        if left.get('vda.qcow2') != base_mode:
            problems.append('the base image has mode %04o, it had %04o' % (left.get('vda.qcow2', 0), base_mode))
        self.part.case('modes: the base image after the merges', problems)

    # -- secrets -----------------------------------------------------------------------------------------------

    def secret_leaks(self):
        self.ctx.fixtures.create(self.key)
        uri_secret = 'uri-' + secrets.token_hex(8)
        password = 'pw-' + secrets.token_hex(8)
        unreachable = 'qemu+tcp://user:%s@127.0.0.1:1/system' % uri_secret
        # libvirt ignores credentials in a unix uri: this one connects, so successful results are searched too
        working = 'qemu+unix://user:%s@/session?socket=%s' % (uri_secret, self.ctx.daemon.socket_path)
        auth = {'auth_username': 'user', 'auth_password': password}
        calls = [
            ('virt_snapshot', 'unreachable', dict(auth, uri=unreachable, domain=self.domain, name='x'), 'failed'),
            ('virt_snapshot_info', 'unreachable', dict(auth, uri=unreachable, domain=self.domain), 'failed'),
            ('virt_start_from_snapshot', 'unreachable', dict(auth, uri=unreachable, domain=self.domain, name='x'),
             'failed'),
            ('virt_snapshot_info', 'working', dict(auth, uri=working, domain=self.domain), 'ok'),
            ('virt_snapshot', 'working', dict(auth, uri=working, domain=self.domain, name='secret-test'), 'ok'),
            ('virt_snapshot', 'working, failing', dict(auth, uri=working, domain=self.domain, name='a/b'), 'failed'),
        ]
        for module, label, args, expected in calls:
            record, run = self.call(module, 'secrets', verbosity=3, **args)
            problems = []
            if record is None or record['status'] != expected:
                problems.append('expected the task to end %s: %s' % (expected, run.describe(10)))
            with open(run.results_file) as stream:
                recorded = stream.read()
            for secret, what in ((uri_secret, "the uri's password"), (password, 'auth_password')):
                for where, text in (('ansible-playbook -vvv output', run.output), ('the results', recorded)):
                    if secret in text:
                        line = [item for item in text.splitlines() if secret in item][0]
                        problems.append('%s shows in %s: %s' % (what, where, line.strip()[:300]))
            if expected == 'failed' and record is not None and 'user:********@' not in str(record['result'].get('msg')):
                if 'Could not connect' in str(record['result'].get('msg')):
                    problems.append('the message does not show the uri redacted: %r' % record['result'].get('msg'))
            self.part.case('secrets: %s, %s uri' % (module, label), problems)
        self.role_secret(unreachable, uri_secret)

    def role_secret(self, uri, uri_secret):
        extra = {'snapshot_guard_domain': self.domain, 'snapshot_guard_uri': uri}
        run = self.ctx.ansible.run('role_case.yml', extra, 'security-secrets-role', verbosity=3)
        problems = []
        if run.returncode == 0:
            problems.append('the role did not fail against an unreachable uri')
        with open(run.results_file) as stream:
            recorded = stream.read()
        for where, text in (('ansible-playbook -vvv output', run.output), ('the results', recorded)):
            if uri_secret in text:
                line = [item for item in text.splitlines() if uri_secret in item][0]
                problems.append("the uri's password shows in %s: %s" % (where, line.strip()[:300]))
        self.part.case('secrets: role snapshot_guard, unreachable uri', problems)

    # -- XML ---------------------------------------------------------------------------------------------------

    def xml_injection(self):
        self.ctx.fixtures.create(self.key)
        trap = '/tmp/vmsnap-reliability-injected-%s' % secrets.token_hex(6)
        description = "</description><memory snapshot='external' file='%s'/><description>" % trap
        cases = [
            ('description closing its element', 'inj-description', description),
            ('name of XML special characters', 'inj <&>"\' ]]> name', 'plain'),
        ]
        for label, name, text in cases:
            problems = []
            record, run = self.call('virt_snapshot', 'xml', domain=self.domain, name=name, description=text)
            if self.succeeded(record, run, problems):
                snapshot = record['result']['snapshot']
                if (snapshot['name'], snapshot['description']) != (name, text):
                    problems.append('the result shows %r / %r' % (snapshot['name'], snapshot['description']))
                xml = self.ctx.conn.lookupByName(self.domain).snapshotLookupByName(name, 0).getXMLDesc(0)
                root = etree.fromstring(xml.encode('utf-8'))
                if (root.findtext('name'), root.findtext('description')) != (name, text):
                    problems.append("libvirt stored %r / %r" % (root.findtext('name'), root.findtext('description')))
                memories = [element.get('snapshot') for element in root.findall('memory')]
                if memories != ['internal']:
                    problems.append('libvirt recorded memory %s, expected one internal' % memories)
                info, dummy = self.call('virt_snapshot_info', 'xml-read', domain=self.domain, name=name)
                read = info['result']['domains'][0]['snapshots'][0] if info and info['status'] == 'ok' else {}
                if (read.get('name'), read.get('description')) != (name, text):
                    problems.append('virt_snapshot_info reads %r / %r' % (read.get('name'), read.get('description')))
            if os.path.exists(trap):
                problems.append('%s was created' % trap)
            self.part.case('XML: ' + label, problems)

    # -- no shell ----------------------------------------------------------------------------------------------

    def no_shell(self):
        runs = []
        problems = []
        for path in sorted(glob.glob(os.path.join(PLUGINS, '**', '*.py'), recursive=True)):
            where = os.path.relpath(path, os.path.dirname(PLUGINS))
            with open(path) as stream:
                tree = ast.parse(stream.read(), path)
            for node in ast.walk(tree):
                if isinstance(node, ast.Import) or isinstance(node, ast.ImportFrom):
                    names = [alias.name for alias in node.names] + [getattr(node, 'module', None) or '']
                    if any(name in ('commands', 'pty') for name in names):
                        problems.append('%s:%d imports %s' % (where, node.lineno, ', '.join(names)))
                if not isinstance(node, ast.Call):
                    continue
                name = _call_name(node.func)
                for keyword in node.keywords:
                    if keyword.arg in ('shell', 'use_unsafe_shell') and not _is_false(keyword.value):
                        problems.append('%s:%d calls %s with %s' % (where, node.lineno, name, keyword.arg))
                if name in ('os.system', 'os.popen', 'os.spawnl', 'os.spawnlp', 'os.execl', 'os.execlp'):
                    problems.append('%s:%d calls %s' % (where, node.lineno, name))
                runs_program = name.startswith('subprocess.') or name.endswith('run_command')
                if runs_program and name.split('.')[-1] in PROGRAM_RUNNERS:
                    runs.append('%s:%d %s' % (where, node.lineno, name))
                    if node.args and _is_text(node.args[0]):
                        problems.append('%s:%d calls %s with a command string' % (where, node.lineno, name))
        self.part.case('no shell in plugins/ (%d program runs, each with an argv list)' % len(runs), problems)
        self.part.note('security: the program runs in plugins/: %s' % '; '.join(runs))


def _call_name(func):
    if isinstance(func, ast.Attribute):
        return _call_name(func.value) + '.' + func.attr
    if isinstance(func, ast.Name):
        return func.id
    return '?'


def _is_false(node):
    return isinstance(node, ast.Constant) and node.value in (False, None, 0)


def _is_text(node):
    """A command string: a string literal, an f-string, or text built with % or + from a string literal."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return True
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp):
        return _is_text(node.left) or (isinstance(node.op, ast.Add) and _is_text(node.right))
    return False


def run(ctx, part):
    checks = [Security(ctx, part, 'sec-modes').file_modes, Security(ctx, part, 'sec-secrets').secret_leaks,
              Security(ctx, part, 'sec-xml').xml_injection]
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(checks)) as pool:
        for job in [pool.submit(check) for check in checks]:
            job.result()
    Security(ctx, part, 'sec-source').no_shell()
