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

"""The agent's side: its RPC endpoint and its reports."""

from unittest import mock

import fixtures
import oslo_messaging

from snapdriver.agent import endpoint as endpoint_mod
from snapdriver.agent import rpcapi
from snapdriver.agent import service as agent_service
from snapdriver import exception
from snapdriver import objects
from snapdriver.tests import base
from snapdriver.tests.unit.agent import fakes
from snapdriver.tests.unit import rpc_fixtures
from snapdriver import version

HOST = 'compute-1'
CREATE = objects.CreateRequest(volume_id='vol-1', snapshot_id='snap-1',
                               new_file='new')


class FakeAgent:

    def __init__(self):
        self.host = HOST
        self.manager = fakes.FakeManager()
        self.report = mock.Mock(return_value='the report')
        self.report_soon = mock.Mock()


class TestEndpoint(base.TestCase):

    def setUp(self):
        super().setUp()
        self.now = 1000.0
        self.agent = FakeAgent()
        self.endpoint = endpoint_mod.AgentEndpoint(
            self.agent, clock=lambda: self.now)
        self.log = self.useFixture(fixtures.FakeLogger())

    def test_version(self):
        self.assertEqual(rpcapi.VERSION, self.endpoint.target.version)

    def test_accept_before_the_deadline(self):
        view = self.endpoint.accept('ctx', CREATE, deadline=1000.5)
        self.assertEqual(HOST, view.host)
        self.assertEqual([('accept', 'ctx', CREATE)],
                         self.agent.manager.calls)

    def test_accept_without_a_deadline(self):
        self.assertEqual(HOST, self.endpoint.accept('ctx', CREATE).host)

    def test_accept_after_the_deadline(self):
        error = self.assertRaises(
            oslo_messaging.ExpectedException, self.endpoint.accept, 'ctx',
            CREATE, deadline=997.5)
        refused = error.exc_info[1]
        self.assertIsInstance(refused, exception.RequestExpired)
        self.assertEqual(503, refused.code)
        self.assertEqual("The request reached the agent of host compute-1 "
                         "2.5 s after its deadline; it was not carried out.",
                         refused.message)
        self.assertEqual([], self.agent.manager.calls)
        self.assertIn("Refusing the create request of snapshot snap-1: it "
                      "came 2.5 s after its deadline", self.log.output)

    def test_the_deadline_itself_is_in_time(self):
        self.endpoint.accept('ctx', CREATE, deadline=1000.0)
        self.assertEqual(1, len(self.agent.manager.calls))

    def test_refusals_are_expected_exceptions(self):
        # Expected: oslo.messaging logs no traceback for them, and the
        # caller gets the exception itself.
        self.agent.manager.error = exception.VolumeNotAttached(
            volume_id='vol-1')
        error = self.assertRaises(oslo_messaging.ExpectedException,
                                  self.endpoint.accept, 'ctx', CREATE)
        self.assertIs(self.agent.manager.error, error.exc_info[1])
        error = self.assertRaises(oslo_messaging.ExpectedException,
                                  self.endpoint.query, 'ctx', 'snap-9')
        self.assertIsInstance(error.exc_info[1], exception.OperationNotFound)

    def test_query_names_the_host(self):
        self.endpoint.accept('ctx', CREATE)
        self.endpoint.accept('ctx', CREATE)
        views = self.endpoint.query('ctx', 'snap-1')
        self.assertEqual([HOST, HOST], [view.host for view in views])

    def test_ping_and_report_now(self):
        self.assertEqual('the report', self.endpoint.ping('ctx'))
        self.endpoint.report_now('ctx')
        self.agent.report_soon.assert_called_once_with()


class TestAgent(base.TestCase):

    def setUp(self):
        super().setUp()
        self.useFixture(rpc_fixtures.FakeTransport())
        self.manager = fakes.FakeManager(volumes=['vol-2', 'vol-1'])
        self.agent = agent_service.Agent(self.manager, HOST, 7)
        self.log = self.useFixture(fixtures.FakeLogger())

    def test_report(self):
        report = self.agent.report()
        self.assertEqual(
            (HOST, 'fake', version.version_string(), ('vol-2', 'vol-1')),
            (report.host, report.driver, report.version, report.volumes))

    def test_a_driver_that_cannot_tell(self):
        self.manager.driver.volumes = None
        self.assertIsNone(self.agent.report().volumes)

    def test_a_driver_that_fails_to_list(self):
        self.manager.driver.volumes = exception.OperationFailed(
            reason='libvirtd is gone')
        self.assertIsNone(self.agent.report().volumes)
        self.assertIn("The fake driver could not list the attached volumes "
                      "(libvirtd is gone); reporting none", self.log.output)

    def test_an_unreachable_api_tier_is_said_once_then_when_back(self):
        api = self.useFixture(fixtures.MockPatchObject(
            self.agent, '_api')).mock
        cast = api.prepare.return_value.cast
        cast.side_effect = oslo_messaging.MessageDeliveryFailure('down')
        self.agent._send_report()
        self.agent._send_report()
        self.assertEqual(1, self.log.output.count(
            "Cannot report to the API tier (down); trying again every 7 s"))
        cast.side_effect = None
        self.agent._send_report()
        self.agent._send_report()
        self.assertEqual(1, self.log.output.count(
            "Reporting to the API tier again after"))
        api.prepare.assert_called_with(fanout=True, retry=0)
        report = cast.call_args.kwargs['report']
        self.assertEqual(HOST, report.host)
        self.assertEqual('agent_report', cast.call_args.args[1])
