# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Fixtures shared by the unit tests of plugins/."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import gc
import os

import pytest

from ansible_collections.vmsnap.libvirt.plugins.module_utils import _journal

TESTHOST_XML = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures', 'testhost.xml')


@pytest.fixture
def testhost_uri():
    """libvirt's test driver loading fixtures/testhost.xml: web01 (qcow2 vda + empty cdrom hdc) and db01 (qcow2 vda +
    raw vdb), both running. Every open starts from the file again, so each connection is a fresh host."""
    return 'test://' + TESTHOST_XML


@pytest.fixture(autouse=True)
def libvirt_objects_freed_within_the_test():
    """Free, in the test's own teardown, the libvirt objects the test left in reference cycles.

    A test that catches an error keeps its frames (and the domains, snapshots and connections in them) in a cycle
    through the traceback, which only the garbage collector frees, at any allocation of a later test. Freeing a libvirt
    object calls virDomainFree (or its like), and every libvirt call resets the thread's last error: collected between
    a failing libvirt call and the libvirtError that reads that error, it left the error without its code, so a later
    test's "no such snapshot" became "virDomainSnapshotLookupByName() failed". Autouse fixtures are torn down last,
    after the fixtures that close the connections.
    """
    yield
    gc.collect()


def pytest_collection_finish(session):
    """What is there once the tests are collected (Ansible, libvirt, the collection) lives for the whole session: kept
    out of the collections above (gc.freeze), which then look at what the tests made, and stay fast."""
    gc.freeze()


@pytest.fixture(autouse=True)
def private_pause_journal(monkeypatch, tmp_path):
    """Each test's pause journal (_journal) in a folder of its own, never the host's /run/vmsnap.libvirt: the
    test-driver domains have the same UUIDs and IDs in every test, worker and run, so an entry one of them left
    would be read by another."""
    folder = str(tmp_path / 'pause-journal')
    monkeypatch.setattr(_journal, 'default_folder', lambda: folder)
    return folder
