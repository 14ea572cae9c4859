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

"""One process per journal, with real processes.

A snapdriver-api with the fake driver holds its journal; a second
snapdriver-api and a snapdriver-agent given the same journal refuse to
start, naming the holder, while the first goes on serving. Once the holder
has ended (SIGTERM, or SIGKILL: the kernel drops the lock with the
process), the next one starts on the same journal.
"""

import os
import signal
import socket
import subprocess

import fixtures

from snapdriver.tests import base
from snapdriver.tests.functional import region
from snapdriver.tests.functional import server


class TestOneProcessPerJournal(base.FunctionalTestCase):

    def setUp(self):
        super().setUp()
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.journal = os.path.join(self.dir, 'journal.sqlite')
        self.database = {'database': {
            'connection': 'sqlite:///' + self.journal}}

    def _config(self, name, sections):
        path = os.path.join(self.dir, name)
        server.write_config(path, sections)
        server.sync_journal(sections)
        return path

    def _api_config(self, name):
        return self._config(name, dict(self.database, **{
            'DEFAULT': {'driver': 'fake', 'status_reporter': 'log',
                        'auth_strategy': 'noauth',
                        'use_stderr': True},
            'api': {'bind_host': '127.0.0.1',
                    'bind_port': server.free_port()},
            'oslo_policy': {'policy_file': os.path.join(self.dir, 'p.yaml')},
        }))

    def _holder(self, process, script):
        return 'pid %d on host %s (%s), since ' % (
            process.pid, socket.gethostname(), os.path.basename(script[0]))

    def _refused(self, command, config):
        done = subprocess.run(
            command + ['--config-file', config], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            timeout=server.START_TIMEOUT)
        return done.returncode, done.stdout.decode('utf-8', 'replace')

    def test_a_second_process_on_the_journal_refuses_to_start(self):
        first = server.ApiServerFixture(extra_conf=self.database)
        first.setUp()
        stopped = []
        self.addCleanup(lambda: stopped or first.cleanUp())
        holder = self._holder(first.process, server.console_script())

        code, output = self._refused(server.console_script(),
                                     self._api_config('second.conf'))
        self.assertEqual(1, code, output)
        self.assertIn('snapdriver-api: cannot start: the operation journal '
                      '%s is in use by another process: %s'
                      % (self.journal, holder), output)
        self.assertIn('(lock file %s.lock)' % self.journal, output)

        # An agent (it fails before it would look for the broker).
        agent_config = self._config('agent.conf', dict(self.database, **{
            'DEFAULT': {'driver': 'fake', 'status_reporter': 'log',
                        'host': 'h1', 'use_stderr': True,
                        'transport_url': 'rabbit://u:p@127.0.0.1:9/'}}))
        code, output = self._refused(region.agent_script(), agent_config)
        self.assertEqual(1, code, output)
        self.assertIn('snapdriver-agent: cannot start: the operation journal '
                      '%s is in use by another process: %s'
                      % (self.journal, holder), output)

        # The holder was not disturbed.
        self.assertEqual(200, server.request(first.port, 'GET',
                                             '/healthcheck').status)

        # Once it has stopped (SIGTERM), the journal is free.
        first.cleanUp()
        stopped.append(True)
        again = self.useFixture(server.ApiServerFixture(
            extra_conf=self.database))
        self.assertEqual(200, server.request(again.port, 'GET',
                                             '/healthcheck').status)

    def test_the_lock_goes_with_a_killed_process(self):
        config = self._api_config('first.conf')
        port = int(open(config).read().split('bind_port = ')[1].split()[0])
        with open(os.path.join(self.dir, 'first.log'), 'wb') as log:
            first = subprocess.Popen(
                server.console_script() + ['--config-file', config],
                stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT)
        self.addCleanup(first.wait)
        self.addCleanup(first.kill)
        self.assertEqual('healthy', server.wait_healthy(
            first, port, server.START_TIMEOUT))
        code, output = self._refused(server.console_script(),
                                     self._api_config('second.conf'))
        self.assertEqual(1, code, output)
        self.assertIn(self._holder(first, server.console_script()), output)

        first.send_signal(signal.SIGKILL)
        first.wait()
        after = self.useFixture(server.ApiServerFixture(
            extra_conf=self.database))
        self.assertEqual(200, server.request(after.port, 'GET',
                                             '/healthcheck').status)
