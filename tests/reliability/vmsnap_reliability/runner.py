# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running ansible-playbook the way a user would, and reading back what each task returned."""

import itertools
import json
import os
import re
import subprocess
import threading

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLAYBOOKS = os.path.join(HERE, 'playbooks')

# A Python stack in any output means a module (or the role) crashed instead of failing with a message.
TRACEBACK_RE = re.compile(r'Traceback \(most recent call last\)|File "[^"]+", line \d+, in ')


class PlaybookRun:
    """The outcome of one ansible-playbook process: exit code, output, and the task results the callback recorded."""

    def __init__(self, name, argv, returncode, stdout, stderr, records, results_file=None):
        self.name = name
        self.results_file = results_file
        self.argv = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.records = records

    @property
    def output(self):
        return self.stdout + self.stderr

    def tracebacks(self):
        """Lines of the output, or of any recorded result, that show a Python stack."""
        found = [line for line in self.output.splitlines() if TRACEBACK_RE.search(line)]
        for record in self.records:
            found.extend(record_tracebacks(record))
        return found

    def results(self, task=None, tag=None):
        """The recorded results (each a record dict), optionally only those of a task name or with a tag."""
        return [record for record in self.records
                if (task is None or record['task'] == task) and (tag is None or tag in record['tags'])]

    def failures(self):
        """Failed results that were not ignored, the first first."""
        return [record for record in self.records if record['status'] == 'failed' and not record['ignore_errors']]

    def describe(self, lines=40):
        tail = '\n'.join(self.output.splitlines()[-lines:])
        return '%s: exit %s\n%s' % (self.name, self.returncode, tail)


def record_tracebacks(record):
    """The recorded result, when it shows a Python stack or a module's raw stderr (a crash); else nothing.

    ansible-core puts "(traceback unavailable)" in every failure without a stack: that is not one.
    """
    text = json.dumps(record['result'])
    if TRACEBACK_RE.search(text) or 'module_stderr' in record['result']:
        return ['task %r: %s' % (record['task'], text[:400])]
    return []


class Ansible:
    """ansible-playbook from the .venv with the staged collection, as the private user (inventory: become su)."""

    def __init__(self, venv, collections_path, workdir, daemon):
        self.venv = venv
        self.collections_path = collections_path
        self.workdir = workdir
        self.daemon = daemon
        self.inventory = os.path.join(workdir, 'inventory.json')
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        with open(self.inventory, 'w') as stream:
            json.dump(self.inventory_data(), stream, indent=2)

    def inventory_data(self):
        from vmsnap_reliability.daemon import MODULE_PYTHON  # pylint: disable=import-outside-toplevel
        return {'all': {'hosts': {'localhost': {
            'ansible_connection': 'local',
            'ansible_python_interpreter': MODULE_PYTHON,
            # Every task runs as the private user, whose daemon qemu:///session is.
            'ansible_become': True,
            'ansible_become_method': 'ansible.builtin.su',
            'ansible_become_user': self.daemon.user,
        }}}}

    def environment(self, results_file):
        env = dict(os.environ)
        # A session URI follows XDG_RUNTIME_DIR; the private daemon's socket is under its home, without one.
        env.pop('XDG_RUNTIME_DIR', None)
        env.pop('LIBVIRT_DEFAULT_URI', None)
        env.update({
            'PATH': os.path.join(self.venv, 'bin') + os.pathsep + env.get('PATH', ''),
            'ANSIBLE_COLLECTIONS_PATH': self.collections_path,
            'ANSIBLE_CALLBACK_PLUGINS': os.path.join(HERE, 'callback_plugins'),
            'ANSIBLE_CALLBACKS_ENABLED': 'reliability_results',
            'ANSIBLE_INVENTORY': self.inventory,
            # become to an unprivileged user without temporary files it could not read
            'ANSIBLE_PIPELINING': 'true',
            'ANSIBLE_NOCOLOR': 'true',
            'ANSIBLE_RETRY_FILES_ENABLED': 'false',
            'ANSIBLE_LOCALHOST_WARNING': 'false',
            'ANSIBLE_DEPRECATION_WARNINGS': 'false',
            'LIBVIRT_AUTOSTART': '0',
            'VMSNAP_RESULTS_FILE': results_file,
            'VMSNAP_FINGERPRINT_URI': self.daemon.root_uri,
        })
        return env

    def start(self, playbook, extra_vars, name, verbosity=0):
        """Start ansible-playbook (a file of PLAYBOOKS, or an absolute path); returns a handle whose wait() gives the
        PlaybookRun."""
        with self._lock:
            number = next(self._counter)
        stem = os.path.join(self.workdir, '%03d-%s' % (number, re.sub(r'[^A-Za-z0-9_.-]', '_', name)))
        vars_file = stem + '.vars.json'
        results_file = stem + '.results.jsonl'
        with open(vars_file, 'w') as stream:
            json.dump(extra_vars, stream, indent=2)
        if os.path.exists(results_file):
            os.unlink(results_file)  # a work directory used before
        argv = [os.path.join(self.venv, 'bin', 'ansible-playbook'), os.path.join(PLAYBOOKS, playbook),
                '-e', '@' + vars_file] + (['-' + 'v' * verbosity] if verbosity else [])
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=self.environment(results_file), cwd=PLAYBOOKS, stdin=subprocess.DEVNULL)
        return _Handle(name, argv, process, results_file, stem + '.log')

    def run(self, playbook, extra_vars, name, verbosity=0):
        return self.start(playbook, extra_vars, name, verbosity).wait()


class _Handle:
    def __init__(self, name, argv, process, results_file, log_file):
        self.name = name
        self.argv = argv
        self.process = process
        self.results_file = results_file
        self.log_file = log_file

    def wait(self):
        stdout, stderr = self.process.communicate()
        with open(self.log_file, 'w') as stream:
            stream.write(stdout + '\n--- stderr ---\n' + stderr)
        records = []
        if os.path.exists(self.results_file):
            with open(self.results_file) as stream:
                records = [json.loads(line) for line in stream if line.strip()]
        return PlaybookRun(self.name, self.argv, self.process.returncode, stdout, stderr, records, self.results_file)
