# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""A password in the uri is as secret as auth_password: it must not show in any result, and ansible-core echoes a
module's arguments (invocation.module_args, shown with -v and kept by callbacks) in every result. tests/reliability
searches the output of real -vvv runs for it."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import json

import pytest

from ansible.module_utils import basic
from ansible.module_utils.common.parameters import remove_values
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.vmsnap.libvirt.plugins.module_utils import _client, _common

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core before 2.19 reads the arguments from basic._ANSIBLE_ARGS
    from unittest import mock

    @contextlib.contextmanager
    def patch_module_args(args):
        with mock.patch.object(basic, '_ANSIBLE_ARGS', to_bytes(json.dumps({'ANSIBLE_MODULE_ARGS': args}))):
            yield


@pytest.mark.parametrize('uri, password', [
    ('qemu+tcp://user:s3cret-uri@hv1/system', 's3cret-uri'),
    ('qemu+tcp://admin:p%40ss@hv1/system?no_verify=1', 'p%40ss'),
    ('qemu+ssh://root@hv1/system', None),
    ('qemu:///system', None),
    ('qemu+tcp://user:@hv1/system', None),
])
def test_uri_password(uri, password):
    assert _client.uri_password(uri) == password


def test_a_password_in_the_uri_is_kept_out_of_the_results():
    uri = 'qemu+tcp://user:s3cret-uri@hv1/system'
    with patch_module_args({'uri': uri, 'auth_password': 's3cret-auth'}):
        module = _common.new_module(_common.argument_spec())
    assert 's3cret-uri' in module.no_log_values
    # what exit_json and fail_json do to a result before it leaves the module
    shown = json.dumps(remove_values({'invocation': {'module_args': module.params}, 'msg': 'at %s' % uri},
                                     module.no_log_values))
    assert 's3cret-uri' not in shown and 's3cret-auth' not in shown
    assert 'qemu+tcp://user:********@hv1/system' in shown
