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

"""GET /v2.1[/{project_id}]/os-snapdriver-agents."""

from unittest import mock

import fixtures
import webtest

from snapdriver.api import app
from snapdriver import exception
from snapdriver.tests.unit.api import base
from snapdriver import version

PATH = '/v2.1/os-snapdriver-agents'
MEMBER = {'X-Auth-Token': 'someone:p1'}


class TestLocal(base.ApiTestCase):
    """A single-process snapdriver lists itself."""

    def setUp(self):
        super().setUp()
        self.conf.config(host='compute-7')

    def test_lists_this_host(self):
        response = self.app.get(PATH, headers=base.ADMIN)
        [agent] = response.json['agents']
        self.assertEqual(
            {'host': 'compute-7', 'state': 'up', 'driver': 'fake',
             'version': version.version_string(), 'volumes': 1},
            {key: value for key, value in agent.items()
             if key != 'last_seen'})
        self.assertRegex(agent['last_seen'],
                         r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$')

    def test_with_the_project(self):
        self.app.get('/v2.1/p1/os-snapdriver-agents', headers=base.ADMIN)
        response = self.app.get('/v2.1/p2/os-snapdriver-agents',
                                headers=base.ADMIN, status=400)
        self.assert_fault(response, 400, 'badRequest', "'p2'", "'p1'")

    def test_admin_only(self):
        response = self.app.get(PATH, headers=MEMBER, status=403)
        self.assert_fault(response, 403, 'forbidden',
                          'snapdriver:os-snapdriver-agents:index')
        response = self.app.get(PATH, status=401)
        self.assert_fault(response, 401, 'unauthorized')

    def test_the_policy_can_be_opened(self):
        self.conf.config(policy_file=self.policy_file(
            '{"snapdriver:os-snapdriver-agents:index": "role:member"}'),
            group='oslo_policy')
        self.app.get(PATH, headers=MEMBER)

    def policy_file(self, text):
        path = self.useFixture(fixtures.TempDir()).join('p.json')
        with open(path, 'w') as f:
            f.write(text)
        return path

    def test_only_get(self):
        for method in ('post', 'put', 'delete'):
            response = getattr(self.app, method)(PATH, headers=base.ADMIN,
                                                 status=405)
            self.assert_fault(response, 405, 'badMethod')
            self.assertEqual('GET', response.headers['Allow'])

    def test_nothing_below_it(self):
        response = self.app.get(PATH + '/compute-7', headers=base.ADMIN,
                                status=404)
        self.assert_fault(response, 404, 'itemNotFound')

    def test_a_snapshot_id_named_like_the_resource(self):
        # /v2.1/<resource>/<id> is an item of the resource, not the agents
        # of a project named like it.
        response = self.app.get(
            '/v2.1/os-assisted-volume-snapshots/os-snapdriver-agents',
            headers=base.ADMIN, status=404)
        self.assert_fault(response, 404, 'itemNotFound',
                          'snapshot os-snapdriver-agents')
        self.app.delete(
            '/v2.1/os-assisted-volume-snapshots/os-snapdriver-agents'
            '?delete_info={}', headers=base.ADMIN, status=400)

    def test_a_driver_that_cannot_list(self):
        self.useFixture(fixtures.MockPatchObject(
            self.driver, 'attached_volumes',
            side_effect=exception.OperationFailed(reason='libvirtd gone')))
        [agent] = self.app.get(PATH, headers=base.ADMIN).json['agents']
        self.assertIsNone(agent['volumes'])


class TestTier(base.base.TestCase):
    """The API tier lists what its registry knows."""

    def test_lists_the_registry(self):
        self.conf.config(auth_strategy='noauth')
        agents = [{'host': 'compute-1', 'state': 'down',
                   'last_seen': '2026-01-02T03:04:05.000000Z',
                   'driver': 'libvirt', 'version': '1.0', 'volumes': 3}]
        operations = mock.Mock()
        operations.health_checks.return_value = {}
        operations.agents.return_value = agents
        client = webtest.TestApp(app.setup_app(operations))
        response = client.get(PATH, headers=base.ADMIN)
        self.assertEqual({'agents': agents}, response.json)
        context = operations.agents.call_args.args[0]
        self.assertEqual(('admin', 'p1'),
                         (context.user_id, context.project_id))
