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
             PROJECT_RESOURCE + '/{snapshot_id}': ['delete', 'get']},
            {path: sorted(methods) for path, methods in paths.items()})
        self.assertEqual('os-assisted-volume-snapshots', root.RESOURCE)

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
