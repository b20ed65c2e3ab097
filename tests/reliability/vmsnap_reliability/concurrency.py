# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Part concurrency: WORKERS ansible-playbook processes at once against one domain (playbooks/concurrency_worker.yml).

No task may fail (libvirt's job lock is waited for, not reported); each raced name is created or deleted by exactly
one worker while the others report ok; the snapshots left are exactly the expected ones, and QEMU's internal snapshots
in the image match libvirt's list (no orphan left by a lost race).
"""


from vmsnap_reliability import state
from vmsnap_reliability.control import Barrier

WORKERS = 8
OWN_KEPT = 3  # each worker keeps w<N>-3 and deletes w<N>-1 and w<N>-2
BARRIER_TIMEOUT = 120  # ansible-playbook start-up on a loaded 2-core machine


def expected_snapshots():
    return sorted(['race-create', 'race-natural'] + ['w%d-%d' % (worker, OWN_KEPT) for worker in range(WORKERS)])


def check_race(part, runs, tag, barrier=None):
    """Exactly one worker changed the raced name, every other one reported ok."""
    outcomes = []
    problems = []
    for run in runs:
        records = run.results(tag=tag)
        if len(records) != 1:
            problems.append('%s: %d results for %s' % (run.name, len(records), tag))
            continue
        record = records[0]
        if record['status'] != 'ok':
            problems.append('%s: %s failed: %s' % (run.name, tag, record['result'].get('msg')))
        outcomes.append(bool(record['result'].get('changed')))
    if outcomes.count(True) != 1:
        problems.append('%s: %d workers report a change, expected exactly 1' % (tag, outcomes.count(True)))
    raced = barrier.arrived.get(tag, 0) if barrier is not None else None
    if barrier is not None and raced < 2:
        problems.append('%s: only %d worker(s) reached libvirt at the barrier: no race happened' % (tag, raced))
    part.case('race %s (%s)' % (tag, 'no barrier' if barrier is None else '%d at the barrier' % raced), problems)
    return raced


def run(ctx, part):
    fixtures = ctx.fixtures
    fixtures.create('conc')
    fixtures.snapshot('conc', 'race-delete')
    domain, folder = fixtures.name('conc'), fixtures.folder('conc')

    barrier = Barrier(WORKERS, BARRIER_TIMEOUT)
    ctx.control.policy = barrier
    try:
        common = {'rel_domain': domain, 'rel_uri': ctx.daemon.user_uri, 'rel_hook': ctx.hook_env}
        handles = [ctx.ansible.start('concurrency_worker.yml', dict(common, worker=worker), 'concurrency-w%d' % worker)
                   for worker in range(WORKERS)]
        runs = [handle.wait() for handle in handles]
    finally:
        ctx.control.policy = None

    for run_ in runs:
        problems = ['%s failed: %s' % (record['task'], record['result'].get('msg')) for record in run_.failures()]
        problems.extend('Python stack: ' + line for line in run_.tracebacks()[:3])
        if run_.returncode != 0 and not problems:
            problems.append(run_.describe(20))
        part.case(run_.name, problems)

    create_raced = check_race(part, runs, 'race-create', barrier)
    delete_raced = check_race(part, runs, 'race-delete', barrier)
    check_race(part, runs, 'race-natural')

    dom = ctx.conn.lookupByName(domain)
    present = sorted(dom.snapshotListNames(0))
    expected = expected_snapshots()
    missing = sorted(set(expected) - set(present))
    extra = sorted(set(present) - set(expected))
    part.case('final snapshot set', ['missing: %s' % ', '.join(missing)] * bool(missing)
              + ['unexpected: %s' % ', '.join(extra)] * bool(extra), lost=len(missing))

    image = state.images(folder)
    problems = []
    for path in image:
        tags = state.internal_snapshot_tags(path)
        if tags != present:
            problems.append('%s holds internal snapshots %s, libvirt lists %s' % (path, tags, present))
        passed, report = state.qemu_img_check(path, shared=True)
        if not passed:
            problems.append(report)
    part.case('image health', problems)
    part.note('concurrency: %d workers; %d reached libvirt together for race-create, %d for race-delete'
              % (WORKERS, create_raced, delete_raced))
    return part
