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

"""The operation manager: ordering, re-validation, failure reporting."""

import dataclasses
import threading
import time

from snapdriver.drivers import fake
from snapdriver import exception
from snapdriver import objects
from snapdriver.operations import manager as manager_mod
from snapdriver.tests import base
from snapdriver.tests import contract


class GatedFakeDriver(fake.FakeDriver):
    """Blocks each operation until the test opens the gate."""

    def __init__(self):
        super().__init__()
        self.gate = threading.Event()
        self.order = []

    def _apply(self, plan):
        self.gate.wait(10)
        self.order.append(plan.snapshot_id)
        return super()._apply(plan)


class TestManager(base.TestCase):

    def setUp(self):
        super().setUp()
        self.driver = GatedFakeDriver()
        self.driver.name = 'fake'
        for volume in ('v1', 'v2'):
            self.driver.add_guest({'name': 'g-' + volume, 'disks': [
                {'target': 'vda', 'serial': volume, 'directory': '/d',
                 'chain': ['a', 'b', 'c', 'd']}]})
        self.reporter = contract.RecordingReporter()
        self.manager = manager_mod.OperationManager(self.driver,
                                                    self.reporter)
        self.addCleanup(self.manager.stop)
        self.addCleanup(self.driver.gate.set)

    def _delete(self, volume, snapshot_id, top, base_name):
        return self.manager.accept(None, objects.DeleteRequest(
            volume_id=volume, snapshot_id=snapshot_id, file_to_merge=top,
            merge_target_file=base_name))

    def _wait_for_state(self, snapshot_id, state):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.manager.query(None, snapshot_id)[0].state == state:
                return
            time.sleep(0.005)
        self.fail('%s never reached %s' % (snapshot_id, state))

    def test_one_volume_runs_in_order(self):
        self.assertEqual('queued', self._delete('v1', 's1', 'b', 'c').state)
        self._delete('v1', 's2', 'c', 'd')
        self._wait_for_state('s1', 'running')
        self.assertEqual('queued', self.manager.query(None, 's2')[0].state)
        self.driver.gate.set()
        self.assertTrue(self.manager.wait_idle(10))
        self.assertEqual(['s1', 's2'], self.driver.order)
        self.assertEqual(['a', 'd'], self.driver.locate_disk('v1').names)

    def test_chain_is_validated_again_before_running(self):
        # Accepted against a chain that an earlier operation then changes.
        self._delete('v1', 's1', None, None)
        self._delete('v1', 's2', 'b', 'c')
        self.driver.gate.set()
        self.assertTrue(self.manager.wait_idle(10))
        [late] = self.manager.query(None, 's2')
        self.assertEqual('failed', late.state)
        self.assertIn("'b' is not in the backing chain", late.error)
        self.assertEqual([('s1', 'deleting', '90%'),
                          ('s2', 'error_deleting', '90%')],
                         self.reporter.reports)

    def test_a_plan_still_valid_is_not_made_again(self):
        self.driver.gate.set()
        located = []
        real = self.driver.locate_disk

        def counting(volume_id):
            located.append(volume_id)
            return real(volume_id)
        self.driver.locate_disk = counting
        self._delete('v1', 's1', 'b', 'c')
        self.assertTrue(self.manager.wait_idle(10))
        # Once when accepted; nothing ran on v1 since, so not again.
        self.assertEqual(['v1'], located)
        # Two queued together: the second is planned again once the
        # first has changed the chain.
        self.driver.gate.clear()
        self._delete('v1', 's2', None, None)
        self._delete('v1', 's3', None, None)
        self.driver.gate.set()
        self.assertTrue(self.manager.wait_idle(10))
        self.assertEqual(['v1'] * 4, located)

    def test_volumes_run_in_parallel(self):
        self._delete('v1', 's1', 'b', 'c')
        self._delete('v2', 's2', 'b', 'c')
        # Both are taken up before the gate opens: neither waits for the
        # other's volume.
        self._wait_for_state('s1', 'running')
        self._wait_for_state('s2', 'running')

    def test_driver_failure_is_reported(self):
        self.driver.gate.set()
        self.driver.add_guest({'name': 'gf', 'disks': [
            {'target': 'vda', 'serial': 'vf', 'directory': '/d',
             'chain': ['a', 'b'], 'fail': ['create']}]})
        self.driver.add_file('vf', 'new', backing='a')
        self.manager.accept(None, objects.CreateRequest(
            volume_id='vf', snapshot_id='sf', new_file='new'))
        self.assertTrue(self.manager.wait_idle(10))
        [operation] = self.manager.query(None, 'sf')
        self.assertEqual('failed', operation.state)
        self.assertIn('told to fail create', operation.error)
        self.assertEqual([('sf', 'error', '90%')], self.reporter.reports)

    def test_unexpected_driver_error_is_reported(self):
        self.driver.gate.set()

        def explode(plan):
            raise RuntimeError('boom')
        self.driver.delete_snapshot = explode
        self._delete('v1', 's1', 'b', 'c')
        self.assertTrue(self.manager.wait_idle(10))
        [operation] = self.manager.query(None, 's1')
        self.assertIn('unexpected RuntimeError in the fake driver: boom',
                      operation.error)
        self.assertEqual('error_deleting', self.reporter.reports[0][1])

    def test_capabilities_are_checked_before_anything(self):
        self.driver.gate.set()
        full = self.driver.capabilities()
        cases = [
            ({'commit': False}, ('v1', 'b', 'c'), 'merge by block commit'),
            ({'pull': False}, ('v1', 'b', None), 'merge by block pull'),
        ]
        for missing, (volume, top, base_name), words in cases:
            caps = dataclasses.replace(full, **missing)
            self.driver.capabilities = lambda caps=caps: caps
            error = self.assertRaises(exception.OperationNotSupported,
                                      self._delete, volume, 's', top,
                                      base_name)
            self.assertIn('The fake driver cannot ' + words, str(error))
        self.assertEqual([], self.reporter.reports)
        self.assertEqual(['a', 'b', 'c', 'd'],
                         self.driver.locate_disk('v1').names)

    def test_driver_can_refuse_a_plan(self):
        def refuse(plan):
            raise exception.OperationNotSupported(
                driver='fake', operation='do that to %s' % plan.disk.target)
        self.driver.check_plan = refuse
        error = self.assertRaises(exception.OperationNotSupported,
                                  self._delete, 'v1', 's', 'b', 'c')
        self.assertIn('cannot do that to vda', str(error))

    def test_stop_leaves_queued_work_in_the_journal(self):
        self._delete('v1', 's1', 'b', 'c')
        self._delete('v1', 's2', 'c', 'd')
        self._wait_for_state('s1', 'running')
        self.driver.gate.set()
        self.manager.stop()
        self.assertEqual('queued', self.manager.query(None, 's2')[0].state)
        self.assertEqual('succeeded',
                         self.manager.query(None, 's1')[0].state)

    def test_unknown_snapshot(self):
        self.assertRaises(exception.OperationNotFound, self.manager.query,
                          None, 'nope')


class TestLanes(base.TestCase):
    """Creates have workers of their own: a create never waits behind
    another volume's merge, however many merges there are."""

    def setUp(self):
        super().setUp()
        self.merging = threading.Event()
        self.release = threading.Event()
        self.addCleanup(self.release.set)
        test = self

        class SlowMerges(fake.FakeDriver):
            def _apply(self, plan):
                if plan.kind != objects.CREATE:
                    test.merging.set()
                    test.release.wait(10)
                return super()._apply(plan)

        self.driver = SlowMerges()
        self.driver.name = 'fake'
        for volume in ('v1', 'v2', 'v3'):
            self.driver.add_guest({'name': 'g-' + volume, 'disks': [
                {'target': 'vda', 'serial': volume, 'directory': '/d',
                 'chain': ['a', 'b', 'c']}]})
        self.driver.add_file('v3', 'new', backing='a')
        self.manager = manager_mod.OperationManager(
            self.driver, contract.RecordingReporter(), workers=1,
            create_workers=1)
        self.addCleanup(self.manager.stop)

    def test_create_passes_merges_of_other_volumes(self):
        for volume, snapshot_id in (('v1', 's1'), ('v2', 's2')):
            self.manager.accept(None, objects.DeleteRequest(
                volume_id=volume, snapshot_id=snapshot_id,
                file_to_merge='b', merge_target_file='c'))
        self.assertTrue(self.merging.wait(10))
        self.manager.accept(None, objects.CreateRequest(
            volume_id='v3', snapshot_id='s3', new_file='new'))
        deadline = time.monotonic() + 10
        while self.manager.query(None, 's3')[0].state != 'succeeded':
            if time.monotonic() > deadline:
                self.fail('the create waited behind the merges')
            time.sleep(0.005)
        # The only merge worker is still busy with s1; s2 waits for it.
        self.assertEqual('running', self.manager.query(None, 's1')[0].state)
        self.assertEqual('queued', self.manager.query(None, 's2')[0].state)
        self.release.set()
        self.assertTrue(self.manager.wait_idle(10))
        self.assertEqual(['succeeded'] * 2, [
            self.manager.query(None, s)[0].state for s in ('s1', 's2')])
