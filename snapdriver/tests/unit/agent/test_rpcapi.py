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

"""The agents' RPC API end to end on the in-process fake:// transport: a
real RPC server with the agent's endpoint, a real client."""

import time

import fixtures
import oslo_messaging

from snapdriver.agent import registry as registry_mod
from snapdriver.agent import rpcapi
from snapdriver.agent import service as agent_service
from snapdriver import context as context_mod
from snapdriver.drivers import loader
from snapdriver import exception
from snapdriver import objects
from snapdriver.operations import manager as manager_mod
from snapdriver import rpc
from snapdriver.tests import base
from snapdriver.tests import contract
from snapdriver.tests.unit.agent import fakes
from snapdriver.tests.unit import rpc_fixtures

HOST = 'compute-1'
CREATE = objects.CreateRequest(volume_id='vol-1', snapshot_id='snap-1',
                               new_file='new')


def caller():
    return context_mod.RequestContext(
        user_id='cinder', project_id='p1', roles=['service'],
        auth_token='TOKEN', request_id='req-1',
        global_request_id='req-0', service_catalog=[{'type': 'volumev3'}])


class RPCTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.fake = self.useFixture(rpc_fixtures.FakeTransport())

    def start_agent(self, manager, host=HOST, interval=60):
        agent = agent_service.Agent(manager, host, interval)
        agent.start()
        self.addCleanup(self._stop_agent, agent)
        return agent

    @staticmethod
    def _stop_agent(agent):
        # Not waited for: the server's idle workers take a second to see
        # that they are done (futurist); nothing reaches them any more.
        agent.stop()


class TestAgentAPI(RPCTestCase):

    def setUp(self):
        super().setUp()
        self.manager = fakes.FakeManager(volumes=['vol-1', 'vol-2'])
        self.agent = self.start_agent(self.manager)
        self.agents = rpcapi.AgentAPI(timeout=5)

    def test_accept(self):
        view = self.agents.accept(caller(), HOST, CREATE, time.time() + 5)
        self.assertIsInstance(view, objects.OperationView)
        self.assertEqual(HOST, view.host)
        self.assertEqual(CREATE, view.request)
        [(method, context, request)] = self.manager.calls
        self.assertEqual(('accept', CREATE), (method, request))
        # The caller's context, token and catalog included, arrives.
        self.assertIsInstance(context, context_mod.RequestContext)
        self.assertEqual(caller().to_dict(), context.to_dict())

    def test_accept_after_the_deadline_is_refused_unseen(self):
        error = self.assertRaises(
            exception.RequestExpired, self.agents.accept, caller(), HOST,
            CREATE, time.time() - 3)
        self.assertEqual(503, error.code)
        self.assertIn('agent of host %s' % HOST, error.message)
        self.assertEqual([], self.manager.calls)

    def test_query(self):
        self.agents.accept(caller(), HOST, CREATE, time.time() + 5)
        views = self.agents.query(caller(), HOST, 'snap-1')
        self.assertEqual(['snap-1'], [view.snapshot_id for view in views])
        self.assertEqual([HOST], [view.host for view in views])

    def test_a_refusal_arrives_with_its_class_and_message(self):
        for error in (
                exception.InvalidFileName(field='new_file', value='../x'),
                exception.VolumeNotAttached(volume_id='vol-9'),
                exception.DuplicateRequest(
                    snapshot_id='snap-1', action='create', operation='op-1',
                    state='queued', existing='new_file=a')):
            self.manager.error = error
            got = self.assertRaises(type(error), self.agents.accept,
                                    caller(), HOST, CREATE, time.time() + 5)
            self.assertEqual(error.message, got.message)
            self.assertEqual(error.code, got.code)
        got = self.assertRaises(exception.OperationNotFound,
                                self.agents.query, caller(), HOST, 'snap-9')
        self.assertEqual(404, got.code)
        self.assertIn('snap-9', got.message)

    def test_ping(self):
        report = self.agents.ping(None, HOST)
        self.assertIsInstance(report, objects.AgentReport)
        self.assertEqual((HOST, 'fake', ('vol-1', 'vol-2')),
                         (report.host, report.driver, report.volumes))
        self.assertLess(abs(time.time() - report.sent_at), 5)

    def test_a_host_nobody_serves_times_out(self):
        # On a broker the mandatory flag makes this MessageUndeliverable
        # at once; the fake transport only knows timeouts.
        agents = rpcapi.AgentAPI(timeout=0.2)
        self.assertRaises(oslo_messaging.MessagingTimeout, agents.ping,
                          None, 'compute-9')

    def test_an_agent_slower_than_the_timeout(self):
        self.manager.delay = 1
        agents = rpcapi.AgentAPI(timeout=0.2)
        self.assertRaises(oslo_messaging.MessagingTimeout, agents.accept,
                          caller(), HOST, CREATE, time.time() + 0.2)

    def test_calls_are_mandatory_with_no_retry(self):
        self.assertTrue(self.agents._client.transport_options.at_least_once)
        prepare = self.useFixture(fixtures.MockPatchObject(
            self.agents._client, 'prepare',
            wraps=self.agents._client.prepare)).mock
        self.agents.ping(None, HOST)
        prepare.assert_called_once_with(server=HOST, retry=0, timeout=5)
        prepare.reset_mock()
        self.assertRaises(exception.OperationNotFound, self.agents.query,
                          caller(), HOST, 'snap-1', timeout=2)
        prepare.assert_called_once_with(server=HOST, retry=0, timeout=2)

    def test_connect(self):
        # A call to a host nobody serves: on a broker MessageUndeliverable
        # at once, here a short timeout; either way it returns.
        call = self.useFixture(fixtures.MockPatchObject(
            self.agents, '_call', wraps=self.agents._call)).mock
        self.agents.connect()
        call.assert_called_once_with(None, rpcapi.CONNECT_HOST, 'ping',
                                     timeout=0.5)
        # What a broker answers (not a MessagingException).
        call.side_effect = oslo_messaging.MessageUndeliverable(
            Exception(), 'snapdriver', rpcapi.CONNECT_HOST, 'ping')
        self.agents.connect()

    def test_versions(self):
        self.assertEqual('1.0', rpcapi.VERSION)
        self.assertEqual(rpcapi.VERSION, self.agents._client.target.version)
        self.assertEqual(rpc.agent_topic(), self.agents._client.target.topic)


class TestReports(RPCTestCase):
    """Agents report (fanout) to every API process's listener; a listener
    that starts asks them all to report at once."""

    def listener(self):
        registry = registry_mod.AgentRegistry(down_time=60)
        listener = registry_mod.ReportListener(
            registry, rpcapi.AgentAPI(timeout=5))
        listener.start()
        self.addCleanup(listener.stop)
        self.assertTrue(listener.connected.wait(10))
        return registry

    def wait_for(self, registry, hosts, timeout=10):
        deadline = time.monotonic() + timeout
        while set(registry.up_hosts()) != set(hosts):
            self.assertLess(time.monotonic(), deadline, registry.agents())
            time.sleep(0.02)

    def test_every_listener_hears_every_agent(self):
        registries = [self.listener(), self.listener()]
        self.start_agent(fakes.FakeManager(volumes=['vol-1']), 'compute-1')
        self.start_agent(fakes.FakeManager(volumes=['vol-2']), 'compute-2')
        for registry in registries:
            self.wait_for(registry, ['compute-1', 'compute-2'])
            self.assertEqual(['compute-2'], registry.hosts_with('vol-2'))

    def test_a_listener_started_later_asks_for_reports(self):
        manager = fakes.FakeManager(volumes=['vol-1'])
        self.start_agent(manager, 'compute-1')
        # The agent's first report went to nobody.
        time.sleep(0.2)
        registry = self.listener()
        self.wait_for(registry, ['compute-1'])
        [agent] = registry.agents()
        self.assertEqual(('compute-1', 'up', 'fake', 1),
                         (agent['host'], agent['state'], agent['driver'],
                          agent['volumes']))

    def test_report_now_brings_fresh_volumes(self):
        registry = self.listener()
        manager = fakes.FakeManager(volumes=['vol-1'])
        self.start_agent(manager, 'compute-1')
        self.wait_for(registry, ['compute-1'])
        manager.driver.volumes = ['vol-1', 'vol-3']
        since = registry.now()
        rpcapi.AgentAPI(timeout=5).report_now(None)
        self.assertTrue(registry.wait_for_fresh(since, 10))
        self.assertEqual(['compute-1'], registry.hosts_with('vol-3'))


class TestWithTheRealManager(RPCTestCase):
    """The fake driver's operation manager behind the endpoint: the
    caller gets what a single process would answer."""

    def setUp(self):
        super().setUp()
        driver = loader.load('fake')
        driver.add_guest({'name': 'vm1', 'disks': [
            {'target': 'vdb', 'serial': 'vol-1', 'directory': '/share',
             'chain': ['volume-1'],
             'files': {'new': {'format': 'qcow2', 'backing': 'volume-1'}}}]})
        self.reporter = contract.RecordingReporter()
        self.manager = manager_mod.OperationManager(driver, self.reporter)
        self.addCleanup(self.manager.stop)
        self.start_agent(self.manager)
        self.agents = rpcapi.AgentAPI(timeout=5)

    def test_create_runs_and_is_queried(self):
        view = self.agents.accept(caller(), HOST, CREATE, time.time() + 5)
        self.assertEqual((HOST, objects.CREATE, 'vdb', 'vm1'),
                         (view.host, view.kind, view.disk, view.guest))
        self.assertTrue(self.manager.wait_idle(10))
        [done] = self.agents.query(caller(), HOST, 'snap-1')
        self.assertEqual((objects.SUCCEEDED, ['new', 'volume-1'], HOST),
                         (done.state, done.chain, done.host))
        self.assertEqual([('snap-1', 'creating', '90%')],
                         self.reporter.reports)

    def test_chain_rule_refusals(self):
        bad = objects.CreateRequest(volume_id='vol-1', snapshot_id='snap-2',
                                    new_file='../x')
        error = self.assertRaises(exception.InvalidFileName,
                                  self.agents.accept, caller(), HOST, bad,
                                  time.time() + 5)
        self.assertIn("Invalid new_file '../x'", error.message)
        elsewhere = objects.CreateRequest(
            volume_id='vol-9', snapshot_id='snap-3', new_file='new')
        self.assertRaises(exception.VolumeNotAttached, self.agents.accept,
                          caller(), HOST, elsewhere, time.time() + 5)


class TestTopics(RPCTestCase):
    """The rabbit driver names a fanout exchange after its topic alone
    (``<topic>_fanout``): regions that share a virtual host keep apart
    only if their topics are named after their control exchanges."""

    def topics(self):
        agent = agent_service.Agent(fakes.FakeManager(), HOST, 60)
        agents = rpcapi.AgentAPI(timeout=5)
        listener = registry_mod.ReportListener(
            registry_mod.AgentRegistry(down_time=60), agents)
        listener.start()
        self.addCleanup(listener.stop)
        return {agent._server._target.topic, agents._client.target.topic,
                agents._fanout.target.topic}, {
            agent._api.target.topic, listener._server._target.topic}

    def test_default(self):
        self.assertEqual(({'snapdriver-agent'}, {'snapdriver-api'}),
                         self.topics())

    def test_named_after_the_control_exchange(self):
        rpc.cleanup()
        self.conf.config(control_exchange='region-b')
        self.assertEqual(({'region-b-agent'}, {'region-b-api'}),
                         self.topics())
