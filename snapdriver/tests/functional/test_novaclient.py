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

"""python-novaclient, unmodified, against snapdriver-api.

Cinder reaches the compute API through novaclient at microversion 2.1,
with a keystoneauth session; these tests do the same, with a token
endpoint plugin instead of Keystone (noauth tokens are
``<user>:<project>``).
"""

import re

from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint
from novaclient import client as nova_client
from novaclient import exceptions as nova_exc

from snapdriver.tests.functional import server
from snapdriver.tests.functional import test_api_socket as api_tests

VOLUME = api_tests.VOLUME
REQUEST_ID = re.compile(
    r'^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')


def nova(endpoint, token='admin:admin'):
    auth = token_endpoint.Token(endpoint=endpoint, token=token)
    return nova_client.Client('2.1',
                              session=ks_session.Session(auth=auth))


def create_info(**kwargs):
    info = {'snapshot_id': api_tests.SNAP3, 'type': 'qcow2',
            'new_file': api_tests.FILE3}
    info.update(kwargs)
    return info


class NovaclientTest(api_tests.ApiTestCase):

    def setUp(self):
        super().setUp()
        self.api = self.start()
        self.nova = nova(self.api.endpoint)

    def assertRequestId(self, request_id):
        self.assertIsNotNone(request_id)
        self.assertRegex(request_id, REQUEST_ID)

    def test_create(self):
        snapshot = self.nova.assisted_volume_snapshots.create(
            VOLUME, create_info=create_info())
        self.assertIsNone(snapshot.id)
        self.assertEqual(VOLUME, snapshot.volumeId)
        self.assertEqual(1, len(snapshot.request_ids))
        self.assertRequestId(snapshot.request_ids[0])
        [operation] = server.wait_for_operations(self.api.port,
                                                 api_tests.SNAP3)
        self.assertEqual('succeeded', operation['state'], operation)
        self.assertEqual([api_tests.FILE3, api_tests.FILE2, api_tests.FILE1,
                          api_tests.BASE], operation['chain'])
        # An id in create_info comes back as the snapshot's id.
        snapshot = self.nova.assisted_volume_snapshots.create(
            VOLUME, create_info=create_info(
                snapshot_id=api_tests.SNAP4, new_file=api_tests.FILE4,
                id='given-id'))
        self.assertEqual('given-id', snapshot.id)

    def test_create_with_project_in_the_endpoint(self):
        project = '0123456789abcdef0123456789abcdef'
        client = nova('%s/%s' % (self.api.endpoint, project),
                      token='admin:%s' % project)
        snapshot = client.assisted_volume_snapshots.create(
            VOLUME, create_info=create_info())
        self.assertEqual(VOLUME, snapshot.volumeId)
        # The token's project is not the URL's: 400.
        client = nova('%s/%s' % (self.api.endpoint, project),
                      token='admin:another')
        error = self.assertRaises(
            nova_exc.BadRequest, client.assisted_volume_snapshots.create,
            VOLUME, create_info=create_info(snapshot_id=api_tests.SNAP4,
                                            new_file=api_tests.FILE4))
        self.assertIn(project, error.message)
        self.assertIn('another', error.message)

    def _delete_and_check(self, snapshot_id, delete_info, chain):
        result = self.nova.assisted_volume_snapshots.delete(
            snapshot_id, delete_info=delete_info)
        self.assertRequestId(result.request_ids[0])
        [operation] = server.wait_for_operations(self.api.port, snapshot_id)
        self.assertEqual('succeeded', operation['state'], operation)
        self.assertEqual(chain, operation['chain'])

    def test_delete_commit(self):
        self._delete_and_check(
            api_tests.SNAP1,
            {'volume_id': VOLUME, 'type': 'qcow2',
             'file_to_merge': api_tests.FILE1,
             'merge_target_file': api_tests.BASE},
            [api_tests.FILE2, api_tests.BASE])

    def test_delete_pull(self):
        self._delete_and_check(
            api_tests.SNAP2,
            {'volume_id': VOLUME, 'type': 'qcow2',
             'file_to_merge': api_tests.BASE, 'merge_target_file': None},
            [api_tests.FILE2, api_tests.BASE])

    def test_bad_request(self):
        error = self.assertRaises(
            nova_exc.BadRequest, self.nova.assisted_volume_snapshots.create,
            VOLUME, create_info=create_info(type='qcow3'))
        self.assertEqual(400, error.code)
        self.assertIn('qcow3', error.message)
        self.assertIn('type', error.message)
        self.assertRequestId(error.request_id)
        # The message is ours, word for word.
        answer = server.request(
            self.api.port, 'POST', '/v2.1/os-assisted-volume-snapshots',
            '{"snapshot": {"volume_id": "%s", "create_info": {"snapshot_id":'
            ' "%s", "type": "qcow3", "new_file": "%s"}}}'
            % (VOLUME, api_tests.SNAP3, api_tests.FILE3),
            {'X-Auth-Token': 'admin:admin',
             'Content-Type': 'application/json'})
        self.assertEqual(answer.json()['badRequest']['message'],
                         error.message)

        error = self.assertRaises(
            nova_exc.BadRequest, self.nova.assisted_volume_snapshots.create,
            'volume-not-here', create_info=create_info())
        self.assertIn('volume-not-here', error.message)

    def test_unauthorized(self):
        # keystoneauth will not send an empty token (it raises before
        # sending), so the client gets no auth plugin at all and an
        # endpoint override: the request goes out without X-Auth-Token.
        client = nova_client.Client('2.1', session=ks_session.Session(),
                                    endpoint_override=self.api.endpoint)
        error = self.assertRaises(
            nova_exc.Unauthorized, client.assisted_volume_snapshots.create,
            VOLUME, create_info=create_info())
        self.assertEqual(401, error.code)
        self.assertRequestId(error.request_id)

    def test_forbidden(self):
        client = nova(self.api.endpoint, token='demo:demo')
        error = self.assertRaises(
            nova_exc.Forbidden, client.assisted_volume_snapshots.create,
            VOLUME, create_info=create_info())
        self.assertEqual(
            "Policy doesn't allow os_compute_api:os-assisted-volume-"
            "snapshots:create to be performed.", error.message)
        self.assertRequestId(error.request_id)

        error = self.assertRaises(
            nova_exc.Forbidden, client.assisted_volume_snapshots.delete,
            api_tests.SNAP1, delete_info={'volume_id': VOLUME})
        self.assertEqual(
            "Policy doesn't allow os_compute_api:os-assisted-volume-"
            "snapshots:delete to be performed.", error.message)
        self.assertRequestId(error.request_id)

    def test_not_found(self):
        # snapdriver's GET of a snapshot's operations, through the client's
        # own HTTP layer (novaclient has no method for it).
        error = self.assertRaises(
            nova_exc.NotFound, self.nova.client.get,
            '/os-assisted-volume-snapshots/%s' % api_tests.SNAP1)
        self.assertEqual(404, error.code)
        self.assertIn(api_tests.SNAP1, error.message)
        self.assertRequestId(error.request_id)
        # A path that does not exist at all.
        error = self.assertRaises(nova_exc.NotFound, self.nova.client.get,
                                  '/servers/detail')
        self.assertRequestId(error.request_id)
        # After a create, the same GET answers.
        self.nova.assisted_volume_snapshots.create(
            VOLUME, create_info=create_info(snapshot_id=api_tests.SNAP1))
        response, body = self.nova.client.get(
            '/os-assisted-volume-snapshots/%s' % api_tests.SNAP1)
        self.assertEqual(200, response.status_code)
        self.assertEqual(api_tests.SNAP1,
                         body['operations'][0]['snapshot_id'])
