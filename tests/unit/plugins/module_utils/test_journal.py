# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The pause journal: entries of runs that ended in the middle of a snapshot, told apart from those of runs that go on."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import subprocess

from ansible_collections.vmsnap.libvirt.plugins.module_utils._journal import PauseJournal, process_start

URI = 'qemu:///system'
UUID = '6f1e2d3c-0000-4000-8000-000000000001'


def ended_pid():
    """The PID of a process that has ended (and been reaped)."""
    child = subprocess.Popen(['true'])
    child.wait()
    return child.pid


def test_an_entry_of_an_ended_run_on_the_same_qemu_process_is_found(tmp_path):
    earlier = PauseJournal(URI, UUID, folder=str(tmp_path), pid=ended_pid())
    earlier.begin(7, 'c10')
    left = PauseJournal(URI, UUID, folder=str(tmp_path)).left_by_ended_runs(7)
    assert [(entry['snapshot'], entry['domain_id'], entry['pid']) for entry in left] == [('c10', 7, earlier.pid)]


def test_the_entry_of_a_run_that_goes_on_is_not_found(tmp_path):
    PauseJournal(URI, UUID, folder=str(tmp_path)).begin(7, 'c10')  # this very process: it still runs
    assert PauseJournal(URI, UUID, folder=str(tmp_path), pid=ended_pid()).left_by_ended_runs(7) == []


def test_an_entry_whose_pid_another_process_took_since_counts_as_ended(tmp_path):
    journal = PauseJournal(URI, UUID, folder=str(tmp_path))
    journal.begin(7, 'c10')
    with open(journal.path) as stream:
        entry = json.load(stream)
    entry['process_start'] = str(int(process_start(os.getpid())) - 1)
    with open(journal.path, 'w') as stream:
        json.dump(entry, stream)
    assert [found['snapshot'] for found in journal.left_by_ended_runs(7)] == ['c10']


def test_an_entry_of_an_earlier_qemu_process_is_removed_not_found(tmp_path):
    earlier = PauseJournal(URI, UUID, folder=str(tmp_path), pid=ended_pid())
    earlier.begin(7, 'c10')
    assert PauseJournal(URI, UUID, folder=str(tmp_path)).left_by_ended_runs(8) == []
    assert not os.path.exists(earlier.path)


def test_entries_are_per_domain_and_uri(tmp_path):
    PauseJournal(URI, UUID, folder=str(tmp_path), pid=ended_pid()).begin(7, 'c10')
    assert PauseJournal(URI, UUID.replace('1', '2'), folder=str(tmp_path)).left_by_ended_runs(7) == []
    assert PauseJournal('qemu:///session', UUID, folder=str(tmp_path)).left_by_ended_runs(7) == []


def test_end_and_forget_remove_the_entries(tmp_path):
    journal = PauseJournal(URI, UUID, folder=str(tmp_path), pid=ended_pid())
    journal.begin(7, 'c10')
    later = PauseJournal(URI, UUID, folder=str(tmp_path))
    later.begin(7, 'c11')
    later.end()
    assert not os.path.exists(later.path)
    later.forget(later.left_by_ended_runs(7))
    assert os.listdir(str(tmp_path)) == []


def test_the_folder_is_private_and_entries_too(tmp_path):
    folder = os.path.join(str(tmp_path), 'journal')
    journal = PauseJournal(URI, UUID, folder=folder)
    journal.begin(7, 'c10')
    assert (os.stat(folder).st_mode & 0o777, os.stat(journal.path).st_mode & 0o777) == (0o700, 0o600)


def test_a_folder_others_may_enter_is_not_used(tmp_path):
    os.chmod(str(tmp_path), 0o755)
    journal = PauseJournal(URI, UUID, folder=str(tmp_path), pid=ended_pid())
    journal.begin(7, 'c10')
    assert not os.path.exists(journal.path)
    assert journal.left_by_ended_runs(7) == []
