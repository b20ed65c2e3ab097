"""Append numbered records to a file, fsync each, and only then report its number; stop when the stop file exists.

Usage: writer.py RECORDS REPORT STOP. RECORDS gets the lines 1, 2, 3, ...; REPORT (on a tmpfs) holds the number of the
last record whose fsync returned, replaced atomically, so a reader never sees a number the disk does not hold.
"""
import os
import sys
import time

records, report, stop = sys.argv[1:4]
fd = os.open(records, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
# The new file's directory entry must be on disk too.
directory = os.open(os.path.dirname(os.path.abspath(records)), os.O_RDONLY)
os.fsync(directory)
os.close(directory)
number = 0
while not os.path.exists(stop):
    number += 1
    os.write(fd, b'%d\n' % number)
    os.fsync(fd)
    with open(report + '.tmp', 'w') as handle:
        handle.write('%d\n' % number)
    os.replace(report + '.tmp', report)
    # A steady trickle, so that the merge happens between writes, not only during one long burst.
    time.sleep(0.05)
os.close(fd)
