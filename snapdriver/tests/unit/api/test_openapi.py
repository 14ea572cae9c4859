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

"""The OpenAPI document: built from the code, committed, served."""

import os

import jsonschema
import openapi_spec_validator
import yaml

from snapdriver.api.controllers import root
from snapdriver.api import faults
from snapdriver.api import microversion
from snapdriver.api import openapi
from snapdriver.api.schemas import assisted_volume_snapshots as schemas
from snapdriver.tests.unit.api import base

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))))
COMMITTED = os.path.join(TOP, 'doc', 'api', 'openapi.yaml')
RESOURCE = '/v2.1/os-assisted-volume-snapshots'
PROJECT_RESOURCE = '/v2.1/{project_id}/os-assisted-volume-snapshots'
AGENTS = '/v2.1/os-snapdriver-agents'
PROJECT_AGENTS = '/v2.1/{project_id}/os-snapdriver-agents'


class TestDocument(base.base.TestCase):

    def setUp(self):
        super().setUp()
        self.document = openapi.build()

    def test_committed_file_is_current(self):
        with open(COMMITTED, encoding='utf-8') as f:
            committed = f.read()
        self.assertEqual(openapi.to_yaml(), committed,
                         "doc/api/openapi.yaml is stale: run "
                         "tools/generate-openapi.py")
        self.assertEqual(self.document, yaml.safe_load(committed))

    def test_valid_openapi_3_1(self):
        self.assertEqual('3.1.0', self.document['openapi'])
        openapi_spec_validator.validate(self.document)

    def test_request_schemas_are_the_controllers(self):
        components = self.document['components']['schemas']
        self.assertEqual(schemas.create, components['CreateRequest'])
        self.assertEqual(schemas.delete_info, components['DeleteInfo'])
        for prefix in (RESOURCE, PROJECT_RESOURCE):
            post = self.document['paths'][prefix]['post']
            self.assertEqual(
                {'$ref': '#/components/schemas/CreateRequest'},
                post['requestBody']['content']['application/json']['schema'])
        parameter = self.document['components']['parameters']['DeleteInfo']
        self.assertEqual(('delete_info', 'query', True),
                         (parameter['name'], parameter['in'],
                          parameter['required']))
        self.assertEqual({'$ref': '#/components/schemas/DeleteInfo'},
                         parameter['content']['application/json']['schema'])

    def test_paths_and_methods(self):
        paths = self.document['paths']
        self.assertEqual(
            {'/': ['get'], '/v2.1': ['get'], '/healthcheck': ['get'],
             '/v2.1/openapi.json': ['get'],
             RESOURCE: ['post'],
             RESOURCE + '/{snapshot_id}': ['delete', 'get'],
             PROJECT_RESOURCE: ['post'],
             PROJECT_RESOURCE + '/{snapshot_id}': ['delete', 'get'],
             AGENTS: ['get'], PROJECT_AGENTS: ['get']},
            {path: sorted(methods) for path, methods in paths.items()})
        self.assertEqual('os-assisted-volume-snapshots', root.RESOURCE)
        self.assertEqual('os-snapdriver-agents', root.AGENTS)

    def validator(self, name):
        return jsonschema.Draft202012Validator(
            {'$ref': '#/components/schemas/%s' % name,
             'components': self.document['components']})

    def test_agents_schema(self):
        agents = self.validator('Agents')
        agent = {'host': 'compute-1', 'state': 'up',
                 'last_seen': '2026-01-02T03:04:05.000000Z',
                 'driver': 'libvirt', 'version': '1.0', 'volumes': 3}
        agents.validate({'agents': [agent, dict(agent, volumes=None,
                                                state='down')]})
        agents.validate({'agents': []})
        for wrong in (dict(agent, state='gone'), dict(agent, extra=1),
                      {k: v for k, v in agent.items() if k != 'volumes'}):
            self.assertRaises(jsonschema.ValidationError, agents.validate,
                              {'agents': [wrong]})
        for path in (AGENTS, PROJECT_AGENTS):
            get = self.document['paths'][path]['get']
            self.assertEqual(
                {'200', '400', '401', '403', '406', '411', '413', '503'},
                set(get['responses']))

    def test_an_operation_may_name_its_host(self):
        operation = self.validator('Operation')
        view = {'id': 'op', 'snapshot_id': 's', 'volume_id': 'v',
                'kind': 'create', 'state': 'queued', 'error': None,
                'chain': [], 'created_at': None}
        operation.validate(view)
        operation.validate(dict(view, host='compute-1'))
        self.assertRaises(jsonschema.ValidationError, operation.validate,
                          dict(view, host=None))
        self.assertNotIn('host', self.document['components']['schemas'][
            'Operation']['required'])

    def test_503_says_what_cannot_be_reached(self):
        description = self.document['components']['responses'][
            'ServiceUnavailable']['description']
        for word in ('identity service', 'agent', 'message broker',
                     'Cinder'):
            self.assertIn(word, description)

    def test_every_error_response_has_the_fault_shape(self):
        components = self.document['components']
        for path, methods in self.document['paths'].items():
            for method, operation in methods.items():
                for code, response in operation['responses'].items():
                    if int(code) < 400:
                        self.assertIn('headers', response)
                        continue
                    name = response['$ref'].rsplit('/', 1)[1]
                    response = components['responses'][name]
                    schema = components['schemas'][
                        response['content']['application/json'][
                            'schema']['$ref'].rsplit('/', 1)[1]]
                    fault = {faults.name_for(int(code)): {
                        'code': int(code), 'message': 'm'}}
                    jsonschema.validate(fault, schema)
                    self.assertRaises(
                        jsonschema.ValidationError, jsonschema.validate,
                        {'error': {'code': int(code), 'message': 'm'}},
                        schema)
                    self.assertEqual(
                        {'X-OpenStack-Nova-API-Version',
                         'OpenStack-API-Version', 'Vary',
                         'X-OpenStack-Request-Id', 'X-Compute-Request-Id'},
                        set(response['headers']))

    def test_microversion_headers_documented(self):
        for path, methods in self.document['paths'].items():
            for operation in methods.values():
                refs = {p['$ref'] for p in operation['parameters']}
                self.assertIn('#/components/parameters/NovaAPIVersion', refs)
                self.assertIn('#/components/parameters/OpenStackAPIVersion',
                              refs)
        version = self.document['components']['schemas']['Version']
        self.assertEqual(
            [microversion.to_str(microversion.MAX_VERSION)],
            version['properties']['version']['enum'])


class TestServed(base.ApiTestCase):

    def test_the_agents_answer_is_documented(self):
        document = openapi.build()
        validator = jsonschema.Draft202012Validator(
            {'$ref': '#/components/schemas/Agents',
             'components': document['components']})
        for path in ('/v2.1/os-snapdriver-agents',
                     '/v2.1/p1/os-snapdriver-agents'):
            validator.validate(self.app.get(path, headers=base.ADMIN).json)

    def test_served_without_a_token(self):
        response = self.app.get('/v2.1/openapi.json')
        self.assertEqual('application/json', response.content_type)
        self.assertEqual(openapi.build(), response.json)
        self.assertEqual('2.1',
                         response.headers['X-OpenStack-Nova-API-Version'])

    def test_only_get(self):
        response = self.app.post('/v2.1/openapi.json', status=405)
        self.assert_fault(response, 405, 'badMethod')
        self.assertEqual('GET', response.headers['Allow'])

    def test_nothing_below_it(self):
        response = self.app.get('/v2.1/openapi.json/x', status=401)
        self.assert_fault(response, 401, 'unauthorized')
        response = self.app.get('/v2.1/openapi.json/x', status=404,
                                headers=base.ADMIN)
        self.assert_fault(response, 404, 'itemNotFound')
