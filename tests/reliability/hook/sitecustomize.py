# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fault-injection hook of the reliability suite, loaded into a module's Python through PYTHONPATH.

It does nothing unless VMSNAP_FAULT_AT names a libvirt-python method ("virDomain.snapshotCreateXML"). The first call of
that method in the process is announced to the driver's control socket (VMSNAP_FAULT_SOCKET) with VMSNAP_FAULT_TAG, and
the call waits for the driver's go-ahead (which may hold it at a barrier until other processes arrive). The driver then
injects its fault (kills the daemon, drops the connection) on its own clock while the call runs, and the hook reports
back whether the call returned or raised, and waits for the driver's release before it returns to the module (a
policy that must keep its fault out of the module's next calls releases it only once the fault has struck). Later calls
pass straight through.

The module under test is not changed in any way: the hook only wraps the libvirt-python binding it calls.
"""

import json
import os
import socket
import sys


def _install(target, control_path, tag):
    import libvirt  # pylint: disable=import-outside-toplevel

    class_name, method_name = target.split('.', 1)
    cls = getattr(libvirt, class_name)
    original = getattr(cls, method_name)
    state = {'fired': False}

    def announce(channel, message):
        channel.sendall((json.dumps(message) + '\n').encode('utf-8'))

    def wrapped(self, *args, **kwargs):
        if state['fired']:
            return original(self, *args, **kwargs)
        state['fired'] = True
        channel = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            channel.connect(control_path)
            announce(channel, {'event': 'call', 'method': target, 'tag': tag, 'pid': os.getpid()})
            channel.makefile('r').readline()  # the go-ahead
        except OSError as exc:
            sys.stderr.write('vmsnap fault hook: control socket %s: %s\n' % (control_path, exc))
        try:
            value = original(self, *args, **kwargs)
        except libvirt.libvirtError as exc:
            _report(channel, announce, {'event': 'returned', 'tag': tag, 'ok': False, 'error': str(exc)})
            raise
        _report(channel, announce, {'event': 'returned', 'tag': tag, 'ok': True, 'error': None})
        return value

    setattr(cls, method_name, wrapped)


def _report(channel, announce, message):
    try:
        announce(channel, message)
        channel.settimeout(60)
        channel.makefile('r').readline()  # the release (an older driver closes instead)
    except OSError:
        pass  # the driver only misses the report, or never releases: the call's outcome is the module's
    finally:
        channel.close()


if os.environ.get('VMSNAP_FAULT_AT'):
    _install(os.environ['VMSNAP_FAULT_AT'], os.environ['VMSNAP_FAULT_SOCKET'], os.environ.get('VMSNAP_FAULT_TAG', ''))
