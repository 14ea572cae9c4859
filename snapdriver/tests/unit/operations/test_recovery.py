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

"""The journal, restart recovery and idempotent repeats."""

import datetime
import os
import threading

import fixtures
import sqlalchemy

from snapdriver import context
from snapdriver.db import migration
from snapdriver.drivers import fake
from snapdriver import exception
from snapdriver import objects
from snapdriver.operations import journal as journal_mod
from snapdriver.operations import manager as manager_mod
from snapdriver.operations import planning
from snapdriver.operations import reporter as reporter_mod
from snapdriver.tests import base
from snapdriver.tests import contract


class TestRecovery(base.TestCase):

    def setUp(self):
        super().setUp()
        # The directory goes with the journal's -wal and -shm files.
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.url = 'sqlite:///' + os.path.join(self.tmp, 'journal.sqlite')
        self.driver = fake.FakeDriver()
        self.driver.name = 'fake'
        self.driver.add_guest({'name': 'g', 'disks': [
            {'target': 'vda', 'serial': 'v', 'directory': '/d',
             'chain': ['a', 'b', 'c']}]})
        self.driver.add_file('v', 'new', backing='a')

    def _manager(self, reporter=None):
        reporter = reporter or contract.RecordingReporter()
        manager = manager_mod.OperationManager(
            self.driver, reporter, journal_mod.Journal(self.url,
                                                       migrate=True))
        self.addCleanup(manager.stop)
        return manager, reporter

    def _create(self, manager, snapshot_id='s', new_file='new'):
        return manager.accept(None, objects.CreateRequest(
            volume_id='v', snapshot_id=snapshot_id, new_file=new_file))

    def test_operations_survive_a_restart(self):
        first, _ = self._manager()
        self._create(first)
        self.assertTrue(first.wait_idle(10))
        second, _ = self._manager()
        [operation] = second.query(None, 's')
        self.assertEqual('succeeded', operation.state)
        self.assertEqual(['new', 'a', 'b', 'c'], operation.chain)
        self.assertEqual(0, second.recover())

    def test_queued_operation_runs_after_restart(self):
        first, _ = self._manager()
        first._enqueue = lambda row: None       # dies before running it
        self._create(first)
        second, reporter = self._manager()
        self.assertEqual(1, second.recover())
        self.assertTrue(second.wait_idle(10))
        self.assertEqual(['new', 'a', 'b', 'c'],
                         self.driver.locate_disk('v').names)
        self.assertEqual([('s', 'creating', '90%')], reporter.reports)

    def test_rows_written_before_requests_were_typed(self):
        # The request as the controller used to journal it.
        old = {'kind': 'create', 'volume_id': 'v', 'snapshot_id': 's',
               'new_file': 'new'}
        first, _ = self._manager()
        first.journal.add({
            'id': 'op', 'snapshot_id': 's', 'volume_id': 'v',
            'kind': 'create', 'request': old, 'guest': 'g', 'disk': 'vda',
            'state': 'queued', 'chain_before': ['a', 'b', 'c'],
            'expected_chain': ['new', 'a', 'b', 'c'], 'report_attempts': 0,
            'created_at': journal_mod.utcnow()})
        second, reporter = self._manager()
        self.assertEqual(1, second.recover())
        self.assertTrue(second.wait_idle(10))
        self.assertEqual([('s', 'creating', '90%')], reporter.reports)
        [operation] = second.query(None, 's')
        self.assertEqual(old, operation.to_dict()['request'])
        # A repeat is recognised as one.
        self.assertEqual('op', self._create(second).id)
        error = self.assertRaises(exception.DuplicateRequest, self._create,
                                  second, new_file='other')
        self.assertIn("with different parameters: {'kind': 'create', "
                      "'volume_id': 'v', 'snapshot_id': 's', "
                      "'new_file': 'new'}.", str(error))

    def test_running_operation_whose_work_was_done(self):
        first, _ = self._manager()
        first._enqueue = lambda row: None
        accepted = self._create(first)
        # The driver did its work; the process died before journalling it.
        first.journal.update(accepted.id, state=objects.RUNNING)
        self.driver.create_snapshot(
            planning.Planner(self.driver).plan(accepted.request))
        second, reporter = self._manager()
        second.recover()
        self.assertTrue(second.wait_idle(10))
        [operation] = second.query(None, 's')
        self.assertEqual('succeeded', operation.state)
        self.assertEqual([('s', 'creating', '90%')], reporter.reports)
        # Not snapshotted twice.
        self.assertEqual(['new', 'a', 'b', 'c'],
                         self.driver.locate_disk('v').names)

    def test_running_operation_that_never_touched_the_disk(self):
        first, _ = self._manager()
        first._enqueue = lambda row: None
        accepted = self._create(first)
        first.journal.update(accepted.id, state=objects.RUNNING)
        second, reporter = self._manager()
        second.recover()
        self.assertTrue(second.wait_idle(10))
        self.assertEqual(['new', 'a', 'b', 'c'],
                         self.driver.locate_disk('v').names)
        self.assertEqual([('s', 'creating', '90%')], reporter.reports)

    def _age(self, manager, operation_id, seconds):
        """Move the journalled acceptance time ``seconds`` back."""
        row = manager.journal.get(operation_id)
        manager.journal.update(operation_id, created_at=row['created_at']
                               - datetime.timedelta(seconds=seconds))

    def test_a_create_that_waited_too_long_does_not_run(self):
        # A merge holds the volume's queue; the create waits behind it
        # for longer than Cinder waits for a create.
        release = threading.Event()
        merge = self.driver.delete_snapshot

        def slow_merge(plan):
            release.wait(30)
            return merge(plan)
        self.driver.delete_snapshot = slow_merge
        manager, reporter = self._manager()
        manager.accept(None, objects.DeleteRequest(
            volume_id='v', snapshot_id='d', file_to_merge='b',
            merge_target_file='c'))
        self._create(manager)
        # 601 seconds go by (the worker has the accepted row in hand, so
        # the clock moves rather than the journalled time).
        now = journal_mod.utcnow()
        self.useFixture(fixtures.MonkeyPatch(
            'snapdriver.operations.journal.utcnow',
            lambda: now + datetime.timedelta(seconds=601)))
        release.set()
        self.assertTrue(manager.wait_idle(10))
        [operation] = manager.query(None, 's')
        self.assertEqual('failed', operation.state)
        self.assertIn('seconds later ([DEFAULT] create_timeout = 600): '
                      'Cinder has stopped waiting', operation.error)
        self.assertIsNone(operation.started_at)
        # The merge ran; the guest was not switched onto the overlay.
        self.assertEqual(['a', 'c'], self.driver.locate_disk('v').names)
        self.assertEqual([('d', 'deleting', '90%'), ('s', 'error', '90%')],
                         reporter.reports)

    def test_a_queued_create_too_old_after_a_restart_does_not_run(self):
        first, _ = self._manager()
        first._enqueue = lambda row: None       # dies before running it
        accepted = self._create(first)
        self._age(first, accepted.id, 3600)
        second, reporter = self._manager()
        self.assertEqual(1, second.recover())
        self.assertTrue(second.wait_idle(10))
        [operation] = second.query(None, 's')
        self.assertEqual('failed', operation.state)
        self.assertIn('had not started 36', operation.error)
        self.assertEqual(['a', 'b', 'c'], self.driver.locate_disk('v').names)
        self.assertEqual([('s', 'error', '90%')], reporter.reports)

    def test_a_running_create_too_old_after_a_restart_is_not_redone(self):
        # It was running, but had not changed the disk, when snapdriver
        # stopped; taken up an hour later it must not switch the guest.
        first, _ = self._manager()
        first._enqueue = lambda row: None
        accepted = self._create(first)
        first.journal.update(accepted.id, state=objects.RUNNING)
        self._age(first, accepted.id, 3600)
        second, reporter = self._manager()
        second.recover()
        self.assertTrue(second.wait_idle(10))
        self.assertEqual('failed', second.query(None, 's')[0].state)
        self.assertEqual(['a', 'b', 'c'], self.driver.locate_disk('v').names)
        self.assertEqual([('s', 'error', '90%')], reporter.reports)

    def test_a_create_within_its_time_runs_after_a_restart(self):
        first, _ = self._manager()
        first._enqueue = lambda row: None
        accepted = self._create(first)
        self._age(first, accepted.id, 590)
        second, reporter = self._manager()
        second.recover()
        self.assertTrue(second.wait_idle(10))
        self.assertEqual(['new', 'a', 'b', 'c'],
                         self.driver.locate_disk('v').names)
        self.assertEqual([('s', 'creating', '90%')], reporter.reports)

    def test_running_operation_with_a_foreign_chain_fails_clearly(self):
        first, _ = self._manager()
        first._enqueue = lambda row: None
        accepted = first.accept(None, objects.DeleteRequest(
            volume_id='v', snapshot_id='s', file_to_merge='b',
            merge_target_file='c'))
        first.journal.update(accepted.id, state=objects.RUNNING)
        self.driver._guests[0]['disks'][0]['chain'] = ['a', 'x']
        second, reporter = self._manager()
        second.recover()
        self.assertTrue(second.wait_idle(10))
        [operation] = second.query(None, 's')
        self.assertEqual('failed', operation.state)
        self.assertIn('neither the chain before', operation.error)
        self.assertEqual([('s', 'error_deleting', '90%')], reporter.reports)

    def test_undelivered_report_is_delivered_after_restart(self):
        class Down(contract.RecordingReporter):
            def report(self, *args, **kwargs):
                raise ConnectionError('cinder is down')
        first, _ = self._manager(Down())
        self._create(first)
        self.assertTrue(first.wait_idle(10))
        self.assertEqual('pending',
                         first.query(None, 's')[0].status_report.delivery)
        second, reporter = self._manager()
        self.assertEqual(1, second.recover())
        self.assertTrue(second.wait_idle(10))
        self.assertEqual([('s', 'creating', '90%')], reporter.reports)
        report = second.query(None, 's')[0].status_report
        self.assertEqual(('delivered', 2),
                         (report.delivery, report.attempts))

    def test_repeated_create_does_not_run_twice(self):
        manager, reporter = self._manager()
        first = self._create(manager)
        self.assertTrue(manager.wait_idle(10))
        again = self._create(manager)
        self.assertTrue(manager.wait_idle(10))
        self.assertEqual(first.id, again.id)
        self.assertEqual(['new', 'a', 'b', 'c'],
                         self.driver.locate_disk('v').names)
        # The outcome is reported again for the repeat.
        self.assertEqual([('s', 'creating', '90%')] * 2, reporter.reports)
        self.assertEqual(1, len(manager.query(None, 's')))

    def test_a_refused_repeat_report_keeps_the_first_delivery(self):
        class MovedOn(contract.RecordingReporter):
            def report(self, *args, **kwargs):
                super().report(*args, **kwargs)
                if len(self.reports) == 1:
                    return reporter_mod.Delivery('delivered', 'accepted')
                return reporter_mod.Delivery(
                    'given_up', 'Cinder refused it: 400 status available')
        manager, reporter = self._manager(MovedOn())
        self._create(manager)
        self.assertTrue(manager.wait_idle(10))
        self._create(manager)
        self.assertTrue(manager.wait_idle(10))
        self.assertEqual(2, len(reporter.reports))
        report = manager.query(None, 's')[0].status_report
        self.assertEqual('delivered', report.delivery)
        self.assertIn('delivered earlier', report.detail)
        self.assertIn('400 status available', report.detail)

    def test_repeat_with_other_parameters_conflicts(self):
        manager, _ = self._manager()
        self._create(manager)
        error = self.assertRaises(exception.DuplicateRequest,
                                  self._create, manager, new_file='other')
        self.assertEqual(409, error.code)

    def test_failed_operation_may_be_retried(self):
        manager, reporter = self._manager()
        self.driver._guests[0]['disks'][0]['fail'] = ['create']
        self._create(manager)
        self.assertTrue(manager.wait_idle(10))
        self.driver._guests[0]['disks'][0]['fail'] = []
        self._create(manager)
        self.assertTrue(manager.wait_idle(10))
        self.assertEqual(['failed', 'succeeded'],
                         [op.state for op in manager.query(None, 's')])
        self.assertEqual(['error', 'creating'],
                         [r[1] for r in reporter.reports])

    def test_refused_request_leaves_no_trace(self):
        manager, _ = self._manager()
        self.assertRaises(exception.InvalidOverlay, self._create, manager,
                          new_file='missing')
        self.assertRaises(exception.OperationNotFound, manager.query,
                          None, 's')

    def test_the_project_is_journalled(self):
        manager, _ = self._manager()
        accepted = manager.accept(
            context.RequestContext(user_id='nova', project_id='p1'),
            objects.CreateRequest(volume_id='v', snapshot_id='s',
                                  new_file='new'))
        self.assertEqual('p1', manager.journal.get(accepted.id)['project_id'])
        self.assertEqual('p1', manager.query(None, 's')[0].project_id)

    def test_a_journal_made_before_projects_were_kept(self):
        # The table as the first release made it (before migrations): no
        # project_id column, no progress column; db sync adopts it.
        engine = sqlalchemy.create_engine(self.url)
        old = sqlalchemy.MetaData()
        sqlalchemy.Table('operations', old, *[
            column.copy() for column in journal_mod.operations.columns
            if column.name not in ('project_id', 'progress')])
        old.create_all(engine)
        values = {'snapshot_id': 's', 'volume_id': 'v', 'kind': 'create',
                  'request': objects.CreateRequest('v', 's', 'new').to_dict(),
                  'state': 'succeeded', 'status': 'creating',
                  'delivery': 'delivered', 'report_attempts': 1,
                  'created_at': journal_mod.utcnow()}
        with engine.begin() as conn:
            conn.execute(old.tables['operations'].insert(), [
                dict(values, id='with-context', seq=1,
                     context={'user': 'nova', 'project_id': 'p-old',
                              'auth_token': None}),
                dict(values, id='without', seq=2, snapshot_id='s2',
                     context=None)])
        engine.dispose()
        # Refused as it is ...
        error = self.assertRaises(exception.JournalSchemaError,
                                  journal_mod.Journal, self.url)
        self.assertIn('made before snapdriver had migrations (its columns '
                      'are those of revision 0001)', str(error))
        self.assertIn("run 'snapdriver-manage db sync'", str(error))
        # ... adopted and brought up to date by db sync.
        manager, _ = self._manager()
        self.assertEqual('p-old', manager.query(None, 's')[0].project_id)
        self.assertIsNone(manager.query(None, 's2')[0].project_id)
        # New operations keep theirs.
        self.driver.add_file('v', 'n2', backing='a')
        manager.accept(context.RequestContext(project_id='p-new'),
                       objects.CreateRequest('v', 's3', 'n2'))
        self.assertEqual('p-new', manager.query(None, 's3')[0].project_id)
        # Opening it again changes nothing.
        self.assertEqual('p-old', journal_mod.Journal(self.url).get(
            'with-context')['project_id'])
        self.assertEqual(migration.head(), migration.version(
            manager.journal.engine))

    def test_journal_file_is_private(self):
        path = os.path.join(self.tmp, 'sub', 'j.sqlite')
        journal_mod.Journal('sqlite:///' + path, migrate=True)
        self.assertEqual(0o600, os.stat(path).st_mode & 0o777)
        self.assertEqual(0o700, os.stat(os.path.dirname(path)).st_mode
                         & 0o777)
