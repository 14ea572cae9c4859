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

"""snapdriver killed while a block job runs, on a real guest (issue 4).

A volume's chain is base <- big <- top (active), where ``big`` holds 1 GiB
of data (under TCG a block commit or pull of it takes about 2 s). A delete
is sent over HTTP to snapdriver-api running on a journal file; once
``blockJobInfo`` shows the job running, the snapdriver process is killed
with SIGKILL (libvirt keeps the job going), and snapdriver is started again
on the same journal. Its recovery must settle the operation from the disk:
wait for a job that still runs, accept the chain a finished job left, and
run the operation again if the job was cancelled meanwhile. Then the
operation is reported (the ``log`` reporter: GET shows ``delivered``), the
chain is the expected one, the data is intact and the headers relative.
One more test stops snapdriver with SIGTERM during a job: it must exit at
once, not wait for the merge, and the next start settles the operation.

To keep "the job still runs when snapdriver is back" certain rather than a
race against a 2 s job, the tests that need it slow the job down from the
test's own libvirt connection (``blockJobSetSpeed``) before the kill and
give it its speed back once the restarted snapdriver is seen waiting; the
job itself, its start and its end are libvirt's. The variant where the job
ends while snapdriver is down runs at full speed.

Each test attaches its timeline (seconds since the DELETE was sent) as the
``timeline`` detail and prints it to stderr as ``TIMELINE test=...``.
"""

import datetime
import os
import signal
import sys
import time

from testtools import content

from snapdriver.tests.functional import guest
from snapdriver.tests.functional import server
from snapdriver.tests.functional import test_libvirt_api as api_tests

MiB = guest.MiB
LAYER_BYTES = 1024 * MiB
LAYER_OFFSET = 16 * MiB
JOB_TIMEOUT = 60
#: Seconds snapdriver may take to exit on SIGTERM while a job runs.
STOP_WITHIN = 5
#: MiB/s while the test holds the job back: well under 1 % of the layer in
#: the seconds a restart takes.
SLOW_BANDWIDTH = 1

#: What the restarted snapdriver logs when it finds the job and waits: the
#: moment to look at what it does meanwhile.
WAITING_LOG = 'A block job started before snapdriver restarted runs on disk'


class KillableServer(server.ApiServerFixture):
    """snapdriver-api that the test may kill with SIGKILL.

    ApiServerFixture's cleanup treats any exit but 0 as a failure; a
    process this test killed on purpose is not one.
    """

    killed = False

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.killed = True
        return self.process.returncode

    def _stop(self):
        if not self.killed:
            super()._stop()


def _parse_utc(text):
    return datetime.datetime.strptime(
        text.rstrip('Z'), '%Y-%m-%dT%H:%M:%S.%f').replace(
            tzinfo=datetime.timezone.utc).timestamp()


class TestLibvirtRestart(api_tests.LibvirtApiTestCase):

    test_timeout = 300

    def setUp(self):
        super().setUp()
        self.timeline = []
        self._t0 = self._t0_wall = None

    # Timeline

    def mark(self, event, at=None):
        now = time.monotonic() if at is None else at
        self.timeline.append((event, now - self._t0))

    def mark_wall(self, event, utc_text):
        if utc_text:
            self.timeline.append((event, _parse_utc(utc_text)
                                  - self._t0_wall))

    def report_timeline(self):
        events = sorted(self.timeline, key=lambda item: item[1])
        text = '\n'.join('%8.3f  %s' % (at, event) for event, at in events)
        self.addDetail('timeline', content.text_content(text))
        sys.stderr.write('TIMELINE test=%s %s\n' % (
            self.id().rsplit('.', 1)[-1],
            ' '.join('%s=%.3f' % (event, at) for event, at in events)))
        sys.stderr.flush()

    # The guest's block job, seen from the test's own connection

    def job(self, volume):
        return volume.domain.blockJobInfo(volume.target, 0)

    def wait_job(self, volume, running, timeout=JOB_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            info = self.job(volume)
            if bool(info) == running:
                return info
            if time.monotonic() > deadline:
                self.fail('block job on %s still %s after %ss: %s' % (
                    volume.target, 'absent' if running else 'running',
                    timeout, info))
            time.sleep(0.005)

    def assert_job_running(self, volume, what):
        info = self.job(volume)
        self.assertTrue(info and info['cur'] < info['end'],
                        'no block job running %s: %s' % (what, info))
        return info

    def wait_log(self, fixture, text, timeout=15):
        deadline = time.monotonic() + timeout
        while text not in fixture.log_text():
            if time.monotonic() > deadline:
                self.fail('%r not logged within %ss' % (text, timeout))
            time.sleep(0.02)

    # The scenario

    def big_volume(self, layer_bytes=LAYER_BYTES):
        """base <- big (1 GiB of data) <- top, attached and running."""
        # attach_volume checks the whole chain; each check reads the 1 GiB
        # (about 2.5 s), so the tests check when something has happened.
        volume = self.attach(
            layers=3, size_mb=(LAYER_OFFSET + layer_bytes) // MiB + 16,
            layer_writes={1: [(LAYER_OFFSET, layer_bytes)]})
        volume.write()
        return volume

    def start_delete(self, volume, file_to_merge, merge_target_file):
        """Send the delete, wait for its block job; the job is running.

        :returns: (snapshot id, expected chain)
        """
        names = volume.names
        if merge_target_file is None:
            expected = [names[0]] + names[names.index(file_to_merge):]
        else:
            expected = [n for n in names if n != file_to_merge]
        snapshot_id = api_tests.snapshot_id_of(names[1])
        self._t0, self._t0_wall = time.monotonic(), time.time()
        answer = self.send_delete(volume.volume_id, snapshot_id,
                                  file_to_merge, merge_target_file)
        self.assertEqual(204, answer.status, answer)
        self.mark('delete_accepted')
        self.wait_job(volume, running=True, timeout=10)
        self.mark('job_seen')
        return snapshot_id, expected

    def kill(self, fixture, volume, snapshot_id):
        """SIGKILL snapdriver while the job runs and the journal says the
        operation is running."""
        self.assertEqual('running', self.operation(snapshot_id)['state'])
        self.assert_job_running(volume, 'before the kill')
        self.assertEqual(-signal.SIGKILL, fixture.kill())
        self.mark('snapdriver_killed')
        info = self.assert_job_running(volume, 'after the kill')
        self.addDetail('job-after-kill', content.text_content(str(info)))

    def restart(self):
        self.mark('restart_begin')
        fixture = self.start_server(KillableServer)
        self.mark('restart_healthy')
        return fixture

    def finish(self, volume, snapshot_id, expected, step):
        """The operation ends succeeded and reported; check the volume."""
        op, _ = self.wait_operation(snapshot_id, timeout=JOB_TIMEOUT,
                                    reported=False)
        self.mark('operation_over_seen')
        op, _ = self.wait_operation(snapshot_id, timeout=JOB_TIMEOUT)
        self.mark('report_delivered_seen')
        self.mark_wall('server_started_at', op['started_at'])
        self.mark_wall('server_finished_at', op['finished_at'])
        self.mark_wall('server_reported_at', op['status_report'][
            'reported_at'])
        events = dict(self.timeline)
        self.server_started = events.get('server_started_at')
        self.server_finished = events.get('server_finished_at')
        self.report_timeline()
        self.assertEqual('succeeded', op['state'], op)
        self.assertEqual(expected, op['chain'])
        self.assertEqual('deleting', op['status_report']['status'])
        self.assertEqual('delivered', op['status_report']['delivery'])
        self.assertEqual(1, len(self.api('GET', '/%s' % snapshot_id)
                                .json()['operations']))
        self.record_timing(step, dict(self.timeline)['operation_over_seen'])
        # As Cinder does after the report: the merged-away image goes. A
        # chain that still needed it could not be read at all.
        for name in set(volume.names) - set(expected):
            os.unlink(volume.path(name))
        volume.names = expected
        volume.check()
        volume.write()
        return op

    def killed_during_job(self, kind, step):
        """Kill while the job runs; the job still runs when snapdriver is
        back, which must wait for it."""
        volume = self.big_volume()
        top, big, base = volume.names
        first = self.start_server(KillableServer)
        if kind == 'commit':
            # big into base: 1 GiB copied into the base image.
            snapshot_id, expected = self.start_delete(volume, big, base)
        else:
            # big into top, down to base: 1 GiB copied into top.
            snapshot_id, expected = self.start_delete(volume, base, None)
        volume.domain.blockJobSetSpeed(volume.target, SLOW_BANDWIDTH, 0)
        self.mark('job_slowed')
        self.kill(first, volume, snapshot_id)

        second = self.restart()
        self.wait_log(second, WAITING_LOG)
        self.mark('recovery_waiting_logged')
        # Waiting means waiting: nothing is decided while the job runs.
        time.sleep(0.5)
        self.assert_job_running(volume, 'while recovery waits')
        op = self.operation(snapshot_id)
        self.assertEqual('running', op['state'], op)

        volume.domain.blockJobSetSpeed(volume.target, 0, 0)
        self.mark('job_speed_restored')
        self.wait_job(volume, running=False)
        job_end = time.monotonic()
        self.mark('job_end_seen', job_end)
        self.finish(volume, snapshot_id, expected, step)
        events = dict(self.timeline)
        # Not run again: the operation still started before the kill ...
        self.assertLess(self.server_started, events['snapdriver_killed'])
        # ... and was decided once the job had ended: not while the test
        # held it back, and not before it was seen gone (50 ms of slack
        # between the readings of two clocks).
        self.assertGreater(self.server_finished,
                           events['job_speed_restored'])
        self.assertGreaterEqual(self.server_finished,
                                events['job_end_seen'] - 0.05)

    def test_commit_killed_during_job(self):
        self.killed_during_job('commit', 'restart_commit_waited')

    def test_pull_killed_during_job(self):
        self.killed_during_job('pull', 'restart_pull_waited')

    def test_commit_job_finished_while_down(self):
        """The job runs at full speed and ends while snapdriver is down."""
        volume = self.big_volume()
        first = self.start_server(KillableServer)
        snapshot_id, expected = self.start_delete(
            volume, volume.names[1], volume.names[2])
        self.kill(first, volume, snapshot_id)
        self.wait_job(volume, running=False)
        self.mark('job_end_seen')
        events = dict(self.timeline)
        # Under TCG, unthrottled, as libvirt ran it.
        self.record_timing('block_commit_1GiB_job',
                           events['job_end_seen'] - events['job_seen'])
        self.assertEqual([volume.path(n) for n in expected],
                         volume.xml_chain())
        self.restart()
        self.finish(volume, snapshot_id, expected,
                    'restart_commit_finished_while_down')
        events = dict(self.timeline)
        # Settled by the restarted process, from the chain: not run again.
        self.assertLess(self.server_started, events['snapdriver_killed'])
        self.assertGreater(self.server_finished, events['restart_begin'])

    def test_pull_job_cancelled_while_down(self):
        """The job is cancelled while snapdriver is down: the chain is the
        one before, and recovery runs the operation again."""
        volume = self.big_volume()
        before = list(volume.names)
        first = self.start_server(KillableServer)
        snapshot_id, expected = self.start_delete(volume, volume.names[2],
                                                  None)
        volume.domain.blockJobSetSpeed(volume.target, SLOW_BANDWIDTH, 0)
        self.kill(first, volume, snapshot_id)
        volume.domain.blockJobAbort(volume.target, 0)
        self.wait_job(volume, running=False)
        self.mark('job_cancelled')
        volume.check(before)
        self.restart()
        self.finish(volume, snapshot_id, expected,
                    'restart_pull_rerun_after_cancel')
        # Run again by the restarted process.
        self.assertGreater(self.server_started,
                           dict(self.timeline)['restart_begin'])

    def test_sigterm_during_job_does_not_wait_for_it(self):
        """SIGTERM stops snapdriver at once, leaving the job to QEMU; the
        next start settles the operation (a service manager would kill a
        process that waited for an hours-long merge)."""
        volume = self.big_volume(layer_bytes=64 * MiB)
        # Slow from its start: 64 MiB at full speed is done before the test
        # could slow it down.
        first = self.start_server(KillableServer,
                                  merge_bandwidth=SLOW_BANDWIDTH)
        snapshot_id, expected = self.start_delete(
            volume, volume.names[1], volume.names[2])
        self.assertEqual('running', self.operation(snapshot_id)['state'])
        first.process.send_signal(signal.SIGTERM)
        self.assertEqual(0, first.process.wait(STOP_WITHIN))
        self.mark('snapdriver_stopped')
        self.assert_job_running(volume, 'after SIGTERM')
        second = self.restart()
        self.wait_log(second, WAITING_LOG)
        volume.domain.blockJobSetSpeed(volume.target, 0, 0)
        self.mark('job_speed_restored')
        self.finish(volume, snapshot_id, expected, 'restart_after_sigterm')
        self.assertLess(self.server_started, dict(self.timeline)[
            'snapdriver_stopped'])
