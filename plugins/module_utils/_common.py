# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils file is private to the vmsnap.libvirt collection. It can change at any time,
# without a deprecation period. Do not use it outside this collection.

"""What every module shares: the connection options and the one path to exit_json / fail_json."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.vmsnap.libvirt.plugins.module_utils import _client, _model
from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError

# Mirrored, option for option, by plugins/doc_fragments/connection.py.
CONNECTION_ARGUMENT_SPEC = dict(
    uri=dict(type='str', default=_client.DEFAULT_URI, fallback=(env_fallback, ['LIBVIRT_DEFAULT_URI'])),
    auth_username=dict(type='str'),
    auth_password=dict(type='str', no_log=True),
    lock_timeout=dict(type='float', default=60),
)


# The options of the modules that resume a guest from saved memory; mirrored by plugins/doc_fragments/clock.py.
CLOCK_ARGUMENT_SPEC = dict(
    clock_sync=dict(type='str', default='auto', choices=['auto', 'required', 'skip']),
    clock_sync_timeout=dict(type='float', default=15),
)


def argument_spec(**module_options):
    spec = dict(CONNECTION_ARGUMENT_SPEC)
    spec.update(module_options)
    return spec


def new_module(argument_spec_, **kwargs):
    """An AnsibleModule for a vmsnap.libvirt module, failing clearly when libvirt-python or lxml is missing."""
    module = AnsibleModule(argument_spec=argument_spec_, **kwargs)
    password = _client.uri_password(module.params.get('uri'))
    if password:
        # As secret as auth_password: kept out of every result, the echo of the module's arguments included.
        module.no_log_values.add(password)
    if not _client.HAS_LIBVIRT:
        module.fail_json(msg=missing_required_lib('libvirt-python (Debian/Ubuntu: python3-libvirt, '
                                                  'Fedora/RHEL: python3-libvirt)'),
                         exception=str(_client.LIBVIRT_IMPORT_ERROR))
    if not _model.HAS_LXML:
        module.fail_json(msg=missing_required_lib('lxml (Debian/Ubuntu: python3-lxml, Fedora/RHEL: python3-lxml)'),
                         exception=str(_model.LXML_IMPORT_ERROR))
    for option in ('lock_timeout', 'clock_sync_timeout'):
        if module.params.get(option) is not None and module.params[option] < 0:
            module.fail_json(msg='%s must be 0 or more seconds; it is %s.' % (option, module.params[option]))
    return module


def client_for(module):
    params = module.params
    return _client.Client(uri=params['uri'], auth_username=params['auth_username'],
                          auth_password=params['auth_password'], lock_timeout=params['lock_timeout'])


def run(module, task):
    """Run ``task(module, client)`` and exit through one path: its result dict, or a SnapshotError's message."""
    client = client_for(module)
    try:
        result = task(module, client)
    except SnapshotError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    finally:
        client.close()
    module.exit_json(**result)
