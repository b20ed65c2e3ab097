# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Bounded backoff with an injected clock: the delays double up to the cap and stop before the deadline."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.vmsnap.libvirt.plugins.module_utils._backoff import Backoff


class FakeTime:
    def __init__(self):
        self.now = 100.0
        self.slept = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_delays_double_up_to_the_cap_and_end_within_the_timeout():
    fake = FakeTime()
    backoff = Backoff(timeout=10, first=0.5, cap=2.0, clock=fake.clock, sleep=fake.sleep)
    while backoff.wait():
        pass
    assert fake.slept == [0.5, 1.0, 2.0, 2.0, 2.0, 2.0]
    assert fake.now == 109.5 and fake.now <= 110


def test_a_first_delay_longer_than_the_timeout_never_sleeps():
    fake = FakeTime()
    assert Backoff(timeout=0.1, first=0.25, cap=5.0, clock=fake.clock, sleep=fake.sleep).wait() is False
    assert fake.slept == []
