# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The driver's side of fault injection: the control socket the hook (hook/sitecustomize.py) reports to, the policies
that decide what happens when a hooked libvirt call starts, and a Unix-socket proxy whose connections can be cut.

Protocol, one JSON object a line: the hook sends {"event": "call", "tag", "method", "pid"} and waits for a line back
(the go-ahead), makes the call, then sends {"event": "returned", "tag", "ok", "error"} and waits for a line back again
(the release) before it returns to the module.
"""

import json
import os
import socket
import threading
import time


class ControlServer:
    """Accepts the hook's connections; the current policy answers them."""

    def __init__(self, path, owner_uid, owner_gid):
        self.path = path
        if os.path.exists(path):
            os.unlink(path)
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(path)
        os.chown(path, owner_uid, owner_gid)
        os.chmod(path, 0o600)
        self._server.listen(64)
        self.policy = None
        # Policies of scenarios that run side by side, by tag prefix: a hooked call tagged PREFIX-N goes to
        # policies[PREFIX], any other to ``policy``.
        self.policies = {}
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while True:
            try:
                channel, dummy_address = self._server.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._handle, args=(channel,), daemon=True).start()

    def _handle(self, channel):
        with channel:
            reader = channel.makefile('r')
            line = reader.readline()
            if not line:
                return
            call = json.loads(line)
            policy = self.policies.get(call['tag'].rsplit('-', 1)[0], self.policy)
            if policy is not None:
                policy.on_call(call)
            try:
                channel.sendall(b'go\n')
            except OSError:
                return
            line = reader.readline()
            if line and policy is not None:
                policy.on_returned(json.loads(line))
            if line and policy is not None and hasattr(policy, 'release'):
                policy.release(call['tag'])
            try:
                channel.sendall(b'released\n')
            except OSError:
                return

    def close(self):
        self._server.close()
        if os.path.exists(self.path):
            os.unlink(self.path)


class Barrier:
    """Holds every hooked call until ``parties`` of them wait (or ``timeout`` seconds after the first arrived), then
    lets them all go at once: a race between processes that have all passed their lookups."""

    def __init__(self, parties, timeout):
        self.parties = parties
        self.timeout = timeout
        self._lock = threading.Condition()
        self.arrived = {}
        self.returned = {}
        self._released = set()
        self._first = {}

    def on_call(self, call):
        tag = call['tag']
        with self._lock:
            self.arrived[tag] = self.arrived.get(tag, 0) + 1
            self._first.setdefault(tag, time.monotonic())
            self._lock.notify_all()
            while tag not in self._released and self.arrived[tag] < self.parties:
                remaining = self._first[tag] + self.timeout - time.monotonic()
                if remaining <= 0:
                    break
                self._lock.wait(remaining)
            self._released.add(tag)
            self._lock.notify_all()

    def on_returned(self, returned):
        with self._lock:
            self.returned.setdefault(returned['tag'], []).append(returned)


class FaultPolicy:
    """Lets the call go at once and injects ``inject(tag)`` a delay later, while the call runs (or after it returned,
    when it was quicker): records for each tag when the call started, the fault struck and the call returned.

    The delay is ``fractions[tag]`` of how long the hooked call takes, which the policy learns as it goes (the median
    of the calls that returned before their fault; ``expected`` seconds until it knows), so that the faults land inside
    the call whatever the machine's load.
    """

    def __init__(self, fractions, expected, inject, hold=False):
        self.fractions = fractions
        self.expected = expected
        self.inject = inject
        # With hold, a call that returns before its fault struck waits in the hook until it has: the fault then lands
        # before the module's next call (the pivot after a block commit's start, say), never in it.
        self.hold = hold
        self.events = {}
        self._durations = []
        self._lock = threading.Lock()

    def duration(self):
        with self._lock:
            known = sorted(self._durations)
        return known[len(known) // 2] if known else self.expected

    def on_call(self, call):
        tag = call['tag']
        delay = self.fractions.get(tag, 0.0) * self.duration()
        with self._lock:
            self.events[tag] = {'method': call['method'], 'called': time.monotonic(), 'delay': delay, 'fault': None,
                                'fault_error': None, 'returned': None, 'ok': None, 'error': None}
        timer = threading.Timer(delay, self._strike, args=(tag,))
        timer.daemon = True
        timer.start()

    def _strike(self, tag):
        struck = time.monotonic()
        try:
            self.inject(tag)
            error = None
        except Exception as exc:  # pylint: disable=broad-except  # reported with the iteration, not lost in a thread
            error = '%s: %s' % (type(exc).__name__, exc)
        with self._lock:
            self.events[tag].update(fault=struck, fault_error=error)

    def on_returned(self, returned):
        with self._lock:
            event = self.events.get(returned['tag'])
            if event is not None:
                event.update(returned=time.monotonic(), ok=returned['ok'], error=returned['error'])
                if event['fault'] is None:
                    self._durations.append(event['returned'] - event['called'])

    def release(self, tag, timeout=30):
        """Return once the call tagged ``tag`` may go back to the module: at once, or with hold once its fault has
        struck."""
        deadline = time.monotonic() + timeout
        while self.hold and time.monotonic() < deadline:
            with self._lock:
                if self.events.get(tag, {}).get('fault') is not None:
                    return
            time.sleep(0.005)

    def wait_idle(self, timeout=60):
        """Wait until every fault that was scheduled has struck."""
        deadline = time.monotonic() + timeout
        while any(event['fault'] is None for event in self.events.values()):
            if time.monotonic() > deadline:
                raise RuntimeError('a scheduled fault did not strike within %ss' % timeout)
            time.sleep(0.01)


class DroppingProxy:
    """A Unix-socket proxy in front of the daemon's socket; drop() cuts every connection open through it, as a network
    or a crashed client library would, while the daemon itself keeps running."""

    def __init__(self, path, target, owner_uid, owner_gid):
        self.path = path
        self.target = target
        if os.path.exists(path):
            os.unlink(path)
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(path)
        os.chown(path, owner_uid, owner_gid)
        os.chmod(path, 0o600)
        self._server.listen(64)
        self._pairs = []
        self._lock = threading.Lock()
        self.dropped = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                client, dummy_address = self._server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pump(source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def drop(self):
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for end in pair:
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                end.close()
        self.dropped += len(pairs)

    def close(self):
        self.drop()
        self._server.close()
        if os.path.exists(self.path):
            os.unlink(self.path)
