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

"""Progress of running merges: figures, log lines, intermediate updates
and their order before the final report."""

import threading
import time
import types

import fixtures

from snapdriver.drivers import fake
from snapdriver.drivers import kit
from snapdriver import objects
from snapdriver.operations import journal as journal_mod
from snapdriver.operations import manager as manager_mod
from snapdriver.operations import progress as progress_mod
from snapdriver.operations import reporter as reporter_mod
from snapdriver.testing import contract
from snapdriver.tests import base

MiB = 1 << 20


class ScriptedDriver:
    """Answers merge_progress with whatever the test sets."""

    name = 'scripted'

    def __init__(self):
        self.job = None

    def merge_progress(self, plan):
        return self.job


def _plan():
    disk = types.SimpleNamespace(target='vdb', guest='g1')
    return types.SimpleNamespace(kind='commit', disk=disk, snapshot_id='s1')


class TestProgressMonitor(base.TestCase):

    def setUp(self):
        super().setUp()
        self.driver = ScriptedDriver()
        self.journal = journal_mod.Journal('sqlite://')
        self.row = self.journal.add({
            'id': 'op1', 'snapshot_id': 's1', 'volume_id': 'v1',
            'kind': 'commit', 'request': {'action': 'delete'},
            'state': objects.RUNNING, 'report_attempts': 0,
            'created_at': journal_mod.utcnow()})
        self.reporter = contract.RecordingReporter()
        self.logger = self.useFixture(fixtures.FakeLogger(
            name='snapdriver.operations.progress'))
        # The looks' clock: the watch starts now, at T.
        self.t = time.time()

    def monitor(self, **kwargs):
        kwargs.setdefault('interval', 3600)     # the tests take the looks
        kwargs.setdefault('report_interval', 0)
        monitor = progress_mod.ProgressMonitor(
            self.driver, self.journal, self.reporter, **kwargs)
        self.addCleanup(monitor.stop)
        return monitor

    def look(self, monitor, watch, done, now, total=100 * MiB):
        self.driver.job = kit.JobProgress(done=done, total=total,
                                          started_at=self.t)
        monitor.sample(watch, now=self.t + now)
        # The updates go on a pool: let them land.
        deadline = time.monotonic() + 5
        while not watch.lane.try_start():
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.001)
        watch.lane.done()
        return objects.MergeProgress.from_dict(
            self.journal.get('op1')['progress'])

    def test_figures_rate_and_time_left(self):
        monitor = self.monitor()
        watch = monitor.watch(self.row, _plan())
        first = self.look(monitor, watch, 10 * MiB, now=2)
        self.assertEqual((10 * MiB, 100 * MiB, 10.0, None, None),
                         (first.bytes_done, first.bytes_total,
                          first.percent, first.rate, first.eta_seconds))
        # 20 MiB more in 2 s: 10 MiB/s, 70 MiB left: 7 s.
        second = self.look(monitor, watch, 30 * MiB, now=4)
        self.assertEqual((30.0, 10 * MiB, 7.0),
                         (second.percent, second.rate, second.eta_seconds))
        self.assertEqual(self.t, watch.job_started)
        final = objects.MergeProgress.from_dict(monitor.finish(watch, True))
        # Succeeded: the job went through all of it.
        self.assertEqual((100 * MiB, 100.0, None),
                         (final.bytes_done, final.percent, final.eta_seconds))
        self.assertIsNotNone(final.job_seconds)
        self.assertIsNotNone(final.average_rate)

    def test_a_failed_merge_keeps_where_it_stopped(self):
        monitor = self.monitor()
        watch = monitor.watch(self.row, _plan())
        self.look(monitor, watch, 40 * MiB, now=2)
        self.driver.job = None      # the job is gone
        final = objects.MergeProgress.from_dict(monitor.finish(watch, False))
        self.assertEqual(40.0, final.percent)
        self.assertTrue(final.finished)

    def test_no_figures_no_progress(self):
        monitor = self.monitor()
        watch = monitor.watch(self.row, _plan())
        monitor.sample(watch)
        self.assertIsNone(self.journal.get('op1')['progress'])
        self.assertIsNone(monitor.finish(watch, True))

    def test_a_log_line_every_ten_percent(self):
        monitor = self.monitor(report_step=0)
        watch = monitor.watch(self.row, _plan())
        for now, done in enumerate((5, 12, 18, 35, 36, 99)):
            self.look(monitor, watch, done * MiB, now=1 + now)
        lines = [line for line in self.logger.output.splitlines()
                 if '% done' in line]
        # 10 %, then 30 % (20 was skipped over), then 90 %: once each.
        self.assertEqual(['10% done', '30% done', '90% done'],
                         [line[line.index('commit on disk vdb of guest g1 ')
                               + 31:line.index(' (')] for line in lines])
        self.assertIn('(35.0 MiB of 100.0 MiB, 17.0 MiB/s, about 4 s left)',
                      lines[1])

    def test_intermediate_updates_every_step_below_ninety(self):
        monitor = self.monitor(report_step=10)
        watch = monitor.watch(self.row, _plan())
        for now, done in enumerate((5, 12, 15, 23, 47, 48, 85, 89, 95, 100)):
            self.look(monitor, watch, done * MiB, now=1 + now)
        monitor.finish(watch, True)
        self.assertEqual([('s1', 'deleting', p)
                          for p in ('10%', '20%', '40%', '80%')],
                         self.reporter.progress_reports)

    def test_no_sooner_than_the_interval(self):
        monitor = self.monitor(report_step=10, report_interval=30)
        watch = monitor.watch(self.row, _plan())
        for now, done in ((10, 20), (29, 50), (31, 60), (40, 70), (62, 75),
                          (99, 79)):
            self.look(monitor, watch, done * MiB, now=now)
        # 20 % and 50 % came too soon after the start, 70 % too soon after
        # 60 %; at 75 %, 31 s after 60 %, 70 % goes; 79 % is no step more.
        self.assertEqual([('s1', 'deleting', '60%'),
                          ('s1', 'deleting', '70%')],
                         self.reporter.progress_reports)

    def test_none_with_step_zero_or_a_reporter_without_them(self):
        monitor = self.monitor(report_step=0)
        watch = monitor.watch(self.row, _plan())
        self.look(monitor, watch, 50 * MiB, now=1)
        self.assertEqual([], self.reporter.progress_reports)
        # The base class sends none (None: not sent); nothing breaks.
        self.assertIsNone(reporter_mod.LogReporter().report_progress(
            None, 's1', 'deleting', '50%'))

    def test_a_failed_update_is_dropped_not_retried(self):
        calls = []

        class Failing(contract.RecordingReporter):
            def report_progress(self, *args):
                calls.append(args[2:])
                raise RuntimeError('Cinder is away')
        self.reporter = Failing()
        monitor = self.monitor(report_step=10)
        watch = monitor.watch(self.row, _plan())
        self.look(monitor, watch, 25 * MiB, now=1)
        self.look(monitor, watch, 26 * MiB, now=2)
        self.look(monitor, watch, 31 * MiB, now=3)
        self.assertEqual([('deleting', '20%'), ('deleting', '30%')], calls)

    def test_the_final_report_waits_for_the_update_on_its_way(self):
        release = threading.Event()
        sent = []

        class Slow(contract.RecordingReporter):
            def report_progress(self, *args):
                release.wait(10)
                sent.append(('progress', args[3], time.monotonic()))
        self.reporter = Slow()
        monitor = self.monitor(report_step=10, report_timeout=5)
        watch = monitor.watch(self.row, _plan())
        self.driver.job = kit.JobProgress(done=50 * MiB, total=100 * MiB)
        monitor.sample(watch, now=self.t + 1)
        finished = []
        finisher = threading.Thread(target=lambda: finished.append(
            (monitor.finish(watch, True), time.monotonic())))
        finisher.start()
        time.sleep(0.2)
        self.assertEqual([], finished)      # held by the update on its way
        # Meanwhile the merge has ended: no new update starts.
        self.driver.job = kit.JobProgress(done=80 * MiB, total=100 * MiB)
        monitor.sample(watch, now=self.t + 2)
        release.set()
        finisher.join(10)
        self.assertEqual([('progress', '50%')],
                         [(what, p) for what, p, _ in sent])
        self.assertLess(sent[0][2], finished[0][1])

    def test_an_update_not_yet_sent_when_the_merge_ends_is_not_sent(self):
        monitor = self.monitor(report_step=10)
        watch = monitor.watch(self.row, _plan())
        self.assertTrue(watch.lane.try_start())     # claimed ...
        watch.lane.done()
        monitor.finish(watch, True)
        # ... and a claim that reaches the pool after the end sends nothing.
        monitor._report(watch, 50)
        self.assertEqual([], self.reporter.progress_reports)


class TestWithTheFakeDriver(base.TestCase):
    """The manager follows the fake driver's simulated job."""

    def setUp(self):
        super().setUp()
        self.conf.config(group='fake', operation_delay=1.0)
        self.driver = fake.FakeDriver()
        self.driver.name = 'fake'
        self.driver.add_guest({'name': 'g1', 'disks': [
            {'target': 'vdb', 'serial': 'v1', 'directory': '/d',
             'chain': ['a', 'b', 'c'], 'size': 64 * MiB}]})
        self.reporter = contract.RecordingReporter()
        self.manager = manager_mod.OperationManager(
            self.driver, self.reporter,
            progress=dict(interval=0.05, report_step=10, report_interval=0))
        self.addCleanup(self.manager.stop)

    def test_get_shows_the_job_while_it_runs_and_after(self):
        self.manager.accept(None, objects.DeleteRequest(
            volume_id='v1', snapshot_id='s1', file_to_merge='b',
            merge_target_file='c'))
        seen = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            [operation] = self.manager.query(None, 's1')
            if operation.state in objects.FINAL:
                break
            if operation.progress is not None:
                seen.append(operation.progress)
            time.sleep(0.02)
        self.assertTrue(self.manager.wait_idle(10))
        percents = [p.percent for p in seen]
        self.assertGreater(len(set(percents)), 3, percents)
        self.assertEqual(sorted(percents), percents)
        self.assertTrue(any(p.eta_seconds for p in seen), seen)
        self.assertEqual({64 * MiB}, {p.bytes_total for p in seen})
        [operation] = self.manager.query(None, 's1')
        final = operation.progress
        self.assertEqual(('succeeded', 100.0), (operation.state,
                                                final.percent))
        self.assertGreaterEqual(final.job_seconds, 1.0)
        self.assertAlmostEqual(64 * MiB / final.job_seconds,
                               final.average_rate, delta=1)
        # Intermediate updates, increasing, below 90 %, all before the
        # final report.
        progress = [p for _, _, p in self.reporter.sequence]
        self.assertEqual('90%', progress[-1])
        self.assertEqual([('s1', 'deleting', '90%')], self.reporter.reports)
        values = [int(p[:-1]) for p in progress[:-1]]
        self.assertTrue(values, progress)
        self.assertEqual(sorted(set(values)), values)
        self.assertLess(max(values), 90)

    def test_a_create_has_no_progress(self):
        self.conf.config(group='fake', assume_overlays=True,
                         operation_delay=0)
        self.manager.accept(None, objects.CreateRequest(
            volume_id='v1', snapshot_id='s2', new_file='d'))
        self.assertTrue(self.manager.wait_idle(10))
        [operation] = self.manager.query(None, 's2')
        self.assertEqual(('succeeded', None),
                         (operation.state, operation.progress))
