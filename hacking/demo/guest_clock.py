# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How far each guest's clock is from the host's, read through the guest agent (virDomainGetTime).

Usage: guest_clock.py [--uri URI] DOMAIN...

Prints a JSON object: for each domain, ``offset`` (guest clock minus host clock, in seconds; negative means the guest is
behind) and ``uncertainty`` (half the round trip of the agent call that gave it, the best of five), or ``error`` when
the agent did not answer. The host's time is taken just before and just after each call, and the guest's reading is
compared with the middle of the two: no guest round trip is hidden in the number.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import libvirt

TRIES = 5


def measure(dom):
    best = None
    for dummy in range(TRIES):
        before = time.time()
        guest = dom.getTime()
        after = time.time()
        reading = guest['seconds'] + guest['nseconds'] / 1e9
        sample = (round(reading - (before + after) / 2, 3), round((after - before) / 2, 3))
        if best is None or sample[1] < best[1]:
            best = sample
    return {'offset': best[0], 'uncertainty': best[1]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--uri', default='qemu:///system')
    parser.add_argument('domains', nargs='+', metavar='DOMAIN')
    args = parser.parse_args(argv)
    # Errors are reported in the JSON, not printed to stderr by libvirt's default handler as well.
    libvirt.registerErrorHandler(lambda dummy_context, dummy_error: None, None)
    conn = libvirt.open(args.uri)
    clocks = {}
    try:
        for name in args.domains:
            try:
                clocks[name] = measure(conn.lookupByName(name))
            except libvirt.libvirtError as exc:
                clocks[name] = {'error': 'no time from the guest agent of %s: %s' % (name, exc.get_error_message())}
    finally:
        conn.close()
    json.dump(clocks, sys.stdout, indent=2, sort_keys=True)
    print()
    return 0


if __name__ == '__main__':
    sys.exit(main())
