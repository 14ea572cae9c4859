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

"""An API test base: the real WSGI stack over webtest, fake driver."""

import json

import webtest

from snapdriver.api import app
from snapdriver.drivers import loader
from snapdriver.operations import api as operations_api
from snapdriver.operations import manager as manager_mod
from snapdriver.tests import base
from snapdriver.tests import contract

ADMIN = {'X-Auth-Token': 'admin:p1'}
VOLUME = 'e3b0c442-98fc-4c14-9afb-f4c8996fb924'
CHAIN = ['volume-1.s2', 'volume-1.s1', 'volume-1']


class ApiTestCase(base.TestCase):

    driver_name = 'fake'

    def setUp(self):
        super().setUp()
        self.conf.config(auth_strategy='noauth')
        self.driver = loader.load(self.driver_name)
        if self.driver_name == 'fake':
            self.driver.add_guest({'name': 'vm1', 'disks': [
                {'target': 'vda', 'serial': VOLUME, 'directory': '/share',
                 'chain': list(CHAIN),
                 'files': {'new': {'format': 'qcow2',
                                   'backing': 'volume-1.s2'}}}]})
        self.reporter = contract.RecordingReporter()
        self.manager = manager_mod.OperationManager(self.driver,
                                                    self.reporter)
        self.addCleanup(self.manager.stop)
        self.app = webtest.TestApp(app.setup_app(
            operations_api.LocalOperationsAPI(self.manager)))

    def create_body(self, **create_info):
        info = {'snapshot_id': 'snap-1', 'type': 'qcow2', 'new_file': 'new'}
        info.update(create_info)
        return {'snapshot': {'volume_id': VOLUME, 'create_info': info}}

    def post(self, body, headers=ADMIN, status=200, project=None, **kwargs):
        url = '/v2.1/%sos-assisted-volume-snapshots' % (
            project + '/' if project else '')
        return self.app.post_json(url, body, headers=headers, status=status,
                                  **kwargs)

    def delete(self, delete_info, snapshot_id='snap-1', headers=ADMIN,
               status=204, extra=''):
        if not isinstance(delete_info, str):
            delete_info = json.dumps(delete_info)
        return self.app.delete(
            '/v2.1/os-assisted-volume-snapshots/%s?delete_info=%s%s'
            % (snapshot_id, delete_info, extra),
            headers=headers, status=status)

    def assert_fault(self, response, code, name, *words):
        self.assertEqual(code, response.status_int)
        self.assertEqual('application/json', response.content_type)
        body = response.json
        self.assertEqual([name], list(body))
        self.assertEqual(code, body[name]['code'])
        for word in words:
            self.assertIn(word, body[name]['message'])
        self.assertNotIn('Traceback', response.text)
