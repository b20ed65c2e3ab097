# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils file is private to the vmsnap.libvirt collection. It can change at any time,
# without a deprecation period. Do not use it outside this collection.

"""One module's work on many domains in one task: the domains chosen by name or glob, a bounded pool of workers,
each domain's result or failure, and a summary that names what failed (a set taken at one instant is _group).

The work of one domain is a function ``work(name, item) -> (result, warnings)`` that raises SnapshotError to fail
that domain only. It must not call the module (exit_json, fail_json, warn, run_command): workers run it in threads,
and only the module's main thread reports.

Workers share the module's one libvirt connection. A virConnect is thread-safe, and libvirt-python releases the GIL
for every call, so calls of several workers are in flight at once; the daemon serves up to max_client_requests (5 by
default) calls of one client at a time and queues the rest. Measured (`bench/suite.py --only connections`: libvirt 9.0,
2 cores, 20 shut-off domains, the module's per-domain code, medians): 4 workers sharing one connection 0.40 s, 4
workers with a connection each 0.40 s, one worker 0.74 s. A connection each buys nothing at the default parallel of 4
and costs an open (and, on remote URIs, an SSH or TLS handshake and an authentication) per worker, and the host's
capabilities would be probed once per connection; so one connection it is.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from concurrent.futures import ThreadPoolExecutor

from ansible_collections.vmsnap.libvirt.plugins.module_utils._domains import match_domains
from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError

# The domain states a group pauses: those in which the guest's CPUs run.
RUNNING_STATES = ('running', 'blocked')


class Outcome:
    """What became of one domain: its result and warnings, or the error that failed it, or why it was skipped."""

    def __init__(self, name, result=None, warnings=(), error=None, skipped=None):
        self.name = name
        self.result = result
        self.warnings = list(warnings)
        self.error = error
        self.skipped = skipped

    @property
    def ok(self):
        return self.error is None and self.skipped is None


def resolve(client, entries):
    """The domains ``entries`` (names or glob patterns) choose: ([(name, domain object or None)], warnings).

    Plain names are not looked up here: each worker looks its domain up by name, so a missing one fails that domain
    alone. Globs are matched against one list of the host's domains (listAllDomains, only when there is a glob), each
    glob's matches in virsh's name order; a glob that matches nothing is a warning. Every domain appears once, at its
    first mention.
    """
    chosen, unmatched = match_domains(client, entries)
    warnings = ["The pattern '%s' in domains matches no domain on %s; it was skipped. Check it with `virsh list --all`; "
                'patterns are case-sensitive.' % (entry, client.uri) for entry in unmatched]
    return [(name, dom) for name, dom, dummy in chosen], warnings


def run_each(items, work, parallel):
    """Call ``work(name, item)`` for every ``(name, item)``, at most ``parallel`` at a time; the Outcomes in the order
    of ``items``. A SnapshotError fails its own domain only; anything else is a bug and stops the task."""
    def attempt(pair):
        name, item = pair
        try:
            result, warnings = work(name, item)
        except SnapshotError as exc:
            return Outcome(name, error=exc)
        return Outcome(name, result, warnings)

    if parallel <= 1 or len(items) <= 1:
        return [attempt(pair) for pair in items]
    with ThreadPoolExecutor(max_workers=min(parallel, len(items))) as pool:
        return list(pool.map(attempt, items))


def entry(outcome):
    """One element of the ``results`` list: the domain's own result with its name, or why it failed or was skipped
    (with the failure's details, such as the snapshots an operation would have affected)."""
    if outcome.ok:
        item = {'domain': outcome.name}
        item.update(outcome.result)
        return item
    if outcome.skipped is not None:
        return {'domain': outcome.name, 'changed': False, 'skipped': True, 'msg': outcome.skipped}
    item = dict(outcome.error.details)
    item.setdefault('changed', False)
    item.update(domain=outcome.name, failed=True, msg=outcome.error.msg)
    return item


def summarize(outcomes, diff=False):
    """The task's result from the Outcomes: (result, warnings, failure).

    ``result`` has ``changed`` (whether any domain changed), ``results`` (one entry per domain) and, with ``diff``,
    a combined diff keyed by domain name. ``warnings`` carry the domain's name. ``failure`` is None, or a SnapshotError
    that names every domain that failed and why, and carries the same result.
    """
    results = [entry(outcome) for outcome in outcomes]
    result = {'changed': any(item['changed'] for item in results), 'results': results}
    if diff:
        before = {}
        after = {}
        for outcome in outcomes:
            if outcome.ok and 'diff' in outcome.result:
                before[outcome.name] = outcome.result['diff']['before']
                after[outcome.name] = outcome.result['diff']['after']
        result['diff'] = {'before': before, 'after': after}
    warnings = ["Domain '%s': %s" % (outcome.name, warning) for outcome in outcomes for warning in outcome.warnings]
    failed = [outcome for outcome in outcomes if outcome.error is not None]
    if not failed:
        return result, warnings, None
    skipped = [outcome for outcome in outcomes if outcome.skipped is not None]
    handled = len(outcomes) - len(failed) - len(skipped)
    text = 'Failed on %d of %d domains (%s); %s.' % (
        len(failed), len(outcomes), ', '.join(outcome.name for outcome in failed),
        'the other %d %s handled, see results' % (handled, 'was' if handled == 1 else 'were') if handled
        else 'no other domain was handled')
    if skipped:
        text += ' Skipped %s: %s' % (', '.join(outcome.name for outcome in skipped), skipped[0].skipped)
    text += ' ' + ' '.join("%s: %s" % (outcome.name, outcome.error.msg) for outcome in failed)
    return result, warnings, SnapshotError(text, **result)
