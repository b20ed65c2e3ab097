# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The private libvirt daemon of the reliability suite: one the fault tests may kill and restart at will.

Other engineers' tests use the system daemon (qemu:///system) at the same time, so killing that one is not an option.
A dedicated non-root system user runs its own real libvirtd (qemu:///session of that user) with real QEMU (type='qemu'
needs no /dev/kvm), with its socket, state and images under that user's home. The modules under test run as that user
too (Ansible's become, su from root) with Debian's Python and its python3-libvirt and python3-lxml, because the
project's .venv lives under /root, where another user cannot reach.

LIBVIRT_AUTOSTART=0 everywhere: a client must never spawn a daemon of its own while the suite has killed this one.
"""

import os
import pwd
import shutil
import signal
import subprocess
import time

import libvirt

USER = 'vmsnaprel'
HOME = '/var/lib/vmsnap-reliability'
# The interpreter the modules run with, as the private user: Debian's, with the packages below.
MODULE_PYTHON = '/usr/bin/python3'
APT_PACKAGES = ('python3-libvirt', 'python3-lxml')
USER_URI = 'qemu:///session'

# A fresh daemon probes QEMU's capabilities on its first connection (~8 s); a restart reads them from its cache.
START_TIMEOUT = 90


def _quiet(dummy_context, dummy_error):
    """libvirt prints every error on stderr unless a handler takes it; the suite reports errors itself."""


libvirt.registerErrorHandler(_quiet, None)


class DaemonError(Exception):
    """The private daemon could not be set up, started or stopped."""


class PrivateDaemon:
    """A libvirtd run by USER, with its socket under HOME/.cache/libvirt (no XDG_RUNTIME_DIR)."""

    def __init__(self, user=USER, home=HOME):
        self.user = user
        self.home = home
        self.socket_path = os.path.join(home, '.cache/libvirt/libvirt-sock')
        self.pid_file = os.path.join(home, 'run/libvirtd.pid')
        self.log_file = os.path.join(home, 'log/libvirtd.log')
        self.images = os.path.join(home, 'images')
        self.work = os.path.join(home, 'work')
        self._children = []
        self.generation = 0  # counts the daemons started: a connection to an earlier one is dead

    # -- names -----------------------------------------------------------------------------------------------------

    @property
    def root_uri(self):
        """The URI the driver (root) reaches this daemon with."""
        return 'qemu+unix:///session?socket=' + self.socket_path

    @property
    def user_uri(self):
        """The URI the modules (run as the private user) use."""
        return USER_URI

    def user_env(self, **extra):
        env = {
            'HOME': self.home,
            'USER': self.user,
            'LOGNAME': self.user,
            'PATH': '/usr/sbin:/usr/bin:/sbin:/bin',
            'LANG': 'C.UTF-8',
            'LIBVIRT_AUTOSTART': '0',
            'VMSNAP_TEST_IMAGE_ROOT': self.images,
        }
        env.update(extra)
        return env

    def as_user(self, argv, **extra_env):
        """argv run as the private user with a clean environment."""
        environment = ['%s=%s' % item for item in sorted(self.user_env(**extra_env).items())]
        return ['runuser', '-u', self.user, '--', 'env', '-i'] + environment + list(argv)

    def run_as_user(self, argv, check=True, **extra_env):
        completed = subprocess.run(self.as_user(argv, **extra_env), capture_output=True, text=True, check=False,
                                   cwd='/')
        if check and completed.returncode != 0:
            raise DaemonError('%s (as %s) failed with exit code %d: %s'
                              % (' '.join(argv), self.user, completed.returncode,
                                 (completed.stderr or completed.stdout).strip()))
        return completed

    # -- set-up (idempotent) ---------------------------------------------------------------------------------------

    def setup(self, files):
        """Packages, the user, its directories and libvirt configuration; ``files`` ({name: path}) are copied into
        HOME/work, where the user can read them whatever the permissions of the repository's directories."""
        missing = [name for name in APT_PACKAGES if not _dpkg_installed(name)]
        if missing:
            env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
            subprocess.run(['apt-get', 'install', '-y', '-q'] + missing, check=True, env=env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        try:
            pwd.getpwnam(self.user)
        except KeyError:
            subprocess.run(['useradd', '--system', '--user-group', '--create-home', '--home-dir', self.home,
                            '--shell', '/bin/sh', self.user], check=True)
        account = pwd.getpwnam(self.user)
        for path in (self.home, os.path.dirname(self.pid_file), os.path.dirname(self.log_file), self.images,
                     self.work, os.path.join(self.home, '.config/libvirt')):
            os.makedirs(path, exist_ok=True)
            os.chown(path, account.pw_uid, account.pw_gid)
        # Other users may pass through to the images (useradd can make a home 0700): then the modes of the snapshot
        # files alone keep them out, which is what the security part checks.
        for path in (self.home, self.images):
            os.chmod(path, 0o755)
        # QEMU's output straight to a file: no session virtlogd to spawn and keep track of.
        self._write(os.path.join(self.home, '.config/libvirt/qemu.conf'), 'stdio_handler = "file"\n', account)
        for name, source in files.items():
            target = os.path.join(self.work, name)
            if os.path.isdir(source):
                shutil.rmtree(target, ignore_errors=True)
                shutil.copytree(source, target)
            else:
                shutil.copy(source, target)
            _chown_tree(target, account)

    @staticmethod
    def _write(path, text, account):
        if not os.path.exists(path) or open(path).read() != text:
            with open(path, 'w') as stream:
                stream.write(text)
        os.chown(path, account.pw_uid, account.pw_gid)

    # -- life cycle ------------------------------------------------------------------------------------------------

    def answers(self):
        try:
            conn = libvirt.open(self.root_uri)
        except libvirt.libvirtError:
            return False
        conn.close()
        return True

    def pid(self):
        """The running daemon's PID, or None."""
        try:
            with open(self.pid_file) as stream:
                pid = int(stream.read().strip() or 0)
        except (OSError, ValueError):
            return None
        return pid if pid in _processes(pwd.getpwnam(self.user).pw_uid, 'libvirtd') else None

    def start(self, timeout=START_TIMEOUT):
        if self.pid() is not None and self.answers():
            return
        if self.pid() is not None:
            self.kill()  # a daemon that does not answer is of no use
        deadline = time.monotonic() + timeout
        child = self._spawn()
        while not self.answers():
            if child.poll() is not None:
                # Right after a kill, the old daemon's last threads can still hold its pid file for a moment.
                if time.monotonic() > deadline:
                    raise DaemonError('libvirtd of %s exited with code %s while starting; see %s'
                                      % (self.user, child.returncode, self.log_file))
                time.sleep(0.05)
                child = self._spawn()
                continue
            if time.monotonic() > deadline:
                raise DaemonError('libvirtd of %s did not answer within %ss; see %s'
                                  % (self.user, timeout, self.log_file))
            time.sleep(0.02)
        self.generation += 1

    def _spawn(self):
        account = pwd.getpwnam(self.user)
        with open(self.log_file, 'a') as log:
            os.chown(self.log_file, account.pw_uid, account.pw_gid)
            child = subprocess.Popen(self.as_user(['libvirtd', '--pid-file', self.pid_file]), stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log, cwd='/', start_new_session=True)
        self._children.append(child)
        return child

    def kill(self):
        """SIGKILL: the daemon dies on the spot, as in a crash (its QEMU processes live on)."""
        self._signal(signal.SIGKILL)

    def stop(self):
        self._signal(signal.SIGTERM)

    def restart_after_kill(self):
        self.kill()
        self.start()

    def _signal(self, number):
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, number)
        deadline = time.monotonic() + 30
        # Gone, not only a zombie: a zombie leader's other threads may still be closing its files.
        while os.path.exists('/proc/%d' % pid):
            self._reap()
            if time.monotonic() > deadline:
                raise DaemonError('libvirtd (pid %d) of %s did not end' % (pid, self.user))
            time.sleep(0.005)
        self._reap()

    def forget_unloadable(self, prefix):
        """Remove the saved definitions and states of domains named ``prefix``... that libvirt fails to load (it lost
        them, see README), with the daemon stopped; returns their names. Only the suite's domains have the prefix."""
        config = os.path.join(self.home, '.config/libvirt/qemu')
        status = os.path.join(self.home, '.cache/libvirt/qemu/run')
        conn = libvirt.open(self.root_uri)
        try:
            known = set(dom.name() for dom in conn.listAllDomains(0))
        finally:
            conn.close()
        stale = sorted(set(name[:-len('.xml')] for folder in (config, status) if os.path.isdir(folder)
                           for name in os.listdir(folder)
                           if name.startswith(prefix) and name.endswith('.xml')) - known)
        if stale:
            self.stop()
            for name in stale:
                for folder in (config, status):
                    for suffix in ('.xml', '.pid'):
                        path = os.path.join(folder, name + suffix)
                        if os.path.exists(path):
                            os.unlink(path)
            self.start()
        return stale

    def _reap(self):
        self._children = [child for child in self._children if child.poll() is None]

    def kill_orphaned_qemu(self):
        """Kill, by PID, the QEMU processes of the private user that outlived their domains (libvirt lost track of
        them); only the suite runs QEMU as this user. Returns the PIDs killed."""
        killed = []
        for pid in _processes(pwd.getpwnam(self.user).pw_uid, 'qemu-system'):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        return killed

    def autostart_is_off(self):
        """With the daemon stopped, a client of the user must fail to connect and spawn no daemon of its own."""
        self.stop()
        attempt = self.run_as_user(['virsh', '-c', self.user_uri, 'version'], check=False)
        return attempt.returncode != 0 and not _processes(pwd.getpwnam(self.user).pw_uid, 'libvirtd')


def _dpkg_installed(name):
    completed = subprocess.run(['dpkg-query', '-W', '-f', '${Status}', name], capture_output=True, text=True,
                               check=False)
    return completed.stdout.strip() == 'install ok installed'


def _chown_tree(path, account):
    os.chown(path, account.pw_uid, account.pw_gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), account.pw_uid, account.pw_gid)


def _processes(uid, prefix):
    """PIDs of the living (not zombie) processes of a user whose name starts with ``prefix``."""
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            if os.stat('/proc/' + entry).st_uid != uid:
                continue
            with open('/proc/%s/comm' % entry) as stream:
                name = stream.read().strip()
        except OSError:
            continue
        if name.startswith(prefix) and _state(int(entry)) not in ('Z', 'gone'):
            found.append(int(entry))
    return found


def _state(pid):
    try:
        with open('/proc/%d/stat' % pid) as stream:
            return stream.read().rsplit(')', 1)[1].split()[0]
    except (OSError, IndexError):
        return 'gone'
