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

"""snapdriver-api as an attack surface: slow clients and noauth.

The console script is started as a process (fake driver) and attacked over
real loopback sockets.
"""

import os
import socket
import time

import fixtures
from testtools import content

from snapdriver.tests import base
from snapdriver.tests.functional import server

RESOURCE = b'/v2.1/os-assisted-volume-snapshots'
HALF_REQUESTS = 300
# Short, so that the test sees the idle connections closed.
READ_TIMEOUT = 3


def _threads(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('Threads:'):
                return int(line.split()[1])
    raise AssertionError('no Threads line for %d' % pid)


class SlowClientsTest(base.FunctionalTestCase):

    def test_half_requests_hold_no_thread_and_are_closed(self):
        api = self.useFixture(server.ApiServerFixture(
            inventory={'guests': []},
            extra_conf={'api': {'client_socket_timeout': READ_TIMEOUT}}))
        self.addOnException(lambda exc_info: self.addDetail(
            'snapdriver-api-log', content.text_content(api.log_text())))
        idle_threads = _threads(api.process.pid)
        halves = []
        self.addCleanup(lambda: [s.close() for s in halves])
        for i in range(HALF_REQUESTS):
            s = socket.create_connection(('127.0.0.1', api.port), timeout=10)
            halves.append(s)
            if i % 2:
                # Half a head.
                s.sendall(b'POST ' + RESOURCE + b' HTTP/1.1\r\n'
                          b'Host: localhost\r\nX-Auth-Token: admin:admin\r\n')
            else:
                # A whole head, half a body.
                s.sendall(b'POST ' + RESOURCE + b' HTTP/1.1\r\n'
                          b'Host: localhost\r\nX-Auth-Token: admin:admin\r\n'
                          b'Content-Type: application/json\r\n'
                          b'Content-Length: 100\r\n\r\n{"snapshot": ')
        opened = time.monotonic()
        # A normal request is answered at once: no worker is held by the
        # half requests (a correctness bound, not a benchmark).
        started = time.monotonic()
        answer = server.request(api.port, 'GET', '/healthcheck', timeout=1)
        answered_in = time.monotonic() - started
        self.assertEqual(200, answer.status, answer)
        # The server did not start a thread per connection.
        threads = _threads(api.process.pid)
        self.assertLess(threads, idle_threads + 20,
                        '%d threads with %d half requests open (%d idle)'
                        % (threads, HALF_REQUESTS, idle_threads))
        # Every half request is closed once idle for the read timeout
        # (the server looks for idle connections every second or so).
        closed = 0
        for s in halves:
            s.settimeout(READ_TIMEOUT + 10)
            try:
                data = s.recv(65536)
            except ConnectionResetError:
                data = b''
            except socket.timeout:
                continue
            if data == b'':
                closed += 1
        all_closed_in = time.monotonic() - opened
        self.addDetail('measured', content.text_content(
            'normal request answered in %.3fs with %d half requests open; '
            'threads %d (idle %d); %d of %d half requests closed %.1fs '
            'after they were opened (read timeout %ds)'
            % (answered_in, HALF_REQUESTS, threads, idle_threads, closed,
               HALF_REQUESTS, all_closed_in, READ_TIMEOUT)))
        self.assertEqual(HALF_REQUESTS, closed)
        # And the server still serves.
        self.assertEqual(200, server.request(
            api.port, 'GET', '/healthcheck', timeout=5).status)


class NoAuthBindTest(base.FunctionalTestCase):

    def config(self, **api):
        tmp = self.useFixture(fixtures.TempDir()).path
        path = os.path.join(tmp, 'snapdriver.conf')
        api.setdefault('bind_port', server.free_port())
        server.write_config(path, {
            'DEFAULT': {'driver': 'fake', 'status_reporter': 'log',
                        'auth_strategy': 'noauth'},
            'api': api,
            'database': {'connection': 'sqlite:///%s/journal.sqlite' % tmp}})
        return path

    def test_noauth_refuses_a_remote_address(self):
        for host in ('0.0.0.0', '::'):
            code, output = server.run_to_exit(self.config(bind_host=host))
            self.addDetail('output %s' % host, content.text_content(output))
            self.assertEqual(1, code)
            self.assertIn('cannot start: auth_strategy = noauth', output)
            self.assertIn('bind_host %s is not a loopback address' % host,
                          output)
            self.assertIn('noauth_allow_remote = true', output)

    def test_noauth_on_a_remote_address_when_allowed(self):
        api = self.useFixture(server.ApiServerFixture(
            inventory={'guests': []},
            extra_conf={'api': {'bind_host': '0.0.0.0',
                                'noauth_allow_remote': True}}))
        self.assertEqual(200, server.request(
            api.port, 'GET', '/healthcheck').status)

    def test_noauth_on_a_loopback_name(self):
        api = self.useFixture(server.ApiServerFixture(
            inventory={'guests': []},
            extra_conf={'api': {'bind_host': 'localhost'}}))
        self.assertEqual(200, server.request(
            api.port, 'GET', '/healthcheck').status)


class LogInjectionTest(base.FunctionalTestCase):

    def test_request_values_cannot_forge_log_lines(self):
        api = self.useFixture(server.ApiServerFixture(
            inventory={'guests': []}))
        forged = ('2026-01-01 00:00:00.000 1 ERROR snapdriver FORGED-%s'
                  % os.getpid())
        for path in ('/v2.1/os-assisted-volume-snapshots/x%0A' +
                     forged.replace(' ', '%20'),
                     '/nothing%0D%0A' + forged.replace(' ', '%20') +
                     '%1B%5B2J'):
            server.request(api.port, 'GET', path,
                           headers={'X-Auth-Token': 'admin:admin'})
        server.request(api.port, 'GET', '/healthcheck')
        text = api.log_text()
        self.addDetail('snapdriver-api-log', content.text_content(text))
        lines = text.splitlines()
        self.assertEqual([], [line for line in lines
                              if line.startswith(forged[:30])])
        self.assertNotIn('\x1b', text)
        # The values are there, escaped.
        self.assertIn('x\\n' + forged, text)
        self.assertIn('/nothing\\r\\n' + forged + '\\x1b[2J', text)
