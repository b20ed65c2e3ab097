# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What each part of the suite found, and the summary table."""

import threading


class Part:
    """Counts for one part: cases tried and passed, faults injected and survived, items lost; and what went wrong."""

    def __init__(self, name):
        self.name = name
        self.tried = 0
        self.passed = 0
        self.faults = 0
        self.survived = 0
        self.lost = 0
        self.problems = []
        self.notes = []
        self.seconds = 0.0
        self._lock = threading.Lock()

    def case(self, label, problems, lost=0):
        """Count one case; ``problems`` is the list of what was wrong (empty: passed)."""
        with self._lock:
            self.tried += 1
            self.lost += lost
            if problems:
                self.problems.append((label, list(problems)))
            else:
                self.passed += 1

    def fault(self, survived):
        with self._lock:
            self.faults += 1
            if survived:
                self.survived += 1

    def note(self, text):
        with self._lock:
            self.notes.append(text)

    @property
    def ok(self):
        return (self.tried > 0 and self.passed == self.tried and self.survived == self.faults and self.lost == 0
                and not self.problems)


def table(parts):
    header = ('part', 'cases tried', 'passed', 'faults injected', 'survived', 'items lost', 'seconds', 'result')
    rows = [header]
    for part in parts:
        rows.append((part.name, str(part.tried), str(part.passed), str(part.faults), str(part.survived),
                     str(part.lost), '%.0f' % part.seconds, 'ok' if part.ok else 'FAILED'))
    total = ('total', str(sum(p.tried for p in parts)), str(sum(p.passed for p in parts)),
             str(sum(p.faults for p in parts)), str(sum(p.survived for p in parts)), str(sum(p.lost for p in parts)),
             '%.0f' % sum(p.seconds for p in parts), 'ok' if parts and all(p.ok for p in parts) else 'FAILED')
    rows.append(total)
    widths = [max(len(row[index]) for row in rows) for index in range(len(header))]

    def line(row):
        return '| ' + ' | '.join(cell.ljust(width) if index == 0 else cell.rjust(width)
                                 for index, (cell, width) in enumerate(zip(row, widths))) + ' |'
    rule = '|' + '|'.join('-' * (width + 2) for width in widths) + '|'
    return '\n'.join([line(rows[0]), rule] + [line(row) for row in rows[1:-1]] + [rule, line(rows[-1])])
