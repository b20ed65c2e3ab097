# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    # Attributes every vmsnap.libvirt module shares. Modules add check_mode, diff_mode and idempotent themselves.
    DOCUMENTATION = r'''
attributes:
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
