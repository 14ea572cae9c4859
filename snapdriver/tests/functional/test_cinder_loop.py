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

"""The Cinder loop: Cinder's own code drives snapdriver, and Cinder's
database is the judge.

A real ``cinder-api`` (noauth, SQLite) receives snapdriver's status
reports; a volume and its snapshots are seeded in its database; Cinder's
compute client (``cinder.compute.nova.API``) and its remotefs driver's
``_create_snapshot_online`` / ``_nova_assisted_vol_snap_delete`` send the
requests to snapdriver (fake driver) and wait as they do in production. A
test passes only when Cinder's database shows the status Cinder waits for
(progress ``90%``) and snapdriver's GET shows the report delivered.

Two ways of reaching Cinder are covered, one class each: the caller's token
(no ``[cinder] auth_type``) and snapdriver's own service credentials
(``auth_type = admin_token``). The fault tests take cinder-api away while
an operation finishes (for 30 s), and kill snapdriver while a report is
undelivered; the timelines go into the test details.

Needs ``$SNAPDRIVER_TEST_CINDER_VENV`` (tools/setup-cinder-venv.sh);
skipped without it.
"""

import datetime
import os
import re
import signal
import time
import uuid

import fixtures
from testtools import content

from snapdriver.tests import base
from snapdriver.tests.functional import cinder_env
from snapdriver.tests.functional import server

RESOURCE = '/v2.1/os-assisted-volume-snapshots'
# The directory a remotefs driver mounts the share on; only names matter.
SHARE = '/var/lib/cinder/mnt/0f8b3c2a9d4e4b1c8a7f6e5d4c3b2a19'
# The fault test's outage, as the issue asks.
OUTAGE = 30.0


def _uuid():
    return str(uuid.uuid4())


class Volume:
    """A volume as a remotefs driver keeps it: ``volume-<id>`` and one
    overlay ``volume-<id>.<snapshot id>`` per snapshot."""

    def __init__(self, snapshots=2):
        self.id = _uuid()
        self.instance = _uuid()
        self.snapshots = [_uuid() for _ in range(snapshots)]

    @property
    def base(self):
        return 'volume-%s' % self.id

    def file(self, snapshot_id):
        return '%s.%s' % (self.base, snapshot_id)

    def path(self, name):
        return os.path.join(SHARE, name)

    def inventory(self, chain, files=None, fail=()):
        """The fake driver's inventory: the guest with this volume."""
        return {'guests': [{
            'name': 'instance-%s' % self.instance[:8],
            'state': 'running',
            'disks': [
                {'target': 'vda', 'serial': None},
                {'target': 'vdb', 'serial': self.id, 'directory': SHARE,
                 'chain': list(chain), 'files': files or {},
                 'fail': list(fail)}]}]}

    def overlay(self, snapshot_id, backing):
        """``files`` entry for the overlay Cinder creates for a snapshot."""
        return {self.file(snapshot_id): {'format': 'qcow2',
                                         'backing': backing}}


class Timeline:
    """Moments of a fault test, shown relative to the first one."""

    def __init__(self):
        self.events = []

    def mark(self, what, at=None):
        self.events.append((what, time.time() if at is None else at))

    def at(self, what):
        return dict(self.events)[what]

    def text(self):
        if not self.events:
            return '(nothing happened)\n'
        start = min(moment for _, moment in self.events)
        lines = ['%+8.2f s  %s  %s' % (
            moment - start,
            datetime.datetime.fromtimestamp(
                moment, datetime.timezone.utc).strftime('%H:%M:%S.%f')[:-3],
            what) for what, moment in sorted(self.events,
                                             key=lambda e: e[1])]
        return '\n'.join(lines) + '\n'


def _epoch(iso):
    """snapdriver's ``...Z`` timestamps (UTC) as epoch seconds."""
    moment = datetime.datetime.fromisoformat(iso.rstrip('Z'))
    return moment.replace(tzinfo=datetime.timezone.utc).timestamp()


class _Snapdriver(server.ApiServerFixture):
    """ApiServerFixture that may be SIGKILLed on purpose.

    The fixture treats any exit but 0 as a failure at cleanup; a test that
    kills snapdriver to exercise recovery marks it here.
    """

    killed = False

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(server.STOP_TIMEOUT)
        self.killed = True

    def _stop(self):
        if not self.killed:
            super()._stop()


class CinderLoopTestCase(base.FunctionalTestCase):
    """Cinder and snapdriver wired to each other."""

    # Whether snapdriver reports with its own credentials ([cinder]
    # auth_type = admin_token) or with the caller's token.
    service_credentials = False
    # One cinder-api per class for the tests that do not stop it.
    _shared_cinder = None

    @classmethod
    def tearDownClass(cls):
        if cls._shared_cinder is not None:
            cls._shared_cinder.cleanUp()
            cls._shared_cinder = None
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.venv = cinder_env.cinder_venv()
        if self.venv is None:
            self.skipTest(cinder_env.SKIP_REASON)
        # Project ids must look like Cinder's ([a-f0-9-]) to route.
        self.project = _uuid()
        self.service_project = _uuid()
        # What Cinder's [nova] sends to snapdriver: an admin of the
        # snapshot's project, in snapdriver's noauth form.
        self.caller_token = 'admin:%s' % self.project
        self.service_token = 'snapdriver:%s' % self.service_project

    # Set-up helpers.

    def shared_cinder(self):
        cls = type(self)
        if cls._shared_cinder is None:
            fixture = cinder_env.CinderApiFixture(self.venv)
            fixture.setUp()
            cls._shared_cinder = fixture
        self.cinder = cls._shared_cinder
        self._attach_log_on_failure('cinder-api.log', self.cinder.log_text)
        return self.cinder

    def own_cinder(self):
        self.cinder = self.useFixture(cinder_env.CinderApiFixture(self.venv))
        self._attach_log_on_failure('cinder-api.log', self.cinder.log_text)
        return self.cinder

    def _attach_log_on_failure(self, name, read):
        # Read at once when a test fails: the files go with the cleanups,
        # before the details are written out.
        def attach(exc_info):
            self.addDetail(name, content.text_content(read()[-20000:]))
        self.addOnException(attach)

    def reporter_conf(self, max_backoff=0.5):
        conf = {'endpoint_override': self.cinder.endpoint(),
                'report_initial_backoff': 0.2,
                'report_max_backoff': max_backoff,
                'report_deadline': 300,
                'timeout': 5}
        if self.service_credentials:
            conf.update(auth_type='admin_token', token=self.service_token)
        return conf

    def start_snapdriver(self, inventory, journal=None, max_backoff=0.5,
                         name='snapdriver-api.log'):
        extra = {'DEFAULT': {'status_reporter': 'cinder'},
                 'cinder': self.reporter_conf(max_backoff)}
        if journal:
            extra['database'] = {'connection': 'sqlite:///' + journal}
        snapdriver = self.useFixture(_Snapdriver(
            driver='fake', inventory=inventory, extra_conf=extra))
        self._attach_log_on_failure(name, snapdriver.log_text)
        return snapdriver

    def cinder_side(self, snapdriver):
        side = self.useFixture(self.cinder.side(snapdriver.endpoint,
                                                self.caller_token))
        self._attach_log_on_failure('cinder-side.log', side.log_text)
        return side

    def seed(self, side, volume, snapshots):
        """The volume (in-use, attached) and snapshots, as
        ``{snapshot_id: (status, progress)}``."""
        seeded = side.seed(volume.id, self.project, 'demo',
                           volume.instance, snapshots)
        self.assertEqual({'status': 'in-use', 'attach_status': 'attached'},
                         seeded['volume'])

    # Checks.

    def operations(self, snapdriver, snapshot_id):
        answer = server.request(snapdriver.port, 'GET',
                                '%s/%s' % (RESOURCE, snapshot_id),
                                headers={'X-Auth-Token': self.caller_token})
        self.assertEqual(200, answer.status, answer)
        return answer.json()['operations']

    def wait_delivery(self, snapdriver, snapshot_id, timeout=30):
        """The last operation of the snapshot once its report left
        ``pending``."""
        deadline = time.monotonic() + timeout
        while True:
            operation = self.operations(snapdriver, snapshot_id)[-1]
            if operation['status_report']['delivery'] not in (None,
                                                              'pending'):
                return operation
            if time.monotonic() > deadline:
                self.fail("report of %s still undelivered after %ss: %r"
                          % (snapshot_id, timeout, operation))
            time.sleep(0.1)

    def assertDelivered(self, operation, status, attempts=1):
        """``attempts`` None: retried, at least as often as the last
        process's own count in the detail."""
        report = operation['status_report']
        self.assertEqual(
            {'status': status, 'progress': '90%', 'delivery': 'delivered'},
            {k: report[k] for k in ('status', 'progress', 'delivery')},
            operation)
        if attempts is None:
            last = int(re.search(r'attempt (\d+)', report['detail'])[1])
            self.assertGreaterEqual(report['attempts'], max(last, 2),
                                    operation)
        else:
            self.assertEqual(attempts, report['attempts'], operation)
        self.assertRegex(report['detail'],
                         r'^accepted by Cinder \(attempt \d+\)$')
        self.assertIsNotNone(report['reported_at'])

    def assertCinderShows(self, side, snapshot_id, status, timeout=30):
        state = side.wait_snapshot(snapshot_id, status, '90%',
                                   timeout=timeout)
        self.assertTrue(state['matched'],
                        "Cinder's DB shows %s/%s for snapshot %s, expected "
                        "%s/90%%" % (state['status'], state['progress'],
                                     snapshot_id, status))
        return state

    def assertReportedAs(self, snapshot_id, request_ids=()):
        """cinder-api logged the status callbacks of ``snapshot_id`` with
        the identity this class configures (the caller's, or snapdriver's
        own) and, when given, with one of Cinder's own request ids as
        their global request id: Cinder -> snapdriver -> Cinder is one
        trail in the logs."""
        pattern = re.compile(
            r'\[(\S+) req-[0-9a-f-]+ (\S+) (\S+) [^\]]*\] POST \S+/v3/'
            r'(?:(\S+)/)?snapshots/%s/action$' % re.escape(snapshot_id),
            re.M)
        seen = pattern.findall(self.cinder.log_text())
        self.assertTrue(seen, "cinder-api logged no status callback for %s"
                        % snapshot_id)
        if self.service_credentials:
            # admin_token cannot tell its project: no project in the URL
            # (Cinder refuses one that is not the token's).
            expected = ('snapdriver', self.service_project, '')
        else:
            expected = ('admin', self.project, self.project)
        for global_id, user, project, url_project in seen:
            self.assertEqual(expected, (user, project, url_project))
            if request_ids:
                self.assertIn(global_id, request_ids)


class _RoundTrips:
    """Create and delete through Cinder's code, success and failure.

    Mixed into one class per way of authenticating to Cinder.
    """

    def test_compute_client_create_then_delete(self):
        # cinder.compute.nova.API alone: Cinder's driver would then wait on
        # its DB; here the test does.
        self.shared_cinder()
        volume = Volume(snapshots=1)
        snap = volume.snapshots[0]
        snapdriver = self.start_snapdriver(volume.inventory(
            [volume.base], files=volume.overlay(snap, volume.base)))
        side = self.cinder_side(snapdriver)
        self.seed(side, volume, {snap: ('creating', '0%')})

        answer = side.nova_create(volume.id, {
            'type': 'qcow2', 'new_file': volume.file(snap),
            'snapshot_id': snap}, project_id=self.project)
        self.assertTrue(answer['ok'], answer)
        request_ids = [answer['result']['request_id']]
        self.assertCinderShows(side, snap, 'creating')
        operation = self.wait_delivery(snapdriver, snap)
        self.assertEqual('succeeded', operation['state'])
        self.assertEqual([volume.file(snap), volume.base],
                         operation['chain'])
        self.assertDelivered(operation, 'creating')

        # What Cinder does next: the volume manager marks it available; a
        # delete request marks it deleting. The only snapshot's file is
        # the active one with nothing below but the base: a full pull.
        side.update_snapshot(snap, 'available', '100%')
        side.update_snapshot(snap, 'deleting', '100%')
        answer = side.nova_delete(snap, {
            'type': 'qcow2', 'file_to_merge': None,
            'merge_target_file': None, 'volume_id': volume.id},
            project_id=self.project)
        self.assertTrue(answer['ok'], answer)
        request_ids.append(answer['result']['request_id'])
        self.assertCinderShows(side, snap, 'deleting')
        operations = self.operations(snapdriver, snap)
        self.assertEqual(['create', 'pull'],
                         [op['kind'] for op in operations])
        operation = self.wait_delivery(snapdriver, snap)
        self.assertEqual([volume.file(snap)], operation['chain'])
        self.assertDelivered(operation, 'deleting')
        self.assertReportedAs(snap, request_ids)

    def test_remotefs_create(self):
        self.shared_cinder()
        volume = Volume(snapshots=1)
        snap = volume.snapshots[0]
        snapdriver = self.start_snapdriver(volume.inventory(
            [volume.base], files=volume.overlay(snap, volume.base)))
        side = self.cinder_side(snapdriver)
        self.seed(side, volume, {snap: ('creating', '0%')})

        answer = side.remotefs_create(snap, volume.base,
                                      volume.path(volume.file(snap)),
                                      project_id=self.project)
        # _create_snapshot_online returns only once Cinder's DB says
        # creating + 90%: that is the test.
        self.assertTrue(answer['ok'], answer)
        self.assertEqual({'status': 'creating', 'progress': '90%'},
                         {k: answer['result']['snapshot'][k]
                          for k in ('status', 'progress')})
        self.assertEqual([{'backing_filename': volume.base,
                           'new_snap_path': volume.path(volume.file(snap))}],
                         answer['result']['overlays_created'])
        operation = self.wait_delivery(snapdriver, snap)
        self.assertEqual(('create', 'succeeded'),
                         (operation['kind'], operation['state']))
        self.assertEqual([volume.file(snap), volume.base],
                         operation['chain'])
        self.assertDelivered(operation, 'creating')
        self.assertReportedAs(snap, [answer['result']['request_id']])

    def _two_snapshots(self, fail=()):
        """volume-V <- volume-V.S1 <- volume-V.S2 (active)."""
        volume = Volume(snapshots=2)
        s1, s2 = volume.snapshots
        chain = [volume.file(s2), volume.file(s1), volume.base]
        snapdriver = self.start_snapdriver(volume.inventory(chain,
                                                            fail=fail))
        return volume, s1, s2, snapdriver

    def test_remotefs_delete_commit(self):
        # S1's file is not the active one: Cinder asks to commit it into
        # the file below and then removes it.
        self.shared_cinder()
        volume, s1, s2, snapdriver = self._two_snapshots()
        side = self.cinder_side(snapdriver)
        self.seed(side, volume, {s1: ('deleting', '100%'),
                                 s2: ('available', '100%')})
        answer = side.remotefs_delete(s1, {
            'type': 'qcow2', 'file_to_merge': volume.file(s1),
            'merge_target_file': volume.base, 'volume_id': volume.id},
            project_id=self.project)
        self.assertTrue(answer['ok'], answer)
        self.assertEqual({'status': 'deleting', 'progress': '90%'},
                         {k: answer['result']['snapshot'][k]
                          for k in ('status', 'progress')})
        operation = self.wait_delivery(snapdriver, s1)
        self.assertEqual(('commit', 'succeeded'),
                         (operation['kind'], operation['state']))
        self.assertEqual([volume.file(s2), volume.base], operation['chain'])
        self.assertDelivered(operation, 'deleting')
        self.assertReportedAs(s1, [answer['result']['request_id']])
        # No report for the other snapshot.
        self.assertNotIn('/snapshots/%s/action' % s2,
                         self.cinder.log_text())

    def test_remotefs_delete_pull(self):
        # S2's file is the active one: Cinder asks to pull the image below
        # its base (volume-V) into it, then removes the base (volume-V.S1).
        self.shared_cinder()
        volume, s1, s2, snapdriver = self._two_snapshots()
        side = self.cinder_side(snapdriver)
        self.seed(side, volume, {s1: ('available', '100%'),
                                 s2: ('deleting', '100%')})
        answer = side.remotefs_delete(s2, {
            'type': 'qcow2', 'file_to_merge': volume.base,
            'merge_target_file': None, 'volume_id': volume.id},
            project_id=self.project)
        self.assertTrue(answer['ok'], answer)
        self.assertEqual({'status': 'deleting', 'progress': '90%'},
                         {k: answer['result']['snapshot'][k]
                          for k in ('status', 'progress')})
        operation = self.wait_delivery(snapdriver, s2)
        self.assertEqual(('pull', 'succeeded'),
                         (operation['kind'], operation['state']))
        self.assertEqual([volume.file(s2), volume.base], operation['chain'])
        self.assertDelivered(operation, 'deleting')
        self.assertReportedAs(s2, [answer['result']['request_id']])

    def test_remotefs_delete_fails(self):
        # The merge fails: Cinder must learn error_deleting, and its driver
        # raises as it does for any status but deleting.
        self.shared_cinder()
        volume, s1, s2, snapdriver = self._two_snapshots(fail=['commit'])
        side = self.cinder_side(snapdriver)
        self.seed(side, volume, {s1: ('deleting', '100%'),
                                 s2: ('available', '100%')})
        answer = side.remotefs_delete(s1, {
            'type': 'qcow2', 'file_to_merge': volume.file(s1),
            'merge_target_file': volume.base, 'volume_id': volume.id},
            project_id=self.project)
        self.assertFalse(answer['ok'], answer)
        self.assertEqual(
            {'type': 'RemoteFSException', 'module': 'cinder.exception',
             'message': 'Unable to delete snapshot %s, status: '
                        'error_deleting.' % s1}, answer['error'])
        self.assertEqual({'status': 'error_deleting', 'progress': '90%'},
                         {k: answer['snapshot'][k]
                          for k in ('status', 'progress')})
        operation = self.wait_delivery(snapdriver, s1)
        self.assertEqual(('commit', 'failed'),
                         (operation['kind'], operation['state']))
        self.assertIn('told to fail commit', operation['error'])
        self.assertEqual(operation['chain_before'], operation['chain'])
        self.assertDelivered(operation, 'error_deleting')
        self.assertReportedAs(s1, [answer['request_id']])

    def test_remotefs_create_fails(self):
        self.shared_cinder()
        volume = Volume(snapshots=1)
        snap = volume.snapshots[0]
        snapdriver = self.start_snapdriver(volume.inventory(
            [volume.base], files=volume.overlay(snap, volume.base),
            fail=['create']))
        side = self.cinder_side(snapdriver)
        self.seed(side, volume, {snap: ('creating', '0%')})
        answer = side.remotefs_create(snap, volume.base,
                                      volume.path(volume.file(snap)),
                                      project_id=self.project)
        self.assertFalse(answer['ok'], answer)
        self.assertEqual(
            {'type': 'RemoteFSException', 'module': 'cinder.exception',
             'message': 'Nova returned "error" status while creating '
                        'snapshot.'}, answer['error'])
        self.assertEqual({'status': 'error', 'progress': '90%'},
                         {k: answer['snapshot'][k]
                          for k in ('status', 'progress')})
        operation = self.wait_delivery(snapdriver, snap)
        self.assertEqual(('create', 'failed'),
                         (operation['kind'], operation['state']))
        self.assertDelivered(operation, 'error')
        self.assertReportedAs(snap, [answer['request_id']])


class TestCallerToken(_RoundTrips, CinderLoopTestCase):
    """No ``[cinder] auth_type``: reports carry the caller's token."""

    service_credentials = False


class TestServiceCredentials(_RoundTrips, CinderLoopTestCase):
    """``[cinder] auth_type = admin_token``: snapdriver's own token."""

    service_credentials = True


class _Faults:
    """snapdriver killed while a report is undelivered (and Cinder away).

    Mixed into one class per way of authenticating to Cinder: with the
    caller's token, the token must survive in the journal.
    """

    def _timeline(self, name):
        timeline = Timeline()
        self.addDetail(name, content.Content(
            content.UTF8_TEXT, lambda: [timeline.text().encode('utf-8')]))
        return timeline

    def _wait_for(self, what, check, timeout):
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                self.fail("%s: not within %ss" % (what, timeout))
            time.sleep(0.1)

    def test_report_survives_snapdriver_restart(self):
        # Cinder's remotefs driver waits for the commit through it all,
        # polling its DB (which does not need cinder-api).
        timeline = self._timeline('timeline')
        cinder = self.own_cinder()
        journal = os.path.join(self.useFixture(fixtures.TempDir()).path,
                               'journal.sqlite')
        volume = Volume(snapshots=2)
        s1, s2 = volume.snapshots
        inventory = volume.inventory(
            [volume.file(s2), volume.file(s1), volume.base])
        first = self.start_snapdriver(inventory, journal=journal,
                                      name='snapdriver-api-1.log')
        side = self.cinder_side(first)
        self.seed(side, volume, {s1: ('deleting', '100%'),
                                 s2: ('available', '100%')})

        cinder.stop()
        timeline.mark('cinder-api stopped')
        waiter = side.background('remotefs_delete', {
            'snapshot_id': s1, 'project_id': self.project,
            'delete_info': {'type': 'qcow2', 'file_to_merge': volume.file(s1),
                            'merge_target_file': volume.base,
                            'volume_id': volume.id}})
        self.addCleanup(waiter.kill)
        operation = self._wait_for(
            'commit finished', lambda: self._finished(first, s1), 20)
        timeline.mark('operation accepted (snapdriver created_at)',
                      _epoch(operation['created_at']))
        timeline.mark('operation finished (snapdriver finished_at)',
                      _epoch(operation['finished_at']))
        self.assertEqual(('commit', 'succeeded', 'pending'),
                         (operation['kind'], operation['state'],
                          operation['status_report']['delivery']))
        self._wait_for('a failed report attempt logged',
                       lambda: self._retries(first, s1), 10)

        first.kill()
        timeline.mark('snapdriver SIGKILLed with the report undelivered')
        self.assertFalse(waiter.done())

        second = self.start_snapdriver(inventory, journal=journal,
                                       name='snapdriver-api-2.log')
        timeline.mark('snapdriver restarted on the same journal')
        self._wait_for('recovery taking up the report', lambda: (
            'Recovery: delivering the deleting report of snapshot %s' % s1
            in second.log_text()), 10)
        self._wait_for('the restarted snapdriver retrying',
                       lambda: self._retries(second, s1), 10)
        operation = self.operations(second, s1)[-1]
        self.assertEqual(('succeeded', 'pending'),
                         (operation['state'],
                          operation['status_report']['delivery']))
        timeline.mark('restarted snapdriver retrying (GET: pending)')

        timeline.mark('cinder-api restarting')
        cinder.start()
        timeline.mark('cinder-api answering')
        state = self.assertCinderShows(side, s1, 'deleting')
        timeline.mark("Cinder's DB shows deleting/90% (seen)",
                      state['seen_at'])
        operation = self.wait_delivery(second, s1)
        timeline.mark('report delivered (snapdriver reported_at)',
                      _epoch(operation['status_report']['reported_at']))
        self.assertDelivered(operation, 'deleting', attempts=None)
        self.assertEqual([volume.file(s2), volume.base], operation['chain'])

        answer = waiter.result(timeout=60)
        timeline.mark("Cinder's _nova_assisted_vol_snap_delete returned")
        self.assertTrue(answer['ok'], answer)
        self.assertReportedAs(s1, [answer['result']['request_id']])

    def _finished(self, snapdriver, snapshot_id):
        try:
            operations = self.operations(snapdriver, snapshot_id)
        except AssertionError:
            return None  # not accepted yet: 404
        if operations[-1]['state'] in ('succeeded', 'failed'):
            return operations[-1]
        return None

    @staticmethod
    def _retries(snapdriver, snapshot_id):
        return re.findall(r'Reporting status \S+ of snapshot %s failed '
                          r'\(attempt (\d+)\)' % re.escape(snapshot_id),
                          snapdriver.log_text())


class TestCallerTokenFaults(_Faults, CinderLoopTestCase):

    service_credentials = False


class TestServiceCredentialsFaults(_Faults, CinderLoopTestCase):
    """Also: cinder-api away for 30 s while an operation finishes."""

    service_credentials = True

    def test_report_survives_cinder_outage(self):
        timeline = self._timeline('timeline')
        cinder = self.own_cinder()
        volume = Volume(snapshots=1)
        snap = volume.snapshots[0]
        snapdriver = self.start_snapdriver(
            volume.inventory([volume.base],
                             files=volume.overlay(snap, volume.base)),
            max_backoff=2.0)
        side = self.cinder_side(snapdriver)
        self.seed(side, volume, {snap: ('creating', '0%')})

        cinder.stop()
        timeline.mark('cinder-api stopped')
        # The request Cinder's compute client sends, over plain HTTP.
        answer = server.request(
            snapdriver.port, 'POST', RESOURCE,
            body='{"snapshot": {"volume_id": "%s", "create_info": '
                 '{"type": "qcow2", "new_file": "%s", "snapshot_id": '
                 '"%s"}}}' % (volume.id, volume.file(snap), snap),
            headers={'X-Auth-Token': self.caller_token,
                     'Content-Type': 'application/json',
                     'X-OpenStack-Nova-API-Version': '2.1'})
        self.assertEqual(200, answer.status, answer)
        timeline.mark('operation accepted (POST answered)')

        operation = self._wait_for(
            'operation finished', lambda: [
                op for op in self.operations(snapdriver, snap)
                if op['state'] == 'succeeded'], 10)[0]
        timeline.mark('operation finished (snapdriver finished_at)',
                      _epoch(operation['finished_at']))
        self.assertEqual('pending', operation['status_report']['delivery'])

        # Cinder stays away long enough for several retries.
        time.sleep(max(0.0, timeline.at('cinder-api stopped') + OUTAGE / 2
                       - time.time()))
        report = self.operations(snapdriver, snap)[-1]['status_report']
        self.assertEqual('pending', report['delivery'])
        retries = self._retries(snapdriver, snap)
        self.assertGreater(len(retries), 3, snapdriver.log_text())
        # The failures show through GET while the retries go on.
        self.assertGreater(report['attempts'], 0, report)
        self.assertRegex(report['detail'], r'^attempt \d+ failed: ')
        timeline.mark('mid-outage: GET shows delivery %s, attempts %s; %d '
                      'failed attempts logged'
                      % (report['delivery'], report['attempts'],
                         len(retries)))
        self.assertEqual({'status': 'creating', 'progress': '0%'},
                         {k: side.snapshot(snap)[k]
                          for k in ('status', 'progress')})

        time.sleep(max(0.0, timeline.at('cinder-api stopped') + OUTAGE
                       - time.time()))
        timeline.mark('cinder-api restarting')
        cinder.start()
        timeline.mark('cinder-api answering')

        state = self.assertCinderShows(side, snap, 'creating')
        timeline.mark("Cinder's DB shows creating/90% (seen)",
                      state['seen_at'])
        operation = self.wait_delivery(snapdriver, snap)
        timeline.mark('report delivered (snapdriver reported_at)',
                      _epoch(operation['status_report']['reported_at']))
        attempt = int(re.search(r'attempt (\d+)',
                                operation['status_report']['detail'])[1])
        self.assertDelivered(operation, 'creating', attempts=attempt)
        self.assertGreater(attempt, len(retries))
        self.addDetail('delivery', content.text_content(
            '%s after %d attempts; %d retries logged'
            % (operation['status_report']['detail'], attempt,
               len(self._retries(snapdriver, snap)))))
        self.assertReportedAs(snap)
        # The report came after the restart, and promptly (back-off at
        # most 2 s here, plus jitter).
        delivered = timeline.at('report delivered (snapdriver reported_at)')
        self.assertGreaterEqual(delivered,
                                timeline.at('cinder-api restarting'))
        self.assertLess(delivered - timeline.at('cinder-api answering'),
                        10.0)
