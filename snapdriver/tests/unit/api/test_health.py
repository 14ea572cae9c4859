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

"""/healthcheck: oslo.middleware's Healthcheck with snapdriver's checks."""

import os
import socket
import threading

import fixtures
import webtest

from snapdriver.api import app
from snapdriver import exception
from snapdriver.operations import remote
from snapdriver.tests.unit.api import base
from snapdriver.tests.unit import rpc_fixtures

MEMBER = {'X-Auth-Token': 'demo:p1'}


class TestHealthcheck(base.ApiTestCase):

    def setUp(self):
        super().setUp()
        # The detailed view names the platform, which the first time
        # runs uname.
        self.useFixture(fixtures.MockPatch('platform.platform',
                                           return_value='Linux'))

    def fail_driver(self):
        def refuse():
            raise exception.OperationFailed(
                reason="libvirtd does not answer at qemu:///system: "
                "Failed to connect socket")
        self.driver.check_health = refuse

    def test_healthy(self):
        answer = self.app.get('/healthcheck')
        self.assertEqual(200, answer.status_int)
        self.assertEqual(['hypervisor: OK', 'journal: OK',
                          'message broker: not used by this process'],
                         [line for line in answer.text.splitlines()
                          if ':' in line])

    def test_an_unreachable_hypervisor_is_a_503_saying_so(self):
        self.fail_driver()
        answer = self.app.get('/healthcheck', status=503)
        self.assertIn('hypervisor: failing', answer.text)
        # The public view has no details.
        self.assertNotIn('libvirtd', answer.text)
        answer = self.app.get('/healthcheck', headers={
            'Accept': 'application/json'}, status=503)
        self.assertFalse(answer.json['detailed'])
        self.assertIn('hypervisor: failing', answer.json['reasons'])

    def test_a_journal_that_takes_no_write_is_a_503(self):
        def read_only():
            raise OSError('attempt to write a readonly database')
        self.manager.journal.check_writable = read_only
        answer = self.app.get('/healthcheck', status=503)
        self.assertIn('journal: failing', answer.text)
        # For real: the journal's write goes to the database.
        self.manager.journal.engine.dispose()

    def test_the_detailed_view_is_for_admins(self):
        self.fail_driver()
        answer = self.app.get('/healthcheck', headers=dict(
            base.ADMIN, Accept='application/json'), status=503)
        self.assertTrue(answer.json['detailed'])
        [driver] = [r for r in answer.json['reasons']
                    if r['reason'] == 'hypervisor: failing']
        self.assertEqual('OperationFailed: libvirtd does not answer at '
                         'qemu:///system: Failed to connect socket',
                         driver['details'])
        self.assertIn('threads', answer.json)
        answer = self.app.get('/healthcheck', headers=MEMBER, status=403)
        self.assertIn('snapdriver:healthcheck:detail', answer.text)

    def test_draining_by_file(self):
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'drain')
        self.conf.config(group='healthcheck', disable_by_file_path=path)
        self.assertEqual(200, self.app.get('/healthcheck').status_int)
        open(path, 'w').close()
        answer = self.app.get('/healthcheck', status=503)
        self.assertIn('DISABLED BY FILE', answer.text)


class TestTierHealth(base.base.TestCase):
    """An API tier: the broker is what it depends on."""

    def setUp(self):
        super().setUp()
        self.useFixture(rpc_fixtures.FakeTransport())
        self.useFixture(fixtures.MockPatch('platform.platform',
                                           return_value='Linux'))

    def app_for(self, connected):
        self.conf.config(auth_strategy='noauth')
        operations = remote.RemoteOperationsAPI(
            locator=None, agents=None, registry=None, connected=connected)
        return webtest.TestApp(app.setup_app(operations))

    def listening_port(self):
        server = socket.socket()
        server.bind(('127.0.0.1', 0))
        server.listen()
        self.addCleanup(server.close)
        return server.getsockname()[1]

    def test_the_broker_answers(self):
        connected = threading.Event()
        connected.set()
        self.conf.config(transport_url='rabbit://u:p@127.0.0.1:%d/'
                         % self.listening_port())
        answer = self.app_for(connected).get('/healthcheck')
        self.assertIn('message broker: OK', answer.text)
        self.assertIn('hypervisor: not used by this process', answer.text)

    def test_not_connected_yet_or_unreachable(self):
        self.conf.config(transport_url='rabbit://u:p@127.0.0.1:%d/'
                         % self.listening_port())
        client = self.app_for(threading.Event())
        answer = client.get('/healthcheck', headers=dict(
            base.ADMIN, Accept='application/json'), status=503)
        [broker] = [r for r in answer.json['reasons']
                    if r['reason'] == 'message broker: failing']
        self.assertIn('has not reached the message broker', broker['details'])
        # Connected once, but the broker went away.
        connected = threading.Event()
        connected.set()
        port = self.listening_port()
        self.conf.config(transport_url='rabbit://u:p@127.0.0.1:%d/' % port)
        client = self.app_for(connected)
        self.conf.config(transport_url='rabbit://u:p@127.0.0.1:1/')
        answer = client.get('/healthcheck', headers=dict(
            base.ADMIN, Accept='application/json'), status=503)
        [broker] = [r for r in answer.json['reasons']
                    if r['reason'] == 'message broker: failing']
        self.assertIn('the message broker does not answer: 127.0.0.1:1',
                      broker['details'])
