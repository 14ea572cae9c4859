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

"""The resource over the whole WSGI stack (webtest), fake driver."""

import fixtures

from snapdriver.api import microversion
from snapdriver.tests.unit.api import base


class TestCreate(base.ApiTestCase):

    def test_create_answers_and_runs(self):
        response = self.post(self.create_body())
        self.assertEqual({'snapshot': {'id': None, 'volumeId': base.VOLUME}},
                         response.json)
        self.assertTrue(self.manager.wait_idle(10))
        self.assertEqual(['new'] + base.CHAIN,
                         self.driver.locate_disk(base.VOLUME).names)
        self.assertEqual([('snap-1', 'creating', '90%')],
                         self.reporter.reports)

    def test_create_echoes_id(self):
        response = self.post(self.create_body(id='abc'))
        self.assertEqual('abc', response.json['snapshot']['id'])

    def test_with_project_segment(self):
        self.post(self.create_body(), project='p1')

    def test_project_mismatch(self):
        response = self.post(self.create_body(), project='p2', status=400)
        self.assert_fault(response, 400, 'badRequest', "'p2'", "'p1'")

    def test_schema_errors_name_field_and_value(self):
        cases = [
            ({}, 'snapshot', 'required'),
            ({'snapshot': []}, 'snapshot', 'is not of type'),
            (self.create_body(type='qcow3'), 'snapshot.create_info.type',
             "'qcow3'"),
            (self.create_body(new_file=''), 'snapshot.create_info.new_file',
             "''"),
            (self.create_body(extra=1), 'snapshot.create_info', "'extra'"),
            (dict(self.create_body(), more=1), '(body)', "'more'"),
            ({'snapshot': {'volume_id': base.VOLUME}}, 'snapshot.create_info',
             'required'),
        ]
        for body, field, word in cases:
            response = self.post(body, status=400)
            self.assert_fault(response, 400, 'badRequest', field, word)
        self.assertEqual([], self.reporter.reports)

    def test_chain_rule_refusals_are_400s(self):
        cases = [
            (self.create_body(new_file='../x'), "Invalid new_file '../x'"),
            (self.create_body(new_file='missing'), 'does not exist'),
            (self.create_body(new_file='volume-1.s1'), 'already part'),
        ]
        for body, words in cases:
            self.assert_fault(self.post(body, status=400), 400, 'badRequest',
                              words)
        body = self.create_body()
        body['snapshot']['volume_id'] = 'unknown-volume'
        self.assert_fault(self.post(body, status=400), 400, 'badRequest',
                          'unknown-volume', 'not attached')

    def test_malformed_bodies(self):
        for raw, words in ((b'{', 'not JSON'),
                           (b'\xff\xfe', 'not valid UTF-8'),
                           (b'[]', 'is not of type')):
            response = self.app.post(
                '/v2.1/os-assisted-volume-snapshots', raw, headers=dict(
                    base.ADMIN, **{'Content-Type': 'application/json'}),
                status=400)
            self.assert_fault(response, 400, 'badRequest', words)

    def test_wrong_content_type(self):
        response = self.app.post(
            '/v2.1/os-assisted-volume-snapshots', b'a=b',
            headers=dict(base.ADMIN, **{'Content-Type': 'text/plain'}),
            status=415)
        self.assert_fault(response, 415, 'badMediaType', 'text/plain')

    def test_deeply_nested_body(self):
        response = self.app.post(
            '/v2.1/os-assisted-volume-snapshots',
            b'[' * 3000 + b']' * 3000,
            headers=dict(base.ADMIN, **{'Content-Type': 'application/json'}),
            status=400)
        self.assert_fault(response, 400, 'badRequest', 'nested too deeply')

    def test_body_too_large(self):
        body = self.create_body(new_file='x' * 70000)
        self.assert_fault(self.post(body, status=413), 413, 'overLimit')


class TestDelete(base.ApiTestCase):

    def info(self, file_to_merge, merge_target_file, **extra):
        info = {'volume_id': base.VOLUME, 'type': 'qcow2',
                'file_to_merge': file_to_merge,
                'merge_target_file': merge_target_file}
        info.update(extra)
        return info

    def test_commit(self):
        response = self.delete(self.info('volume-1.s1', 'volume-1'))
        self.assertEqual(b'', response.body)
        self.assertTrue(self.manager.wait_idle(10))
        self.assertEqual(['volume-1.s2', 'volume-1'],
                         self.driver.locate_disk(base.VOLUME).names)
        self.assertEqual([('snap-1', 'deleting', '90%')],
                         self.reporter.reports)

    def test_pull_encoded_as_novaclient_sends_it(self):
        # novaclient pastes json.dumps() into the URL; the HTTP library
        # percent-encodes braces, quotes and spaces and leaves ':' and ','.
        raw = ('%7B%22volume_id%22: %22' + base.VOLUME + '%22, %22type%22: '
               '%22qcow2%22, %22file_to_merge%22: null, '
               '%22merge_target_file%22: null%7D').replace(' ', '%20')
        self.delete(raw)
        self.assertTrue(self.manager.wait_idle(10))
        self.assertEqual(['volume-1.s2'],
                         self.driver.locate_disk(base.VOLUME).names)

    def test_bad_delete_info(self):
        cases = [
            ('', 'delete_info', 'not JSON'),
            ('{', 'delete_info', 'not JSON'),
            ('[1]', 'delete_info', 'not a JSON object'),
            ('"x"', 'delete_info', 'not a JSON object'),
            ({'type': 'qcow2'}, 'volume_id', 'required'),
            (self.info(None, None, type='raw'), 'type', "'raw'"),
            (self.info(None, None, extra=1), 'field delete_info', "'extra'"),
            (self.info(5, None), 'file_to_merge', '5'),
            (self.info('nope', None), 'nope', 'not in the backing chain'),
            (self.info('volume-1.s1', 'volume-1.s2'),
             'not the image directly'),
        ]
        for info, *words in cases:
            self.assert_fault(self.delete(info, status=400), 400,
                              'badRequest', *words)
        self.assertEqual([], self.reporter.reports)

    def test_missing_or_repeated_delete_info(self):
        response = self.app.delete('/v2.1/os-assisted-volume-snapshots/s',
                                   headers=base.ADMIN, status=400)
        self.assert_fault(response, 400, 'badRequest', 'delete_info',
                          'required')
        response = self.delete(self.info(None, None), status=400,
                               extra='&delete_info={}')
        self.assert_fault(response, 400, 'badRequest', 'given 2 times')

    def test_unknown_query_parameters_by_microversion(self):
        extra = '&force=1'
        self.delete(self.info(None, None), extra=extra)
        headers = dict(base.ADMIN,
                       **{'OpenStack-API-Version': 'compute 2.75'})
        response = self.delete(self.info(None, None), extra=extra,
                               headers=headers, status=400)
        self.assert_fault(response, 400, 'badRequest', "'force'")


class TestAuthAndPolicy(base.ApiTestCase):

    def test_no_token(self):
        response = self.post(self.create_body(), headers={}, status=401)
        self.assert_fault(response, 401, 'unauthorized')

    def test_member_is_forbidden(self):
        for token in ('demo:p1', 'demo'):
            response = self.post(self.create_body(), status=403,
                                 headers={'X-Auth-Token': token})
            self.assert_fault(
                response, 403, 'forbidden',
                "Policy doesn't allow os_compute_api:os-assisted-volume-"
                "snapshots:create to be performed.")
        response = self.delete({'volume_id': 'v'}, status=403,
                               headers={'X-Auth-Token': 'demo:p1'})
        self.assert_fault(response, 403, 'forbidden', 'snapshots:delete')

    def test_identity_headers_cannot_be_forged(self):
        headers = {'X-Auth-Token': 'demo:p1', 'X-Roles': 'admin',
                   'X-User-Id': 'admin'}
        self.post(self.create_body(), headers=headers, status=403)

    def test_service_role_by_policy_file_default(self):
        # The default rule lets role:service in, as for the compute API.
        from snapdriver import context
        from snapdriver import policy
        service = context.RequestContext(user_id='cinder', project_id='svc',
                                         roles=['service'])
        self.assertTrue(policy.authorize(service, policy.CREATE))

    def test_public_paths_need_no_token(self):
        for path in ('/', '/v2.1', '/v2.1/', '/healthcheck'):
            self.app.get(path, status=200)


class TestQuery(base.ApiTestCase):

    def test_operations_of_a_snapshot(self):
        self.post(self.create_body())
        self.assertTrue(self.manager.wait_idle(10))
        response = self.app.get('/v2.1/os-assisted-volume-snapshots/snap-1',
                                headers=base.ADMIN)
        [operation] = response.json['operations']
        self.assertEqual('create', operation['kind'])
        self.assertEqual('succeeded', operation['state'])
        self.assertEqual(['new'] + base.CHAIN, operation['chain'])
        self.assertEqual(base.CHAIN, operation['chain_before'])
        report = operation['status_report']
        self.assertEqual({'status': 'creating', 'progress': '90%',
                          'delivery': 'delivered', 'detail': 'recorded',
                          'attempts': 1},
                         {k: v for k, v in report.items()
                          if k != 'reported_at'})
        self.assertIsNotNone(report['reported_at'])
        self.assertIsNotNone(operation['finished_at'])

    def test_unknown_snapshot(self):
        response = self.app.get('/v2.1/os-assisted-volume-snapshots/nope',
                                headers=base.ADMIN, status=404)
        self.assert_fault(response, 404, 'itemNotFound', 'nope')

    def _show(self, token, status=200):
        return self.app.get('/v2.1/os-assisted-volume-snapshots/snap-1',
                            headers={'X-Auth-Token': token}, status=status)

    def test_get_can_be_scoped_per_project(self):
        # The example of doc/policy.md.
        path = self.useFixture(fixtures.TempDir()).join('policy.yaml')
        with open(path, 'w') as f:
            f.write('"snapdriver:os-assisted-volume-snapshots:show": '
                    '"role:admin or role:service or '
                    'project_id:%(project_id)s"\n')
        self.conf.config(policy_file=path, group='oslo_policy')
        self.post(self.create_body(), headers={'X-Auth-Token': 'admin:p1'})
        self.assertTrue(self.manager.wait_idle(10))
        [operation] = self._show('demo:p1').json['operations']
        self.assertEqual(('p1', 'succeeded'),
                         (operation['project_id'], operation['state']))
        # Another project's member: as if the snapshot id were unknown.
        response = self._show('demo:p2', status=404)
        self.assert_fault(response, 404, 'itemNotFound', 'snap-1')
        # An administrator of any project sees it.
        self.assertEqual('p1', self._show('admin:p2').json[
            'operations'][0]['project_id'])

    def test_get_shows_only_the_operations_the_rule_admits(self):
        path = self.useFixture(fixtures.TempDir()).join('policy.yaml')
        with open(path, 'w') as f:
            f.write('"snapdriver:os-assisted-volume-snapshots:show": '
                    '"project_id:%(project_id)s"\n')
        self.conf.config(policy_file=path, group='oslo_policy')
        self.post(self.create_body(), headers={'X-Auth-Token': 'admin:p1'})
        self.assertTrue(self.manager.wait_idle(10))
        self.delete({'volume_id': base.VOLUME, 'file_to_merge': 'volume-1.s1',
                     'merge_target_file': 'volume-1'},
                    headers={'X-Auth-Token': 'admin:p2'})
        self.assertTrue(self.manager.wait_idle(10))
        self.assertEqual(['create'], [
            operation['request']['kind'] for operation in
            self._show('admin:p1').json['operations']])
        self.assertEqual(['delete'], [
            operation['request']['kind'] for operation in
            self._show('admin:p2').json['operations']])
        self._show('admin:p3', status=404)


class TestMicroversions(base.ApiTestCase):

    def _get(self, status=200, **headers):
        return self.app.get('/v2.1/os-assisted-volume-snapshots/x',
                            headers=dict(base.ADMIN, **headers),
                            status=status)

    def test_default_is_minimum(self):
        response = self._get(status=404)
        headers = response.headers
        self.assertEqual('2.1', headers['X-OpenStack-Nova-API-Version'])
        self.assertEqual('compute 2.1', headers['OpenStack-API-Version'])
        self.assertIn('OpenStack-API-Version', response.headers['Vary'])
        self.assertIn('X-OpenStack-Nova-API-Version', response.headers['Vary'])

    def test_both_headers_and_latest(self):
        latest = microversion.to_str(microversion.MAX_VERSION)
        for headers, expected in (
                ({'X-OpenStack-Nova-API-Version': '2.27'}, '2.27'),
                ({'OpenStack-API-Version': 'compute 2.60'}, '2.60'),
                ({'OpenStack-API-Version': 'volume 3.0, compute 2.5'}, '2.5'),
                ({'OpenStack-API-Version': 'compute 2.3',
                  'X-OpenStack-Nova-API-Version': '2.9'}, '2.3'),
                ({'X-OpenStack-Nova-API-Version': 'latest'}, latest)):
            response = self._get(status=404, **headers)
            self.assertEqual(expected,
                             response.headers['X-OpenStack-Nova-API-Version'])

    def test_unsupported_and_malformed(self):
        response = self._get(status=406, **{
            'X-OpenStack-Nova-API-Version': '2.999'})
        self.assert_fault(response, 406, 'notAcceptable', '2.999', 'Minimum')
        self.assertEqual('2.1',
                         response.headers['X-OpenStack-Nova-API-Version'])
        for bad in ('2', 'abc', '2.01', '1.0'):
            response = self._get(status=(400, 406), **{
                'X-OpenStack-Nova-API-Version': bad})
            self.assertIn(response.status_int, (400, 406))
            self.assertIn('X-OpenStack-Nova-API-Version', response.headers)

    def test_request_ids(self):
        response = self._get(status=404, **{
            'X-OpenStack-Request-ID':
                'req-11111111-2222-3333-4444-555555555555'})
        request_id = response.headers['X-OpenStack-Request-Id']
        self.assertRegex(request_id, r'^req-[0-9a-f-]{36}$')
        self.assertEqual(request_id, response.headers['X-Compute-Request-Id'])


class TestStubDriver(base.ApiTestCase):

    driver_name = 'hyperv'

    def test_create_and_delete_rejected(self):
        response = self.post(self.create_body(), status=400)
        self.assert_fault(response, 400, 'badRequest', 'The hyperv driver',
                          'only implemented by the libvirt driver')
        response = self.delete({'volume_id': 'v'}, status=400)
        self.assert_fault(response, 400, 'badRequest', 'The hyperv driver')


class TestFormBodies(base.ApiTestCase):
    """A form body is never read (Pecan would, to route: found by the
    fuzz, a multipart body with a broken boundary was a 500)."""

    def test_a_broken_multipart_body_is_no_500(self):
        for path, expected in (('/v2.1/', 405),
                               ('/v2.1/os-assisted-volume-snapshots', 405)):
            answer = self.app.request(
                path, method='PATCH', headers=dict(
                    base.ADMIN, **{'Content-Type': 'multipart/form-data; '
                                   'boundary=x, \xc3\x81'}),
                body=b'', expect_errors=True)
            self.assertEqual(expected, answer.status_int, answer)
