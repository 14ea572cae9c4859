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

"""The libvirt driver across a region: two agents, each next to a libvirtd
of its own with a TCG guest, behind one API process of the tier.

Each agent (hosts A and B) runs the ``libvirt`` driver against a private
libvirtd (:class:`faults.PrivateLibvirtd`, state in
``<libvirt dir>-region-a`` and ``-region-b``), whose one guest has a
Cinder-style volume (``test_libvirt_contract.attach_volume``: a qcow2
chain named as Cinder names it, beside a root disk with data of its own).
The API process finds each volume by the serials the agents read from
their libvirtd (``agents`` locator). On each host's volume, through the
tier: a create (the overlay made first with qemu-img, as Cinder makes
it), a commit of a middle layer into the base, and a pull into the
active image; after every step, on both hosts, the chain in libvirt and
in the qcow2 headers is the expected one, every header names its backing
file relatively, the guest sees exactly the data written so far (read
with qemu-io), and the other disks are untouched; new data is then
written live before the next step.

And a live migration seen by the ``agents`` locator: the destination's
libvirtd has the incoming guest with a disk of the same serial, both
agents report the volume, and the request is a 409 that names both hosts,
with nothing changed on either. And a migration that has just finished
while the agents' last reports still place the volume on the source: the
source's agent refuses it, and the API process asks every agent for a
fresh report and sends the request to the destination.

Needs ``$SNAPDRIVER_TEST_TRANSPORT_URL`` (a RabbitMQ broker) and
``$SNAPDRIVER_TEST_LIBVIRT_URI`` (run through ``tools/with-libvirtd.sh``,
as the fault suite, which also starts daemons of its own); skipped
without either.
"""

import json
import os
import time
import urllib.parse
import uuid

import fixtures
from testtools import content

from snapdriver.tests import base
from snapdriver.tests.functional import broker
from snapdriver.tests.functional import faults
from snapdriver.tests.functional import guest
from snapdriver.tests.functional import region
from snapdriver.tests.functional import server
from snapdriver.tests.functional import test_libvirt_contract as builder

TOKEN = 'admin:%s' % uuid.uuid4().hex
#: One operation on a TCG guest, through the tier, and its report.
STEP_TIMEOUT = 60
LABELS = ('a', 'b')


def libvirtd_directory(label):
    """Beside the shared daemon's directory, as the fault suite's."""
    base_dir = os.environ.get('SNAPDRIVER_LIBVIRT_DIR') or os.path.join(
        faults.REPO, '.run', 'libvirt')
    return os.path.realpath(base_dir) + '-region-' + label


def snapshot_id_of(name):
    """The snapshot id in an overlay's name ``volume-<id>.<snapshot>``."""
    return name.partition('.')[2]


class Host:
    """One hypervisor host: its libvirtd, guest volume and agent."""

    def __init__(self, label, libvirtd, volume, agent):
        self.label = label
        self.libvirtd = libvirtd
        self.volume = volume
        self.agent = agent

    @property
    def name(self):
        return self.agent.host


class RegionLibvirtTestCase(base.FunctionalTestCase):
    """Hosts A and B, each a libvirtd of its own with a guest, an agent;
    one API process (``agents`` locator)."""

    #: Seconds between an agent's reports (and whenever asked).
    report_interval = 1

    def setUp(self):
        super().setUp()
        url = region.skip_without_broker(self)
        if not guest.libvirt_uri():
            self.skipTest(guest.SKIP_REASON)
        self.useFixture(fixtures.Timeout(300, gentle=True))
        exchange = broker.exchange()
        self.hosts = []
        for label in LABELS:
            libvirtd = self.useFixture(faults.PrivateLibvirtd(
                libvirtd_directory(label)))
            share = self.useFixture(fixtures.TempDir()).path
            # volume-V <- .S1 <- .S2 (active), a layer of data in each and
            # one live write; a root disk with data beside it.
            volume = builder.attach_volume(self, libvirtd.uri, share,
                                           str(uuid.uuid4()), layers=3)
            agent = self.useFixture(region.AgentFixture(
                region.host_name(label), url, exchange, driver='libvirt',
                extra_conf={'libvirt': {
                    'connection_uri': libvirtd.uri, 'quiesce': 'never',
                    'block_job_poll_interval': 0.1}},
                report_interval=self.report_interval))
            self._log_on_failure('agent-%s.log' % label, agent.log_text)
            self.hosts.append(Host(label, libvirtd, volume, agent))
        self.api = self.useFixture(server.ApiServerFixture(
            extra_conf=region.tier_conf(url, exchange)))
        self._log_on_failure('snapdriver-api.log', self.api.log_text)
        region.wait_agents(self.api.port, TOKEN,
                           [host.name for host in self.hosts])

    def _log_on_failure(self, name, read):
        self.addOnException(lambda exc_info: self.addDetail(
            name, content.text_content(read()[-20000:])))

    def wait_volumes(self, host, count, timeout=10):
        """Until the API process has a report of ``host`` that lists
        ``count`` volumes (agents report every second)."""
        deadline = time.monotonic() + timeout
        while True:
            agents = region.wait_agents(self.api.port, TOKEN, [host])
            seen = {agent['host']: agent['volumes'] for agent in agents}
            if seen[host] == count:
                return
            if time.monotonic() > deadline:
                self.fail('the agent of %s reports %s volumes, not %d, '
                          'after %ss' % (host, seen[host], count, timeout))
            time.sleep(0.1)

    # Requests, as Cinder's compute client sends them.

    def request(self, method, path='', body=None):
        return server.resource_request(self.api.port, TOKEN, method, path,
                                       body, timeout=30)

    def operation(self, snapshot_id):
        answer = self.request('GET', '/%s' % snapshot_id)
        self.assertEqual(200, answer.status, answer)
        return answer.json()['operations'][-1]

    def run_step(self, host, answer, snapshot_id, kind, chain):
        """The request was accepted; its operation ends, on ``host``, with
        ``chain``, and its report is delivered; then every volume of the
        region is checked."""
        self.assertIn(answer.status, (200, 204), answer)
        operations = server.wait_for_operations(
            self.api.port, snapshot_id, token=TOKEN, timeout=STEP_TIMEOUT)
        operation = operations[-1]
        self.assertEqual((kind, 'succeeded', host.name),
                         (operation['kind'], operation['state'],
                          operation['host']), operation)
        self.assertEqual(chain, operation['chain'])
        host.volume.names = list(chain)
        self.check_all()
        return operation

    def check_all(self):
        """Data, chains and other disks, on every host, with qemu-io."""
        for host in self.hosts:
            host.volume.check()

    def create(self, host):
        """Cinder's create: the overlay first (qemu-img, relative backing
        name), then the POST."""
        volume = host.volume
        snapshot_id = str(uuid.uuid4())
        new_file = volume.new_overlay(snapshot_id)
        answer = self.request('POST', body={'snapshot': {
            'volume_id': volume.volume_id,
            'create_info': {'snapshot_id': snapshot_id, 'type': 'qcow2',
                            'new_file': new_file}}})
        self.run_step(host, answer, snapshot_id, 'create',
                      [new_file] + volume.names)
        self.assertEqual(volume.path(new_file), volume.active_path())

    def delete(self, host, snapshot_id, file_to_merge, merge_target_file,
               kind, chain):
        """Cinder's delete; the images merged away are then removed, as
        Cinder removes them, so that a chain still needing one fails."""
        volume = host.volume
        before = list(volume.names)
        info = json.dumps({'volume_id': volume.volume_id, 'type': 'qcow2',
                           'file_to_merge': file_to_merge,
                           'merge_target_file': merge_target_file})
        answer = self.request('DELETE', '/%s?delete_info=%s' % (
            snapshot_id, urllib.parse.quote(info, safe='')))
        self.run_step(host, answer, snapshot_id, kind, chain)
        for name in set(before) - set(chain):
            os.unlink(volume.path(name))
        self.check_all()

    def write_all(self):
        """New data, written live by every guest, before the next step."""
        for host in self.hosts:
            host.volume.write()
        self.check_all()


class RegionLibvirtTest(RegionLibvirtTestCase):

    def test_create_commit_pull_on_two_hosts(self):
        agents = {agent['host']: agent for agent in region.wait_agents(
            self.api.port, TOKEN, [host.name for host in self.hosts])}
        for host in self.hosts:
            # The agent of each host reports its guest's two disks.
            self.assertEqual(('libvirt', 2),
                             (agents[host.name]['driver'],
                              agents[host.name]['volumes']))
        self.check_all()

        # Create: volume-V <- .S1 <- .S2 <- .S3 (active).
        for host in self.hosts:
            self.create(host)
        self.write_all()

        # Commit .S1 (a middle layer) into volume-V.
        for host in self.hosts:
            names = host.volume.names
            s1, base_name = names[2], names[3]
            self.delete(host, snapshot_id_of(s1), s1, base_name, 'commit',
                        [names[0], names[1], base_name])
        self.write_all()

        # Pull .S2 into the active .S3, which keeps volume-V (named
        # relatively) as its backing file.
        for host in self.hosts:
            names = host.volume.names
            active, s2, base_name = names
            self.delete(host, snapshot_id_of(active), base_name, None,
                        'pull', [active, base_name])
            header = guest.backing_chain(host.volume.path(active))[0]
            self.assertEqual(base_name, header['backing-filename'])
        self.write_all()

    def test_volume_on_both_hosts_is_a_409(self):
        # A live migration of A's guest to B: B's libvirtd has the incoming
        # guest defined, with a disk of the same serial (on B's copy of
        # the volume). Both agents report it; nothing may run on either.
        a, b = self.hosts
        incoming = self.useFixture(guest.GuestFixture(
            b.libvirtd.uri, self.useFixture(fixtures.TempDir()).path,
            a.volume.volume_id, size_mb=16, running=False,
            volume_target='vdb'))
        self.wait_volumes(b.name, 3)
        snapshot_id = str(uuid.uuid4())
        new_file = a.volume.new_overlay(snapshot_id)
        answer = self.request('POST', body={'snapshot': {
            'volume_id': a.volume.volume_id,
            'create_info': {'snapshot_id': snapshot_id, 'type': 'qcow2',
                            'new_file': new_file}}})
        hosts = ', '.join(sorted([a.name, b.name]))
        self.assertEqual(409, answer.status, answer)
        self.assertIn('Volume %s is attached on several hosts (%s)'
                      % (a.volume.volume_id, hosts),
                      answer.json()['conflictingRequest']['message'])
        self.assertEqual(404, self.request('GET', '/%s' % snapshot_id).status)
        self.check_all()
        self.assertEqual([incoming.volume_path],
                         guest.domain_chain(incoming.domain, 'vdb'))


class RegionLibvirtMovedVolumeTest(RegionLibvirtTestCase):
    """Agents that report only when asked (the interval is longer than
    the test): what the API process knows of where a volume is can be
    older than a move."""

    report_interval = 300

    def test_volume_moved_since_the_last_reports(self):
        # A live migration of A's guest to B has just finished: A's
        # libvirtd no longer has the guest, B's runs it. The last reports
        # still place the volume on A. A refuses it; the locator must not
        # trust those reports again, but ask every agent for a fresh one.
        a, b = self.hosts
        volume_id = a.volume.volume_id
        domain = a.volume.domain
        xml = domain.XMLDesc(0)
        domain.destroy()
        domain.undefine()
        # Defined again (shut off) before the guest fixture removes it.
        self.addCleanup(a.volume.fixture.conn.defineXML, xml)
        share = self.useFixture(fixtures.TempDir()).path
        moved = builder.attach_volume(self, b.libvirtd.uri, share,
                                      volume_id, layers=2)
        agents = {agent['host']: agent['volumes'] for agent in
                  region.wait_agents(self.api.port, TOKEN, [a.name, b.name])}
        self.assertEqual({a.name: 2, b.name: 2}, agents)

        snapshot_id = str(uuid.uuid4())
        new_file = moved.new_overlay(snapshot_id)
        answer = self.request('POST', body={'snapshot': {
            'volume_id': volume_id,
            'create_info': {'snapshot_id': snapshot_id, 'type': 'qcow2',
                            'new_file': new_file}}})
        self.assertEqual(200, answer.status, answer)
        operation = server.wait_for_operations(
            self.api.port, snapshot_id, token=TOKEN,
            timeout=STEP_TIMEOUT)[-1]
        self.assertEqual(('create', 'succeeded', b.name),
                         (operation['kind'], operation['state'],
                          operation['host']), operation)
        moved.names.insert(0, new_file)
        self.assertEqual(moved.names, operation['chain'])
        moved.check()
        self.assertIn('Volume %s is not on host %s after all; trying host '
                      '%s' % (volume_id, a.name, b.name),
                      self.api.log_text())
