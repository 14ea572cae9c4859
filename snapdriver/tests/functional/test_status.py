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

"""``snapdriver-status upgrade check``, the real command on real configs.

A good configuration (the libvirt driver on the test run's libvirtd, the
cinder reporter with service credentials, a synced journal, the test run's
RabbitMQ) passes every check, exit code 0; a bad one (libvirtd's socket
missing, no credentials, no journal, a policy rule that does not parse, a
broker port nobody listens on) fails where it should, exit code 2; the
fake driver is a warning, exit code 1. The tables go into the details.
"""

import os
import re
import socket
import subprocess
import sys

import fixtures
from testtools import content

from snapdriver.tests import base
from snapdriver.tests.functional import broker
from snapdriver.tests.functional import guest
from snapdriver.tests.functional import server

CREDENTIALS = {'auth_type': 'password',
               'auth_url': 'http://keystone.example.org/identity',
               'username': 'snapdriver', 'password': 'secret',
               'project_name': 'service', 'user_domain_name': 'Default',
               'project_domain_name': 'Default'}


def _closed_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class TestUpgradeCheck(base.FunctionalTestCase):

    def setUp(self):
        super().setUp()
        self.dir = self.useFixture(fixtures.TempDir()).path

    def check(self, name, sections, sync=True):
        config = os.path.join(self.dir, name + '.conf')
        sections.setdefault('database', {'connection': 'sqlite:///%s' % (
            os.path.join(self.dir, name + '.sqlite'))})
        server.write_config(config, sections)
        if sync:
            server.sync_journal(sections)
        result = subprocess.run(
            [sys.executable, '-m', 'snapdriver.cmd.status',
             '--config-file', config, 'upgrade', 'check'],
            capture_output=True, text=True, timeout=120)
        self.addDetail(name, content.text_content(result.stdout))
        sys.stderr.write('STATUS %s exit=%d\n%s'
                         % (name, result.returncode, result.stdout))
        return result

    @staticmethod
    def results(output):
        """{check: result} from the table."""
        found, check = {}, None
        for line in output.splitlines():
            line = line.strip('| ').strip()
            if line.startswith('Check: '):
                check = line[len('Check: '):]
            elif line.startswith('Result: '):
                found[check] = line[len('Result: '):]
        return found

    def test_a_good_configuration(self):
        uri = guest.libvirt_uri()
        url = broker.transport_url()
        if not uri or not url:
            self.skipTest("needs the test run's libvirtd and RabbitMQ "
                          "(tools/run-tests.sh)")
        result = self.check('good', {
            'DEFAULT': {'driver': 'libvirt', 'status_reporter': 'cinder',
                        'transport_url': url},
            'libvirt': {'connection_uri': uri},
            'cinder': dict(CREDENTIALS)})
        self.assertEqual(0, result.returncode, result.stdout + result.stderr)
        self.assertEqual(
            {'Driver': 'Success', 'Status reporter': 'Success',
             'Hypervisor': 'Success', 'Journal': 'Success',
             'Policy': 'Success', 'Message broker': 'Success'},
            self.results(result.stdout))
        # The table wraps lines anywhere.
        self.assertIn('answersat%s' % uri,
                      re.sub(r'[\s|]', '', result.stdout))

    def test_a_bad_configuration(self):
        policy_file = os.path.join(self.dir, 'policy.yaml')
        with open(policy_file, 'w') as f:
            f.write('"snapdriver:os-assisted-volume-snapshots:show": '
                    '"role:admin or"\n')
        result = self.check('bad', {
            'DEFAULT': {'driver': 'libvirt', 'status_reporter': 'cinder',
                        'transport_url': 'rabbit://guest:guest@127.0.0.1:'
                                         '%d/' % _closed_port()},
            'libvirt': {'connection_uri': 'qemu:///system?socket='
                                          '/nonexistent/libvirt-sock'},
            'oslo_policy': {'policy_file': policy_file}}, sync=False)
        self.assertEqual(2, result.returncode, result.stdout + result.stderr)
        self.assertEqual(
            {'Driver': 'Success', 'Status reporter': 'Warning',
             'Hypervisor': 'Failure', 'Journal': 'Failure',
             'Policy': 'Failure', 'Message broker': 'Failure'},
            self.results(result.stdout))
        text = ' '.join(result.stdout.replace('|', ' ').split())
        for words in ("[cinder] has no auth_type",
                      "/nonexistent/libvirt-sock",
                      "run 'snapdriver-manage db sync'",
                      'role:admin or', 'Connection refused'):
            self.assertIn(words, text)
        # Checking made no journal.
        self.assertFalse(os.path.exists(os.path.join(self.dir,
                                                     'bad.sqlite')))

    def test_the_fake_driver_is_a_warning(self):
        result = self.check('fake', {
            'DEFAULT': {'driver': 'fake', 'status_reporter': 'log'}})
        self.assertEqual(1, result.returncode, result.stdout + result.stderr)
        self.assertEqual(
            {'Driver': 'Warning', 'Status reporter': 'Warning',
             'Hypervisor': 'Success', 'Journal': 'Success',
             'Policy': 'Success', 'Message broker': 'Success'},
            self.results(result.stdout))

    def test_an_unknown_driver_is_a_failure(self):
        result = self.check('unknown', {
            'DEFAULT': {'driver': 'no-such', 'status_reporter': 'log'}})
        self.assertEqual(2, result.returncode)
        self.assertIn('no-such', result.stdout)
