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

"""Planning: names first, then the driver, the chain rules and the
driver's capabilities."""

import dataclasses

from snapdriver.drivers import fake
from snapdriver import exception
from snapdriver import objects
from snapdriver.operations import planning
from snapdriver.tests import base


class TestPlanner(base.TestCase):

    def setUp(self):
        super().setUp()
        self.driver = fake.FakeDriver()
        self.driver.name = 'fake'
        self.driver.add_guest({'name': 'g', 'disks': [
            {'target': 'vda', 'serial': 'v', 'directory': '/d',
             'chain': ['a', 'b', 'c']}]})
        self.driver.add_guest({'name': 'off', 'state': 'shutoff', 'disks': [
            {'target': 'vda', 'serial': 'voff', 'directory': '/d',
             'chain': ['a', 'b', 'c']}]})
        self.driver.add_guest({'name': 'net', 'disks': [
            {'target': 'vda', 'serial': 'vnet', 'type': 'network',
             'chain': ['a', 'b', 'c']}]})
        self.driver.add_file('v', 'new', backing='a')
        self.planner = planning.Planner(self.driver)

    def _without(self, **missing):
        caps = dataclasses.replace(self.driver.capabilities(), **missing)
        self.driver.capabilities = lambda: caps

    def test_plans(self):
        plan = self.planner.plan(objects.CreateRequest('v', 's', 'new'))
        self.assertEqual((objects.CREATE, ('new', 'a', 'b', 'c')),
                         (plan.kind, plan.expected_chain))
        plan = self.planner.plan(objects.DeleteRequest('v', 's', 'b', 'c'))
        self.assertEqual((objects.COMMIT, ('a', 'c')),
                         (plan.kind, plan.expected_chain))
        plan = self.planner.plan(objects.DeleteRequest('v', 's'))
        self.assertEqual((objects.PULL, ('a',)),
                         (plan.kind, plan.expected_chain))

    def test_file_names_are_checked_before_the_driver_is_asked(self):
        def never(*args):
            raise AssertionError('the driver was asked')
        self.driver.locate_disk = never
        for request, field in (
                (objects.CreateRequest('v', 's', '../x'), 'new_file'),
                (objects.DeleteRequest('v', 's', 'a/b', None),
                 'file_to_merge'),
                (objects.DeleteRequest('v', 's', None, '..'),
                 'merge_target_file')):
            error = self.assertRaises(exception.InvalidFileName,
                                      self.planner.plan, request)
            self.assertIn('Invalid %s' % field, str(error))

    def test_capabilities(self):
        cases = [
            ({'create': False}, objects.CreateRequest('v', 's', 'new'),
             'create snapshots'),
            ({'commit': False}, objects.DeleteRequest('v', 's', 'b', 'c'),
             'merge by block commit'),
            ({'pull': False}, objects.DeleteRequest('v', 's', 'b', None),
             'merge by block pull'),
            ({'offline_commit': False},
             objects.DeleteRequest('voff', 's', 'b', 'c'),
             'merge by commit while the guest is not running'),
            ({'offline_pull': False},
             objects.DeleteRequest('voff', 's', 'b', None),
             'merge by pull while the guest is not running'),
            ({'network_disks': False},
             objects.DeleteRequest('vnet', 's', 'b', 'c'),
             'work on network disks'),
        ]
        full = self.driver.capabilities()
        for missing, request, words in cases:
            self.driver.capabilities = lambda: full
            self.planner.plan(request)
            self._without(**missing)
            error = self.assertRaises(exception.OperationNotSupported,
                                      self.planner.plan, request)
            self.assertEqual('The fake driver cannot %s.' % words,
                             str(error))

    def test_the_driver_has_the_last_word(self):
        seen = []
        self.driver.check_plan = seen.append
        plan = self.planner.plan(objects.DeleteRequest('v', 's'))
        self.assertEqual([plan], seen)


class TestPlanCache(base.TestCase):

    def test_a_plan_holds_until_the_volume_changes(self):
        cache = planning.PlanCache()
        generation = cache.generation('v')
        cache.keep('op1', 'plan1', generation)
        cache.keep('op2', 'plan2', generation)
        self.assertEqual('plan1', cache.take('op1', 'v'))
        self.assertIsNone(cache.take('op1', 'v'))       # taken once
        cache.volume_changed('v')
        self.assertIsNone(cache.take('op2', 'v'))       # stale
        cache.keep('op3', 'plan3', cache.generation('v'))
        cache.volume_changed('other')
        self.assertEqual('plan3', cache.take('op3', 'v'))
