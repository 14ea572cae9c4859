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

"""snapdriver-agent's start-up failures."""

import io
from unittest import mock

import fixtures

from snapdriver.agent import service as agent_service
from snapdriver.cmd import agent as agent_cmd
from snapdriver import exception
from snapdriver import rpc
from snapdriver.tests import base
from snapdriver.tests.unit import rpc_fixtures


class TestStartUp(base.TestCase):

    def setUp(self):
        super().setUp()
        self.useFixture(rpc_fixtures.FakeTransport())
        self.useFixture(fixtures.MockPatch('snapdriver.service.prepare'))
        self.reports = self.useFixture(fixtures.MockPatch(
            'snapdriver.service.setup_reports')).mock
        self.manager = mock.Mock()
        self.build = self.useFixture(fixtures.MockPatch(
            'snapdriver.service.build_operations',
            return_value=(mock.Mock(), self.manager))).mock
        self.stderr = self.useFixture(fixtures.MockPatch(
            'sys.stderr', io.StringIO())).mock
        self.log = self.useFixture(fixtures.FakeLogger())

    def test_a_driver_that_cannot_load(self):
        self.build.side_effect = exception.DriverLoadError(
            "Driver libvirt could not be loaded: qemu-img is missing")
        self.assertEqual(1, agent_cmd.main([]))
        self.assertEqual("snapdriver-agent: cannot start: Driver libvirt "
                         "could not be loaded: qemu-img is missing\n",
                         self.stderr.getvalue())
        self.assertIn("Cannot start: Driver libvirt", self.log.output)

    def test_reports_are_set_up_first(self):
        # Thread dumps on SIGUSR2 from the start, hangs at start-up
        # included.
        self.build.side_effect = exception.ConfigurationError(reason='x')
        agent_cmd.main([])
        self.reports.assert_called_once_with('snapdriver-agent')

    def test_a_journal_that_cannot_open(self):
        self.build.side_effect = exception.ConfigurationError(
            reason="cannot open the operation journal ([database] "
                   "connection): no such directory")
        self.assertEqual(1, agent_cmd.main([]))
        self.assertIn("cannot open the operation journal",
                      self.stderr.getvalue())

    def test_a_transport_url_that_cannot_work(self):
        rpc.cleanup()
        self.conf.config(transport_url='nosuchdriver://x/')
        self.assertEqual(1, agent_cmd.main([]))
        self.assertIn("snapdriver-agent: cannot start: cannot serve over "
                      "[DEFAULT] transport_url: DriverLoadFailure: ",
                      self.stderr.getvalue())
        self.manager.stop.assert_called_once_with(wait=False)
        self.manager.recover.assert_not_called()


class TestRecoveryBeforeServing(base.TestCase):
    """The journal's unfinished operations are taken up before the agent
    takes requests: an operation accepted before recovery read the
    journal would be queued by both, and run twice. SIGTERM is handled
    once the agent serves."""

    def test_order(self):
        self.useFixture(rpc_fixtures.FakeTransport())
        self.useFixture(fixtures.MockPatch('snapdriver.service.prepare'))
        self.useFixture(fixtures.MockPatch('snapdriver.service.setup_reports'))
        order = []
        manager = mock.Mock()
        manager.driver.name = 'fake'
        manager.recover.side_effect = lambda: order.append('recover') or 0
        self.useFixture(fixtures.MockPatch(
            'snapdriver.service.build_operations',
            return_value=(mock.Mock(), manager)))
        real_start = agent_service.Agent.start

        def start(agent):
            order.append('serve')
            real_start(agent)

        self.useFixture(fixtures.MockPatchObject(
            agent_service.Agent, 'start', start))

        # main() waits for a signal (here at once), then leaves with
        # os._exit(0).
        def signal(signum, handler):
            order.append('signal')
            handler(signum, None)

        self.useFixture(fixtures.MockPatch('signal.signal',
                                           side_effect=signal))
        self.useFixture(fixtures.MockPatch('logging.shutdown'))
        exit_ = self.useFixture(fixtures.MockPatch('os._exit')).mock
        self.useFixture(fixtures.FakeLogger())
        agent_cmd.main([])
        exit_.assert_called_once_with(0)
        # Its own SIGTERM handler only once it serves: start() waits for
        # a broker that cannot be reached, and a SIGTERM meanwhile must
        # end the process (the default), not wait for the broker.
        self.assertEqual(['recover', 'serve', 'signal', 'signal'], order)
