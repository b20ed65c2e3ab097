# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils file is private to the vmsnap.libvirt collection. It can change at any time,
# without a deprecation period. Do not use it outside this collection.

"""The one exception type every vmsnap.libvirt module reports failures with."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class SnapshotError(Exception):
    """A failure with a message for the user: what failed, where, and what to do.

    ``details`` are extra keys for the module's failure result (for example the
    snapshots an operation would affect), so a failure is as structured as a success.
    ``code`` is libvirt's error number when libvirt refused (None otherwise): for the
    code that decides what a refusal means, never shown to the user.
    """

    def __init__(self, msg, code=None, **details):
        super(SnapshotError, self).__init__(msg)
        self.msg = msg
        self.code = code
        self.details = details
