# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    # Attributes every vmsnap.libvirt module shares. Modules add check_mode, diff_mode and idempotent themselves.
    DOCUMENTATION = r'''
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
      - This assumes that the system controlled/queried by the module has not changed in a relevant way.
  action_group:
    description: Use C(group/vmsnap.libvirt.libvirt) in C(module_defaults) to set the connection options once.
    support: full
    membership:
      - vmsnap.libvirt.libvirt
  platform:
    description: Runs on the host that can reach the libvirt daemon, usually the hypervisor itself.
    support: full
    platforms: posix
'''
