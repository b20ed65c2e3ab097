# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils file is private to the vmsnap.libvirt collection. It can change at any time,
# without a deprecation period. Do not use it outside this collection.

"""The one place that imports libvirt.

It opens the connection, looks objects up by name, calls libvirt with its flag constants by name, retries the errors
that are known to be transient (the domain's job lock), and turns every libvirtError into a SnapshotError that says
what failed, where, and what to do.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math
import re
import threading
import time

from ansible_collections.vmsnap.libvirt.plugins.module_utils._backoff import Backoff
from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError
from ansible_collections.vmsnap.libvirt.plugins.module_utils import _model

try:
    import libvirt
    HAS_LIBVIRT = True
    LIBVIRT_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised only where libvirt-python is missing
    HAS_LIBVIRT = False
    LIBVIRT_IMPORT_ERROR = exc
else:
    # libvirt prints every error on stderr unless a handler takes it; we report errors ourselves.
    libvirt.registerErrorHandler(lambda ctx, err: None, None)

DEFAULT_URI = 'qemu:///system'

TRANSIENT_MESSAGES = ('cannot acquire state change lock', 'Timed out during operation')

# libvirt 10.9 and later take, revert to and delete the internal snapshots of a running or paused domain with QEMU's
# snapshot-save/-load/-delete jobs, whose IDs carry the snapshot's name ("internal-snapshot-save-NAME").
QEMU_JOB_NAME_HINT = ("This libvirt has QEMU take, revert to and delete a running or paused domain's internal "
                      "snapshots as jobs named after the snapshot, and QEMU accepts only letters, digits, '-', '.' and "
                      "'_' in a job name: it refused before starting the job. Use a name of those characters, or "
                      'location: external; with the domain shut off, libvirt handles internal snapshots with qemu-img, '
                      'which takes any name.')

# Create flags by the names plans use. Plans stay free of libvirt; only the client knows the constants.
_CREATE_FLAGS = {
    'atomic': 'VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC',
    'disk_only': 'VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY',
    'quiesce': 'VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE',
    'live': 'VIR_DOMAIN_SNAPSHOT_CREATE_LIVE',
    'redefine': 'VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE',
    'current': 'VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT',
    'no_metadata': 'VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA',
}
_DELETE_FLAGS = {
    'children': 'VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN',
    'children_only': 'VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY',
    'metadata_only': 'VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY',
}
_BLOCK_JOB_TYPES = (
    ('VIR_DOMAIN_BLOCK_JOB_TYPE_PULL', 'pull'),
    ('VIR_DOMAIN_BLOCK_JOB_TYPE_COPY', 'copy'),
    ('VIR_DOMAIN_BLOCK_JOB_TYPE_COMMIT', 'commit'),
    ('VIR_DOMAIN_BLOCK_JOB_TYPE_ACTIVE_COMMIT', 'active-commit'),
    ('VIR_DOMAIN_BLOCK_JOB_TYPE_BACKUP', 'backup'),
)
# The reasons libvirt pauses a domain for while a job of its own saves its memory.
_JOB_PAUSE_REASONS = (('VIR_DOMAIN_PAUSED_SAVE', 'save'), ('VIR_DOMAIN_PAUSED_SNAPSHOT', 'snapshot'))
_UNSURE_PAUSE_REASONS = (('VIR_DOMAIN_PAUSED_USER', 'user'), ('VIR_DOMAIN_PAUSED_UNKNOWN', 'unknown'))
_REVERT_FLAGS = {
    'running': 'VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING',
    'paused': 'VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED',
    'force': 'VIR_DOMAIN_SNAPSHOT_REVERT_FORCE',
    'reset_nvram': 'VIR_DOMAIN_SNAPSHOT_REVERT_RESET_NVRAM',
}


def _flags(table, names):
    value = 0
    for name in names:
        constant = getattr(libvirt, table[name], None)
        if constant is None:
            raise SnapshotError('This libvirt-python (%s) lacks %s, which the option asking for %s needs. Install a '
                                'newer libvirt-python on the hypervisor.' % (libvirt.getVersion(), table[name], name))
        value |= constant
    return value


def _version_string(number):
    """libvirt's packed version number (major * 1,000,000 + minor * 1,000 + release) as 'major.minor.release'."""
    return '%d.%d.%d' % (number // 1000000, number // 1000 % 1000, number % 1000)


# The password of a uri's user part: qemu+tcp://user:PASSWORD@host/system.
_URI_PASSWORD = re.compile(r'(//[^/@:]*):([^/@]*)@')


def redact_uri(uri):
    """The uri with any password in its user part replaced, for messages and results."""
    if not uri:
        return uri
    return _URI_PASSWORD.sub(r'\1:********@', uri)


def uri_password(uri):
    """The password in the uri's user part, or None."""
    match = _URI_PASSWORD.search(uri or '')
    return match.group(2) if match and match.group(2) else None


# What a refusal means when the code that asked expects it: libvirt's error numbers by the names callers use.
_MISSING = {
    'domain': 'VIR_ERR_NO_DOMAIN',
    'snapshot': 'VIR_ERR_NO_DOMAIN_SNAPSHOT',
    'metadata': 'VIR_ERR_NO_DOMAIN_METADATA',
    'support': 'VIR_ERR_NO_SUPPORT',
    'job not ready': 'VIR_ERR_BLOCK_COPY_ACTIVE',
}


def is_missing(error, what):
    """Whether a SnapshotError is libvirt's answer that ``what`` (a key of _MISSING: 'domain', 'snapshot', ...) does
    not exist (any more)."""
    return error.code is not None and error.code == getattr(libvirt, _MISSING[what])


# libvirt's errors of the guest agent: before 11 a timeout is UNRESPONSIVE ("Guest agent not available for now");
# libvirt 11 has codes of its own for a command that timed out or failed ("guest agent command timed out"), which a
# libvirt-python built against an older libvirt does not name.
_AGENT_ERRORS = ('VIR_ERR_AGENT_UNRESPONSIVE', 'VIR_ERR_AGENT_UNSYNCED', 'VIR_ERR_AGENT_COMMAND_TIMEOUT',
                 'VIR_ERR_AGENT_COMMAND_FAILED')


def is_agent_error(error):
    """Whether a SnapshotError is the guest agent not answering (in time), out of sync, or failing a command."""
    codes = [getattr(libvirt, name) for name in _AGENT_ERRORS if hasattr(libvirt, name)]
    return error.code in codes or 'guest agent' in error.msg.lower()


def is_failed_freeze(error):
    """Whether a SnapshotError of a create with QUIESCE is the guest agent failing the freeze: no answer in time,
    out of sync, or an error of its own (a freeze hook that failed, a file system that cannot freeze)."""
    return is_agent_error(error) or 'fsfreeze' in error.msg.lower()


def unless_missing(what, func, *args, default=None):
    """``func(*args)``, or ``default`` when it fails because ``what`` does not exist: a missing object read is None
    (or False), any other failure is raised."""
    try:
        return func(*args)
    except SnapshotError as exc:
        if is_missing(exc, what):
            return default
        raise


class AgentAbsent(SnapshotError):
    """The domain has no guest agent channel: nothing to wait for."""


class AgentUnavailable(SnapshotError):
    """The guest agent does not answer now (not started yet, stopped, or the guest is not running)."""


class Client:
    """A libvirt connection for one module run."""

    def __init__(self, uri=None, *, auth_username=None, auth_password=None, lock_timeout=60,
                 sleep=time.sleep, clock=time.monotonic):
        self.uri = uri or DEFAULT_URI
        self.auth_username = auth_username
        self.auth_password = auth_password
        self.lock_timeout = lock_timeout
        self._sleep = sleep
        self._clock = clock
        self._conn = None
        self._host = None

    # -- connection ----------------------------------------------------------------------------------------------

    @property
    def conn(self):
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    def _open(self):
        try:
            if self.auth_username is not None or self.auth_password is not None:
                return libvirt.openAuth(self.uri, self._auth(), 0)
            return libvirt.open(self.uri)
        except libvirt.libvirtError as exc:
            raise SnapshotError(
                'Could not connect to libvirt at %s: %s. Check that the uri is right, that the libvirt daemon '
                '(libvirtd or virtqemud) runs there, and that this user may use its socket (or give auth_username '
                'and auth_password).' % (redact_uri(self.uri), exc.get_error_message()),
                uri=redact_uri(self.uri))

    def _auth(self):
        def answer(credentials, dummy_data):
            for credential in credentials:
                if credential[0] == libvirt.VIR_CRED_AUTHNAME:
                    credential[4] = self.auth_username or credential[3]
                elif credential[0] == libvirt.VIR_CRED_PASSPHRASE:
                    credential[4] = self.auth_password
                else:
                    return -1
            return 0
        return [[libvirt.VIR_CRED_AUTHNAME, libvirt.VIR_CRED_PASSPHRASE], answer, None]

    def is_local(self):
        """Whether the uri names this host, so files libvirt creates are visible here."""
        match = re.match(r'^[^:]+://([^/]*)', self.uri)
        authority = match.group(1) if match else ''
        host_port = authority.rsplit('@', 1)[-1]
        # An IPv6 address is bracketed and full of colons: the port comes after the ']'.
        host = host_port.split(']', 1)[0] + ']' if host_port.startswith('[') else host_port.split(':', 1)[0]
        return host in ('', 'localhost', '127.0.0.1', '[::1]')

    def connect(self):
        """Open the connection now, so that workers sharing this client (a virConnect is thread-safe) never race to
        open it."""
        return self.conn

    def close(self):
        if self._conn is not None:
            try:
                self._conn.close()
            except libvirt.libvirtError:
                pass  # closing a dropped connection has nothing left to release
            self._conn = None

    # -- the one path into libvirt -------------------------------------------------------------------------------

    def _call(self, what, func, *args, **where):
        """Call ``func``, retrying transient errors until lock_timeout, and translate libvirt errors.

        ``what`` says what was being done ("create snapshot"), ``where`` names the domain and snapshot.
        """
        backoff = Backoff(timeout=self.lock_timeout, first=0.25, cap=5.0, clock=self._clock, sleep=self._sleep)
        while True:
            try:
                return func(*args)
            except libvirt.libvirtError as exc:
                if self._transient(exc) and backoff.wait():
                    continue
                raise self.error(what, exc, **where)

    def _call_unless_missing(self, missing, what, func, *args, default=None, **where):
        """_call, but ``default`` when libvirt answers that ``missing`` (a key of _MISSING) does not exist."""
        return unless_missing(missing, lambda: self._call(what, func, *args, **where), default=default)

    @staticmethod
    def _transient(exc):
        if exc.get_error_code() == libvirt.VIR_ERR_OPERATION_TIMEOUT:
            return True
        message = exc.get_error_message() or ''
        return any(text in message for text in TRANSIENT_MESSAGES)

    def error(self, what, exc, domain=None, snapshot=None, hint=None):
        place = ''
        if snapshot is not None:
            place = " snapshot '%s' of domain '%s'" % (snapshot, domain)
        elif domain is not None:
            place = " domain '%s'" % domain
        message = exc.get_error_message() or str(exc)
        if hint is None:
            hint = self._hint(exc)
        text = 'Could not %s%s on %s: %s.' % (what, place, redact_uri(self.uri), message.rstrip('.'))
        if self._transient(exc):
            text += (' The domain stayed busy for longer than lock_timeout (%s s); another job holds it. Wait for it '
                     'to finish or raise lock_timeout.' % self.lock_timeout)
        elif hint:
            text += ' ' + hint
        return SnapshotError(text, code=exc.get_error_code())

    @staticmethod
    def _hint(exc):
        code = exc.get_error_code()
        if code in (libvirt.VIR_ERR_NO_DOMAIN,):
            return 'Check the domain name with `virsh list --all`.'
        if code == libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT:
            return 'Check the snapshot name with `virsh snapshot-list DOMAIN`.'
        if code in (libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_ERR_RPC, libvirt.VIR_ERR_NO_CONNECT):
            return 'The connection to libvirt failed; check that the daemon still runs, then run the task again.'
        if code == libvirt.VIR_ERR_AGENT_UNRESPONSIVE or code == getattr(libvirt, 'VIR_ERR_AGENT_COMMAND_TIMEOUT', None):
            return 'The QEMU guest agent in the guest did not answer (it is not running, or took longer than allowed).'
        if "Invalid job ID 'internal-snapshot-" in (exc.get_error_message() or ''):
            return QEMU_JOB_NAME_HINT
        return None

    # -- lookups by name -----------------------------------------------------------------------------------------

    def find_domain(self, name):
        """The domain named ``name``, or None."""
        return self._call_unless_missing('domain', 'look up', self.conn.lookupByName, name, domain=name)

    def domain(self, name):
        dom = self.find_domain(name)
        if dom is None:
            raise SnapshotError("Domain '%s' does not exist on %s. Check the name with `virsh list --all`; "
                                'domain names are case-sensitive.' % (name, redact_uri(self.uri)))
        return dom

    def find_snapshot(self, dom, name):
        """The snapshot named ``name`` of ``dom``, or None."""
        return self._call_unless_missing('snapshot', 'look up', dom.snapshotLookupByName, name, 0, domain=dom.name(),
                                         snapshot=name)

    def current_snapshot_name(self, dom):
        """The name of the domain's current snapshot, or None."""
        current = self._call_unless_missing('snapshot', 'find the current snapshot of', dom.snapshotCurrent, 0,
                                            domain=dom.name())
        return None if current is None else current.getName()

    def snapshot_names(self, dom):
        """Every snapshot name of the domain (one call); used to make error messages helpful."""
        return sorted(snap.getName() for snap in self._call('list snapshots of', dom.listAllSnapshots, 0,
                                                            domain=dom.name()))

    # -- reading -------------------------------------------------------------------------------------------------

    def domain_state(self, dom):
        state = self._call('read the state of', dom.state, 0, domain=dom.name())[0]
        names = {
            libvirt.VIR_DOMAIN_NOSTATE: 'nostate',
            libvirt.VIR_DOMAIN_RUNNING: 'running',
            libvirt.VIR_DOMAIN_BLOCKED: 'blocked',
            libvirt.VIR_DOMAIN_PAUSED: 'paused',
            libvirt.VIR_DOMAIN_SHUTDOWN: 'shutdown',
            libvirt.VIR_DOMAIN_SHUTOFF: 'shutoff',
            libvirt.VIR_DOMAIN_CRASHED: 'crashed',
            libvirt.VIR_DOMAIN_PMSUSPENDED: 'pmsuspended',
        }
        return names.get(state, 'nostate')

    def interrupted_pause(self, dom, as_user=False):
        """'save' or 'snapshot' when libvirt paused the domain for a save or snapshot job of its own that no longer
        runs (the daemon stopped in the middle of it and did not resume the guest when it came back), else None.

        When QEMU had finished saving, libvirt reports that pause as 'user' (or 'unknown') after its restart; with
        ``as_user`` (the caller found the trace of such a job in the images) those count too.
        """
        state = self._call('read the state of', dom.state, 0, domain=dom.name())
        reasons = dict((getattr(libvirt, constant), name) for constant, name in _JOB_PAUSE_REASONS
                       + (_UNSURE_PAUSE_REASONS if as_user else ()))
        if state[0] != libvirt.VIR_DOMAIN_PAUSED or state[1] not in reasons:
            return None
        job = self._call('read the job of', dom.jobInfo, domain=dom.name())[0]
        # Reading the job waits for a job that holds the domain (another run's snapshot) to end, which resumes the
        # guest it paused: only a pause that outlasts that wait is left over.
        if job != libvirt.VIR_DOMAIN_JOB_NONE or self._call('read the state of', dom.state, 0,
                                                            domain=dom.name()) != state:
            return None
        return reasons[state[1]]

    def domain_xml(self, dom, inactive=False):
        flags = libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0
        return self._call('read the XML of', dom.XMLDesc, flags, domain=dom.name())

    def read_domain(self, dom):
        """The parsed domain (its live definition when it runs) with its state."""
        return _model.parse_domain(self.domain_xml(dom), self.domain_state(dom))

    def domain_id(self, dom):
        """The domain's ID now, or None when it is not running.

        A domain object keeps the ID it was looked up with, and a revert restarts QEMU under a new one: look it up again.
        """
        number = self._call('look up', self.conn.lookupByName, dom.name(), domain=dom.name()).ID()
        return number if number >= 0 else None

    def domain_metadata(self, dom):
        """The collection's element in the running domain's <metadata> (as libvirt gives it: without its namespace),
        or None when there is none."""
        return self._call_unless_missing('metadata', 'read the metadata of', dom.metadata,
                                         libvirt.VIR_DOMAIN_METADATA_ELEMENT, _model.VMSNAP_NAMESPACE,
                                         libvirt.VIR_DOMAIN_AFFECT_LIVE, domain=dom.name())

    def snapshot_xml(self, snap, secure=True):
        flags = libvirt.VIR_DOMAIN_SNAPSHOT_XML_SECURE if secure else 0
        return self._call('read the XML of', snap.getXMLDesc, flags,
                          domain=snap.getDomain().name(), snapshot=snap.getName())

    def describe_snapshot(self, snap, xml=None):
        """The snapshot dict of one snapshot: one XML fetch, its children's names and the current marker."""
        domain_name = snap.getDomain().name()
        where = {'domain': domain_name, 'snapshot': snap.getName()}
        if xml is None:
            xml = self.snapshot_xml(snap)
        children = self._call('list the children of', snap.listChildrenNames, 0, **where)
        return _model.parse_snapshot(xml, domain_name, is_current=self.is_current(snap), children=sorted(children))

    def is_current(self, snap):
        return bool(self._call('check whether it is current:', snap.isCurrent, 0,
                               domain=snap.getDomain().name(), snapshot=snap.getName()))

    def describe_descendants(self, snap):
        """Every snapshot below ``snap`` as snapshot dicts (one list call, one XML fetch each)."""
        domain_name = snap.getDomain().name()
        below = self._call('list the descendants of', snap.listAllChildren,
                           libvirt.VIR_DOMAIN_SNAPSHOT_LIST_DESCENDANTS, domain=domain_name, snapshot=snap.getName())
        return [_model.parse_snapshot(self.snapshot_xml(child), domain_name) for child in below]

    def host(self):
        """What this host can do with snapshots, probed once per run."""
        if self._host is None:
            caps = _model.parse_xml(self._call('read the capabilities of', self.conn.getCapabilities), 'capabilities')
            version = self._call('read the version of', self.conn.getLibVersion)
            self._host = {
                'uri': redact_uri(self.uri),
                'libvirt_version': _version_string(version),
                'hypervisor_version': self._hypervisor_version(),
                # libvirt advertises revert of external snapshots since 9.9; there is no such element before.
                'external_revert': caps.find('.//externalSnapshot') is not None,
                # libvirt deletes external snapshots itself (merging the overlays) since 9.0.
                'external_delete': version >= 9000000,
            }
        return self._host

    def _hypervisor_version(self):
        """The hypervisor's version (QEMU's, for qemu:// URIs), or None where the driver does not tell."""
        version = self._call_unless_missing('support', 'read the hypervisor version of', self.conn.getVersion)
        return _version_string(version) if version else None

    # -- reading many at once (one list call, one XML fetch each) ------------------------------------------------

    def list_domains(self):
        """Every domain of the host, active and inactive, in one call; for glob patterns only."""
        return self._call('list the domains of', self.conn.listAllDomains, 0)

    def is_persistent(self, dom):
        return bool(self._call('check whether it is persistent:', dom.isPersistent, domain=dom.name()))

    def snapshots_xml(self, dom, secure=False):
        """[(name, xml)] of every snapshot of the domain: one list call and one XML fetch per snapshot.

        A snapshot deleted between the list and its fetch is left out. ``secure`` includes security-sensitive
        parts of the recorded domain definition (graphics passwords), which a faithful redefine needs.
        """
        found = []
        for snap in self._call('list snapshots of', dom.listAllSnapshots, 0, domain=dom.name()):
            xml = unless_missing('snapshot', self.snapshot_xml, snap, secure)
            if xml is not None:
                found.append((snap.getName(), xml))
        return found

    # -- changing ------------------------------------------------------------------------------------------------

    def create_snapshot(self, dom, xml, flags, name):
        return self._call('create', dom.snapshotCreateXML, xml, _flags(_CREATE_FLAGS, flags),
                          domain=dom.name(), snapshot=name)

    def delete_snapshot(self, snap, flags):
        self._call('delete', snap.delete, _flags(_DELETE_FLAGS, flags),
                   domain=snap.getDomain().name(), snapshot=snap.getName())

    def revert_to_snapshot(self, snap, flags):
        dom = snap.getDomain()
        self._call('revert to', dom.revertToSnapshot, snap, _flags(_REVERT_FLAGS, flags),
                   domain=dom.name(), snapshot=snap.getName())

    def set_domain_metadata(self, dom, xml):
        """Replace the collection's element in the running domain's <metadata> (``xml`` None removes it); it lasts as
        long as this run of the domain (the persistent definition is left alone)."""
        self._call('record in the metadata of', dom.setMetadata, libvirt.VIR_DOMAIN_METADATA_ELEMENT, xml,
                   _model.VMSNAP_METADATA_KEY, _model.VMSNAP_NAMESPACE, libvirt.VIR_DOMAIN_AFFECT_LIVE,
                   domain=dom.name())

    # -- the guest agent -------------------------------------------------------------------------------------------

    def sync_guest_clock(self, dom):
        """Set the guest's clock from the host's through the QEMU guest agent (`virsh domtime --sync`), and return
        how far behind the host it was, in seconds (negative: ahead).

        Raises AgentAbsent when the domain has no agent channel, AgentUnavailable while the agent does not answer.
        """
        before = self._agent_call('read the guest clock of', dom.getTime, 0, domain=dom.name())
        host = time.time()
        # With SYNC the agent sets the guest's clock from its RTC, which QEMU keeps on the host's time; the seconds
        # libvirt-python insists on are ignored then.
        self._agent_call('set the guest clock of', dom.setTime, {'seconds': 0, 'nseconds': 0},
                         libvirt.VIR_DOMAIN_TIME_SYNC, domain=dom.name())
        return host - (before['seconds'] + before.get('nseconds', 0) / 1e9)

    def agent_silence(self, dom, timeout):
        """Why the guest agent of the running domain does not answer a harmless request (reading the guest's clock)
        within ``timeout`` seconds, or None when it answers. Changes nothing: the request runs in a thread of its own,
        since libvirt waits for the agent without a bound unless told otherwise."""
        outcome = {}

        def ask():
            try:
                self._agent_call('read the guest clock of', dom.getTime, 0, domain=dom.name())
                outcome['answered'] = True
            except SnapshotError as exc:
                outcome['error'] = exc.msg

        asking = threading.Thread(target=ask, name='vmsnap-agent-probe', daemon=True)
        asking.start()
        asking.join(timeout)
        if outcome.get('answered'):
            return None
        return outcome.get('error') or 'it did not answer within %g s.' % timeout

    def bound_agent(self, dom, timeout):
        """Make libvirt wait at most ``timeout`` seconds (rounded up) for each answer of the domain's guest agent, or,
        with None, as long as it takes again (libvirt's default for a domain)."""
        seconds = libvirt.VIR_DOMAIN_AGENT_RESPONSE_TIMEOUT_BLOCK if timeout is None else max(1, math.ceil(timeout))
        self._call('set the guest agent timeout of', dom.agentSetResponseTimeout, seconds, 0, domain=dom.name())

    def freeze_guest(self, dom):
        """Freeze the guest's file systems through its agent (`virsh domfsfreeze`); how many it froze."""
        return self._agent_call('freeze the file systems of', dom.fsFreeze, None, 0, domain=dom.name())

    def thaw_guest(self, dom):
        """Thaw the guest's file systems through its agent (`virsh domfsthaw`); how many it thawed (0: none was
        frozen)."""
        return self._agent_call('thaw the file systems of', dom.fsThaw, None, 0, domain=dom.name())

    def _agent_call(self, what, func, *args, **where):
        """A call through the guest agent: not retried (the caller waits for the agent), its refusals told apart."""
        try:
            return func(*args)
        except libvirt.libvirtError as exc:
            code = exc.get_error_code()
            if code == libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED:
                hint = 'The domain has no QEMU guest agent channel (org.qemu.guest_agent.0).'
                raise AgentAbsent(self.error(what, exc, hint=hint, **where).msg, code=code)
            if code == libvirt.VIR_ERR_OPERATION_INVALID or code in [getattr(libvirt, name) for name in _AGENT_ERRORS
                                                                     if hasattr(libvirt, name)]:
                raise AgentUnavailable(self.error(what, exc, hint='The guest agent does not answer (yet).',
                                                  **where).msg, code=code)
            raise self.error(what, exc, **where)

    def resume(self, dom):
        self._call('resume', dom.resume, domain=dom.name())

    def suspend(self, dom):
        self._call('pause', dom.suspend, domain=dom.name())

    def define_domain(self, xml, name):
        return self._call('update the definition of', self.conn.defineXML, xml, domain=name)

    def block_commit(self, dom, disk, base):
        """Start committing the active layer of ``disk`` down into ``base`` (a two-phase job ending in a pivot)."""
        self._call('start merging disk %s of' % disk, dom.blockCommit, disk, base, None, 0,
                   libvirt.VIR_DOMAIN_BLOCK_COMMIT_ACTIVE, domain=dom.name())

    def block_job(self, dom, disk):
        """{'job': its kind, named as the domain XML names it ('active-commit', 'copy', ...), 'cur': bytes done,
        'end': bytes in all} of the disk's block job, or None when none runs."""
        info = self._call('read the block job of disk %s of' % disk, dom.blockJobInfo, disk, 0, domain=dom.name())
        if not info:
            return None
        names = [name for constant, name in _BLOCK_JOB_TYPES if getattr(libvirt, constant, None) == info.get('type')]
        return dict(info, job=names[0] if names else 'unknown')

    def pivot(self, dom, disk):
        """Switch ``disk`` to the base its finished commit job wrote into; False while the job is not ready yet."""
        return self._call_unless_missing('job not ready', 'switch disk %s to its merged base on' % disk,
                                         dom.blockJobAbort, disk, libvirt.VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT,
                                         domain=dom.name(), default=False) is not False

    def abort_block_job(self, dom, disk):
        self._call('stop the block job of disk %s of' % disk, dom.blockJobAbort, disk, 0, domain=dom.name())
