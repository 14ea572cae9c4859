#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""The fault suite: snapdriver's promises under real faults.

snapdriver-api runs with the libvirt driver against real TCG guests, is
driven over HTTP as Cinder's compute client drives it, and reports to a
real cinder-api (noauth, SQLite) in whose database every volume and
snapshot is seeded, so that Cinder's database shows the status it
received. Five scenarios, one test each:

1. libvirtd is stopped and started again (its guests keep running) while
   a block commit of a sizeable layer runs, and while a pull ends;
2. snapdriver is SIGKILLed at random moments of 50 operations (creates,
   commits and pulls on three volumes of three guests), restarted on the
   same journal each time, sometimes killed again during its recovery;
3. cinder-api is down for 60 s while operations finish;
4. the share (a small loop-mounted ext4) is full while block jobs and
   qemu-img copy data into it;
5. guests are destroyed in the middle of a merge.

For every operation the suite records its final state in snapdriver, the
status Cinder's database shows, whether the report was delivered, and a
data check: the chain libvirt shows and the one the qcow2 headers record
are the expected one (unchanged after a failure, fully done after a
success), every header names its backing file relatively, and the data
the guest sees (read through the chain with qemu-io) is exactly what
:class:`guest.DataModel` says was written. Each scenario's operations and
timeline are attached as details; the suite ends (``test_9_summary``) with
a table per scenario (operations, faults injected, reports lost, data
mismatches), printed to stderr, attached, and written with every
operation to ``.run/faults/summary.md``. Lost reports and mismatches must
be 0.

Randomness (scenario 2's choice of operations, kill moments and second
kills) comes from ``$SNAPDRIVER_FAULT_SEED`` when set, else from a fresh
seed; either way the seed is printed (``FAULT SEED=...``). The moments are
reproducible, what snapdriver was doing at them depends on the machine.

The suite runs its own libvirtd (see :mod:`faults` for why) in
``<libvirt dir>-faults``. Skipped without ``$SNAPDRIVER_TEST_LIBVIRT_URI``
(tools/with-libvirtd.sh) or ``$SNAPDRIVER_TEST_CINDER_VENV``.
"""

import json
import os
import re
import threading
import time
import urllib.parse
import uuid

import fixtures
from testtools import content

from snapdriver.tests import base
from snapdriver.tests.functional import cinder_env
from snapdriver.tests.functional import faults
from snapdriver.tests.functional import guest
from snapdriver.tests.functional import server
from snapdriver.tests.functional import test_libvirt_contract as builder

MiB = guest.MiB
FINAL = ('succeeded', 'failed')

SCENARIOS = [
    ('1', 'libvirtd restarted mid-job'),
    ('2', 'snapdriver SIGKILLed at random points'),
    ('3', 'cinder-api down for 60 s'),
    ('4', 'share full'),
    ('5', 'guest destroyed mid-merge'),
]

#: Scenario 2.
SIGKILL_OPERATIONS = 50
#: Volumes of running guests, and of shut-off ones (qemu-img merges).
SIGKILL_VOLUMES = 3
SIGKILL_OFFLINE_VOLUMES = 1
#: Each round of operations is killed with this probability, at a moment
#: drawn uniformly from [0, KILL_WINDOW) s after the requests went out.
KILL_PROBABILITY = 0.85
KILL_WINDOW = 0.3
#: After a kill, the restarted snapdriver is killed again (during its
#: recovery) with this probability, within RECOVERY_KILL_WINDOW s.
RECOVERY_KILL_PROBABILITY = 0.25
RECOVERY_KILL_WINDOW = 0.4
MAX_CHAIN = 6

#: Scenario 3.
OUTAGE = 60.0

#: How long an operation may take to end and be reported, faults aside.
OP_TIMEOUT = 60


def _short(text, limit=200):
    text = ' '.join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + '...'


class Step:
    """One operation as Cinder's remotefs driver would ask for it, with
    what must become of the chain if it succeeds."""

    def __init__(self, volume, kind, snapshot_id, body=None,
                 delete_info=None, expected=None, removed=None, after=None):
        self.volume = volume
        self.kind = kind                  # create, commit, pull
        self.snapshot_id = snapshot_id
        self.body = body
        self.delete_info = delete_info
        self.expected = list(expected)
        self.removed = removed
        self.after = after
        self.record = None
        self.rows_before = 0
        self.answer = None
        self.op = None

    @property
    def request_kind(self):
        return 'create' if self.kind == 'create' else 'delete'

    def matches(self, operation):
        if self.kind == 'create':
            return operation['kind'] == 'create'
        return operation['kind'] in ('pull', 'commit')


class CinderVolume:
    """A volume as a remotefs driver keeps it: the qcow2 chain (a
    :class:`builder.Volume` on a guest) and the ``.info`` map of snapshot
    ids to files, from which Cinder derives every delete_info."""

    def __init__(self, volume, label, pool=0):
        self.volume = volume
        self.id = volume.volume_id
        self.label = label
        # attach_volume names its overlays volume-<id>.<uuid>: snapshots.
        self.snaps = {name.split('.', 1)[1]: name
                      for name in volume.names if '.' in name}
        self.pool = [str(uuid.uuid4()) for _ in range(pool)]

    @property
    def names(self):
        return self.volume.names

    @property
    def domain(self):
        return self.volume.domain

    def seed_snapshots(self):
        seeded = {s: ('available', '100%') for s in self.snaps}
        seeded.update({s: ('creating', '0%') for s in self.pool})
        return seeded

    def snapshot_of(self, name):
        """The snapshot id whose file is ``name``."""
        for snapshot_id, file_name in self.snaps.items():
            if file_name == name:
                return snapshot_id
        raise LookupError('no snapshot has file %s' % name)

    # What Cinder would ask for.

    def plan_create(self, snapshot_id=None):
        snapshot_id = snapshot_id or self.pool.pop(0)
        new_file = self.volume.new_overlay(snapshot_id)

        def after():
            self.snaps[snapshot_id] = new_file

        body = {'snapshot': {
            'volume_id': self.id,
            'create_info': {'snapshot_id': snapshot_id, 'type': 'qcow2',
                            'new_file': new_file}}}
        return Step(self, 'create', snapshot_id, body=body,
                    expected=[new_file] + self.names, after=after)

    def plan_delete(self, snapshot_id):
        """As ``RemoteFSSnapDriverBase._delete_snapshot`` does it online:
        the snapshot's file is the active one -> pull its base file's
        backing into it (Cinder then removes the base file, and the
        snapshot that had the base file gets the active one); otherwise
        commit the snapshot's file into its backing (and remove it)."""
        names = self.names
        snapshot_file = self.snaps[snapshot_id]
        position = names.index(snapshot_file)
        base_file = names[position + 1]
        if position == 0:
            base_id = next((s for s, f in self.snaps.items()
                            if f == base_file), None)
            new_base = names[2] if base_id else None

            def after():
                del self.snaps[snapshot_id]
                if base_id:
                    self.snaps[base_id] = snapshot_file

            return Step(self, 'pull', snapshot_id, delete_info={
                'type': 'qcow2', 'file_to_merge': new_base,
                'merge_target_file': None, 'volume_id': self.id},
                expected=[names[0]] + names[2:], removed=base_file,
                after=after)

        def after():
            del self.snaps[snapshot_id]

        return Step(self, 'commit', snapshot_id, delete_info={
            'type': 'qcow2', 'file_to_merge': snapshot_file,
            'merge_target_file': base_file, 'volume_id': self.id},
            expected=[n for n in names if n != snapshot_file],
            removed=snapshot_file, after=after)

    def choices(self):
        """What can be done now: {kind: [snapshot ids]} (create: [None])."""
        active = self.names[0]
        found = {}
        if len(self.names) < MAX_CHAIN and self.pool:
            found['create'] = [None]
        pulls = [s for s, f in self.snaps.items() if f == active]
        commits = [s for s, f in self.snaps.items() if f != active]
        if pulls:
            found['pull'] = pulls
        if commits:
            found['commit'] = commits
        return found

    def plan_random(self, rng):
        found = self.choices()
        weights = {'create': 4, 'commit': 3, 'pull': 3}
        if len(self.names) <= 2:
            weights['create'] = 8
        kinds = sorted(found)
        kind = rng.choices(kinds, [weights[k] for k in kinds])[0]
        if kind == 'create':
            return self.plan_create()
        # By place in the chain, not by id: ids are new each run.
        return self.plan_delete(rng.choice(sorted(
            found[kind], key=lambda s: self.names.index(self.snaps[s]))))

    def applied(self, step):
        """The step succeeded: what Cinder does next (remove the merged
        file from the share), and our model follows."""
        if step.removed:
            os.unlink(self.volume.path(step.removed))
        self.volume.names = list(step.expected)
        step.after()


class TestFaults(base.FunctionalTestCase):
    """The five scenarios, then the summary (tests run in name order,
    in one worker: stestr groups a module's tests)."""

    test_timeout = 400

    # Shared by the scenarios, started by the first one that runs.
    _libvirtd = None
    _cinder = None
    seed = None
    scenarios = {}

    @classmethod
    def tearDownClass(cls):
        try:
            if cls._cinder is not None:
                os.makedirs(faults.LOG_DIR, exist_ok=True)
                with open(os.path.join(faults.LOG_DIR, 'cinder-api.log'),
                          'w') as f:
                    f.write(cls._cinder.log_text())
                cls._cinder.cleanUp()
                cls._cinder = None
        finally:
            if cls._libvirtd is not None:
                cls._libvirtd.cleanUp()
                cls._libvirtd = None
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        if not guest.libvirt_uri():
            self.skipTest(guest.SKIP_REASON)
        venv = cinder_env.cinder_venv()
        if venv is None:
            self.skipTest(cinder_env.SKIP_REASON)
        self.useFixture(fixtures.Timeout(self.test_timeout, gentle=True))
        cls = type(self)
        if cls.seed is None:
            cls.seed = faults.suite_seed()
            faults.say('FAULT SEED=%d (set %s to repeat the draws)'
                       % (cls.seed, faults.SEED_ENV))
        self.addDetail('seed', content.text_content(str(cls.seed)))
        if cls._libvirtd is None:
            base_dir = os.environ.get('SNAPDRIVER_LIBVIRT_DIR') or \
                os.path.join(faults.REPO, '.run', 'libvirt')
            libvirtd = faults.PrivateLibvirtd(
                os.path.realpath(base_dir) + '-faults')
            libvirtd.setUp()
            cls._libvirtd = libvirtd
        if cls._cinder is None:
            cinder = cinder_env.CinderApiFixture(venv)
            cinder.setUp()
            cls._cinder = cinder
        self.libvirtd = cls._libvirtd
        self.cinder = cls._cinder
        # An earlier scenario that failed may have left them stopped.
        if not self.libvirtd.running():
            self.libvirtd.start_daemon()
        if not self.cinder.running:
            self.cinder.start()
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.share = os.path.join(self.dir, 'share')
        os.mkdir(self.share)
        self.project = str(uuid.uuid4())
        self.token = 'admin:%s' % self.project
        self.service_token = 'snapdriver:%s' % uuid.uuid4()
        # Cinder's DB, through Cinder's own code; the compute endpoint is
        # not used (this suite sends the requests itself).
        self.side = self.useFixture(self.cinder.side(
            'http://127.0.0.1:9/v2.1', self.token))
        self.sd = None
        self._servers = []
        self._volumes = 0
        self.addOnException(self._attach_logs)

    def _attach_logs(self, exc_info):
        text = ''
        for number, fixture in enumerate(self._servers, 1):
            try:
                log = fixture.log_text()
            except OSError:
                continue
            text += '==== snapdriver-api #%d ====\n%s\n' % (
                number, log[-30000:])
        self.addDetail('snapdriver-api.log', content.text_content(text))
        self.addDetail('cinder-api.log', content.text_content(
            self.cinder.log_text()[-20000:]))

    # The scenario's record.

    def scenario(self, key):
        title = dict(SCENARIOS)[key]
        scenario = faults.Scenario(key, title)
        type(self).scenarios[key] = scenario
        if os.path.isdir(faults.LOG_DIR):
            for name in os.listdir(faults.LOG_DIR):
                if name.startswith('scenario-%s-' % key):
                    os.unlink(os.path.join(faults.LOG_DIR, name))
        self.current = scenario
        self.addDetail('operations', content.Content(
            content.UTF8_TEXT,
            lambda: [scenario.report().encode('utf-8')]))
        self.addCleanup(self._publish)
        return scenario

    def _publish(self):
        text = self.summary_text()
        faults.write_summary(text)

    @classmethod
    def summary_text(cls):
        table = faults.summary_table(cls.scenarios, SCENARIOS)
        parts = ['# snapdriver fault suite\n',
                 'Seed: %s (`%s`)\n' % (cls.seed, faults.SEED_ENV),
                 table]
        for key, _ in SCENARIOS:
            if key in cls.scenarios:
                parts.append(cls.scenarios[key].report())
        return '\n'.join(parts)

    def assertGoals(self, scenario):
        scenario.finish()
        self.addDetail('scenario-row', content.text_content(
            faults.summary_table({scenario.key: scenario},
                                 [(scenario.key, scenario.title)])))
        problems = ['%s: %s' % (op.label, ', '.join(
            what for what, bad in (
                ('report lost (%s, Cinder %s)' % (op.delivery, op.cinder),
                 op.lost),
                ('data: %s' % op.data, op.mismatch),
                ('ended %s with %s journal rows, expected %s'
                 % (op.state, op.rows, op.expect_state), op.unexpected))
            if bad)) for op in scenario.ops
            if op.lost or op.mismatch or op.unexpected]
        self.assertEqual([], problems)

    # snapdriver-api.

    def start_snapdriver(self, journal, max_backoff=1.0, merge_bandwidth=0):
        extra = {
            'DEFAULT': {'status_reporter': 'cinder'},
            'libvirt': {'connection_uri': self.libvirtd.uri,
                        'block_job_poll_interval': 0.1,
                        'merge_bandwidth': merge_bandwidth},
            'database': {'connection': 'sqlite:///' + journal},
            'cinder': {'endpoint_override': self.cinder.endpoint(),
                       'report_initial_backoff': 0.2,
                       'report_max_backoff': max_backoff,
                       'report_deadline': 300,
                       'timeout': 5,
                       # snapdriver's own credentials, as in production.
                       'auth_type': 'admin_token',
                       'token': self.service_token},
        }
        fixture = faults.KillableServer(
            driver='libvirt', auth_strategy='noauth', extra_conf=extra,
            keep_log=os.path.join(faults.LOG_DIR, 'scenario-%s-snapdriver-'
                                  '%02d.log' % (self.current.key,
                                                len(self._servers) + 1)))
        self._servers.append(fixture)
        self.sd = self.useFixture(fixture)
        return self.sd

    def api(self, method, path, body=None, timeout=10):
        return server.resource_request(self.sd.port, self.token, method,
                                       path, body, timeout=timeout)

    def send(self, step, timeout=10):
        """The request Cinder's compute client sends for ``step``."""
        if step.kind == 'create':
            return self.api('POST', '', step.body, timeout=timeout)
        # As novaclient builds it; the HTTP library percent-encodes it.
        info = urllib.parse.quote(json.dumps(step.delete_info), safe='')
        return self.api('DELETE', '/%s?delete_info=%s'
                        % (step.snapshot_id, info), timeout=timeout)

    def operations(self, snapshot_id):
        answer = self.api('GET', '/%s' % snapshot_id)
        if answer.status == 404:
            return []
        self.assertEqual(200, answer.status, answer)
        return answer.json()['operations']

    def rows(self, step):
        return [op for op in self.operations(step.snapshot_id)
                if step.matches(op)]

    # Cinder's side.

    def cinder_volume(self, directory=None, pool=0, **kwargs):
        """A volume on a new guest (``attach_volume``'s ``kwargs``: running
        unless ``running=False``), seeded in Cinder's DB with its snapshots
        (``available``) and ``pool`` snapshot ids to create (``creating``,
        0%)."""
        self._volumes += 1
        volume_id = str(uuid.uuid4())
        volume = builder.attach_volume(self, self.libvirtd.uri,
                                       directory or self.share, volume_id,
                                       **kwargs)
        cv = CinderVolume(volume, 'V%d' % self._volumes, pool)
        seeded = self.side.seed(volume_id, self.project, 'demo',
                                str(uuid.uuid4()), cv.seed_snapshots())
        self.assertEqual({'status': 'in-use', 'attach_status': 'attached'},
                         seeded['volume'])
        return cv

    def prepare(self, step, label, expect_state='succeeded'):
        """Cinder's part before the request: the overlay exists (made by
        plan_create); a snapshot to delete is ``deleting``."""
        failed = expect_state != 'succeeded'
        if step.kind == 'create':
            status = 'error' if failed else 'creating'
        else:
            status = 'error_deleting' if failed else 'deleting'
            self.side.update_snapshot(step.snapshot_id, 'deleting', '100%')
        step.record = self.current.op(label, step.volume.label,
                                      step.snapshot_id, step.kind,
                                      expect_state, status)
        step.rows_before = len(self.rows(step))
        return step

    def submit(self, step, expect=(200, 204)):
        """Send ``step``; the answer must be one of ``expect``."""
        answer = self.send(step)
        step.answer = answer
        self.current.timeline.mark('%s %s %s sent: HTTP %d' % (
            step.record.label, step.kind, step.snapshot_id[:8],
            answer.status))
        self.assertIn(answer.status, expect, answer)
        return answer

    def wait_done(self, step, timeout=OP_TIMEOUT, delivered=True):
        """GET until this step's operation is over (and, with
        ``delivered``, its report no longer pending)."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.rows(step)
            mine = rows[step.rows_before:]
            if mine and mine[-1]['state'] in FINAL and (
                    not delivered or mine[-1]['status_report']['delivery']
                    not in (None, 'pending')):
                step.op = mine[-1]
                step.record.rows = len(mine)
                return step.op
            if time.monotonic() > deadline:
                step.record.rows = len(mine)
                step.record.state = mine[-1]['state'] if mine else None
                self.fail('%s (%s of snapshot %s) not over%s after %ss: %s'
                          % (step.record.label, step.kind,
                             step.snapshot_id, ' and reported'
                             if delivered else '', timeout,
                             mine[-1] if mine else 'no operation'))
            time.sleep(0.05)

    def conclude(self, step, timeout=OP_TIMEOUT, check_data=True):
        """Wait for the step's operation and its report; record the state,
        Cinder's view and (``check_data``) the data check; apply the step
        to the model when it succeeded (when it failed, the chain must be
        the one before)."""
        record = step.record
        op = self.wait_done(step, timeout)
        record.state = op['state']
        record.error = op['error']
        report = op['status_report']
        record.delivery = report['delivery']
        record.attempts = report['attempts']
        timeline = self.current.timeline
        timeline.mark_utc('%s finished: %s (snapdriver finished_at)'
                          % (record.label, op['state']), op['finished_at'])
        timeline.mark_utc('%s report %s %s (snapdriver reported_at)'
                          % (record.label, report['status'],
                             report['delivery']), report['reported_at'])
        seen = self.side.wait_snapshot(step.snapshot_id,
                                       record.expect_status, '90%',
                                       timeout=10)
        record.cinder = '%s/%s' % (seen['status'], seen['progress'])
        if op['state'] == 'succeeded':
            if op['chain'] != step.expected:
                record.notes.append('chain %s, expected %s'
                                    % (op['chain'], step.expected))
            expected = step.expected
        else:
            expected = list(step.volume.names)
        if check_data:
            record.data = self.check_volume(step.volume, expected)
        if op['state'] == 'succeeded' and record.data in ('ok', None):
            step.volume.applied(step)
            if step.kind == 'create':
                # Cinder's volume manager, once the create is reported.
                self.side.update_snapshot(step.snapshot_id, 'available',
                                          '100%')
        return op

    def check_volume(self, cv, names=None):
        """'ok', or what is wrong: the chain (libvirt's view and the
        headers'), relative backing names, the guest-visible data."""
        try:
            cv.volume.check(names)
        except Exception as e:
            return 'MISMATCH: %s' % _short(e, 300)
        return 'ok'

    # libvirt, from the test's side.

    def job(self, cv):
        return cv.domain.blockJobInfo(cv.volume.target, 0)

    def wait_job(self, cv, running, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            info = self.job(cv)
            if bool(info) == running:
                return info
            if time.monotonic() > deadline:
                self.fail('block job on %s still %s after %ss: %s'
                          % (cv.label, 'absent' if running else 'running',
                             timeout, info))
            time.sleep(0.005)

    def reconnect(self, volumes):
        """After a libvirtd restart the test's own connection is dead:
        look the guests up on a new one."""
        import libvirt
        conn = libvirt.open(self.libvirtd.uri)
        self.addCleanup(conn.close)
        for cv in volumes:
            fixture = cv.volume.fixture
            fixture.domain = conn.lookupByUUIDString(
                fixture.domain.UUIDString())
        return conn

    # 1. libvirtd restarted mid-job ---------------------------------------

    def test_1_libvirtd_restart_mid_job(self):
        scenario = self.scenario('1')
        timeline = scenario.timeline
        # A: base <- big (256 MiB of data) <- top; its snapshot's delete
        # commits big into base. B: base <- mid (64 MiB) <- top; deleting
        # the newest snapshot pulls mid into top. C: a plain volume.
        a = self.cinder_volume(layers=3, size_mb=288,
                               layer_writes={1: [(16 * MiB, 256 * MiB)]})
        b = self.cinder_volume(layers=3, size_mb=96,
                               layer_writes={1: [(16 * MiB, 64 * MiB)]})
        c = self.cinder_volume(layers=1, pool=1)
        volumes = [a, b, c]
        # Jobs slowed from their start, so that the restart lands mid-job
        # however loaded the machine is.
        self.start_snapdriver(os.path.join(self.dir, 'journal.sqlite'),
                              merge_bandwidth=32)
        scenario.notes.append(
            'Each block job runs at 32 MiB/s ([libvirt] merge_bandwidth) so '
            'that the restart lands mid-job; the job, its start and its end '
            'are QEMU\'s.')

        # 1a: the commit goes on across the restart.
        commit = self.prepare(a.plan_delete(a.snapshot_of(a.names[1])),
                              '1a')
        self.submit(commit)
        info = self.wait_job(a, running=True)
        timeline.mark('1a block commit seen (%s)' % info)
        time.sleep(0.5)
        qemu_pids = {cv.label: self.libvirtd.guest_pid(
            cv.volume.fixture.name) for cv in volumes}
        before = self.job(a)
        self.libvirtd.stop_daemon()
        scenario.fault('libvirtd stopped (SIGTERM) during the 1a commit, '
                       'job at %d of %d bytes' % (before['cur'],
                                                  before['end']))
        commit.record.faults.append('libvirtd restarted mid-job')
        # While libvirtd is away: the journal answers; a new request
        # cannot be checked against a chain, and is refused cleanly.
        op = self.rows(commit)[-1]
        timeline.mark('GET while libvirtd is down: %s' % op['state'])
        self.assertEqual('running', op['state'])
        create = self.prepare(c.plan_create(), '1c')
        refused = self.send(create)
        timeline.mark('1c create sent while libvirtd is down: HTTP %d %s'
                      % (refused.status, _short(refused.body, 160)))
        create.record.faults.append('sent while libvirtd was down: HTTP '
                                    '%d; re-sent after' % refused.status)
        self.assertEqual(503, refused.status, refused)
        self.assertEqual([], self.rows(create))
        # The health check says so (the hypervisor plugin), the journal
        # still takes writes.
        health = server.request(self.sd.port, 'GET', '/healthcheck')
        timeline.mark('/healthcheck while libvirtd is down: HTTP %d %s'
                      % (health.status, ' / '.join(
                          health.body.decode().splitlines())))
        self.assertEqual(503, health.status, health)
        self.assertIn(b'hypervisor: failing', health.body)
        self.assertIn(b'journal: OK', health.body)
        time.sleep(1.0)
        self.libvirtd.start_daemon()
        timeline.mark('libvirtd started again')
        self.reconnect(volumes)
        health = server.request(self.sd.port, 'GET', '/healthcheck')
        timeline.mark('/healthcheck after the restart: HTTP %d'
                      % health.status)
        self.assertEqual(200, health.status, health)
        after = self.job(a)
        timeline.mark('1a job after the restart: %s' % after)
        self.assertTrue(after and after['cur'] < after['end'],
                        'the commit is no longer running: %s' % after)
        for cv in volumes:
            self.assertEqual(qemu_pids[cv.label], self.libvirtd.guest_pid(
                cv.volume.fixture.name))
            self.assertTrue(faults._alive(qemu_pids[cv.label]))
        scenario.notes.append('QEMU kept running across both restarts '
                              '(same PIDs, domains active).')
        self.wait_job(a, running=False, timeout=60)
        timeline.mark('1a job gone (test connection)')
        self.conclude(commit)
        self.submit(create)
        self.conclude(create)

        # 1b: the pull ends while libvirtd is down.
        pull = self.prepare(b.plan_delete(b.snapshot_of(b.names[0])), '1b')
        self.submit(pull)
        info = self.wait_job(b, running=True)
        self.libvirtd.stop_daemon()
        scenario.fault('libvirtd stopped during the 1b pull (64 MiB at '
                       '32 MiB/s), kept down 5 s for the job to end')
        time.sleep(5.0)
        self.libvirtd.start_daemon()
        timeline.mark('libvirtd started again')
        self.reconnect(volumes)
        info = self.job(b)
        timeline.mark('1b job after the restart: %s' % info)
        pull.record.faults.append(
            'libvirtd down while the job ended' if not info else
            'libvirtd restarted mid-job (the job outlived the 5 s)')
        self.conclude(pull)
        for cv in volumes:
            self.assertEqual(qemu_pids[cv.label], self.libvirtd.guest_pid(
                cv.volume.fixture.name))
        # The guests go on writing, and the checks hold.
        for cv in volumes:
            cv.volume.write()
            self.assertEqual('ok', self.check_volume(cv))
        self.assertGoals(scenario)

    # 2. snapdriver SIGKILLed at random points ----------------------------

    def test_2_snapdriver_sigkilled(self):
        scenario = self.scenario('2')
        rng = faults.rng(self.seed, 'sigkill')
        journal = os.path.join(self.dir, 'journal.sqlite')
        pool = SIGKILL_OPERATIONS // 2
        volumes = [self.cinder_volume(layers=3, pool=pool)
                   for _ in range(SIGKILL_VOLUMES)]
        volumes += [self.cinder_volume(layers=3, pool=pool, running=False)
                    for _ in range(SIGKILL_OFFLINE_VOLUMES)]
        scenario.notes.append('volumes %s: running guests; %s: shut-off '
                              'guests' % (
                                  ', '.join(v.label for v in volumes
                                            if v.volume.running),
                                  ', '.join(v.label for v in volumes
                                            if not v.volume.running)))
        self.start_snapdriver(journal)
        phases = {}
        count = 0
        round_number = 0
        while count < SIGKILL_OPERATIONS:
            round_number += 1
            order = list(volumes)
            rng.shuffle(order)
            steps = []
            for cv in order[:SIGKILL_OPERATIONS - count]:
                count += 1
                steps.append(self.prepare(cv.plan_random(rng),
                                          '2.%02d' % count))
            kill_at = (rng.uniform(0, KILL_WINDOW)
                       if rng.random() < KILL_PROBABILITY else None)
            again_at = (rng.uniform(0, RECOVERY_KILL_WINDOW)
                        if rng.random() < RECOVERY_KILL_PROBABILITY
                        else None)
            self._sigkill_round(scenario, round_number, steps, journal,
                                kill_at, again_at, phases)
            for step in steps:
                self.conclude(step, check_data=False)
            for cv in {step.volume for step in steps}:
                mine = [s for s in steps if s.volume is cv]
                data = self.check_volume(cv)
                for step in mine:
                    step.record.data = data
                cv.volume.write()
        scenario.notes.append(
            '%d rounds of up to %d concurrent operations (one per volume); '
            'what the kills found, per operation: %s'
            % (round_number, len(volumes), ', '.join(
                '%s %d' % item for item in sorted(phases.items()))))
        kinds = {}
        for op in scenario.ops:
            kinds[op.kind] = kinds.get(op.kind, 0) + 1
        scenario.notes.append('operations: %s' % ', '.join(
            '%d %ss' % (n, k) for k, n in sorted(kinds.items())))
        # At least once: a report Cinder took but snapdriver did not
        # journal as delivered before it was killed is sent again.
        log = self.cinder.log_text()
        labels = {}
        for op in scenario.ops:
            labels.setdefault(op.snapshot_id, []).append(op.label)
        total, twice = 0, []
        for snapshot_id, mine in labels.items():
            calls = len(re.findall(
                r'"POST /v3/snapshots/%s/action HTTP/1\.1" status: 202'
                % snapshot_id, log))
            total += calls
            if calls > len(mine):
                twice.append('%s (%d callbacks)' % ('+'.join(mine), calls))
        scenario.notes.append(
            'cinder-api accepted %d status callbacks for the %d operations;'
            ' sent again after a kill (at least once): %s'
            % (total, len(scenario.ops), ', '.join(twice) or 'none'))
        self.assertEqual(SIGKILL_OPERATIONS, len(scenario.ops))
        self.assertGoals(scenario)

    def _sigkill_round(self, scenario, number, steps, journal, kill_at,
                       again_at, phases):
        timeline = scenario.timeline
        results = {}

        def send(step):
            try:
                results[step] = self.send(step, timeout=5)
            except Exception as e:
                results[step] = e

        threads = [threading.Thread(target=send, args=(step,), daemon=True)
                   for step in steps]
        start = time.monotonic()
        timeline.mark('round %d: %s sent' % (number, ', '.join(
            '%s %s' % (step.record.label, step.kind) for step in steps)))
        for thread in threads:
            thread.start()
        if kill_at is None:
            for thread in threads:
                thread.join(10)
        else:
            time.sleep(max(0.0, start + kill_at - time.monotonic()))
            killed = time.time()
            self.sd.kill()
            for thread in threads:
                thread.join(10)
            found = faults.journal_rows(journal)
            states = []
            for step in steps:
                answer = results.get(step)
                phase = faults.phase_of(
                    found.get((step.snapshot_id, step.request_kind),
                              [])[step.rows_before:])
                phases[phase] = phases.get(phase, 0) + 1
                answered = ('HTTP %d' % answer.status
                            if isinstance(answer, server.Response)
                            else 'no answer')
                step.record.faults.append('SIGKILL +%.3fs (%s; %s)'
                                          % (kill_at, answered, phase))
                states.append('%s %s: %s, %s' % (
                    step.record.label, step.kind, answered, phase))
            scenario.fault('round %d: SIGKILL %.3f s after the requests; '
                           '%s' % (number, kill_at, '; '.join(states)),
                           at=killed)
            self.start_snapdriver(journal)
            timeline.mark('snapdriver restarted on the journal')
            if again_at is not None:
                time.sleep(again_at)
                killed = time.time()
                self.sd.kill()
                found = faults.journal_rows(journal)
                states = ['%s: %s' % (step.record.label, faults.phase_of(
                    found.get((step.snapshot_id, step.request_kind),
                              [])[step.rows_before:])) for step in steps]
                for step in steps:
                    step.record.faults.append('SIGKILL in recovery +%.3fs'
                                              % again_at)
                scenario.fault('round %d: SIGKILL again %.3f s into the '
                               'recovery; %s'
                               % (number, again_at, '; '.join(states)),
                               at=killed)
                self.start_snapdriver(journal)
                timeline.mark('snapdriver restarted on the journal')
        for step in steps:
            answer = results.get(step)
            if not isinstance(answer, server.Response):
                # No answer: the caller (a retrying client) asks again.
                answer = self.send(step)
                step.record.notes.append('re-sent: HTTP %d'
                                         % answer.status)
                step.record.faults[-1] += ', re-sent: HTTP %d' % (
                    answer.status)
            step.answer = answer
            self.assertIn(answer.status, (200, 204), '%s: %r' % (
                step.record.label, answer))

    # 3. cinder-api down for 60 s -----------------------------------------

    def test_3_cinder_outage(self):
        scenario = self.scenario('3')
        timeline = scenario.timeline
        volumes = [self.cinder_volume(layers=3, pool=1) for _ in range(2)]
        self.start_snapdriver(os.path.join(self.dir, 'journal.sqlite'),
                              max_backoff=3.0)
        self.cinder.stop()
        stopped = time.time()
        scenario.fault('cinder-api stopped for %d s' % OUTAGE)
        steps = []
        for cv in volumes:
            # Every snapshot once: the newest (a pull), a new one, then
            # the oldest (a commit); none is deleted before Cinder could
            # have learnt that it was created.
            newest = cv.snapshot_of(cv.names[0])
            oldest = cv.snapshot_of(cv.names[1])
            for plan in (lambda: cv.plan_delete(newest),
                         cv.plan_create,
                         lambda: cv.plan_delete(oldest)):
                step = self.prepare(plan(), '3.%d' % (len(steps) + 1))
                step.record.faults.append('finished during the outage')
                self.submit(step)
                op = self.wait_done(step, delivered=False)
                self.assertEqual('succeeded', op['state'], op)
                timeline.mark_utc('%s finished (finished_at)'
                                  % step.record.label, op['finished_at'])
                # The merged file goes, as Cinder removes it, before the
                # next step is planned on the chain.
                step.record.data = self.check_volume(cv, step.expected)
                cv.applied(step)
                steps.append(step)
        # Half-way: every report pending, retried, visible through GET;
        # Cinder's DB untouched.
        time.sleep(max(0.0, stopped + OUTAGE / 2 - time.time()))
        pending, idle = [], []
        for step in steps:
            op = self.rows(step)[-1]
            report = op['status_report']
            pending.append('%s %s after %s attempts' % (
                step.record.label, report['delivery'], report['attempts']))
            self.assertEqual('pending', report['delivery'], op)
            if not report['attempts']:
                idle.append(step.record.label)
            seen = self.side.snapshot(step.snapshot_id)
            self.assertNotEqual('90%', seen['progress'], seen)
        timeline.mark('mid-outage GET: %s' % ', '.join(pending))
        if idle:
            # The reporter retries inside its pool's threads (4): the
            # reports after the first four wait, unattempted, until one
            # of those is delivered or given up.
            scenario.notes.append(
                'mid-outage, %d of %d reports had not been attempted at all '
                '(%s): queued behind the 4 report threads, each busy '
                'retrying another report'
                % (len(idle), len(steps), ', '.join(idle)))
        time.sleep(max(0.0, stopped + OUTAGE - time.time()))
        self.cinder.start()
        restarted = time.time()
        timeline.mark('cinder-api answering again')
        for step in steps:
            # Already applied to the model and checked: only the report.
            self.conclude_report(step)
            delivered = faults.parse_utc(
                step.op['status_report']['reported_at'])
            self.assertGreaterEqual(delivered, restarted - 1.0)
            step.record.notes.append('delivered %.1f s after cinder-api '
                                     'was back' % (delivered - restarted))
        last = max(faults.parse_utc(s.op['status_report']['reported_at'])
                   for s in steps)
        scenario.notes.append(
            'cinder-api down %.1f s; all %d reports delivered within %.1f s '
            'of its return' % (restarted - stopped, len(steps),
                               last - restarted))
        for cv in volumes:
            cv.volume.write()
            self.assertEqual('ok', self.check_volume(cv))
        self.assertGoals(scenario)

    def conclude_report(self, step, timeout=60):
        record = step.record
        op = self.wait_done(step, timeout)
        record.state = op['state']
        record.error = op['error']
        report = op['status_report']
        record.delivery = report['delivery']
        record.attempts = report['attempts']
        self.current.timeline.mark_utc(
            '%s report %s %s after %s attempts (reported_at)'
            % (record.label, report['status'], report['delivery'],
               report['attempts']), report['reported_at'])
        seen = self.side.wait_snapshot(step.snapshot_id,
                                       record.expect_status, '90%',
                                       timeout=10)
        record.cinder = '%s/%s' % (seen['status'], seen['progress'])
        if step.kind == 'create' and op['state'] == 'succeeded':
            self.side.update_snapshot(step.snapshot_id, 'available', '100%')
        return op

    # 4. share full -------------------------------------------------------

    def test_4_share_full(self):
        scenario = self.scenario('4')
        timeline = scenario.timeline
        parent = os.path.join(self.dir, 'loop')
        os.mkdir(parent)
        share = self.useFixture(faults.LoopShare(parent, self.libvirtd,
                                                 size_mb=128))
        # Two volumes on the share, each base <- mid (24 MiB of data) <-
        # top: one on a running guest (block jobs), one on a shut-off
        # guest (qemu-img).
        layout = dict(layers=3, size_mb=48,
                      layer_writes={1: [(8 * MiB, 24 * MiB)]})
        live = self.cinder_volume(directory=share.path, **layout)
        off = self.cinder_volume(directory=share.path, running=False,
                                 **layout)
        self.start_snapdriver(os.path.join(self.dir, 'journal.sqlite'))
        scenario.notes.append('share: 128 MiB ext4 on %s, mounted in the '
                              'test\'s and libvirtd\'s mount namespaces; '
                              '%s on a running guest, %s on a shut-off one'
                              % (share.device, live.label, off.label))

        def full(step, leave):
            free = share.fill(leave)
            scenario.fault('%s: share filled, %.1f MiB left'
                           % (step.record.label, free / MiB))
            step.record.faults.append('share full (%.1f MiB free)'
                                      % (free / MiB))

        def release(step):
            free = share.release()
            timeline.mark('filler removed: %.1f MiB free' % (free / MiB))
            step.record.faults.append('retry, space freed')

        # 4a: block commit of mid (24 MiB) into base: no room in base.
        mid = live.snapshot_of(live.names[1])
        step = self.prepare(live.plan_delete(mid), '4a', 'failed')
        full(step, 4 * MiB)
        self.submit(step)
        self.conclude(step)
        state = live.domain.state()
        timeline.mark('guest state after 4a: %s' % (state,))
        self.assertEqual(1, state[0], 'the guest is not running: %s'
                         % (state,))
        # 4b: block pull of mid into top: no room in top.
        step = self.prepare(live.plan_delete(live.snapshot_of(
            live.names[0])), '4b', 'failed')
        full(step, 4 * MiB)
        self.submit(step)
        self.conclude(step)
        # 4c: the space is back; Cinder tries 4a again, live.
        step = self.prepare(live.plan_delete(mid), '4c')
        release(step)
        self.submit(step)
        self.conclude(step)
        # 4d: qemu-img commit of the shut-off guest's mid: no room.
        mid = off.snapshot_of(off.names[1])
        step = self.prepare(off.plan_delete(mid), '4d', 'failed')
        full(step, 2 * MiB)
        self.submit(step)
        self.conclude(step)
        # 4e: and again once the space is back.
        step = self.prepare(off.plan_delete(mid), '4e')
        release(step)
        self.submit(step)
        self.conclude(step)
        off.volume.fixture.start()
        timeline.mark('%s guest started' % off.label)
        for cv in (live, off):
            cv.volume.write()
            self.assertEqual('ok', self.check_volume(cv))
        failed = [op for op in scenario.ops if op.expect_state == 'failed']
        for op in failed:
            self.assertTrue(op.error, op.row())
        scenario.notes.append('errors (does it name the cause, "No space '
                              'left on device"?): ' + ' | '.join(
                                  '%s [%s]: %s' % (
                                      op.label,
                                      'yes' if 'No space left' in op.error
                                      else 'NO', op.error)
                                  for op in failed))
        self.assertGoals(scenario)

    # 5. guest destroyed mid-merge ----------------------------------------

    def test_5_guest_destroyed_mid_merge(self):
        scenario = self.scenario('5')
        timeline = scenario.timeline
        # Big enough that the test can catch each job and slow it down
        # before it ends: 48 MiB was pulled in a few milliseconds once.
        layer = {1: [(8 * MiB, 256 * MiB)]}
        a = self.cinder_volume(layers=3, size_mb=320, layer_writes=layer)
        b = self.cinder_volume(layers=3, size_mb=320, layer_writes=layer)
        c = self.cinder_volume(layers=3, size_mb=320, layer_writes=layer)
        # Slowed from their start: a job the test slowed down once it saw
        # it could end first on a loaded machine.
        self.start_snapdriver(os.path.join(self.dir, 'journal.sqlite'),
                              merge_bandwidth=4)
        scenario.notes.append('Each job runs at 4 MiB/s ([libvirt] '
                              'merge_bandwidth) so that the guest dies '
                              'mid-merge.')

        def destroy_mid_job(cv, step, undefine=False):
            self.submit(step)
            self.wait_job(cv, running=True)
            time.sleep(0.5)
            info = self.job(cv)
            self.assertTrue(info and info['cur'] < info['end'], info)
            xml = cv.domain.XMLDesc(2)     # VIR_DOMAIN_XML_INACTIVE
            if undefine:
                cv.domain.undefine()
            cv.domain.destroy()
            what = 'destroyed%s at %d of %d bytes' % (
                ' and undefined' if undefine else '', info['cur'],
                info['end'])
            scenario.fault('%s: guest %s' % (step.record.label, what))
            step.record.faults.append('guest %s' % what)
            return xml

        # 5a: commit of mid into base; then again, offline.
        step = self.prepare(a.plan_delete(a.snapshot_of(a.names[1])), '5a',
                            'failed')
        destroy_mid_job(a, step)
        self.conclude(step)
        retry = self.prepare(a.plan_delete(step.snapshot_id), '5a-retry')
        retry.record.faults.append('retry of 5a, guest shut off')
        self.submit(retry)
        self.conclude(retry)
        # 5b: pull of mid into top; then again, offline.
        step = self.prepare(b.plan_delete(b.snapshot_of(b.names[0])), '5b',
                            'failed')
        destroy_mid_job(b, step)
        self.conclude(step)
        retry = self.prepare(b.plan_delete(step.snapshot_id), '5b-retry')
        retry.record.faults.append('retry of 5b, guest shut off')
        self.submit(retry)
        self.conclude(retry)
        # 5c: the guest vanishes altogether (a transient guest destroyed).
        step = self.prepare(c.plan_delete(c.snapshot_of(c.names[1])), '5c',
                            'failed')
        xml = destroy_mid_job(c, step, undefine=True)
        self.conclude(step, check_data=False)
        # No domain to ask: the headers and the data, from the files.
        step.record.data = self.check_files(c)
        # Defined again, for the fixture's cleanup.
        c.volume.fixture.domain = c.volume.fixture.conn.defineXML(xml)
        scenario.notes.append(
            'errors (do they say that the guest stopped?): ' + ' | '.join(
                '%s [%s]: %s' % (op.label, 'yes' if re.search(
                    r'went away|stopped|shut|not running', op.error)
                    else 'NO', op.error)
                for op in scenario.ops if op.error))
        # The guests come back and see their data.
        for cv in (a, b, c):
            cv.volume.fixture.start()
            timeline.mark('%s guest started again' % cv.label)
            cv.volume.write()
            self.assertEqual('ok', self.check_volume(cv))
        self.assertGoals(scenario)

    def check_files(self, cv):
        """The data check from the image files alone (no domain)."""
        volume = cv.volume
        active = volume.path(volume.names[0])
        try:
            chain = guest.assert_relative_backing(active)
            names = [os.path.basename(i['filename']) for i in chain]
            if names != volume.names:
                raise AssertionError('the headers show %s, expected %s'
                                     % (names, volume.names))
            volume.model.assert_matches(active)
        except Exception as e:
            return 'MISMATCH: %s' % _short(e, 300)
        return 'ok'

    # The table -----------------------------------------------------------

    def test_9_summary(self):
        cls = type(self)
        if not cls.scenarios:
            self.skipTest('no scenario ran')
        text = cls.summary_text()
        path = faults.write_summary(text)
        table = faults.summary_table(cls.scenarios, SCENARIOS)
        faults.say('\nFAULT SUITE SUMMARY (seed %s; details in %s)\n%s'
                   % (cls.seed, path, table))
        self.addDetail('summary', content.text_content(table))
        self.addDetail('summary.md', content.text_content(text))
        lost = sum(s.lost for s in cls.scenarios.values())
        mismatches = sum(s.mismatches for s in cls.scenarios.values())
        self.assertEqual((0, 0), (lost, mismatches),
                         'reports lost, data mismatches')
        incomplete = [k for k, _ in SCENARIOS if k in cls.scenarios
                      and not cls.scenarios[k].completed]
        self.assertEqual([], incomplete, 'scenarios that did not complete')
