# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Running a module's main() in-process: its arguments patched in, exit_json/fail_json turned into exceptions that
carry the result (the pattern community collections use), and libvirt's test driver as the host."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import json

import libvirt
import pytest

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.vmsnap.libvirt.plugins.module_utils import _client

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core before 2.19 reads the arguments from basic._ANSIBLE_ARGS
    from unittest import mock

    @contextlib.contextmanager
    def patch_module_args(args):
        with mock.patch.object(basic, '_ANSIBLE_ARGS', to_bytes(json.dumps({'ANSIBLE_MODULE_ARGS': args}))):
            yield


class ModuleExit(Exception):
    """exit_json or fail_json was called; ``result`` is what the module returned."""

    def __init__(self, result):
        super(ModuleExit, self).__init__(result)
        self.result = result


class ModuleRunner:
    def __init__(self):
        self.warnings = []

    def __call__(self, main, args, check_mode=False, diff=True):
        """Run ``main`` with ``args``; returns the result of exit_json or fail_json (which has failed=True)."""
        self.warnings = []
        args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
        with patch_module_args(args):
            with pytest.raises(ModuleExit) as caught:
                main()
        return caught.value.result


@pytest.fixture
def run_module(monkeypatch):
    runner = ModuleRunner()

    def exit_json(module, **result):
        result.setdefault('changed', False)
        raise ModuleExit(result)

    def fail_json(module, msg, **result):
        raise ModuleExit(dict(result, msg=msg, failed=True))

    def warn(module, warning):
        runner.warnings.append(warning)

    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)
    monkeypatch.setattr(basic.AnsibleModule, 'warn', warn)
    return runner


class _KeptConnection:
    """The test host's connection, handed to every module run; the runs' close() leaves it open."""

    def __init__(self, conn):
        self._conn = conn

    def __getattr__(self, name):
        return getattr(self._conn, name)

    def close(self):
        return 0


class SharedHost:
    def __init__(self, conn, uri):
        self.conn = conn
        self.uri = uri
        self.opened = []

    def open(self, uri):
        self.opened.append(uri)
        return _KeptConnection(self.conn)

    def snapshot_names(self, domain):
        return sorted(snap.getName() for snap in self.conn.lookupByName(domain).listAllSnapshots(0))


@pytest.fixture
def testhost(monkeypatch, testhost_uri):
    """fixtures/testhost.xml on libvirt's test driver, kept for the whole test.

    The test driver forgets its state when its connection closes, so every module run in a test gets the same
    connection: what one run creates, the next one finds. ``opened`` lists the uris the runs asked for.
    """
    host = SharedHost(libvirt.open(testhost_uri), testhost_uri)
    monkeypatch.setattr(_client.libvirt, 'open', host.open)
    yield host
    host.conn.close()


@pytest.fixture
def connection_attempts(monkeypatch):
    """The uris modules try to open, still really opened (so an unreachable uri fails as it would)."""
    attempts = []
    real_open = libvirt.open
    real_open_auth = libvirt.openAuth

    def recording_open(uri):
        attempts.append(uri)
        return real_open(uri)

    def recording_open_auth(uri, auth, flags):
        attempts.append(uri)
        return real_open_auth(uri, auth, flags)

    monkeypatch.setattr(_client.libvirt, 'open', recording_open)
    monkeypatch.setattr(_client.libvirt, 'openAuth', recording_open_auth)
    return attempts
