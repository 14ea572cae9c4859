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

"""snapdriver-manage: the command line and ``agents list``."""

import io
import logging
import time

import fixtures
from oslo_config import cfg

from snapdriver.agent import service as agent_service
from snapdriver.cmd import manage
from snapdriver.conf import CONF
from snapdriver.tests import base
from snapdriver.tests.unit.agent import fakes
from snapdriver.tests.unit import rpc_fixtures


class TestCommandLine(base.TestCase):

    def parse(self, *argv):
        conf = cfg.ConfigOpts()
        conf.register_cli_opt(manage.category_opt)
        conf(list(argv), project='snapdriver', default_config_files=[])
        return conf.category

    def test_agents_list(self):
        category = self.parse('agents', 'list')
        self.assertEqual(('agents', manage.AgentCommands, 'list', 3.0),
                         (category.name, category.command_class,
                          category.action_name, category.wait))
        self.assertEqual(1.5, self.parse('agents', 'list', '--wait',
                                         '1.5').wait)

    def test_an_action_is_required(self):
        stderr = self.useFixture(fixtures.MockPatch(
            'sys.stderr', io.StringIO())).mock
        self.assertRaises(SystemExit, self.parse, 'agents')
        self.assertIn('<action>', stderr.getvalue())

    def test_run(self):
        calls = []
        self.useFixture(fixtures.MockPatchObject(
            manage.AgentCommands, 'list',
            manage.args('--wait', type=float, default=3.0)(
                lambda self, wait: calls.append(wait) or 7)))
        self.assertEqual(7, manage.run(self.parse('agents', 'list',
                                                  '--wait', '0.5')))
        self.assertEqual([0.5], calls)

    def test_table(self):
        self.assertEqual('host  volumes\n'
                         'hv1   -\n'
                         'hv22  10',
                         manage._table(('host', 'volumes'),
                                       [('hv1', None), ('hv22', 10)]))


class TestAgentsList(base.TestCase):

    def setUp(self):
        super().setUp()
        self.useFixture(rpc_fixtures.FakeTransport())
        self.stdout = self.useFixture(fixtures.MockPatch(
            'sys.stdout', io.StringIO())).mock
        self.useFixture(fixtures.FakeLogger())

    def start_agent(self, host, volumes):
        agent = agent_service.Agent(fakes.FakeManager(volumes=volumes),
                                    host, 60)
        agent.start()
        self.addCleanup(agent.stop)
        return agent

    def test_lists_the_agents_that_report(self):
        self.start_agent('hv2', ['vol-1', 'vol-2'])
        self.start_agent('hv1', None)
        # Their first reports went to nobody: the command asks again.
        time.sleep(0.2)
        self.assertEqual(0, manage.AgentCommands().list(wait=1))
        lines = self.stdout.getvalue().splitlines()
        self.assertEqual(['host', 'state', 'last', 'seen', 'driver',
                          'version', 'volumes'], lines[0].split())
        self.assertEqual([['hv1', 'up', 'fake', '-'],
                          ['hv2', 'up', 'fake', '2']],
                         [[line.split()[i] for i in (0, 1, 3, 5)]
                          for line in lines[1:]])

    def test_no_agents(self):
        self.assertEqual(0, manage.AgentCommands().list(wait=0.1))
        self.assertEqual('No agent reported within 0.1 s.\n',
                         self.stdout.getvalue())

    def test_a_broker_that_cannot_be_reached(self):
        stderr = self.useFixture(fixtures.MockPatch(
            'sys.stderr', io.StringIO())).mock
        self.useFixture(fixtures.MockPatchObject(manage, 'CONNECT_TIMEOUT',
                                                 0.2))
        self.useFixture(fixtures.MockPatch(
            'snapdriver.agent.registry.ReportListener._connect'))
        self.assertEqual(1, manage.AgentCommands().list(wait=0.1))
        self.assertIn("the message broker ([DEFAULT] transport_url) cannot "
                      "be reached", stderr.getvalue())


class TestMain(base.TestCase):
    """main() on the global configuration, as the console script runs."""

    def test_agents_list(self):
        self.useFixture(rpc_fixtures.FakeTransport())
        self.useFixture(fixtures.MockPatch('oslo_log.log.setup'))
        root = logging.getLogger()
        self.addCleanup(root.setLevel, root.level)
        amqp = logging.getLogger('amqp')
        self.addCleanup(amqp.setLevel, amqp.level)
        calls = []
        self.useFixture(fixtures.MockPatchObject(
            manage.AgentCommands, 'list', manage.args(
                '--wait', type=float, default=3.0)(
                    lambda self, wait: calls.append(wait) or 0)))
        CONF.clear()
        self.addCleanup(self._unregister)
        self.assertEqual(0, manage.main(['agents', 'list', '--wait',
                                         '0.25']))
        self.assertEqual([0.25], calls)
        # The commands print; the log only warns.
        self.assertEqual(logging.WARNING, root.level)

    @staticmethod
    def _unregister():
        CONF.clear()
        CONF.unregister_opt(manage.category_opt)
