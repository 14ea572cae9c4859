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

"""The agents locator: the hosts whose agents report the volume."""

from unittest import mock

import fixtures

from snapdriver.agent import registry as registry_mod
from snapdriver import exception
from snapdriver.locators import agents as agents_locator
from snapdriver.locators import base as locator_base
from snapdriver import objects
from snapdriver import plugins
from snapdriver.tests import base


def report(host, *volumes):
    return objects.AgentReport(host=host, driver='fake', version='1',
                               volumes=volumes, sent_at=0.0)


class TestAgentsLocator(base.TestCase):

    def setUp(self):
        super().setUp()
        self.now = 100.0
        self.registry = registry_mod.AgentRegistry(
            down_time=60, clock=lambda: self.now)
        self.agents = mock.Mock()
        self.locator = agents_locator.AgentsLocator(self.registry,
                                                    self.agents)
        self.useFixture(fixtures.MockPatchObject(
            agents_locator, 'REFRESH_WAIT', 0.1))
        self.log = self.useFixture(fixtures.FakeLogger())

    def test_loaded_by_name(self):
        locator = plugins.load(locator_base.NAMESPACE, 'agents',
                               'host locator', registry=self.registry,
                               agents=self.agents)
        self.assertIsInstance(locator, agents_locator.AgentsLocator)
        self.assertEqual('agents', locator.name)

    def test_the_host_that_reports_it(self):
        self.registry.update(report('compute-1', 'vol-1'))
        self.registry.update(report('compute-2', 'vol-2'))
        self.assertEqual('compute-2', self.locator.locate(None, 'vol-2'))
        self.agents.report_now.assert_not_called()

    def test_unknown_volume_asks_for_fresh_reports_first(self):
        self.registry.update(report('compute-1'))
        self.now += 1

        def report_now(context):
            # The agents answer while the locator waits.
            self.registry.update(report('compute-1', 'vol-new'))

        self.agents.report_now.side_effect = report_now
        self.assertEqual('compute-1',
                         self.locator.locate('ctx', 'vol-new'))
        self.agents.report_now.assert_called_once_with('ctx')

    def test_attached_nowhere(self):
        self.registry.update(report('compute-1', 'vol-1'))
        self.registry.update(report('compute-2'))
        error = self.assertRaises(exception.VolumeNotInRegion,
                                  self.locator.locate, None, 'vol-9')
        self.assertEqual(400, error.code)
        self.assertEqual(
            "Volume vol-9 is not attached to any guest on the hosts whose "
            "agents report to this API tier (2 up): no disk has "
            "<serial>vol-9</serial>.", error.message)
        self.agents.report_now.assert_called_once_with(None)

    def test_no_agents_at_all(self):
        error = self.assertRaises(exception.VolumeNotInRegion,
                                  self.locator.locate, None, 'vol-9')
        self.assertIn('(0 up)', error.message)

    def test_a_down_agent_does_not_count(self):
        self.registry.update(report('compute-1', 'vol-1'))
        self.now += 60
        error = self.assertRaises(exception.VolumeNotInRegion,
                                  self.locator.locate, None, 'vol-2')
        self.assertIn('(0 up)', error.message)

    def test_last_reported_by_a_down_agent_only(self):
        # Its host, which the API tier refuses as down (a 503 naming it),
        # not a volume attached nowhere (a 400).
        self.registry.update(report('compute-1', 'vol-1'))
        self.now += 10
        self.registry.update(report('compute-2', 'vol-1'))
        self.registry.update(report('compute-3'))
        self.now += 65
        self.assertEqual('compute-2', self.locator.locate(None, 'vol-1'))
        self.agents.report_now.assert_called_once_with(None)

    def test_an_agent_up_before_a_down_one(self):
        self.registry.update(report('compute-1', 'vol-1'))
        self.now += 60
        self.registry.update(report('compute-2', 'vol-1'))
        self.assertEqual('compute-2', self.locator.locate(None, 'vol-1'))

    def test_on_several_hosts(self):
        self.registry.update(report('compute-2', 'vol-1'))
        self.registry.update(report('compute-1', 'vol-1'))
        error = self.assertRaises(exception.VolumeOnSeveralHosts,
                                  self.locator.locate, None, 'vol-1')
        self.assertEqual(409, error.code)
        self.assertIn('(compute-1, compute-2)', error.message)

    def test_reports_cannot_be_asked_for(self):
        # The broker is down: a 503, not a volume attached nowhere (400).
        self.agents.report_now.side_effect = RuntimeError('broker down')
        error = self.assertRaises(exception.AgentUnavailable,
                                  self.locator.locate, None, 'vol-1')
        self.assertEqual(503, error.code)
        self.assertEqual(
            "No agent up has reported volume vol-1, and the agents cannot "
            "be asked for fresh reports: the message broker cannot be "
            "reached ([DEFAULT] transport_url); nothing was done.",
            error.message)
        self.assertIn("Cannot ask the agents to report (broker down)",
                      self.log.output)

    def test_forget_asks_for_fresh_reports_at_the_next_locate(self):
        # compute-1 reported vol-1 before it moved to compute-2, whose
        # report is yet to come: the agent of compute-1 refused it.
        self.registry.update(report('compute-1', 'vol-1'))
        self.registry.update(report('compute-2'))
        self.now += 1

        def report_now(context):
            self.registry.update(report('compute-1'))
            self.registry.update(report('compute-2', 'vol-1'))

        self.agents.report_now.side_effect = report_now
        self.assertTrue(self.locator.forget('vol-1'))
        self.assertEqual('compute-2', self.locator.locate(None, 'vol-1'))
        self.agents.report_now.assert_called_once_with(None)
        # Only once: the next locate uses the reports again.
        self.assertEqual('compute-2', self.locator.locate(None, 'vol-1'))
        self.assertEqual(1, self.agents.report_now.call_count)
