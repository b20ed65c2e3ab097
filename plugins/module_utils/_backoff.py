# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils file is private to the vmsnap.libvirt collection. It can change at any time,
# without a deprecation period. Do not use it outside this collection.

"""Bounded backoff: the one way this collection waits before trying again (a busy domain, a block job, a state)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class Backoff:
    """Delays from ``first`` seconds, doubling up to ``cap``, while the next one still ends within ``timeout`` seconds
    of the start. ``clock`` and ``sleep`` are injectable (time.monotonic and time.sleep in a run)."""

    def __init__(self, *, timeout, first, cap, clock, sleep):
        self.timeout = timeout
        self._deadline = clock() + timeout
        self._delay = first
        self._cap = cap
        self._clock = clock
        self._sleep = sleep

    def wait(self):
        """Sleep the next delay and return True; or return False, without sleeping, when it would end after the
        deadline (the caller gives up)."""
        if self._clock() + self._delay > self._deadline:
            return False
        self._sleep(self._delay)
        self._delay = min(self._delay * 2, self._cap)
        return True
