# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    # The clock options of the modules that resume a guest from saved memory (virt_snapshot state=reverted and
    # virt_start_from_snapshot); mirrors CLOCK_ARGUMENT_SPEC in plugins/module_utils/_common.py.
    DOCUMENTATION = r'''
options:
  clock_sync:
    description:
      - What to do about the guest's clock after its memory is loaded from a snapshot into a guest that runs then (a
        revert to, or a start from, a snapshot with memory). Such a guest runs on with the clock it had when the
        snapshot was taken, behind the host by the time since; TLS, Kerberos, cron, logs and monitoring break on it.
      - V(auto) sets the guest's clock from the host's through the QEMU guest agent (C(virsh domtime --sync)), waiting
        up to O(clock_sync_timeout) seconds for the agent to answer; when no agent answers, the task succeeds with a
        warning and RV(clock.synced=false).
      - V(required) does the same but fails the task when the clock could not be set. The revert or start itself is
        done then and stays done (the failure says so, with C(changed=true)).
      - V(skip) leaves the clock as it is.
      - Nothing is done for a guest booted from disks (a disk-only snapshot, or a shut-off one started), which reads
        the host's clock at boot, nor for a guest left paused (no agent answers until it runs).
    type: str
    choices: [auto, required, skip]
    default: auto
  clock_sync_timeout:
    description:
      - How many seconds to wait for the guest agent to answer before O(clock_sync) gives up.
    type: float
    default: 15
'''
