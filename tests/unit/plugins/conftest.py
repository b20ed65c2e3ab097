# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Fixtures shared by the unit tests of plugins/."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest

TESTHOST_XML = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures', 'testhost.xml')


@pytest.fixture
def testhost_uri():
    """libvirt's test driver loading fixtures/testhost.xml: web01 (qcow2 vda + empty cdrom hdc) and db01 (qcow2 vda +
    raw vdb), both running. Every open starts from the file again, so each connection is a fresh host."""
    return 'test://' + TESTHOST_XML
