# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the suite compares and checks: a domain's fingerprint, its files, its images' health.

The driver reads these as root through the private daemon's socket (libvirt-python of the .venv), never through the
modules under test.
"""

import difflib
import hashlib
import json
import os
import stat
import subprocess

import libvirt

IMAGE_SUFFIXES = ('.qcow2', '.img')


def file_table(folder):
    """{relative path: {size, sha256, mode}} of every file below ``folder``."""
    table = {}
    for root, dummy_dirs, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            info = os.lstat(path)
            digest = hashlib.sha256()
            with open(path, 'rb') as stream:
                for block in iter(lambda: stream.read(1 << 20), b''):
                    digest.update(block)
            table[os.path.relpath(path, folder)] = {'size': info.st_size, 'sha256': digest.hexdigest(),
                                                    'mode': '%04o' % stat.S_IMODE(info.st_mode)}
    return table


def fingerprint(conn, name, folder):
    """Everything a failed task must leave alone: the domain's state, both XMLs, its snapshots (names, XML, the
    current one) and its files (names, sizes, checksums, modes)."""
    dom = conn.lookupByName(name)
    snapshots = dict((snap.getName(), snap.getXMLDesc(0)) for snap in dom.listAllSnapshots(0))
    current = dom.snapshotCurrent(0).getName() if dom.hasCurrentSnapshot(0) else None
    return {
        'state': dom.state(0)[0],
        'persistent': bool(dom.isPersistent()),
        'xml': dom.XMLDesc(0),
        'inactive_xml': dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE),
        'snapshots': snapshots,
        'current_snapshot': current,
        'files': file_table(folder),
    }


def differences(before, after, limit=12):
    """Human-readable differences between two fingerprints (empty when equal)."""
    found = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if isinstance(old, str) and isinstance(new, str):
            diff = list(difflib.unified_diff(old.splitlines(), new.splitlines(), 'before', 'after', lineterm='', n=0))
            found.append('%s differs:\n    %s' % (key, '\n    '.join(diff[2:limit + 2])))
        elif isinstance(old, dict) and isinstance(new, dict):
            for item in sorted(set(old) | set(new)):
                if old.get(item) != new.get(item):
                    found.append('%s[%s]: %s -> %s' % (key, item, _short(old.get(item)), _short(new.get(item))))
        else:
            found.append('%s: %s -> %s' % (key, _short(old), _short(new)))
    return found


def _short(value):
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= 200 else text[:200] + '...'


def images(folder):
    return sorted(os.path.join(folder, name) for name in os.listdir(folder) if name.endswith(IMAGE_SUFFIXES))


def qemu_img_check(path, shared=False):
    """(passed, report) of `qemu-img check` on one image. ``shared`` (-U) reads an image a running QEMU holds."""
    fmt = image_format(path, shared)
    if fmt != 'qcow2':
        return True, '%s: %s, nothing to check' % (path, fmt)
    argv = ['qemu-img', 'check'] + (['-U'] if shared else []) + ['-f', 'qcow2', path]
    completed = subprocess.run(argv, capture_output=True, text=True, check=False)
    report = '%s: exit %d: %s' % (path, completed.returncode, (completed.stdout + completed.stderr).strip())
    return completed.returncode == 0, report


def image_info(path, shared=True):
    argv = ['qemu-img', 'info', '--output=json'] + (['-U'] if shared else []) + [path]
    completed = subprocess.run(argv, capture_output=True, text=True, check=True)
    return json.loads(completed.stdout)


def image_format(path, shared=True):
    return image_info(path, shared).get('format')


def internal_snapshot_tags(path):
    """The internal snapshots a qcow2 image holds (QEMU's view, which libvirt's metadata must match)."""
    return sorted(item['name'] for item in image_info(path).get('snapshots', []))


def pattern_at(path, pattern, offset, length, fmt='qcow2'):
    """Whether ``length`` bytes at ``offset`` of an image (read through its backing chain, read-only) are all
    ``pattern``."""
    argv = ['qemu-io', '-r', '-f', fmt, '-c', 'read -P 0x%02x %d %d' % (pattern, offset, length), path]
    completed = subprocess.run(argv, capture_output=True, text=True, check=False)
    return completed.returncode == 0 and 'Pattern verification failed' not in completed.stdout + completed.stderr
