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

"""The API tier's operations API: requests sent to the agents."""

import datetime
import threading
from unittest import mock

import fixtures
import oslo_messaging

from snapdriver.agent import registry as registry_mod
from snapdriver.api import faults
from snapdriver import exception
from snapdriver import objects
from snapdriver.operations import remote
from snapdriver import rpc
from snapdriver import service
from snapdriver.tests import base
from snapdriver.tests.unit import rpc_fixtures

CREATE = objects.CreateRequest(volume_id='vol-1', snapshot_id='snap-1',
                               new_file='new')


def view(host, snapshot_id='snap-1', created=None, op='op-1'):
    return objects.OperationView(
        id=op, snapshot_id=snapshot_id, volume_id='vol-1',
        kind=objects.CREATE, state=objects.QUEUED, request=CREATE,
        created_at=created, host=host)


def report(host, *volumes):
    return objects.AgentReport(host=host, driver='fake', version='1',
                               volumes=volumes, sent_at=1767323045.0)


class FakeLocator:
    name = 'fake'

    def __init__(self, *hosts):
        self.hosts = list(hosts)
        self.located = []
        self.forgotten = []
        self.can_forget = True

    def locate(self, context, volume_id):
        self.located.append(volume_id)
        return self.hosts.pop(0) if len(self.hosts) > 1 else self.hosts[0]

    def forget(self, volume_id):
        self.forgotten.append(volume_id)
        return self.can_forget


class FakeAgents:
    """AgentAPI's calls, answered per host: a value, an exception, or a
    callable."""

    timeout = 30

    def __init__(self):
        self.answers = {}
        self.calls = []
        self._lock = threading.Lock()

    def _answer(self, method, host, *args, **kwargs):
        with self._lock:
            self.calls.append((method, host) + args)
        answer = self.answers.get((method, host))
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(*args)
        return answer

    def accept(self, context, host, request, deadline):
        return self._answer('accept', host, request, deadline)

    def query(self, context, host, snapshot_id, timeout=None):
        return self._answer('query', host, snapshot_id)


class RemoteTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.now = 100.0
        self.registry = registry_mod.AgentRegistry(
            down_time=60, clock=lambda: self.now,
            wall=lambda: 1767323045.0 + self.now - 100.0)
        self.agents = FakeAgents()
        self.locator = FakeLocator('compute-1')
        self.api = remote.RemoteOperationsAPI(
            self.locator, self.agents, self.registry,
            clock=lambda: 5000.0)
        self.log = self.useFixture(fixtures.FakeLogger())

    def assert_unavailable(self, call, *words):
        error = self.assertRaises(exception.AgentUnavailable, call)
        self.assertEqual(503, error.code)
        for word in words:
            self.assertIn(word, error.message)
        return error


class TestAccept(RemoteTestCase):

    def test_sent_to_the_located_host_with_a_deadline(self):
        # 1 s before the 30 s timeout ends: an agent that starts to
        # accept it in time answers before the caller is told 503.
        self.agents.answers['accept', 'compute-1'] = view('compute-1')
        self.assertEqual(view('compute-1'), self.api.accept('ctx', CREATE))
        self.assertEqual([('accept', 'compute-1', CREATE, 5029.0)],
                         self.agents.calls)
        self.assertEqual(['vol-1'], self.locator.located)
        self.assertIn("Sending the create request of snapshot snap-1 "
                      "(volume vol-1) to the agent of host compute-1 (fake "
                      "locator)", self.log.output)

    def test_the_deadline_of_a_short_timeout(self):
        self.agents.timeout = 2
        self.agents.answers['accept', 'compute-1'] = view('compute-1')
        self.api.accept('ctx', CREATE)
        self.assertEqual([('accept', 'compute-1', CREATE, 5001.5)],
                         self.agents.calls)

    def test_a_refusal_is_the_agents_own(self):
        refusal = exception.InvalidFileName(field='new_file', value='../x')
        self.agents.answers['accept', 'compute-1'] = refusal
        error = self.assertRaises(exception.InvalidFileName,
                                  self.api.accept, 'ctx', CREATE)
        self.assertIs(refusal, error)

    def test_no_agent_listens_for_the_host(self):
        self.agents.answers['accept', 'compute-1'] = (
            oslo_messaging.MessageUndeliverable(
                Exception(), 'snapdriver', 'compute-1', 'compute-1'))
        self.assert_unavailable(
            lambda: self.api.accept('ctx', CREATE),
            "No snapdriver agent listens for host compute-1: start "
            "snapdriver-agent there with [DEFAULT] host = compute-1")

    def test_an_agent_up_whose_queue_is_missing(self):
        # The broker restarted and the agent's server has not reconnected
        # yet: it is not to be started, it runs.
        self.registry.update(objects.AgentReport(
            host='compute-1', driver='fake', version='1', volumes=(),
            sent_at=0.0))
        self.agents.answers['accept', 'compute-1'] = (
            oslo_messaging.MessageUndeliverable(
                Exception(), 'snapdriver', 'compute-1', 'compute-1'))
        error = self.assert_unavailable(
            lambda: self.api.accept('ctx', CREATE),
            "The snapdriver agent of host compute-1 reports to the API tier "
            "but takes no requests at the moment (it is reconnecting to the "
            "message broker); nothing was done.")
        self.assertNotIn('start snapdriver-agent', error.message)

    def test_the_agent_does_not_answer(self):
        self.agents.answers['accept', 'compute-1'] = (
            oslo_messaging.MessagingTimeout('no reply'))
        self.assert_unavailable(
            lambda: self.api.accept('ctx', CREATE),
            "The snapdriver agent of host compute-1 did not answer within "
            "30 s ([api] agent_timeout); nothing was done, and the request "
            "will not be carried out later.")

    def test_the_broker_cannot_be_reached(self):
        self.agents.answers['accept', 'compute-1'] = (
            oslo_messaging.MessageDeliveryFailure(
                'Unable to connect to AMQP server on 10.0.0.5:5671'))
        error = self.assert_unavailable(
            lambda: self.api.accept('ctx', CREATE),
            "The message broker cannot be reached ([DEFAULT] "
            "transport_url); nothing was done.")
        # A 5xx carries no exception text; the log has it.
        self.assertNotIn('10.0.0.5', error.message)
        self.assertIn("Cannot send the accept call to the agent of host "
                      "compute-1: MessageDeliveryFailure: Unable to connect "
                      "to AMQP server on 10.0.0.5:5671", self.log.output)

    def test_an_agent_that_fails_is_a_500_as_in_one_process(self):
        # An exception from outside snapdriver.exception (the journal's
        # database, a library) comes back as a RemoteError carrying the
        # agent's traceback: the caller gets the 500 a single process
        # gives, not a 503 blaming the broker with the traceback in it.
        self.agents.answers['accept', 'compute-1'] = (
            oslo_messaging.RemoteError(
                'OperationalError', 'database is locked',
                'Traceback (most recent call last):\n  File "journal.py"'))
        error = self.assertRaises(oslo_messaging.RemoteError,
                                  self.api.accept, 'ctx', CREATE)
        answer = faults.from_exception(error, 'req-1')
        self.assertEqual(500, answer.status_int)
        self.assertNotIn('Traceback', answer.text)
        self.assertNotIn('database is locked', answer.text)
        self.assertIn("The snapdriver agent of host compute-1 failed to "
                      "handle the accept call: OperationalError: database "
                      "is locked", self.log.output)

    def test_an_agent_shown_down_is_not_asked(self):
        self.registry.update(report('compute-1', 'vol-1'))
        self.now += 61
        self.assert_unavailable(
            lambda: self.api.accept('ctx', CREATE),
            "The snapdriver agent of host compute-1 has not reported since "
            "2026-01-02T03:04:05.000000Z (over [api] agent_down_time = 60 s "
            "ago): it is down; nothing was sent to it.")
        self.assertEqual([], self.agents.calls)

    def test_an_agent_never_heard_of_is_asked(self):
        # The cinder locator names hosts the registry may not know yet.
        self.agents.answers['accept', 'compute-1'] = view('compute-1')
        self.api.accept('ctx', CREATE)
        self.assertEqual(1, len(self.agents.calls))

    def test_locator_refusals_pass(self):
        self.locator.locate = mock.Mock(
            side_effect=exception.VolumeOnSeveralHosts(
                volume_id='vol-1', hosts='a, b'))
        self.assertRaises(exception.VolumeOnSeveralHosts, self.api.accept,
                          'ctx', CREATE)
        self.assertEqual([], self.agents.calls)

    def test_retried_once_on_another_host(self):
        self.locator.hosts = ['compute-1', 'compute-2']
        self.agents.answers['accept', 'compute-1'] = (
            exception.VolumeNotAttached(volume_id='vol-1'))
        self.agents.answers['accept', 'compute-2'] = view('compute-2')
        self.assertEqual('compute-2', self.api.accept('ctx', CREATE).host)
        self.assertEqual(['vol-1'], self.locator.forgotten)
        self.assertEqual(['compute-1', 'compute-2'],
                         [call[1] for call in self.agents.calls])
        self.assertIn("Volume vol-1 is not on host compute-1 after all; "
                      "trying host compute-2", self.log.output)
        # The query goes to where it went.
        self.agents.answers['query', 'compute-2'] = [view('compute-2')]
        self.api.query('ctx', 'snap-1')
        self.assertEqual(('query', 'compute-2', 'snap-1'),
                         self.agents.calls[-1])

    def test_not_retried_when_the_locator_cannot_forget(self):
        self.locator.can_forget = False
        self.locator.hosts = ['compute-1', 'compute-2']
        self.agents.answers['accept', 'compute-1'] = (
            exception.VolumeNotAttached(volume_id='vol-1'))
        self.assertRaises(exception.VolumeNotAttached, self.api.accept,
                          'ctx', CREATE)
        self.assertEqual(1, len(self.agents.calls))

    def test_not_retried_on_the_same_host(self):
        self.agents.answers['accept', 'compute-1'] = (
            exception.VolumeNotAttached(volume_id='vol-1'))
        self.assertRaises(exception.VolumeNotAttached, self.api.accept,
                          'ctx', CREATE)
        self.assertEqual(1, len(self.agents.calls))
        self.assertEqual(['vol-1', 'vol-1'], self.locator.located)

    def test_retried_only_once(self):
        self.locator.hosts = ['compute-1', 'compute-2', 'compute-3']
        for host in ('compute-1', 'compute-2'):
            self.agents.answers['accept', host] = (
                exception.VolumeNotAttached(volume_id='vol-1'))
        self.assertRaises(exception.VolumeNotAttached, self.api.accept,
                          'ctx', CREATE)
        self.assertEqual(2, len(self.agents.calls))

    def test_before_this_process_reached_the_broker(self):
        connected = threading.Event()
        api = remote.RemoteOperationsAPI(self.locator, self.agents,
                                         self.registry, connected=connected)
        self.agents.answers['accept', 'compute-1'] = view('compute-1')
        self.agents.answers['query', 'compute-1'] = [view('compute-1')]
        for call in (lambda: api.accept('ctx', CREATE),
                     lambda: api.query('ctx', 'snap-1')):
            self.assert_unavailable(
                call, "The message broker cannot be reached ([DEFAULT] "
                "transport_url): this API process has not reached it since "
                "it started; nothing was done.")
        self.assertEqual(([], []), (self.locator.located, self.agents.calls))
        connected.set()
        api.accept('ctx', CREATE)
        api.query('ctx', 'snap-1')

    def test_agents(self):
        self.registry.update(report('compute-1', 'vol-1'))
        self.assertEqual(self.registry.agents(), self.api.agents('ctx'))
        self.assertEqual(['compute-1'],
                         [agent['host'] for agent in self.api.agents('c')])


class TestQuery(RemoteTestCase):

    def setUp(self):
        super().setUp()
        for host in ('compute-1', 'compute-2', 'compute-3'):
            self.registry.update(report(host))
            self.agents.answers['query', host] = (
                exception.OperationNotFound(snapshot_id='snap-1'))

    def asked(self):
        return sorted(call[1] for call in self.agents.calls
                      if call[0] == 'query')

    def test_the_host_it_was_sent_to(self):
        self.agents.answers['accept', 'compute-1'] = view('compute-1')
        self.agents.answers['query', 'compute-1'] = [view('compute-1')]
        self.api.accept('ctx', CREATE)
        self.assertEqual([view('compute-1')], self.api.query('ctx',
                                                             'snap-1'))
        self.assertEqual(['compute-1'], self.asked())

    def test_unknown_asks_every_agent_up_and_merges(self):
        early = datetime.datetime(2026, 1, 1, 10, 0, 0)
        late = datetime.datetime(2026, 1, 1, 11, 0, 0)
        self.agents.answers['query', 'compute-1'] = [
            view('compute-1', created=late, op='b')]
        self.agents.answers['query', 'compute-3'] = [
            view('compute-3', created=early, op='a')]
        self.registry.update(report('compute-4'))
        self.now += 30
        self.registry.update(report('compute-1'))
        self.registry.update(report('compute-2'))
        self.registry.update(report('compute-3'))
        self.now += 31    # compute-4 is down now
        self.assertEqual(['a', 'b'], [operation.id for operation in
                                      self.api.query('ctx', 'snap-1')])
        self.assertEqual(['compute-1', 'compute-2', 'compute-3'],
                         self.asked())
        # The newest one's host is remembered.
        self.agents.calls.clear()
        self.api.query('ctx', 'snap-1')
        self.assertEqual(['compute-1'], self.asked())

    def test_operations_without_a_time_come_last(self):
        self.agents.answers['query', 'compute-1'] = [
            view('compute-1', op='b'), view('compute-1', op='c')]
        self.agents.answers['query', 'compute-2'] = [
            view('compute-2', op='a',
                 created=datetime.datetime(2026, 1, 1))]
        self.assertEqual(['a', 'b', 'c'], [operation.id for operation in
                                           self.api.query('ctx', 'snap-1')])

    def test_nowhere(self):
        error = self.assertRaises(exception.OperationNotFound,
                                  self.api.query, 'ctx', 'snap-1')
        self.assertEqual(404, error.code)
        self.assertEqual(['compute-1', 'compute-2', 'compute-3'],
                         self.asked())

    def test_no_agents(self):
        self.now += 61
        self.assertRaises(exception.OperationNotFound, self.api.query,
                          'ctx', 'snap-1')
        self.assertEqual([], self.asked())

    def test_says_which_agents_did_not_answer(self):
        self.agents.answers['query', 'compute-3'] = (
            oslo_messaging.MessagingTimeout('no reply'))
        self.agents.answers['query', 'compute-1'] = (
            oslo_messaging.MessageUndeliverable(
                Exception(), 'snapdriver', 'compute-1', 'compute-1'))
        self.assert_unavailable(
            lambda: self.api.query('ctx', 'snap-1'),
            "Snapshot snap-1 has no operation on the hosts that answered; "
            "the agents of compute-1, compute-3 did not answer.")

    def test_says_which_agents_failed(self):
        self.agents.answers['query', 'compute-2'] = (
            oslo_messaging.RemoteError('OperationalError', 'locked', 'tb'))
        self.agents.answers['query', 'compute-3'] = (
            oslo_messaging.MessagingTimeout('no reply'))
        error = self.assert_unavailable(
            lambda: self.api.query('ctx', 'snap-1'),
            "Snapshot snap-1 has no operation on the hosts that answered; "
            "the agents of compute-2, compute-3 did not answer.")
        self.assertNotIn('locked', error.message)

    def test_found_although_others_did_not_answer(self):
        self.agents.answers['query', 'compute-3'] = (
            oslo_messaging.MessagingTimeout('no reply'))
        self.agents.answers['query', 'compute-2'] = [view('compute-2')]
        self.assertEqual([view('compute-2')],
                         self.api.query('ctx', 'snap-1'))

    def test_trimmed_on_its_host_asks_everywhere(self):
        self.agents.answers['accept', 'compute-1'] = view('compute-1')
        self.api.accept('ctx', CREATE)
        self.agents.answers['query', 'compute-2'] = [view('compute-2')]
        self.assertEqual([view('compute-2')],
                         self.api.query('ctx', 'snap-1'))
        self.assertEqual(['compute-1', 'compute-1', 'compute-2',
                          'compute-3'], self.asked())

    def test_its_host_does_not_answer(self):
        self.agents.answers['accept', 'compute-1'] = view('compute-1')
        self.api.accept('ctx', CREATE)
        self.agents.answers['query', 'compute-1'] = (
            oslo_messaging.MessagingTimeout('no reply'))
        self.assert_unavailable(lambda: self.api.query('ctx', 'snap-1'),
                                'agent of host compute-1 did not answer')

    def test_hosts_remembered_are_bounded(self):
        self.useFixture(fixtures.MockPatchObject(remote, 'REMEMBERED', 2))
        for number in range(3):
            request = objects.CreateRequest(
                volume_id='vol-1', snapshot_id='snap-%d' % number,
                new_file='new')
            self.agents.answers['accept', 'compute-1'] = view('compute-1')
            self.api.accept('ctx', request)
        self.assertEqual(['snap-1', 'snap-2'], list(self.api._hosts))


class TestBuildTier(base.TestCase):

    def setUp(self):
        super().setUp()
        self.useFixture(rpc_fixtures.FakeTransport())
        self.conf.config(dispatch='agents', agent_timeout=7,
                         agent_down_time=11, group='api')

    def test_wired(self):
        operations, listener = service.build_tier_operations()
        self.assertIsInstance(operations, remote.RemoteOperationsAPI)
        self.assertEqual('agents', operations._locator.name)
        self.assertEqual(7, operations._agents.timeout)
        self.assertEqual(11, operations._registry.down_time)
        self.assertIs(operations._registry, listener.registry)
        self.assertIs(listener.connected, operations._connected)

    def test_the_cinder_locator(self):
        self.conf.config(host_locator='cinder', group='api')
        operations, _ = service.build_tier_operations()
        self.assertEqual('cinder', operations._locator.name)

    def test_an_unknown_locator(self):
        self.conf.config(host_locator='nowhere', group='api')
        error = self.assertRaises(exception.DriverNotFound,
                                  service.build_tier_operations)
        self.assertIn("No host locator named 'nowhere'", error.message)
        self.assertIn('agents, cinder', error.message)

    def test_a_transport_url_that_cannot_work(self):
        rpc.cleanup()
        self.conf.config(transport_url='nosuchdriver://x/')
        error = self.assertRaises(exception.ConfigurationError,
                                  service.build_tier_operations)
        self.assertIn('cannot use [DEFAULT] transport_url', error.message)

    def test_the_wsgi_app_of_the_tier(self):
        self.conf.config(auth_strategy='noauth')
        application, runner = service.build_wsgi_app()
        self.assertIsInstance(runner, service._Tier)
        runner.start()
        self.addCleanup(runner.stop)
        self.assertTrue(runner.listener.connected.wait(10))

    def test_the_url_is_logged_without_its_password(self):
        self.assertEqual('rabbit://broker-1:5671,broker-2:5671/snapdriver',
                         service._safe_url(
                             'rabbit://u:SECRET@broker-1:5671,'
                             'u:SECRET@broker-2:5671/snapdriver'))
