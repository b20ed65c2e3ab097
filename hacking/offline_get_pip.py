# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stand-in for the get-pip script that ansible-test downloads to put pip into its empty virtual environments.

ansible-test fetches that script from a host that this project's machines cannot reach, but it first looks for
``~/.ansible/test/cache/get_pip_<version>.py``. hacking/bootstrap.sh copies this file there, next to the pip wheel of that
version (downloaded from PyPI), so ``ansible-test sanity`` works without that host.

ansible-test runs this file as ``__main__`` with the virtual environment's Python (which has no pip yet) and arguments such as
``--disable-pip-version-check pip==24.2 --no-setuptools --no-wheel``: we run pip from its wheel to install them.
"""

from __future__ import annotations

import os
import re
import sys

# Options of the real get-pip script that pip itself does not know: ours never installs setuptools or wheel anyway.
GET_PIP_ONLY_OPTIONS = ('--no-setuptools', '--no-wheel')


def pip_wheel_path(script_path):
    """Return the path of the pip wheel that belongs to this script, named after the version in its file name."""
    match = re.match(r'get_pip_(\d+(?:_\d+)*)\.py$', os.path.basename(script_path))
    if not match:
        sys.exit('offline get-pip: cannot tell the pip version from the file name %s (expected get_pip_<version>.py)' % script_path)
    version = match.group(1).replace('_', '.')
    wheel = os.path.join(os.path.dirname(os.path.abspath(script_path)), 'pip-%s-py3-none-any.whl' % version)
    if not os.path.isfile(wheel):
        sys.exit('offline get-pip: %s is missing; run hacking/bootstrap.sh to download it' % wheel)
    return wheel


def main():
    """Install the requested packages with pip imported from its wheel."""
    wheel = pip_wheel_path(__file__)
    sys.path.insert(0, wheel)
    from pip._internal.cli.main import main as pip_main  # pylint: disable=import-outside-toplevel,import-error

    arguments = [argument for argument in sys.argv[1:] if argument not in GET_PIP_ONLY_OPTIONS]
    return pip_main(['install', '--find-links', os.path.dirname(wheel)] + arguments)


if __name__ == '__main__':
    sys.exit(main())
