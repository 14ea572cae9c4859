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

"""The API tier and the agents over a real RabbitMQ broker (fake driver).

Three agents, each with an inventory of its own, and two API processes of
the tier: every request, sent to either API process, reaches the agent of
the volume's host and gets the answer a single-process snapdriver gives.
"""

import uuid

from novaclient import exceptions as nova_exc

from snapdriver.tests import base
from snapdriver.tests.functional import broker
from snapdriver.tests.functional import region
from snapdriver.tests.functional import server
from snapdriver.tests.functional import test_novaclient

TOKEN = 'admin:%s' % uuid.uuid4().hex


def inventory(label, volume_id):
    return {'guests': [{'name': 'guest-%s' % label, 'state': 'running',
                        'disks': [{'target': 'vdb', 'serial': volume_id,
                                   'directory': '/nfs/%s' % label,
                                   'chain': ['volume-%s' % volume_id]}]}]}


class RegionTest(base.FunctionalTestCase):

    def setUp(self):
        super().setUp()
        url = region.skip_without_broker(self)
        exchange = broker.exchange()
        self.volumes = {}
        self.agents = []
        for label in ('h1', 'h2', 'h3'):
            volume_id = str(uuid.uuid4())
            host = region.host_name(label)
            self.volumes[host] = volume_id
            self.agents.append(self.useFixture(region.AgentFixture(
                host, url, exchange, inventory=inventory(label, volume_id),
                extra_conf={'fake': {'assume_overlays': True}})))
        self.apis = [self.useFixture(server.ApiServerFixture(
            extra_conf=region.tier_conf(url, exchange))) for _ in range(2)]
        for api in self.apis:
            region.wait_agents(api.port, TOKEN, list(self.volumes))

    def post(self, api, volume_id, snapshot_id, new_file='new'):
        return server.resource_request(api.port, TOKEN, 'POST', '', {
            'snapshot': {'volume_id': volume_id, 'create_info': {
                'snapshot_id': snapshot_id, 'type': 'qcow2',
                'new_file': new_file}}})

    def test_each_request_reaches_its_host(self):
        for number, (host, volume_id) in enumerate(self.volumes.items()):
            api = self.apis[number % 2]
            snapshot_id = str(uuid.uuid4())
            answer = self.post(api, volume_id, snapshot_id)
            self.assertEqual(200, answer.status, answer)
            # The other API process finds it too.
            other = self.apis[(number + 1) % 2]
            got = server.resource_request(other.port, TOKEN, 'GET',
                                          '/%s' % snapshot_id)
            self.assertEqual(200, got.status, got)
            [operation] = got.json()['operations']
            self.assertEqual(host, operation['host'])
            self.assertEqual(volume_id, operation['volume_id'])

    def test_refusals_are_the_agents_own(self):
        volume_id = next(iter(self.volumes.values()))
        answer = self.post(self.apis[0], volume_id, str(uuid.uuid4()),
                           new_file='../escape')
        self.assertEqual(400, answer.status, answer)
        self.assertIn("Invalid new_file '../escape'",
                      answer.json()['badRequest']['message'])
        nowhere = self.post(self.apis[1], str(uuid.uuid4()),
                            str(uuid.uuid4()))
        self.assertEqual(400, nowhere.status, nowhere)
        self.assertIn('(3 up)', nowhere.json()['badRequest']['message'])

    def test_agents_listed(self):
        agents = region.wait_agents(self.apis[1].port, TOKEN,
                                    list(self.volumes))
        mine = {agent['host']: agent for agent in agents
                if agent['host'] in self.volumes}
        self.assertEqual({'up'}, {agent['state'] for agent in mine.values()})
        self.assertEqual({1}, {agent['volumes'] for agent in mine.values()})
        self.assertEqual({'fake'},
                         {agent['driver'] for agent in mine.values()})

    def test_novaclient_through_each_api_process(self):
        # Cinder's compute client, unmodified, as Cinder uses it: each
        # step through one API process, checked through the other.
        hosts = list(self.volumes.items())
        for number in (0, 1):
            host, volume_id = hosts[number]
            mine, other = self.apis[number], self.apis[1 - number]
            clients = [test_novaclient.nova(api.endpoint, token=TOKEN)
                       for api in (mine, other)]
            base_file = 'volume-%s' % volume_id
            first, second = str(uuid.uuid4()), str(uuid.uuid4())
            files = {s: '%s.%s' % (base_file, s) for s in (first, second)}
            chain = [base_file]
            for client, snapshot_id in zip(clients, (first, second)):
                snapshot = client.assisted_volume_snapshots.create(
                    volume_id, create_info={'snapshot_id': snapshot_id,
                                            'type': 'qcow2',
                                            'new_file': files[snapshot_id]})
                self.assertEqual(volume_id, snapshot.volumeId)
                self.assertRegex(snapshot.request_ids[0],
                                 test_novaclient.REQUEST_ID)
                chain.insert(0, files[snapshot_id])
                [operation] = server.wait_for_operations(
                    (other if client is clients[0] else mine).port,
                    snapshot_id, token=TOKEN)
                self.assertEqual(('succeeded', host, chain),
                                 (operation['state'], operation['host'],
                                  operation['chain']), operation)
            # A commit of the first overlay into the base, through the
            # other API process.
            result = clients[1].assisted_volume_snapshots.delete(
                first, delete_info={'volume_id': volume_id, 'type': 'qcow2',
                                    'file_to_merge': files[first],
                                    'merge_target_file': base_file})
            self.assertRegex(result.request_ids[0],
                             test_novaclient.REQUEST_ID)
            create, commit = server.wait_for_operations(mine.port, first,
                                                        token=TOKEN)
            self.assertEqual(('commit', 'succeeded', host,
                              [files[second], base_file]),
                             (commit['kind'], commit['state'],
                              commit['host'], commit['chain']), commit)
            # The agent's refusal, word for word, through either.
            for client in clients:
                error = self.assertRaises(
                    nova_exc.BadRequest,
                    client.assisted_volume_snapshots.create, volume_id,
                    create_info={'snapshot_id': str(uuid.uuid4()),
                                 'type': 'qcow2', 'new_file': '../escape'})
                self.assertIn("Invalid new_file '../escape'", error.message)
