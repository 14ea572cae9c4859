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

"""What an API process knows of the agents."""

import threading
import time
from unittest import mock

import fixtures
import oslo_messaging

from snapdriver.agent import registry as registry_mod
from snapdriver import objects
from snapdriver.tests import base

# 2026-01-02T03:04:05Z
WALL = 1767323045.0


def report(host, volumes=('vol-1',), driver='fake', version='1.0.0'):
    return objects.AgentReport(host=host, driver=driver, version=version,
                               volumes=volumes, sent_at=WALL)


class Clocks:
    """A monotonic clock and a wall clock the test moves together."""

    def __init__(self):
        self.now = 100.0

    def monotonic(self):
        return self.now

    def wall(self):
        return WALL + self.now - 100.0


class RegistryTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.clocks = Clocks()
        self.registry = registry_mod.AgentRegistry(
            down_time=60, clock=self.clocks.monotonic, wall=self.clocks.wall)
        self.log = self.useFixture(fixtures.FakeLogger())


class TestRegistry(RegistryTestCase):

    def test_empty(self):
        self.assertEqual([], self.registry.agents())
        self.assertEqual([], self.registry.up_hosts())
        self.assertEqual([], self.registry.hosts_with('vol-1'))
        self.assertIsNone(self.registry.silent_since('compute-1'))

    def test_agents(self):
        self.registry.update(report('compute-2', volumes=None,
                                    driver='stub'))
        self.clocks.now += 1.5
        self.registry.update(report('compute-1', volumes=('a', 'b')))
        self.assertEqual([
            {'host': 'compute-1', 'state': 'up',
             'last_seen': '2026-01-02T03:04:06.500000Z', 'driver': 'fake',
             'version': '1.0.0', 'volumes': 2},
            {'host': 'compute-2', 'state': 'up',
             'last_seen': '2026-01-02T03:04:05.000000Z', 'driver': 'stub',
             'version': '1.0.0', 'volumes': None},
        ], self.registry.agents())

    def test_down_after_down_time_of_silence(self):
        self.registry.update(report('compute-1'))
        self.clocks.now += 59.9
        self.assertEqual(['compute-1'], self.registry.up_hosts())
        self.assertIsNone(self.registry.silent_since('compute-1'))
        self.clocks.now += 0.1
        self.assertEqual([], self.registry.up_hosts())
        self.assertEqual('down', self.registry.agents()[0]['state'])
        self.assertEqual('2026-01-02T03:04:05.000000Z',
                         self.registry.silent_since('compute-1'))
        # Back with its next report.
        self.registry.update(report('compute-1'))
        self.assertEqual(['compute-1'], self.registry.up_hosts())
        self.assertIsNone(self.registry.silent_since('compute-1'))

    def test_hosts_with(self):
        self.registry.update(report('compute-1', volumes=('vol-1', 'vol-2')))
        self.registry.update(report('compute-2', volumes=('vol-2',)))
        self.registry.update(report('compute-3', volumes=None))
        self.registry.update(report('compute-4', volumes=()))
        self.assertEqual(['compute-1'], self.registry.hosts_with('vol-1'))
        self.assertEqual(['compute-1', 'compute-2'],
                         self.registry.hosts_with('vol-2'))
        self.assertEqual([], self.registry.hosts_with('vol-3'))
        # Only agents up count.
        self.clocks.now += 30
        self.registry.update(report('compute-2', volumes=('vol-2',)))
        self.clocks.now += 40
        self.assertEqual(['compute-2'], self.registry.hosts_with('vol-2'))

    def test_a_new_report_replaces_the_last(self):
        self.registry.update(report('compute-1', volumes=('vol-1',)))
        self.registry.update(report('compute-1', volumes=('vol-2',)))
        self.assertEqual([], self.registry.hosts_with('vol-1'))
        self.assertEqual(['compute-1'], self.registry.hosts_with('vol-2'))
        self.assertEqual(1, len(self.registry.agents()))

    def test_the_first_report_of_a_host_is_logged(self):
        self.registry.update(report('compute-1'))
        self.registry.update(report('compute-1'))
        self.assertEqual(1, self.log.output.count(
            "Agent of host compute-1 reported (fake driver, version 1.0.0)"))

    def test_now(self):
        self.assertEqual(100.0, self.registry.now())


class TestWaitForFresh(RegistryTestCase):

    def test_nobody_up_is_fresh_at_once(self):
        self.assertTrue(self.registry.wait_for_fresh(self.clocks.now, 5))
        self.registry.update(report('compute-1'))
        self.clocks.now += 61
        since = self.clocks.now
        self.assertTrue(self.registry.wait_for_fresh(since, 5))

    def test_a_silent_agent_makes_it_wait_to_the_end(self):
        self.registry.update(report('compute-1'))
        self.clocks.now += 1
        started = time.monotonic()
        self.assertFalse(self.registry.wait_for_fresh(self.clocks.now, 0.2))
        self.assertGreaterEqual(time.monotonic() - started, 0.15)

    def test_reports_during_the_wait(self):
        self.registry.update(report('compute-1'))
        self.registry.update(report('compute-2'))
        self.clocks.now += 1
        since = self.clocks.now

        def answer():
            for host in ('compute-1', 'compute-2'):
                time.sleep(0.05)
                self.registry.update(report(host, volumes=('vol-9',)))

        thread = threading.Thread(target=answer)
        thread.start()
        self.addCleanup(thread.join)
        self.assertTrue(self.registry.wait_for_fresh(since, 10))
        self.assertEqual(['compute-1', 'compute-2'],
                         self.registry.hosts_with('vol-9'))


class TestListener(base.TestCase):

    def test_reports_endpoint(self):
        registry = mock.Mock()
        endpoint = registry_mod.ReportsEndpoint(registry)
        endpoint.agent_report(None, report('compute-1'))
        registry.update.assert_called_once_with(report('compute-1'))

    def test_refresh_that_cannot_reach_the_broker(self):
        log = self.useFixture(fixtures.FakeLogger())
        agents = mock.Mock()
        agents.report_now.side_effect = oslo_messaging.MessageDeliveryFailure(
            'broker down')
        listener = registry_mod.ReportListener(mock.Mock(), agents)
        listener.refresh()
        agents.report_now.assert_called_once_with(None)
        self.assertIn("Cannot ask the agents to report (broker down)",
                      log.output)

    def test_stop_before_start(self):
        registry_mod.ReportListener(mock.Mock(), mock.Mock()).stop()


class TestListenerConnects(base.TestCase):
    """oslo.messaging waits for a broker that cannot be reached at a
    process's first connection: the listener waits in a thread of its
    own, and says when the process has reached the broker."""

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.FakeLogger())
        self.broker_up = threading.Event()
        self.server = mock.Mock()
        self.server.start.side_effect = lambda: self.broker_up.wait(10)
        self.get_server = self.useFixture(fixtures.MockPatch(
            'snapdriver.rpc.get_server', return_value=self.server)).mock
        self.useFixture(fixtures.MockPatch('snapdriver.rpc.api_topic',
                                           return_value='snapdriver-api'))
        self.agents = mock.Mock()
        self.listener = registry_mod.ReportListener(mock.Mock(), self.agents)

    def test_start_returns_at_once(self):
        started = time.monotonic()
        self.listener.start()
        self.assertLess(time.monotonic() - started, 1)
        self.assertFalse(self.listener.connected.wait(0.1))
        self.agents.connect.assert_not_called()
        self.broker_up.set()
        self.assertTrue(self.listener.connected.wait(5))
        self.agents.connect.assert_called_once_with()
        # Then it asks the agents to report.
        for _ in range(100):
            if self.agents.report_now.called:
                break
            time.sleep(0.01)
        self.agents.report_now.assert_called_once_with(None)
        self.listener.stop()
        self.server.stop.assert_called_once_with()

    def test_a_failure_is_logged(self):
        log = self.useFixture(fixtures.FakeLogger())
        self.server.start.side_effect = RuntimeError('no such exchange')
        self.listener.start()
        for _ in range(100):
            if 'Cannot listen' in log.output:
                break
            time.sleep(0.01)
        self.assertIn("Cannot listen for the agents' reports; requests that "
                      "need the agents are answered 503", log.output)
        self.assertFalse(self.listener.connected.is_set())

    def test_stopped_while_waiting_for_the_broker(self):
        self.listener.start()
        self.listener.stop()
        self.server.stop.assert_not_called()
        self.broker_up.set()
        for _ in range(100):
            if self.server.stop.called:
                break
            time.sleep(0.01)
        self.server.stop.assert_called_once_with()
        self.assertFalse(self.listener.connected.is_set())
        self.agents.connect.assert_not_called()
