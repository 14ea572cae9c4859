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

"""The soak: one guest, several volumes, Cinder's load, random SIGKILLs.

One running TCG guest has a root disk and ``VOLUMES`` Cinder volumes
(``vdb``, ``vdc``, ...), each its own serial, each a three-layer qcow2
chain with data in every layer and ``BASE_DATA`` in its base. snapdriver
runs the libvirt driver against it and reports to a real cinder-api
(noauth, SQLite) in whose database the volumes and snapshots are seeded.

One client thread per volume acts as Cinder's remotefs driver does: for a
create it makes the overlay with qemu-img (relative backing name), POSTs,
and waits until Cinder's database shows the snapshot ``creating``/``90%``
(then marks it ``available``, as the volume manager does); for a delete it
marks the snapshot ``deleting``, sends the DELETE with the delete_info
Cinder derives from its ``.info`` map, waits for ``deleting``/``90%`` and
removes the merged file. A request whose connection is refused or dropped
(snapdriver killed) is sent again, with the same snapshot id, until it is
answered. The guest writes into each volume's active layer, through the
QEMU monitor, once every delete of a round is reported: such a write on
one disk while a block job runs on another disk of the guest crashes QEMU
7.2 (2 of 5 tries with a single pull), and a real guest's writes do not
go that way, so the test keeps them apart.

Every client runs the same rounds (``CinderVolume`` keeps the chain):

* round 0: delete the oldest snapshot (commit of the middle layer);
* odd rounds: create, then delete the snapshot below the new one (block
  commit of that layer into the volume's bottom image);
* even rounds: delete the newest snapshot while its base is the bottom
  image (a block pull with no base: every byte of the volume is copied
  into the active image, and Cinder removes the bottom file), then create
  (beside the other volumes' pulls); the last round is such a pull and
  nothing follows it.

Before every round's delete the clients meet at a barrier, so that the
deletes of all volumes, pulls included, are in flight on the one guest at
the same time. A killer thread SIGKILLs snapdriver-api at random moments
(``KILL_GAP``) and restarts it on the same journal at once; in the last
round it waits for a block job to show up on the guest and kills
snapdriver then, so that a restarted snapdriver has to settle a pull it
did not see end. A watchdog polls the guest's state.

When the last report is in Cinder's database, QEMU itself is SIGKILLed
(not ``virDomainDestroy``, whose SIGTERM lets QEMU flush first). Then:

* the guest was running until then (QEMU 7.2 segfaults when two block
  pulls run at once on two disks of one guest), and is running, not left
  paused, once the last report is in (a merge's flush pauses it briefly,
  and every merge is flushed before it is reported);
* every operation succeeded, ran once (one journal row) and was reported:
  Cinder's database showed its status and cinder-api accepted a callback
  for it (at least once);
* every chain is the expected one, in the qcow2 headers (and was in
  libvirt's XML after every operation), with relative backing names;
* every byte written before and during the soak reads back (qemu-io
  through the chain): after a block pull QEMU keeps the copied clusters'
  mapping in its cache until a flush, so a QEMU killed before one loses
  the pulled data.

The figures (operations, kills, seconds, the pauses snapdriver adds per
merge if its log says so) go to stderr, to a detail, and to
``.run/soak/summary.md``. The seed (``$SNAPDRIVER_FAULT_SEED``, else a new
one) is printed as ``SOAK SEED=...``; it draws the kill moments, which are
reproducible, while what snapdriver was doing at them is not.

Needs ``$SNAPDRIVER_TEST_LIBVIRT_URI`` (tools/with-libvirtd.sh) and
``$SNAPDRIVER_TEST_CINDER_VENV``; skipped without either.
"""

import http.client
import json
import os
import re
import signal
import statistics
import threading
import time
import traceback
import urllib.parse
import uuid

import fixtures
from testtools import content

from snapdriver.tests import base
from snapdriver.tests.functional import cinder_env
from snapdriver.tests.functional import faults
from snapdriver.tests.functional import guest
from snapdriver.tests.functional import server
from snapdriver.tests.functional import test_faults
from snapdriver.tests.functional import test_libvirt_contract as builder

MiB = guest.MiB

#: Volumes on the one guest, and their size.
VOLUMES = 4
SIZE_MB = 96
#: Written into each volume's base before the guest starts: what every
#: block pull with no base copies (with everything written since).
BASE_DATA = (16 * MiB, 64 * MiB)
#: The guest writes this much into each new overlay right after its
#: create (what the next commit copies), and a smaller region after each
#: delete.
CREATE_WRITE = 16 * MiB
#: Rounds after round 0: odd ones commit, even ones pull; the last pulls.
ROUNDS = 6
#: Seconds between a restart of snapdriver and its next SIGKILL, drawn
#: uniformly (a short one lands in its recovery).
KILL_GAP = (0.3, 2.5)
#: How long the killer looks for a block job in the last round.
FINAL_KILL_WINDOW = 20.0
#: No SIGKILL from this round's barrier until its pulls are all reported:
#: in one pull round at least, the four pulls surely go out together.
QUIET_ROUND = 2
#: Waits that only bound a hang (nothing here is timed).
SEND_DEADLINE = 90.0
OP_TIMEOUT = 180.0
BARRIER_TIMEOUT = 300.0
POLL = 0.1
WATCH_INTERVAL = 0.02

RUN_DIR = os.path.join(faults.REPO, '.run', 'soak')
LOG_DIR = os.path.join(RUN_DIR, 'logs')

#: libvirt's domain states and shut-off reasons, for messages.
STATES = {0: 'no state', 1: 'running', 2: 'blocked', 3: 'paused',
          4: 'shutting down', 5: 'shut off', 6: 'crashed',
          7: 'suspended (PM)'}
SHUTOFF_REASONS = {0: 'unknown', 1: 'shutdown', 2: 'destroyed',
                   3: 'crashed', 4: 'migrated', 5: 'saved', 6: 'failed',
                   7: 'from snapshot', 8: 'daemon'}
RUNNING, PAUSED, SHUTOFF = 1, 3, 5

#: snapdriver log lines about pausing or flushing the guest after a merge.
PAUSE_LINE = re.compile(r'paus|suspend|flush', re.I)
DURATION = re.compile(r'(\d+(?:\.\d+)?)\s*(ms|s)\b')
#: oslo.log's prefix: date time pid LEVEL logger [context]
LOG_PREFIX = re.compile(r'^\S+ \S+ \d+ [A-Z]+ \S+ \[[^\]]*\] ')


class Aborted(Exception):
    """Another thread saw the soak fail; this one stops quietly."""


def _state_text(state, reason):
    if state == SHUTOFF:
        return 'shut off (%s)' % SHUTOFF_REASONS.get(reason, reason)
    return '%s (reason %s)' % (STATES.get(state, state), reason)


class TestSoak(base.FunctionalTestCase):
    """The soak (one test)."""

    test_timeout = 480

    def setUp(self):
        super().setUp()
        self.uri = guest.libvirt_uri()
        if not self.uri:
            self.skipTest(guest.SKIP_REASON)
        venv = cinder_env.cinder_venv()
        if venv is None:
            self.skipTest(cinder_env.SKIP_REASON)
        self.useFixture(fixtures.Timeout(self.test_timeout, gentle=True))
        self.seed = faults.suite_seed()
        faults.say('SOAK SEED=%d (set %s to repeat the draws)'
                   % (self.seed, faults.SEED_ENV))
        self.addDetail('seed', content.text_content(str(self.seed)))
        self.cinder = self.useFixture(cinder_env.CinderApiFixture(venv))
        self.project = str(uuid.uuid4())
        self.token = 'admin:%s' % self.project
        self.service_token = 'snapdriver:%s' % uuid.uuid4()
        self.side = self.useFixture(self.cinder.side(
            'http://127.0.0.1:9/v2.1', self.token))
        self.share = self.useFixture(fixtures.TempDir()).path
        self.journal = os.path.join(
            self.useFixture(fixtures.TempDir()).path, 'journal.sqlite')
        os.makedirs(LOG_DIR, exist_ok=True)
        for name in os.listdir(LOG_DIR):
            os.unlink(os.path.join(LOG_DIR, name))

        self.scenario = faults.Scenario('soak', 'one guest, %d volumes'
                                        % VOLUMES)
        self.timeline = self.scenario.timeline
        self._servers = []
        self.sd = None
        self._side_lock = threading.Lock()
        self._lock = threading.Lock()
        self.in_flight = {}
        self.errors = []
        self.abort = threading.Event()
        self.final_round = threading.Event()
        self.clients_done = threading.Event()
        self.stop_killing = threading.Event()
        self.stop_watching = threading.Event()
        self.kills = []
        self.resent = 0
        self.attempts_lost = 0
        self.quiet = threading.Event()
        self.quiet_reported = 0
        self.rounds_started = 0
        self.current_round = None
        self.guest_death = None
        self.pauses = []
        self.paused_since = None
        self.final_kill_note = 'not tried'
        self.addCleanup(self._stop_servers)
        self.addOnException(self._attach_logs)
        self.addDetail('operations', content.Content(
            content.UTF8_TEXT,
            lambda: [self.scenario.report().encode('utf-8')]))

    # Logs ------------------------------------------------------------------

    def _server_logs(self):
        logs = []
        for number, fixture in enumerate(self._servers, 1):
            try:
                logs.append((number, fixture.log_text()))
            except OSError:
                if fixture.keep_log and os.path.exists(fixture.keep_log):
                    with open(fixture.keep_log, errors='replace') as f:
                        logs.append((number, f.read()))
        return logs

    def _attach_logs(self, exc_info):
        text = ''.join('==== snapdriver-api #%d ====\n%s\n'
                       % (number, log[-20000:])
                       for number, log in self._server_logs())
        self.addDetail('snapdriver-api.log',
                       content.text_content(text[-200000:]))
        self.addDetail('cinder-api.log', content.text_content(
            self.cinder.log_text()[-20000:]))

    # snapdriver-api --------------------------------------------------------

    def _start_snapdriver(self):
        extra = {
            'DEFAULT': {'status_reporter': 'cinder'},
            'libvirt': {'connection_uri': self.uri,
                        'block_job_poll_interval': 0.1},
            'database': {'connection': 'sqlite:///' + self.journal},
            'cinder': {'endpoint_override': self.cinder.endpoint(),
                       'report_initial_backoff': 0.2,
                       'report_max_backoff': 1.0,
                       'report_deadline': 300,
                       'timeout': 5,
                       'auth_type': 'admin_token',
                       'token': self.service_token},
        }
        fixture = faults.KillableServer(
            driver='libvirt', auth_strategy='noauth', extra_conf=extra,
            keep_log=os.path.join(LOG_DIR, 'snapdriver-%02d.log'
                                  % (len(self._servers) + 1)))
        with self._lock:
            self._servers.append(fixture)
        fixture.setUp()
        self.sd = fixture
        return fixture

    def _stop_servers(self):
        problems = []
        for fixture in reversed(self._servers):
            try:
                fixture.cleanUp()
            except Exception as e:
                problems.append(e)
        if problems:
            raise problems[0]

    def _request(self, method, path, body=None, timeout=10):
        return server.resource_request(self.sd.port, self.token, method,
                                       path, body, timeout=timeout)

    def _send_once(self, step):
        if step.kind == 'create':
            return self._request('POST', '', step.body)
        info = urllib.parse.quote(json.dumps(step.delete_info), safe='')
        return self._request('DELETE', '/%s?delete_info=%s'
                             % (step.snapshot_id, info))

    def _retrying(self, call, what, abortable=True):
        """``call()`` until it gets an HTTP answer; a refused or dropped
        connection (snapdriver killed, or not up again yet) is retried.

        :returns: (answer, the errors of the attempts before it)
        """
        failures = []
        deadline = time.monotonic() + SEND_DEADLINE
        while True:
            if abortable and self.abort.is_set():
                raise Aborted()
            try:
                return call(), failures
            except (OSError, http.client.HTTPException) as e:
                failures.append(type(e).__name__)
            if time.monotonic() > deadline:
                raise AssertionError('%s: no HTTP answer within %ss (%s)'
                                     % (what, SEND_DEADLINE,
                                        ', '.join(failures[-5:])))
            time.sleep(POLL)

    def _operations(self, snapshot_id, abortable=True):
        answer, _ = self._retrying(
            lambda: self._request('GET', '/%s' % snapshot_id),
            'GET %s' % snapshot_id, abortable)
        if answer.status == 404:
            return []
        if answer.status != 200:
            raise AssertionError('GET %s: %r' % (snapshot_id, answer))
        return answer.json()['operations']

    # Cinder's database (one cinder_side worker: one caller at a time) ------

    def _side(self, method, *args):
        with self._side_lock:
            return getattr(self.side, method)(*args)

    def _wait_cinder(self, step, status):
        """Poll Cinder's DB, as the remotefs driver does, until the
        snapshot shows ``status``/90%; fail on the error status."""
        failed = {'creating': 'error', 'deleting': 'error_deleting'}[status]
        deadline = time.monotonic() + OP_TIMEOUT
        while True:
            if self.abort.is_set():
                raise Aborted()
            seen = self._side('snapshot', step.snapshot_id)
            if seen['status'] == failed or (seen['status'] == status
                                            and seen['progress'] == '90%'):
                return seen
            if time.monotonic() > deadline:
                raise AssertionError(
                    '%s: Cinder shows %s/%s %ss after the request'
                    % (step.record.label, seen['status'], seen['progress'],
                       OP_TIMEOUT))
            time.sleep(POLL)

    # The clients -----------------------------------------------------------

    def _cinder_volumes(self):
        volume_ids = [str(uuid.uuid4()) for _ in range(VOLUMES)]
        volumes = builder.attach_volumes(
            self, self.uri, self.share, volume_ids, layers=3,
            size_mb=SIZE_MB, layer_writes={0: [BASE_DATA]})
        creates = ROUNDS - 1
        instance = str(uuid.uuid4())
        cvs = []
        for number, volume in enumerate(volumes, 1):
            cv = test_faults.CinderVolume(volume, 'V%d' % number,
                                          pool=creates)
            seeded = self._side('seed', cv.id, self.project, 'demo',
                                instance, cv.seed_snapshots())
            self.assertEqual({'status': 'in-use',
                              'attach_status': 'attached'},
                             seeded['volume'])
            cv.writes = 0
            cvs.append(cv)
        return cvs

    def _client(self, cv):
        try:
            self._schedule(cv)
        except (Aborted, threading.BrokenBarrierError):
            pass
        except BaseException as e:
            with self._lock:
                self.errors.append('%s: %s\n%s' % (
                    cv.label, e, ''.join(traceback.format_exception(e))))
            self.timeline.mark('%s FAILED: %s' % (cv.label,
                                                  test_faults._short(e)))
            self._abort()

    def _abort(self):
        self.abort.set()
        self.barrier.abort()
        self.reported.abort()

    def _schedule(self, cv):
        """The rounds of one volume. The guest writes only once every
        delete of the round is reported (``self.reported``): a write goes
        through the QEMU monitor (``qemu-io``), and that, on one disk while
        a block job runs on another disk of the guest, crashes QEMU 7.2 as
        concurrent pulls do; a real guest's writes do not go that way.
        Creates need no such care, and run beside other volumes' merges.
        """
        # Round 0: the oldest snapshot goes (commit into the base), which
        # leaves active <- base, the shape every round starts from.
        self.barrier.wait(BARRIER_TIMEOUT)
        self._op(cv, cv.plan_delete(cv.snapshot_of(cv.names[1])), 0,
                 'commit')
        self.reported.wait(BARRIER_TIMEOUT)
        self._write(cv)
        for number in range(1, ROUNDS + 1):
            if number % 2:
                self._op(cv, cv.plan_create(), number, 'create')
                self._write(cv, CREATE_WRITE)
                self.barrier.wait(BARRIER_TIMEOUT)
                self._op(cv, cv.plan_delete(cv.snapshot_of(cv.names[1])),
                         number, 'commit')
                self.reported.wait(BARRIER_TIMEOUT)
                self._write(cv)
            else:
                self.barrier.wait(BARRIER_TIMEOUT)
                step = cv.plan_delete(cv.snapshot_of(cv.names[0]))
                if step.delete_info['file_to_merge'] is not None:
                    raise AssertionError('%s round %d: not a pull with no '
                                         'base: %s' % (cv.label, number,
                                                       step.delete_info))
                self._op(cv, step, number, 'pull')
                if number == ROUNDS:
                    # Nothing after the last pull: QEMU is killed next.
                    break
                self._op(cv, cv.plan_create(), number, 'create')
                self.reported.wait(BARRIER_TIMEOUT)
                self._write(cv)
                self._write(cv, CREATE_WRITE)

    def _round_begins(self):
        """The barrier's action: every client is about to delete."""
        number = self.rounds_started
        self.rounds_started += 1
        self.current_round = number
        kind = ('commit' if number % 2 or not number else 'pull')
        self.timeline.mark('round %d: the %d deletes (%ss) go out together'
                           % (number, VOLUMES, kind))
        if number == QUIET_ROUND:
            self.quiet.set()
            self.timeline.mark('no SIGKILL until the round %d pulls are '
                               'reported' % number)
        if number == ROUNDS:
            self.final_round.set()

    def _round_ends(self):
        """The second barrier's action: every delete of the round (and
        the creates beside them) is reported; the guest may write."""
        self.timeline.mark('round %d: every delete reported; the guest '
                           'writes' % self.current_round)

    def _op(self, cv, step, number, kind):
        if step.kind != kind:
            raise AssertionError('%s round %d: planned a %s, wanted a %s'
                                 % (cv.label, number, step.kind, kind))
        create = kind == 'create'
        status = 'creating' if create else 'deleting'
        label = '%s.%d%s' % (cv.label, number, 'c' if create else 'd')
        if not create:
            self._side('update_snapshot', step.snapshot_id, 'deleting',
                       '100%')
        record = self.scenario.op(label, cv.label, step.snapshot_id, kind,
                                  'succeeded', status)
        step.record = record
        record.round = number
        with self._lock:
            self.in_flight[label] = kind
        answer, failures = self._retrying(
            lambda: self._send_once(step), '%s %s' % (label, kind))
        self.timeline.mark('%s %s %s: HTTP %d%s' % (
            label, kind, step.snapshot_id[:8], answer.status,
            ' after %d failed attempts' % len(failures) if failures
            else ''))
        if failures:
            with self._lock:
                self.resent += 1
                self.attempts_lost += len(failures)
            record.faults.append('sent %d times (%s)' % (
                len(failures) + 1, ', '.join(sorted(set(failures)))))
        if answer.status not in (200, 204):
            raise AssertionError('%s: HTTP %d: %s' % (
                label, answer.status, test_faults._short(answer.body)))
        seen = self._wait_cinder(step, status)
        record.cinder = '%s/%s' % (seen['status'], seen['progress'])
        record.seen_at = time.time()
        with self._lock:
            del self.in_flight[label]
            if number == QUIET_ROUND and kind == 'pull':
                self.quiet_reported += 1
                if self.quiet_reported == VOLUMES:
                    self.quiet.clear()
        self.timeline.mark('%s Cinder shows %s' % (label, record.cinder))
        if seen['status'] != status:
            ops = [op for op in self._operations(step.snapshot_id)
                   if step.matches(op)]
            raise AssertionError('%s (%s of snapshot %s) failed: %s' % (
                label, kind, step.snapshot_id,
                ops[-1]['error'] if ops else 'no operation in snapdriver'))
        # What Cinder does next: removes a merged file, marks a created
        # snapshot available.
        cv.applied(step)
        if create:
            self._side('update_snapshot', step.snapshot_id, 'available',
                       '100%')
        record.data = self._check_chain(cv)
        if record.data != 'ok':
            raise AssertionError('%s: %s' % (label, record.data))

    def _check_chain(self, cv):
        """'ok', or what is wrong with the chain (libvirt's view and the
        headers', relative names); the data is checked at the end."""
        volume = cv.volume
        try:
            xml = [os.path.basename(p) for p in volume.xml_chain()]
            if xml != cv.names:
                raise AssertionError('libvirt shows %s, expected %s'
                                     % (xml, cv.names))
            chain = guest.assert_relative_backing(
                volume.path(cv.names[0]))
            headers = [os.path.basename(i['filename']) for i in chain]
            if headers != cv.names:
                raise AssertionError('the headers show %s, expected %s'
                                     % (headers, cv.names))
        except Exception as e:
            return 'MISMATCH: %s' % test_faults._short(e, 300)
        return 'ok'

    def _write(self, cv, length=None):
        """The guest writes into the volume's active layer."""
        if self.abort.is_set():
            raise Aborted()
        volume = cv.volume
        if length is None:
            volume.write()
            return
        cv.writes += 1
        span = volume.model.size - length
        offset = (cv.writes * 24 * MiB) % span // MiB * MiB
        volume.write_region(offset, length)

    # The killer ------------------------------------------------------------

    def _killer(self, rng, guest_fixture, targets):
        try:
            while not self.stop_killing.is_set():
                if self.final_round.is_set():
                    self._final_kill(guest_fixture, targets)
                    self.stop_killing.wait()
                    return
                due = time.monotonic() + rng.uniform(*KILL_GAP)
                while ((time.monotonic() < due or self.quiet.is_set())
                       and not self.stop_killing.is_set()
                       and not self.final_round.is_set()):
                    time.sleep(0.01)
                if (self.stop_killing.is_set()
                        or self.final_round.is_set()):
                    continue
                self._kill_and_restart('at random')
        except BaseException as e:
            with self._lock:
                self.errors.append('killer: %s\n%s' % (
                    e, ''.join(traceback.format_exception(e))))
            self._abort()

    def _kill_and_restart(self, why):
        with self._lock:
            flying = sorted(self.in_flight.items())
        self.sd.kill()
        at = time.time()
        self.kills.append((why, flying))
        self.scenario.fault('SIGKILL #%d of snapdriver (%s); in flight: %s'
                            % (len(self.kills), why, ', '.join(
                                '%s %s' % item for item in flying)
                                or 'nothing'), at=at)
        for label, _kind in flying:
            for record in self.scenario.ops:
                if record.label == label:
                    record.faults.append('SIGKILL #%d' % len(self.kills))
        self._start_snapdriver()
        self.timeline.mark('snapdriver restarted on the journal')

    def _final_kill(self, guest_fixture, targets):
        """In the last round (pulls): SIGKILL snapdriver as soon as a block
        job runs on the guest."""
        deadline = time.monotonic() + FINAL_KILL_WINDOW
        while time.monotonic() < deadline and not self.abort.is_set():
            if self.clients_done.is_set():
                break
            for target in targets:
                try:
                    info = guest_fixture.domain.blockJobInfo(target, 0)
                except Exception:
                    info = None
                if info:
                    self.final_kill_note = (
                        'during the block job on %s (%d of %d bytes)'
                        % (target, info.get('cur', 0), info.get('end', 0)))
                    self._kill_and_restart('last round, block job on %s '
                                           'at %d of %d bytes' % (
                                               target, info.get('cur', 0),
                                               info.get('end', 0)))
                    return
            time.sleep(0.005)
        self.final_kill_note = 'no block job seen in the last round'

    # The watchdog ----------------------------------------------------------

    def _watchdog(self, guest_fixture, qemu_pid):
        last = None
        paused_at = None
        while not self.stop_watching.is_set():
            try:
                state, reason = guest_fixture.domain.state()
            except Exception as e:
                state, reason = None, str(e)
            alive = faults._alive(qemu_pid)
            now = time.time()
            if (state, reason) != last:
                self.timeline.mark('guest %s' % (
                    _state_text(state, reason) if state is not None
                    else 'state unknown: %s' % reason))
                last = (state, reason)
            if state == PAUSED and paused_at is None:
                paused_at = self.paused_since = now
            elif state != PAUSED and paused_at is not None:
                self.pauses.append(now - paused_at)
                paused_at = self.paused_since = None
            if not alive or state not in (None, RUNNING, PAUSED):
                with self._lock:
                    flying = sorted(self.in_flight.items())
                self.guest_death = (
                    now, 'QEMU (pid %d) %s' % (
                        qemu_pid, 'is gone' if not alive else 'still there')
                    + ', guest %s' % (_state_text(state, reason)
                                      if state is not None else reason),
                    self.current_round, flying)
                self._abort()
                return
            time.sleep(WATCH_INTERVAL)

    # The test --------------------------------------------------------------

    def test_soak(self):
        began = time.monotonic()
        cvs = self._cinder_volumes()
        guest_fixture = cvs[0].volume.fixture.guest
        targets = [cv.volume.target for cv in cvs]
        pids = guest.qemu_pids(guest_fixture.name)
        self.assertEqual(1, len(pids), 'QEMU processes of %s: %s'
                         % (guest_fixture.name, pids))
        qemu_pid = pids[0]
        self.scenario.notes.append(
            'guest %s (QEMU pid %d): root disk vda, volumes %s on %s; each '
            'volume %d MiB, %d MiB of data in its base' % (
                guest_fixture.name, qemu_pid,
                ', '.join(cv.label for cv in cvs), ', '.join(targets),
                SIZE_MB, BASE_DATA[1] // MiB))
        self._start_snapdriver()
        self.barrier = threading.Barrier(VOLUMES, action=self._round_begins)
        self.reported = threading.Barrier(VOLUMES, action=self._round_ends)

        rng = faults.rng(self.seed, 'soak')
        soak_began = time.monotonic()
        watchdog = threading.Thread(target=self._watchdog,
                                    args=(guest_fixture, qemu_pid),
                                    daemon=True, name='soak-watchdog')
        killer = threading.Thread(target=self._killer,
                                  args=(rng, guest_fixture, targets),
                                  daemon=True, name='soak-killer')
        clients = [threading.Thread(target=self._client, args=(cv,),
                                    daemon=True, name='soak-%s' % cv.label)
                   for cv in cvs]
        for thread in [watchdog, killer] + clients:
            thread.start()
        for thread in clients:
            thread.join()
        self.clients_done.set()
        soak_seconds = time.monotonic() - soak_began
        # At once: every merge was flushed before it was reported, so no
        # pause of the driver's may still be on now.
        try:
            end_state = guest_fixture.domain.state()
        except Exception as e:
            end_state = (None, str(e))
        paused_since = self.paused_since
        last_report = max([getattr(r, 'seen_at', 0)
                           for r in self.scenario.ops] or [0])
        self.stop_watching.set()
        watchdog.join()

        # QEMU SIGKILLed right after the last reports.
        qemu_killed = None
        if self.guest_death is None and faults._alive(qemu_pid):
            os.kill(qemu_pid, signal.SIGKILL)
            qemu_killed = time.time()
            self.timeline.mark('QEMU (pid %d) SIGKILLed' % qemu_pid,
                               qemu_killed)
        self.stop_killing.set()
        killer.join()
        self._wait_gone(qemu_pid, guest_fixture)

        data = {}
        if qemu_killed is not None:
            for cv in cvs:
                data[cv.label] = self._check_files(cv)
        self._conclude_operations()
        callbacks = self._callbacks()
        figures = self._figures(cvs, soak_seconds,
                                time.monotonic() - began, qemu_killed,
                                last_report, data, callbacks, end_state)
        faults.say('\nSOAK (seed %d)\n%s' % (self.seed, figures))
        self.addDetail('figures', content.text_content(figures))
        self._write_summary(figures)

        # The verdict, the most basic failure first.
        if self.guest_death is not None:
            at, what, number, flying = self.guest_death
            pulls = sum(1 for _, kind in flying if kind == 'pull')
            self.fail('the guest did not survive the soak: %s at +%.1f s, '
                      'in round %s, with these operations in flight: %s.%s'
                      '%s' % (
                          what, at - self.timeline.events[0][0], number,
                          ', '.join('%s %s' % item for item in flying)
                          or 'none',
                          ' (QEMU 7.2 crashes when block pulls run on two '
                          'disks of one guest at once.)' if pulls > 1
                          else '',
                          ' Clients: ' + ' | '.join(
                              e.splitlines()[0] for e in self.errors)
                          if self.errors else ''))
        self.assertEqual([], self.errors, 'clients or killer failed')
        self.assertEqual(RUNNING, end_state[0],
                         'the guest is %s once every operation is reported%s'
                         % (_state_text(*end_state) if end_state[0]
                            else end_state[1], self._paused_text(
                                paused_since, qemu_killed)))
        # Round 0 and the last round: a delete each; the others: two ops.
        self.assertEqual(VOLUMES * 2 * ROUNDS, len(self.scenario.ops))
        problems = []
        for record in self.scenario.ops:
            wrong = []
            if record.state != 'succeeded' or record.rows != 1:
                wrong.append('ended %s with %s journal rows'
                             % (record.state, record.rows))
            if record.cinder != '%s/90%%' % record.expect_status:
                wrong.append("Cinder's DB showed %s" % record.cinder)
            if not record.callbacks:
                wrong.append('cinder-api accepted no callback')
            if record.data != 'ok':
                wrong.append('chain: %s' % record.data)
            if wrong:
                problems.append('%s: %s' % (record.label, ', '.join(wrong)))
        self.assertEqual([], problems, 'operations that went wrong')
        self.assertEqual({cv.label: 'ok' for cv in cvs}, data,
                         'volumes after QEMU was SIGKILLed right after the '
                         'last reports')

    def _paused_text(self, since, until):
        """Since when the guest was paused, and what happened just before
        (the timeline's previous events)."""
        if since is None:
            return ''
        start = self.timeline.events[0][0]
        before = [what for at, what in sorted(self.timeline.events)
                  if at <= since and not what.startswith('guest ')][-3:]
        return ('; paused since +%.3f s (%.1f s before QEMU was killed); '
                'just before: %s; after it, a SIGKILL of snapdriver: %s' % (
                    since - start, (until or time.time()) - since,
                    ' | '.join(before), next(
                        ('+%.3f s %s' % (at - start, what)
                         for at, what in sorted(self.timeline.events)
                         if at >= since and what.startswith('FAULT')),
                        'none')))

    def _wait_gone(self, qemu_pid, guest_fixture, timeout=30):
        deadline = time.monotonic() + timeout
        while faults._alive(qemu_pid) or guest_fixture.domain.isActive():
            if time.monotonic() > deadline:
                self.fail('QEMU (pid %d) or the domain still there %ss '
                          'after the SIGKILL' % (qemu_pid, timeout))
            time.sleep(0.05)

    def _check_files(self, cv):
        """From the image files alone (QEMU is dead): the chain in the
        headers, relative names, and every byte written."""
        volume = cv.volume
        active = volume.path(cv.names[0])
        try:
            chain = guest.assert_relative_backing(active)
            names = [os.path.basename(i['filename']) for i in chain]
            if names != cv.names:
                raise AssertionError('the headers show %s, expected %s'
                                     % (names, cv.names))
            wrong = volume.model.mismatches(active)
            if wrong:
                raise AssertionError(
                    '%d of %d regions read wrong, %.1f MiB, e.g. %s' % (
                        len(wrong), len(volume.model.regions()),
                        sum(n for _, _, n in wrong) / MiB,
                        ', '.join('0x%02x at %.2f MiB (%.2f MiB)' % (
                            p, o / MiB, n / MiB) for p, o, n in wrong[:3])))
        except Exception as e:
            return 'MISMATCH: %s' % test_faults._short(e, 400)
        return 'ok'

    def _conclude_operations(self):
        """snapdriver's side of every operation: its state, its journal
        rows, its report (snapdriver is up again after the last kill)."""
        by_snapshot = {}
        for record in self.scenario.ops:
            by_snapshot.setdefault(record.snapshot_id, []).append(record)
        for snapshot_id, records in by_snapshot.items():
            try:
                operations = self._operations(snapshot_id, abortable=False)
            except Exception as e:
                for record in records:
                    record.notes.append('GET failed: %s' % e)
                continue
            for record in records:
                mine = [op for op in operations if (
                    op['kind'] == 'create' if record.kind == 'create'
                    else op['kind'] in ('pull', 'commit'))]
                record.rows = len(mine)
                if not mine:
                    continue
                op = mine[-1]
                record.state = op['state']
                record.error = op['error']
                report = op['status_report']
                record.delivery = report['delivery']
                record.attempts = report['attempts']
                if op['kind'] != record.kind:
                    record.notes.append('snapdriver ran a %s' % op['kind'])
                    record.state = 'ran a %s' % op['kind']
                if report['delivery'] != 'delivered':
                    record.notes.append('journal: report %s (%s)' % (
                        report['delivery'], report['detail']))

    def _callbacks(self):
        """Status callbacks cinder-api accepted, per snapshot, from its
        log; each operation gets its share (at least once each)."""
        log = self.cinder.log_text()
        counts = {}
        for record in self.scenario.ops:
            if record.snapshot_id not in counts:
                counts[record.snapshot_id] = len(re.findall(
                    r'"POST /v3/snapshots/%s/action HTTP/1\.1" status: 202'
                    % record.snapshot_id, log))
        per_snapshot = {}
        for record in self.scenario.ops:
            per_snapshot.setdefault(record.snapshot_id, []).append(record)
        for snapshot_id, records in per_snapshot.items():
            for record in records:
                record.callbacks = counts[snapshot_id] >= len(records)
        return counts

    # Figures ---------------------------------------------------------------

    def _pause_figures(self):
        lines = []
        for _number, log in self._server_logs():
            for line in log.splitlines():
                match = LOG_PREFIX.match(line)
                message = line[match.end():] if match else line
                if PAUSE_LINE.search(message):
                    lines.append(message)
        if not lines:
            return 'not logged (no snapdriver log line mentions a pause, ' \
                   'suspend, resume or flush)', []
        durations = []
        for line in lines:
            for value, unit in DURATION.findall(line):
                durations.append(float(value) * (1000 if unit == 's' else 1))
        merges = sum(1 for r in self.scenario.ops if r.kind != 'create')
        text = '%d log lines for %d merges' % (len(lines), merges)
        if durations:
            text += ('; durations in them: min %.1f ms, median %.1f ms, '
                     'max %.1f ms' % (min(durations),
                                      statistics.median(durations),
                                      max(durations)))
        samples = sorted({re.sub(r'\S*\d\S*', '#', line)[:160]
                          for line in lines})[:5]
        return text, samples

    def _figures(self, cvs, soak_seconds, test_seconds, qemu_killed,
                 last_report, data, callbacks, end_state):
        kinds = {}
        for record in self.scenario.ops:
            kinds[record.kind] = kinds.get(record.kind, 0) + 1
        random_kills = sum(1 for why, _ in self.kills if why == 'at random')
        pause_text, samples = self._pause_figures()
        accepted = sum(callbacks.values())
        again = sorted(snapshot_id[:8] for snapshot_id, n in callbacks.items()
                       if n > sum(1 for r in self.scenario.ops
                                  if r.snapshot_id == snapshot_id))
        not_delivered = [r.label for r in self.scenario.ops
                         if r.delivery not in (None, 'delivered')]
        lines = [
            'guest: 1 (%s), volumes: %d (%s), rounds: 1 + %d' % (
                cvs[0].volume.fixture.guest.name, len(cvs), ', '.join(
                    '%s=%s' % (cv.label, cv.volume.target) for cv in cvs),
                ROUNDS),
            'operations: %d (%s); reached Cinder: %d' % (
                len(self.scenario.ops), ', '.join(
                    '%d %ss' % (n, k) for k, n in sorted(kinds.items())),
                sum(1 for r in self.scenario.ops if r.cinder)),
            'snapdriver SIGKILLs: %d (%d at random, %d in the last round: '
            '%s); requests sent again after a refused or dropped '
            'connection: %d (%d attempts without an answer)' % (
                len(self.kills), random_kills,
                len(self.kills) - random_kills, self.final_kill_note,
                self.resent, self.attempts_lost),
            'seconds: soak %.1f, whole test %.1f' % (soak_seconds,
                                                     test_seconds),
            'QEMU SIGKILL: %s' % (
                '%.3f s after the last report reached Cinder\'s DB'
                % (qemu_killed - last_report) if qemu_killed
                else 'not done (the guest was already gone)'),
            'pauses added per merge (snapdriver log): %s' % pause_text,
        ]
        lines.extend('    e.g. %s' % sample for sample in samples)
        lines += [
            'guest pauses seen by a %d ms poll of its state: %d ended%s%s'
            % (WATCH_INTERVAL * 1000, len(self.pauses),
               ' (longest %.0f ms)' % (max(self.pauses) * 1000)
               if self.pauses else '',
               '; one still on at the end, since +%.3f s' % (
                   self.paused_since - self.timeline.events[0][0])
               if self.paused_since else ''),
            'status callbacks accepted by cinder-api: %d for %d operations;'
            ' sent more than once (snapshots): %s' % (
                accepted, len(self.scenario.ops), ', '.join(again) or
                'none'),
            'reports the journal does not show as delivered: %s' % (
                ', '.join(not_delivered) or 'none'),
            'guest: %s' % (
                'DIED: %s' % self.guest_death[1] if self.guest_death
                else 'survived, %s when the last report was in' % (
                    _state_text(*end_state) if end_state[0] is not None
                    else end_state[1])),
            'data after the QEMU SIGKILL: %s' % (
                '; '.join('%s %s' % item for item in sorted(data.items()))
                if data else 'not checked'),
        ]
        return '\n'.join(lines) + '\n'

    def _write_summary(self, figures):
        os.makedirs(RUN_DIR, exist_ok=True)
        path = os.path.join(RUN_DIR, 'summary.md')
        with open(path, 'w') as f:
            f.write('# snapdriver soak\n\nSeed: %s (`%s`)\n\n```\n%s```\n\n%s'
                    % (self.seed, faults.SEED_ENV, figures,
                       self.scenario.report()))
