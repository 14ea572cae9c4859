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

"""Status report delivery: failures recorded, tokens dropped, history
trimmed."""

import threading

from snapdriver import context
from snapdriver.drivers import fake
from snapdriver import exception
from snapdriver import objects
from snapdriver.operations import delivery as delivery_mod
from snapdriver.operations import journal as journal_mod
from snapdriver.operations import manager as manager_mod
from snapdriver.operations import reporter as reporter_mod
from snapdriver.tests import base
from snapdriver.tests import contract


class TestDeliveryThroughTheManager(base.TestCase):

    def setUp(self):
        super().setUp()
        self.driver = fake.FakeDriver()
        self.driver.name = 'fake'
        for volume in ('v1', 'v2'):
            self.driver.add_guest({'name': 'g-' + volume, 'disks': [
                {'target': 'vda', 'serial': volume, 'directory': '/d',
                 'chain': ['a', 'b', 'c', 'd']}]})
        self.reporter = contract.RecordingReporter()
        self.manager = manager_mod.OperationManager(self.driver,
                                                    self.reporter)
        self.addCleanup(self.manager.stop)

    def _delete(self, caller=None):
        return self._delete_with(self.manager, caller)

    def _delete_with(self, manager, caller=None):
        return manager.accept(caller, objects.DeleteRequest(
            volume_id='v1', snapshot_id='s1', file_to_merge='b',
            merge_target_file='c'))

    def test_reporter_failure_is_recorded(self):
        def refuse(*args, **kwargs):
            raise IOError('cinder unreachable')
        self.reporter.report = refuse
        self._delete()
        self.assertTrue(self.manager.wait_idle(10))
        [operation] = self.manager.query(None, 's1')
        self.assertEqual('pending', operation.status_report.delivery)
        self.assertIn('cinder unreachable', operation.status_report.detail)

    def test_a_pending_report_is_sent_again_without_a_restart(self):
        class FailsOnce(contract.RecordingReporter):
            def report(self, *args, **kwargs):
                if not hasattr(self, 'failed'):
                    self.failed = True
                    raise RuntimeError('something unforeseen')
                return super().report(*args, **kwargs)
        reporter = FailsOnce()
        manager = manager_mod.OperationManager(
            self.driver, reporter, report_sweep_interval=0.05)
        self.addCleanup(manager.stop)
        manager.recover()       # the service's start-up; starts the sweeps
        self._delete_with(manager)
        with manager._idle:
            self.assertTrue(manager._idle.wait_for(
                lambda: reporter.reports and not manager._delivery.in_flight,
                10))
        [operation] = manager.query(None, 's1')
        self.assertEqual(('delivered', 2),
                         (operation.status_report.delivery,
                          operation.status_report.attempts))
        self.assertEqual([('s1', 'deleting', '90%')], reporter.reports)
        # Nothing is pending any more: a sweep sends nothing again.
        self.assertEqual(0, manager._delivery.sweep())

    def test_a_sweep_leaves_reports_being_sent_alone(self):
        release = threading.Event()

        class Slow(contract.RecordingReporter):
            def report(self, *args, **kwargs):
                release.wait(10)
                return super().report(*args, **kwargs)
        reporter = Slow()
        manager = manager_mod.OperationManager(self.driver, reporter)
        self.addCleanup(manager.stop)
        self._delete_with(manager)
        with manager._idle:
            self.assertTrue(manager._idle.wait_for(
                lambda: manager._delivery.in_flight, 10))
        self.assertEqual(0, manager._delivery.sweep())
        release.set()
        self.assertTrue(manager.wait_idle(10))
        self.assertEqual(1, len(reporter.reports))

    def test_credentials_are_dropped_once_reported(self):
        caller = context.RequestContext(user_id='u', project_id='p',
                                        auth_token='secret-token')
        accepted = self._delete(caller)
        self.assertTrue(self.manager.wait_idle(10))
        row = self.manager.journal.get(accepted.id)
        self.assertIsNone(row['context']['auth_token'])
        self.assertEqual('u', row['context']['user'])

    def test_no_token_is_journalled_when_reports_do_not_need_it(self):
        caller = context.RequestContext(user_id='u', project_id='p',
                                        auth_token='secret-token')
        self.reporter.uses_caller_token = False   # service credentials
        self.manager._enqueue = lambda row: None    # stays queued
        accepted = self._delete(caller)
        row = self.manager.journal.get(accepted.id)
        self.assertEqual('queued', row['state'])
        self.assertIsNone(row['context']['auth_token'])
        self.assertEqual(('u', 'p'), (row['context']['user'],
                                      row['context']['project_id']))

    def test_the_token_is_journalled_when_it_is_the_fallback(self):
        caller = context.RequestContext(user_id='u', project_id='p',
                                        auth_token='secret-token')
        self.manager._enqueue = lambda row: None
        accepted = self._delete(caller)
        row = self.manager.journal.get(accepted.id)
        self.assertEqual('secret-token', row['context']['auth_token'])

    def test_history_is_bounded(self):
        manager = manager_mod.OperationManager(self.driver, self.reporter,
                                               history=2)
        self.addCleanup(manager.stop)
        for i in range(4):
            self.driver.add_file('v2', 'n%d' % i,
                                 backing=self.driver.locate_disk('v2')
                                 .active.name)
            manager.accept(None, objects.CreateRequest(
                volume_id='v2', snapshot_id='s%d' % i, new_file='n%d' % i))
            self.assertTrue(manager.wait_idle(10))
        self.assertRaises(exception.OperationNotFound, manager.query, None,
                          's0')
        self.assertEqual(1, len(manager.query(None, 's3')))


class TestReportDelivery(base.TestCase):
    """ReportDelivery on its own, over a journal row in state final."""

    def setUp(self):
        super().setUp()
        self.journal = journal_mod.Journal('sqlite://')
        self.idle = threading.Condition()
        self.row = self.journal.add({
            'id': 'op', 'snapshot_id': 's', 'volume_id': 'v',
            'kind': objects.CREATE, 'state': objects.SUCCEEDED,
            'request': objects.CreateRequest('v', 's', 'n').to_dict(),
            'status': objects.CREATING, 'delivery': objects.PENDING,
            'report_attempts': 0, 'created_at': journal_mod.utcnow()})

    def _deliver(self, reporter):
        delivery = delivery_mod.ReportDelivery(self.journal, reporter,
                                               self.idle, workers=1)
        self.addCleanup(delivery.shutdown)
        delivery.schedule('op')
        with self.idle:
            self.assertTrue(self.idle.wait_for(
                lambda: not delivery.in_flight, 10))
        return delivery

    def test_retries_are_visible_and_counted(self):
        seen = []
        journal = self.journal

        class Flaky(contract.RecordingReporter):
            def report(self, context, snapshot_id, status, on_retry=None,
                       **kwargs):
                on_retry(1, 'Cinder answered 503')
                seen.append(journal.get('op')['delivery_detail'])
                super().report(context, snapshot_id, status)
                return reporter_mod.Delivery(objects.DELIVERED, 'ok', 2)

        self._deliver(Flaky())
        self.assertEqual(
            ['attempt 1 failed: Cinder answered 503; retrying'], seen)
        row = self.journal.get('op')
        self.assertEqual((objects.DELIVERED, 'ok', 2),
                         (row['delivery'], row['delivery_detail'],
                          row['report_attempts']))
        self.assertIsNotNone(row['reported_at'])

    def test_nothing_is_scheduled_once_closed(self):
        reporter = contract.RecordingReporter()
        delivery = delivery_mod.ReportDelivery(self.journal, reporter,
                                               self.idle)
        delivery.shutdown()
        delivery.schedule('op')
        self.assertEqual(0, delivery.in_flight)
        self.assertEqual([], reporter.reports)
        self.assertEqual(objects.PENDING, self.journal.get('op')['delivery'])
