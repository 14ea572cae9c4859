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

"""The Cinder loop across a region: Cinder's own code drives the API tier,
the ``cinder`` locator finds each volume's host in Cinder, and the agents
report to Cinder, whose database is the judge.

A real ``cinder-api`` (noauth, SQLite) holds the volumes, seeded as
attached with the host names nova-compute would have given (the
attachment's ``host_name``); two agents (hosts A and B, fake driver,
each with an inventory of its own volumes) report to it with
``status_reporter = cinder``; two API processes of the tier run with
``host_locator = cinder``, reading the volumes from the same cinder-api
with the same ``[cinder]`` credentials: snapdriver's own (``admin_token``),
or, in a second class, none, so that the caller's token is used (it
travels with the request to the agent, which reports with it). Cinder's
remotefs driver methods (``_create_snapshot_online``,
``_nova_assisted_vol_snap_delete``) send the requests to the tier and wait
on Cinder's database for progress ``90%``, as in production.

Also what the ``cinder`` locator promises against the real cinder-api: a
volume without attachment is the 400 a single-process snapdriver gives; a
volume Cinder lists on two hosts (a live migration, a multi-attached
volume) is a 409 that says so; an attachment without a host is a 400 that
says why; and a host that is wrong (Cinder says A, the volume is on B)
gets A's own 400, nothing runs on B, and once Cinder has the right host a
cached wrong answer costs one refusal, not a failed request.

Needs ``$SNAPDRIVER_TEST_TRANSPORT_URL`` (a RabbitMQ broker) and
``$SNAPDRIVER_TEST_CINDER_VENV``; skipped without either.
"""

import re
import uuid

from snapdriver import exception
from snapdriver.tests.functional import broker
from snapdriver.tests.functional import region
from snapdriver.tests.functional import server
from snapdriver.tests.functional import test_cinder_loop as loop

SHARE = loop.SHARE


class Volume(loop.Volume):
    """A volume of one host: its chain starts at the base image, and the
    overlays Cinder creates for its snapshots are on the share (``files``),
    each backing onto the previous one."""

    def __init__(self, label, snapshots=2):
        super().__init__(snapshots=snapshots)
        self.label = label

    def host_inventory_disk(self):
        files = {}
        backing = self.base
        for snapshot_id in self.snapshots:
            files.update(self.overlay(snapshot_id, backing))
            backing = self.file(snapshot_id)
        return {'target': 'vdb', 'serial': self.id, 'directory': SHARE,
                'chain': [self.base], 'files': files}


def host_inventory(volumes):
    """A fake host with one guest per volume."""
    return {'guests': [{
        'name': 'instance-%s' % volume.instance[:8], 'state': 'running',
        'disks': [{'target': 'vda', 'serial': None},
                  volume.host_inventory_disk()]} for volume in volumes]}


class RegionCinderTestCase(loop.CinderLoopTestCase):
    """Hosts A and B, two API processes with the ``cinder`` locator; the
    tier and the agents reach Cinder with snapdriver's own credentials
    (``service_credentials``) or with the caller's token."""

    service_credentials = True

    def setUp(self):
        super().setUp()          # skips without Cinder's venv
        url = region.skip_without_broker(self)
        self.shared_cinder()
        exchange = broker.exchange()
        self.host_a = region.host_name('a')
        self.host_b = region.host_name('b')
        # The loop's volume of each host; a volume on B that Cinder first
        # places on A; a volume on A that Cinder lists on two hosts.
        self.vol_a = Volume('A')
        self.vol_b = Volume('B')
        self.moved = Volume('moved', snapshots=1)
        self.migrating = Volume('migrating', snapshots=1)
        reporting = {'DEFAULT': {'status_reporter': 'cinder'},
                     'cinder': self.reporter_conf()}
        self.agents = {}
        for host, volumes in ((self.host_a, [self.vol_a, self.migrating]),
                              (self.host_b, [self.vol_b, self.moved])):
            agent = self.useFixture(region.AgentFixture(
                host, url, exchange, inventory=host_inventory(volumes),
                extra_conf=reporting))
            self._attach_log_on_failure('agent-%s.log' % host,
                                        agent.log_text)
            self.agents[host] = agent
        tier = region.tier_conf(url, exchange, locator='cinder')
        tier['cinder'] = self.reporter_conf()
        self.apis = []
        for number in (1, 2):
            api = self.useFixture(server.ApiServerFixture(extra_conf=tier))
            self._attach_log_on_failure('snapdriver-api-%d.log' % number,
                                        api.log_text)
            self.apis.append(api)
        for api in self.apis:
            region.wait_agents(api.port, self.caller_token,
                               list(self.agents))
        # Cinder's volume services, one per API process: Cinder's [nova]
        # is the tier's endpoint.
        self.sides = [self.cinder_side(api) for api in self.apis]
        self._request_ids = {}

    # Helpers.

    def seed_on(self, volume, hosts, snapshots, instances=None):
        """``volume`` in Cinder, attached on ``hosts`` (one attachment
        each, to ``instances`` or all to the volume's own instance)."""
        instances = instances or [volume.instance] * len(hosts)
        seeded = self.sides[0].seed(
            volume.id, self.project, 'demo', volume.instance, snapshots,
            attachments=list(zip(hosts, instances)))
        return seeded['volume']

    def post(self, api, volume, snapshot_id):
        """The create Cinder's compute client sends, over plain HTTP."""
        return server.resource_request(api.port, self.caller_token, 'POST',
                                       '', {'snapshot': {
                                           'volume_id': volume.id,
                                           'create_info': {
                                               'type': 'qcow2',
                                               'new_file': volume.file(
                                                   snapshot_id),
                                               'snapshot_id': snapshot_id}}})

    def assertFault(self, answer, code, message):
        name = {400: 'badRequest', 409: 'conflictingRequest'}[code]
        self.assertEqual((code, {name: {'code': code, 'message': message}}),
                         (answer.status, answer.json()), answer)

    def assertNowhere(self, snapshot_id):
        """No agent has an operation for ``snapshot_id`` (the tier asks
        every agent up), and none logged it."""
        for api in self.apis:
            answer = server.resource_request(api.port, self.caller_token,
                                             'GET', '/%s' % snapshot_id)
            self.assertEqual(404, answer.status, answer)
        for host, agent in self.agents.items():
            self.assertNotIn('Accepted', self._lines(agent, snapshot_id),
                             host)

    @staticmethod
    def _lines(agent, text):
        return '\n'.join(line for line in agent.log_text().splitlines()
                         if text in line)

    def located_in_cinder(self, volume_id):
        """How often the tier read the volume from cinder-api, with the
        credentials this class configures (snapdriver's own, or the
        caller's, with the caller's project in the URL)."""
        if self.service_credentials:
            user, project, url = 'snapdriver', self.service_project, ''
        else:
            user, project, url = 'admin', self.project, self.project + '/'
        return len(re.findall(
            r'\[\S+ req-[0-9a-f-]+ %s %s [^\]]*\] GET \S+/v3/%svolumes/'
            r'%s$' % (user, re.escape(project), re.escape(url),
                      re.escape(volume_id)),
            self.cinder.log_text(), re.M))

    def assertCinderUntouched(self, snapshot_id, status='creating',
                              progress='0%'):
        state = self.sides[0].snapshot(snapshot_id)
        self.assertEqual({'status': status, 'progress': progress},
                         {k: state[k] for k in ('status', 'progress')})
        self.assertNotIn('/snapshots/%s/action' % snapshot_id,
                         self.cinder.log_text())

    # Steps, each as Cinder's remotefs driver takes it.

    def cinder_create(self, number, host, volume, snapshot_id, chain):
        """``_create_snapshot_online`` through API process ``number``;
        the other API process finds the operation on ``host``."""
        side = self.sides[number]
        answer = side.remotefs_create(
            snapshot_id, chain[0], volume.path(volume.file(snapshot_id)),
            project_id=self.project)
        self.assertTrue(answer['ok'], answer)
        self.assertEqual({'status': 'creating', 'progress': '90%'},
                         {k: answer['result']['snapshot'][k]
                          for k in ('status', 'progress')})
        self.assertCinderShows(side, snapshot_id, 'creating')
        chain.insert(0, volume.file(snapshot_id))
        self.check_operation(self.apis[1 - number], host, snapshot_id,
                             'create', chain, 'creating',
                             answer['result']['request_id'])
        side.update_snapshot(snapshot_id, 'available', '100%')

    def cinder_delete(self, number, host, volume, snapshot_id, delete_info,
                      kind, chain):
        side = self.sides[number]
        side.update_snapshot(snapshot_id, 'deleting', '100%')
        delete_info = dict(delete_info, type='qcow2', volume_id=volume.id)
        answer = side.remotefs_delete(snapshot_id, delete_info,
                                      project_id=self.project)
        self.assertTrue(answer['ok'], answer)
        self.assertEqual({'status': 'deleting', 'progress': '90%'},
                         {k: answer['result']['snapshot'][k]
                          for k in ('status', 'progress')})
        self.assertCinderShows(side, snapshot_id, 'deleting')
        self.check_operation(self.apis[1 - number], host, snapshot_id,
                             kind, chain, 'deleting',
                             answer['result']['request_id'])

    def check_operation(self, api, host, snapshot_id, kind, chain, status,
                        request_id):
        operation = self.wait_delivery(api, snapshot_id)
        self.assertEqual((kind, 'succeeded', host),
                         (operation['kind'], operation['state'],
                          operation['host']), operation)
        self.assertEqual(chain, operation['chain'])
        self.assertDelivered(operation, status)
        # Cinder -> API tier -> agent -> Cinder: each status callback
        # carries the request id of one of Cinder's calls on the snapshot.
        ids = self._request_ids.setdefault(snapshot_id, [])
        ids.append(request_id)
        self.assertReportedAs(snapshot_id, ids)


class _Loop:
    """The loop: Cinder's remotefs code on both hosts."""

    def test_cinder_loop_on_two_hosts(self):
        hosts = {self.host_a: self.vol_a, self.host_b: self.vol_b}
        for host, volume in hosts.items():
            s1, s2 = volume.snapshots
            self.assertEqual(
                {'status': 'in-use', 'attach_status': 'attached'},
                self.seed_on(volume, [host], {s1: ('creating', '0%'),
                                              s2: ('creating', '0%')}))
        chains = {host: [volume.base] for host, volume in hosts.items()}
        # Each step on both hosts, A's through the first API process and
        # B's through the second.
        for number, (host, volume) in enumerate(hosts.items()):
            self.cinder_create(number, host, volume, volume.snapshots[0],
                               chains[host])
        for number, (host, volume) in enumerate(hosts.items()):
            self.cinder_create(number, host, volume, volume.snapshots[1],
                               chains[host])
        # Delete S1, not the active one: commit .S1 into the base.
        for number, (host, volume) in enumerate(hosts.items()):
            s1 = volume.snapshots[0]
            chains[host].remove(volume.file(s1))
            self.cinder_delete(number, host, volume, s1, {
                'file_to_merge': volume.file(s1),
                'merge_target_file': volume.base}, 'commit', chains[host])
        # Delete S2, the active one with the base below: a full pull.
        for number, (host, volume) in enumerate(hosts.items()):
            s2 = volume.snapshots[1]
            chains[host] = [volume.file(s2)]
            self.cinder_delete(number, host, volume, s2, {
                'file_to_merge': None, 'merge_target_file': None}, 'pull',
                chains[host])
        self.assertEqual(
            {host: [volume.file(volume.snapshots[1])]
             for host, volume in hosts.items()}, chains)
        # Each agent ran its own volume's operations, and only those.
        for host, volume in hosts.items():
            other = self.vol_b if volume is self.vol_a else self.vol_a
            log = self.agents[host].log_text()
            self.assertEqual(4, len(re.findall(
                r'Accepted \w+ of snapshot \S+ on disk vdb', log)), log)
            for snapshot_id in other.snapshots:
                self.assertNotIn(snapshot_id, log)
        # The tier found the hosts in cinder-api.
        for volume in hosts.values():
            self.assertGreaterEqual(self.located_in_cinder(volume.id), 1)


class RegionCinderTest(_Loop, RegionCinderTestCase):
    """With snapdriver's own credentials; and what the ``cinder``
    locator refuses."""

    service_credentials = True

    def test_no_attachment_is_the_400_of_a_single_host(self):
        volume = self.vol_a
        snap = volume.snapshots[0]
        self.assertEqual({'status': 'available', 'attach_status': 'detached'},
                         self.seed_on(volume, [], {snap: ('creating', '0%')}))
        expected = str(exception.VolumeNotAttached(volume_id=volume.id))
        for api in self.apis:
            self.assertFault(self.post(api, volume, snap), 400, expected)
        # What Cinder's compute client sees.
        answer = self.sides[0].nova_create(volume.id, {
            'type': 'qcow2', 'new_file': volume.file(snap),
            'snapshot_id': snap}, project_id=self.project)
        self.assertFalse(answer['ok'], answer)
        self.assertEqual('BadRequest', answer['error']['type'])
        self.assertIn(expected, answer['error']['message'])
        self.assertGreaterEqual(self.located_in_cinder(volume.id), 3)
        self.assertNowhere(snap)
        self.assertCinderUntouched(snap)

    def test_attachment_without_host_is_a_400(self):
        volume = self.vol_a
        snap = volume.snapshots[0]
        self.seed_on(volume, [None], {snap: ('creating', '0%')})
        self.assertFault(
            self.post(self.apis[0], volume, snap), 400,
            str(exception.AttachmentWithoutHost(volume_id=volume.id)))
        self.assertNowhere(snap)
        self.assertCinderUntouched(snap)

    def test_attachment_without_host_beside_one_with_a_host(self):
        # A legacy attachment (no connector host) next to nova-compute's.
        volume = self.migrating
        snap = volume.snapshots[0]
        self.seed_on(volume, [self.host_a, None], {snap: ('creating', '0%')},
                     instances=[volume.instance, str(uuid.uuid4())])
        self.assertFault(
            self.post(self.apis[0], volume, snap), 400,
            str(exception.AttachmentWithoutHost(volume_id=volume.id)))
        self.assertNowhere(snap)
        self.assertCinderUntouched(snap)

    def test_two_hosts_is_a_409(self):
        volume = self.migrating
        snap = volume.snapshots[0]
        # A live migration: one guest, attached at the source (A, which
        # has the disk) and at the destination (B).
        self.seed_on(volume, [self.host_a, self.host_b],
                     {snap: ('creating', '0%')})
        hosts = ', '.join(sorted([self.host_a, self.host_b]))
        expected = str(exception.VolumeOnSeveralHosts(volume_id=volume.id,
                                                      hosts=hosts))
        self.assertIn('(%s): a live migration, or a multi-attached '
                      'volume' % hosts, expected)
        self.assertFault(self.post(self.apis[0], volume, snap), 409,
                         expected)
        # What Cinder's compute client sees.
        answer = self.sides[1].nova_create(volume.id, {
            'type': 'qcow2', 'new_file': volume.file(snap),
            'snapshot_id': snap}, project_id=self.project)
        self.assertFalse(answer['ok'], answer)
        self.assertEqual('Conflict', answer['error']['type'])
        self.assertIn(expected, answer['error']['message'])
        self.assertNowhere(snap)
        self.assertCinderUntouched(snap)

    def test_multiattach_on_two_hosts_is_a_409(self):
        volume = self.migrating
        snap = volume.snapshots[0]
        other_guest = str(uuid.uuid4())
        self.seed_on(volume, [self.host_b, self.host_a],
                     {snap: ('creating', '0%')},
                     instances=[volume.instance, other_guest])
        hosts = ', '.join(sorted([self.host_a, self.host_b]))
        self.assertFault(
            self.post(self.apis[1], volume, snap), 409,
            str(exception.VolumeOnSeveralHosts(volume_id=volume.id,
                                               hosts=hosts)))
        self.assertNowhere(snap)
        self.assertCinderUntouched(snap)

    def test_wrong_host_is_that_agents_400(self):
        # Cinder places the volume on A; its disk is on B.
        volume = self.moved
        snap = volume.snapshots[0]
        self.seed_on(volume, [self.host_a], {snap: ('creating', '0%')})
        expected = str(exception.VolumeNotAttached(volume_id=volume.id))
        self.assertFault(self.post(self.apis[0], volume, snap), 400,
                         expected)
        # A refused it: the tier said where it sent it, and B never saw it.
        self.assertIn('Sending the create request of snapshot %s (volume '
                      '%s) to the agent of host %s (cinder locator)'
                      % (snap, volume.id, self.host_a),
                      self.apis[0].log_text())
        self.assertEqual('', self._lines(self.agents[self.host_b], snap))
        self.assertNowhere(snap)
        self.assertCinderUntouched(snap)

        # The migration is over: Cinder now names B. The first API process
        # still has A from Cinder's earlier answer (locator_cache_time):
        # A refuses again, the tier asks Cinder afresh and goes to B. The
        # second process asks Cinder first. B's chain is as it was: the
        # refusal changed nothing there.
        self.assertEqual(1, self.sides[0].move_attachments(volume.id,
                                                           self.host_b))
        before = self.located_in_cinder(volume.id)
        chain = [volume.base]
        self.cinder_create(0, self.host_b, volume, snap, chain)
        self.assertEqual(before + 1, self.located_in_cinder(volume.id))
        self.assertIn('Volume %s is not on host %s after all; trying host '
                      '%s' % (volume.id, self.host_a, self.host_b),
                      self.apis[0].log_text())
        operation = self.operations(self.apis[1], snap)[-1]
        self.assertEqual([volume.base], operation['chain_before'])
        self.assertEqual([volume.file(snap), volume.base],
                         operation['chain'])


class RegionCinderCallerTokenTest(_Loop, RegionCinderTestCase):
    """No ``[cinder] auth_type``: the tier finds the hosts, and the
    agents report, with the token of the caller (Cinder's [nova]
    user), which travels with the request to the agent."""

    service_credentials = False
