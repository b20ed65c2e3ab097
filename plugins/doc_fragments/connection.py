# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    # The connection options of every vmsnap.libvirt module; mirrors CONNECTION_ARGUMENT_SPEC in
    # plugins/module_utils/_common.py.
    DOCUMENTATION = r'''
options:
  uri:
    description:
      - The libvirt connection URI, for example V(qemu:///system) or V(qemu+ssh://root@hv1/system).
      - If not set, the E(LIBVIRT_DEFAULT_URI) environment variable of the host the module runs on is used, and
        V(qemu:///system) when that is not set either.
      - A password in the URI is replaced by C(********) in messages and results.
    type: str
    default: qemu:///system
  auth_username:
    description:
      - User name for libvirt's authentication callback (SASL, for example), used through C(virConnectOpenAuth).
      - Set it together with O(auth_password) when the daemon asks for credentials.
    type: str
  auth_password:
    description:
      - Password for libvirt's authentication callback. Never logged or returned.
    type: str
  lock_timeout:
    description:
      - How many seconds to keep retrying when libvirt reports a transient error, such as another job holding the
        domain's state change lock (C(cannot acquire state change lock)) or C(Timed out during operation).
      - Retries back off from 0.25 to 5 seconds. V(0) disables retries.
    type: float
    default: 60
requirements:
  - libvirt-python (C(python3-libvirt)) on the host the module runs on
  - lxml (C(python3-lxml)) on the host the module runs on
'''
