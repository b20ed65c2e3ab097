# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Throwaway domains on the private daemon, made with the project's vmsnap_testctl (run as the private user), and the
snapshots the tests start from, made with libvirt directly (never with the modules under test)."""

import json
import os
import libvirt


class Fixtures:
    """Domains named ``prefix + key``; cleanup() removes every domain with the prefix (and only those)."""

    def __init__(self, daemon, connect, prefix):
        self.daemon = daemon
        self._connect = connect
        self.prefix = prefix
        self.testctl = os.path.join(daemon.work, 'vmsnap_testctl.py')

    @property
    def conn(self):
        """The driver's connection to the private daemon (opened again after the daemon was killed)."""
        return self._connect()

    def name(self, key):
        return self.prefix + key

    def folder(self, key_or_name):
        name = key_or_name if key_or_name.startswith(self.prefix) else self.name(key_or_name)
        return os.path.join(self.daemon.images, name)

    def testctl_argv(self, *args):
        from vmsnap_reliability.daemon import MODULE_PYTHON  # pylint: disable=import-outside-toplevel
        return [MODULE_PYTHON, self.testctl, '--uri', self.daemon.user_uri] + list(args)

    def create(self, key, disk_format='qcow2', start=True):
        """A domain (one 64 MiB virtio disk), running unless start=False; its info dict."""
        args = ['create', self.name(key), '--disk-format', disk_format] + (['--start'] if start else [])
        completed = self.daemon.run_as_user(self.testctl_argv(*args))
        return json.loads(completed.stdout)

    def domain(self, key):
        return self.conn.lookupByName(self.name(key))

    def snapshot(self, key, snapshot, disk_only_external=False, description=None):
        """A snapshot as libvirt makes it by default (internal; with memory when the domain runs), or an external
        disk-only one."""
        xml = '<domainsnapshot><name>%s</name>%s</domainsnapshot>' % (
            snapshot, '<description>%s</description>' % description if description else '')
        flags = libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC
        if disk_only_external:
            flags |= libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY
        return self.domain(key).snapshotCreateXML(xml, flags)

    def make_transient(self, key):
        """Undefine the running domain: it goes on running, without a persistent definition."""
        self.domain(key).undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)

    def pause(self, key):
        self.domain(key).suspend()

    def destroy_domain(self, key):
        dom = self.domain(key)
        if dom.isActive():
            dom.destroy()

    def start_domain(self, key):
        dom = self.domain(key)
        if not dom.isActive():
            dom.create()

    def cleanup(self):
        self.daemon.run_as_user(self.testctl_argv('cleanup', '--prefix', self.prefix))
