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

"""snapdriver over HTTP against real guests: the libvirt driver end to end.

Each test starts the real ``snapdriver-api`` console script (libvirt
driver, noauth, the ``log`` status reporter, its journal in an SQLite file
of the test's temporary directory), builds Cinder-like qcow2 chains
attached to TCG guests of the private libvirtd (see
``test_libvirt_contract.attach_volume``), and drives snapshots as Cinder
does: POST to create, DELETE with ``delete_info`` to merge, then GET of the
snapshot id until the operation is over.

After every step the test checks the guest, not only the answer: the chain
libvirt shows and the one the qcow2 headers record are the expected one,
every header names its backing file relatively, and the guest sees exactly
the data written so far (patterns written with qemu-io before the guest
started and while it was shut off, and through the QEMU monitor while it
runs, between steps too). A running guest's disk is flushed through the
monitor before it is read from outside: after a block pull QEMU keeps the
new qcow2 metadata in its cache (the header on disk already names the new
backing file, the L2 tables do not yet map the copied clusters), so a
reader outside QEMU would see zeros where the guest sees its data.

Each step's wall time (request sent to operation over, as seen by GET) is
attached to the test as a ``timing-<step>`` detail and printed to stderr as
``TIMING step=<step> seconds=<s> ...``.
"""

import hashlib
import json
import os
import random
import struct
import sys
import time
import urllib.parse
import uuid

import fixtures
from testtools import content
try:
    import libvirt
except ImportError:  # the tests skip: guest.libvirt_uri() needs it too
    libvirt = None

from snapdriver.drivers.libvirt import domxml
from snapdriver.tests import base
from snapdriver.tests.functional import guest
from snapdriver.tests.functional import server
from snapdriver.tests.functional import test_libvirt_contract as builder

MiB = guest.MiB
ADMIN = 'admin:admin'
RESOURCE = '/v2.1/os-assisted-volume-snapshots'
STEP_TIMEOUT = 60
POLL_INTERVAL = 0.02
FINAL = ('succeeded', 'failed')


def snapshot_id_of(name):
    """The snapshot id in a Cinder overlay name ``volume-<id>.<snap id>``
    (a fresh one for the base image)."""
    _, dot, snap = name.partition('.')
    return snap if dot else str(uuid.uuid4())


class LibvirtApiTestCase(base.FunctionalTestCase):
    """Base class: a temporary share directory, guests, snapdriver-api."""

    test_timeout = 180

    def setUp(self):
        super().setUp()
        self.uri = guest.libvirt_uri()
        if not self.uri:
            self.skipTest(guest.SKIP_REASON)
        self.useFixture(fixtures.Timeout(self.test_timeout, gentle=True))
        self.dir = self.useFixture(fixtures.TempDir()).path
        # One directory for every volume, as on a Cinder NFS share.
        self.share = os.path.join(self.dir, 'share')
        os.mkdir(self.share)
        self.journal = os.path.join(self.dir, 'journal.sqlite')
        self.server = None
        self._servers = 0

    # snapdriver-api

    def server_conf(self, **libvirt_opts):
        libvirt_conf = {'connection_uri': self.uri,
                        'block_job_poll_interval': 0.1}
        libvirt_conf.update(libvirt_opts)
        return {'DEFAULT': {'status_reporter': 'log'},
                'libvirt': libvirt_conf,
                'database': {'connection': 'sqlite:///' + self.journal}}

    def start_server(self, fixture_class=server.ApiServerFixture,
                     **libvirt_opts):
        """Start snapdriver-api on this test's journal."""
        fixture = fixture_class(driver='libvirt', auth_strategy='noauth',
                                extra_conf=self.server_conf(**libvirt_opts))
        self._servers += 1
        name = 'snapdriver-api-%d.log' % self._servers
        # Read at failure time: the log goes with the fixture's directory.
        self.addOnException(lambda exc_info: self.addDetail(
            name, content.text_content(fixture.log_text())))
        self.server = self.useFixture(fixture)
        return fixture

    def api(self, method, path, body=None, server_fixture=None):
        fixture = server_fixture or self.server
        headers = {'X-Auth-Token': ADMIN,
                   'X-OpenStack-Nova-API-Version': '2.1'}
        if body is not None:
            headers['Content-Type'] = 'application/json'
            body = json.dumps(body)
        return server.request(fixture.port, method, RESOURCE + path, body,
                              headers)

    def send_create(self, volume_id, snapshot_id, new_file):
        return self.api('POST', '', {'snapshot': {
            'volume_id': volume_id,
            'create_info': {'snapshot_id': snapshot_id, 'type': 'qcow2',
                            'new_file': new_file}}})

    def send_delete(self, volume_id, snapshot_id, file_to_merge,
                    merge_target_file):
        # As novaclient builds it; the HTTP library percent-encodes it.
        info = json.dumps({'volume_id': volume_id, 'type': 'qcow2',
                           'file_to_merge': file_to_merge,
                           'merge_target_file': merge_target_file})
        return self.api('DELETE', '/%s?delete_info=%s'
                        % (snapshot_id, urllib.parse.quote(info, safe='')))

    def operation(self, snapshot_id):
        answer = self.api('GET', '/%s' % snapshot_id)
        self.assertEqual(200, answer.status, answer)
        return answer.json()['operations'][-1]

    def wait_operation(self, snapshot_id, timeout=STEP_TIMEOUT,
                       reported=True):
        """GET until the newest operation of ``snapshot_id`` is over (and,
        with ``reported``, its status report delivered).

        :returns: (operation, seconds until it was seen over)
        """
        start = time.monotonic()
        deadline = start + timeout
        over = None
        while True:
            op = self.operation(snapshot_id)
            if over is None and op['state'] in FINAL:
                over = time.monotonic() - start
            if over is not None and (
                    not reported or
                    op['status_report']['delivery'] == 'delivered'):
                return op, over
            if time.monotonic() > deadline:
                self.fail('operation of snapshot %s not over (or not '
                          'reported) after %ss: %s'
                          % (snapshot_id, timeout, op))
            time.sleep(POLL_INTERVAL)

    # Steps

    def record_timing(self, step, seconds, **extra):
        line = 'TIMING step=%s seconds=%.3f' % (step, seconds)
        line += ''.join(' %s=%s' % item for item in sorted(extra.items()))
        self.addDetail('timing-%s' % step, content.text_content(line))
        sys.stderr.write(line + '\n')
        sys.stderr.flush()

    def run_step(self, step, send, snapshot_id, state='succeeded',
                 timeout=STEP_TIMEOUT):
        """Send a request that must be accepted, wait for its operation.

        :returns: the operation as GET shows it.
        """
        start = time.monotonic()
        answer = send()
        accepted = time.monotonic() - start
        self.assertIn(answer.status, (200, 204), answer)
        op, seconds = self.wait_operation(snapshot_id, timeout)
        self.record_timing(step, accepted + seconds,
                           accept='%.3f' % accepted,
                           server='%s' % op['duration_seconds'],
                           state=op['state'])
        self.assertEqual(state, op['state'], op)
        return op

    def create(self, step, volume, snapshot_id=None, state='succeeded'):
        """Cinder's create: the overlay first, then the POST."""
        snapshot_id = snapshot_id or str(uuid.uuid4())
        new_file = volume.new_overlay(snapshot_id)
        op = self.run_step(step, lambda: self.send_create(
            volume.volume_id, snapshot_id, new_file), snapshot_id,
            state=state)
        self.assertEqual('create', op['kind'])
        if state == 'succeeded':
            volume.names.insert(0, new_file)
            self.assertEqual(volume.names, op['chain'])
            self.assertEqual('creating', op['status_report']['status'])
        else:
            self.assertEqual('error', op['status_report']['status'])
        return op, new_file

    def delete(self, step, volume, file_to_merge, merge_target_file,
               snapshot_id=None):
        """Cinder's delete; on success the merged-away images are removed
        from disk, as Cinder removes them, so that a chain still needing
        one fails the checks."""
        snapshot_id = snapshot_id or snapshot_id_of(
            file_to_merge or volume.names[1])
        names = volume.names
        if merge_target_file is None:
            kind = 'pull'
            keep = (names[names.index(file_to_merge):]
                    if file_to_merge else [])
            expected = [names[0]] + keep
        else:
            kind = 'commit'
            expected = [n for n in names if n != file_to_merge]
        op = self.run_step(step, lambda: self.send_delete(
            volume.volume_id, snapshot_id, file_to_merge,
            merge_target_file), snapshot_id)
        self.assertEqual(kind, op['kind'])
        self.assertEqual(expected, op['chain'])
        self.assertEqual('deleting', op['status_report']['status'])
        self.assertEqual('delivered', op['status_report']['delivery'])
        volume.check(expected)
        for name in set(names) - set(expected):
            os.unlink(volume.path(name))
        volume.names = expected
        return op

    def attach(self, volume_id=None, **kwargs):
        return builder.attach_volume(self, self.uri, self.share,
                                     volume_id or str(uuid.uuid4()),
                                     **kwargs)

    def between_steps(self, volume):
        """Check everything, write new data, check again."""
        volume.check()
        volume.write()
        volume.check()

    def expect_refused(self, answer, *words):
        """A 400 in the compute API's fault shape, naming ``words``."""
        self.assertEqual(400, answer.status, answer)
        fault = answer.json()
        self.assertEqual(['badRequest'], list(fault))
        self.assertEqual(400, fault['badRequest']['code'])
        message = fault['badRequest']['message']
        for word in words:
            self.assertIn(word, message)
        return message

    def quiesce_warnings(self, snapshot_id):
        """The server's warnings about quiescing for ``snapshot_id``."""
        return [line for line in self.server.log_text().splitlines()
                if ' WARNING ' in line and snapshot_id in line
                and 'quiesc' in line]

    def assert_unknown(self, snapshot_id):
        """Nothing was journalled for ``snapshot_id``."""
        answer = self.api('GET', '/%s' % snapshot_id)
        self.assertEqual(404, answer.status, answer)


class TestLibvirtApi(LibvirtApiTestCase):
    """Creates and merges of a running guest's volume."""

    def setUp(self):
        super().setUp()
        self.start_server()

    def test_create(self):
        volume = self.attach(layers=2)
        old_active = volume.path(volume.names[0])
        op, new_file = self.create('create', volume)
        self.assertEqual('vdb', op['disk'])
        self.between_steps(volume)
        # The guest writes into the new overlay, not into the old image.
        pattern, offset, length = volume.write()
        self.assertTrue(guest.read_pattern(volume.path(new_file), pattern,
                                           offset, length))
        self.assertFalse(guest.read_pattern(old_active, pattern, offset,
                                            length))
        volume.check()
        # The default policy tried to quiesce: no agent, so it went on.
        self.assertTrue(self.quiesce_warnings(op['snapshot_id']))

    def test_second_create(self):
        volume = self.attach(layers=1)
        self.create('create_first', volume)
        self.between_steps(volume)
        self.create('create_second', volume)
        self.between_steps(volume)
        self.assertEqual(3, len(volume.names))

    def test_commit_middle_layer(self):
        volume = self.attach(layers=4)
        self.between_steps(volume)
        # Neither the active image nor the base.
        self.delete('commit_middle', volume, volume.names[1],
                    volume.names[2])
        self.between_steps(volume)
        # Then into the base, on the changed chain.
        self.delete('commit_into_base', volume, volume.names[1],
                    volume.names[2])
        self.between_steps(volume)
        self.assertEqual(2, len(volume.names))

    def test_pull_with_base(self):
        volume = self.attach(layers=4)
        self.between_steps(volume)
        self.delete('pull_base', volume, volume.names[3], None)
        self.between_steps(volume)
        self.assertEqual(2, len(volume.names))

    def test_pull_to_standalone_image(self):
        volume = self.attach(layers=3)
        self.between_steps(volume)
        self.delete('pull_null_base', volume, None, None)
        self.between_steps(volume)
        self.assertEqual(1, len(volume.names))
        self.assertNotIn('backing-filename',
                         guest.backing_chain(volume.active_path())[0])

    def test_create_then_merge_all(self):
        """A snapshot's life as Cinder drives it: two creates, then the
        deletes, with writes between every step."""
        volume = self.attach(layers=1)
        self.create('life_create_1', volume)
        self.between_steps(volume)
        self.create('life_create_2', volume)
        self.between_steps(volume)
        # Delete the older snapshot: commit its overlay into the base.
        self.delete('life_commit', volume, volume.names[1], volume.names[2])
        self.between_steps(volume)
        # Delete the newer one: pull its image into the active one.
        self.delete('life_pull', volume, None, None)
        self.between_steps(volume)

    def test_new_file_with_wrong_backing_is_refused(self):
        volume = self.attach(layers=3)
        snapshot_id = str(uuid.uuid4())
        # Backs onto the image below the active one.
        new_file = volume.new_overlay(snapshot_id, backing=volume.names[1])
        xml_before = volume.xml_chain()
        start = time.monotonic()
        answer = self.send_create(volume.volume_id, snapshot_id, new_file)
        self.record_timing('create_wrong_backing_400',
                           time.monotonic() - start, status=answer.status)
        self.expect_refused(answer, new_file, volume.names[0],
                            volume.names[1])
        self.assertEqual(xml_before, volume.xml_chain())
        self.assert_unknown(snapshot_id)
        self.between_steps(volume)
        # Nothing is left half done: the right overlay works.
        self.create('create_after_400', volume)
        self.between_steps(volume)

    def test_volume_on_second_disk(self):
        other_volume = str(uuid.uuid4())
        volume = self.attach(
            layers=3, target='vdb',
            extra_disks=[
                # A root disk without a serial, another volume.
                guest.Disk('vda', name='root-disk.qcow2', size_mb=4),
                guest.Disk('vdc', serial=other_volume,
                           name='volume-%s' % other_volume, size_mb=4)],
            cdroms=[('hdc', True), ('hdd', False)])
        self.assertEqual('virtio-disk1', volume.fixture.volume_alias)
        self.assertEqual({'vda', 'vdc', 'hdc'}, set(volume.other_disks))
        self.create('vdb_create', volume)
        self.between_steps(volume)
        self.delete('vdb_commit', volume, volume.names[2], volume.names[3])
        self.between_steps(volume)
        self.delete('vdb_pull_base', volume, volume.names[2], None)
        self.between_steps(volume)
        self.delete('vdb_pull_null_base', volume, None, None)
        self.between_steps(volume)
        # The other volume of the guest was never touched.
        self.assertEqual([os.path.join(self.share,
                                       'volume-%s' % other_volume)],
                         guest.domain_chain(volume.domain, 'vdc'))


class TestLibvirtApiQuiesce(LibvirtApiTestCase):
    """The guests have no guest agent: libvirt refuses every quiesce."""

    def assert_create_failed_untouched(self, volume, step):
        before = volume.xml_chain()
        op, new_file = self.create(step, volume, state='failed')
        error = op['error'].lower()
        self.assertIn('quiesc', error)
        self.assertIn('agent', error)
        self.assertEqual(before, volume.xml_chain())
        self.assertEqual(volume.names, op['chain'])
        self.between_steps(volume)
        # The overlay Cinder made is left as it was, for Cinder to remove.
        self.assertEqual(
            volume.names[0],
            guest.backing_chain(volume.path(new_file))[0][
                'backing-filename'])

    def test_try_falls_back_to_unquiesced(self):
        self.start_server(quiesce='try')
        volume = self.attach(layers=2)
        op, new_file = self.create('create_quiesce_try', volume)
        self.between_steps(volume)
        self.assertTrue(self.quiesce_warnings(op['snapshot_id']))

    def test_require_fails_and_leaves_the_chain(self):
        self.start_server(quiesce='require')
        volume = self.attach(layers=2)
        self.assert_create_failed_untouched(volume, 'create_quiesce_require')

    def _set_quiesce_metadata(self, volume, value):
        volume.domain.setMetadata(
            libvirt.VIR_DOMAIN_METADATA_ELEMENT,
            '<quiesce>%s</quiesce>' % value, domxml.METADATA_PREFIX,
            domxml.METADATA_NS,
            libvirt.VIR_DOMAIN_AFFECT_LIVE | libvirt.VIR_DOMAIN_AFFECT_CONFIG)

    def test_domain_metadata_require_overrides_try(self):
        self.start_server(quiesce='try')
        volume = self.attach(layers=2)
        self._set_quiesce_metadata(volume, 'require')
        self.assert_create_failed_untouched(volume,
                                            'create_metadata_require')

    def test_domain_metadata_never_overrides_require(self):
        self.start_server(quiesce='require')
        volume = self.attach(layers=2)
        self._set_quiesce_metadata(volume, 'never')
        op, _ = self.create('create_metadata_never', volume)
        self.between_steps(volume)
        # Not even tried.
        self.assertEqual([], self.quiesce_warnings(op['snapshot_id']))


class TestLibvirtApiOffline(LibvirtApiTestCase):
    """A shut-off guest: qemu-img does the merges."""

    def setUp(self):
        super().setUp()
        self.start_server()

    def start_and_check(self, volume):
        """Started afterwards, the guest runs on the expected chain (as
        libvirt reads it from the headers) and sees its data."""
        volume.fixture.start()
        self.assertEqual([volume.path(n) for n in volume.names],
                         volume.xml_chain())
        self.between_steps(volume)

    def test_offline_pull_with_base(self):
        volume = self.attach(layers=4, running=False)
        self.between_steps(volume)
        self.delete('offline_pull_base', volume, volume.names[2], None)
        self.between_steps(volume)
        self.start_and_check(volume)

    def test_offline_pull_to_standalone_image(self):
        volume = self.attach(layers=3, running=False)
        self.between_steps(volume)
        self.delete('offline_pull_null_base', volume, None, None)
        self.between_steps(volume)
        self.start_and_check(volume)

    def test_offline_commit(self):
        volume = self.attach(layers=4, running=False)
        self.between_steps(volume)
        self.delete('offline_commit_middle', volume, volume.names[1],
                    volume.names[2])
        self.between_steps(volume)
        self.delete('offline_commit_into_base', volume, volume.names[1],
                    volume.names[2])
        self.between_steps(volume)
        self.start_and_check(volume)

    def test_offline_create(self):
        volume = self.attach(layers=2, running=False)
        self.create('offline_create', volume)
        self.between_steps(volume)
        self.start_and_check(volume)


class TestLibvirtApiComputeManaged(LibvirtApiTestCase):
    """Guests with nova-compute's metadata in their domain XML."""

    NOVA_NS = 'http://openstack.org/xmlns/libvirt/nova/1.1'

    def manage(self, volume):
        """Give the guest the metadata nova-compute writes (live and in its
        persistent definition)."""
        volume.domain.setMetadata(
            libvirt.VIR_DOMAIN_METADATA_ELEMENT,
            '<instance><name>vm-1</name><flavor name="m1.tiny"/></instance>',
            'nova', self.NOVA_NS,
            libvirt.VIR_DOMAIN_AFFECT_LIVE | libvirt.VIR_DOMAIN_AFFECT_CONFIG)

    def disk_state(self, volume):
        """What libvirt shows, what the headers record, and the bytes of
        every file of the share."""
        volume.flush()
        files = {}
        for name in sorted(os.listdir(self.share)):
            with open(os.path.join(self.share, name), 'rb') as f:
                files[name] = hashlib.sha256(f.read()).hexdigest()
        return (volume.xml_chain(), volume.header_chain(), files,
                volume.domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))

    def test_refused_and_nothing_changes(self):
        self.start_server()
        volume = self.attach(layers=3)
        self.manage(volume)
        snapshot_id = str(uuid.uuid4())
        new_file = volume.new_overlay(snapshot_id)
        before = self.disk_state(volume)
        message = self.expect_refused(
            self.send_create(volume.volume_id, snapshot_id, new_file),
            'Snapshot create refused', volume.volume_id,
            volume.fixture.name, 'nova-compute manages', self.NOVA_NS,
            'next hard reboot or migration', 'allow_compute_managed_guests')
        self.addDetail('refusal', content.text_content(message))
        self.assert_unknown(snapshot_id)
        for file_to_merge, merge_target_file in (
                (volume.names[1], volume.names[2]),     # commit
                (volume.names[1], None),                # pull onto a base
                (None, None)):                          # pull everything
            delete_id = str(uuid.uuid4())
            self.expect_refused(
                self.send_delete(volume.volume_id, delete_id, file_to_merge,
                                 merge_target_file),
                'Snapshot delete refused', 'nova-compute manages')
            self.assert_unknown(delete_id)
        self.assertEqual(before, self.disk_state(volume))
        volume.check()

    def test_allowed_by_the_option(self):
        self.start_server(allow_compute_managed_guests=True)
        volume = self.attach(layers=2)
        self.manage(volume)
        op, _ = self.create('create_compute_managed_allowed', volume)
        self.between_steps(volume)
        self.assertIn('is managed by nova-compute (metadata in %s)'
                      % self.NOVA_NS, self.server.log_text())


class TestLibvirtApiHostileNames(LibvirtApiTestCase):
    """Names that would reach outside the volume's chain: every one a 400,
    before anything changes on disk or in the guests."""

    def setUp(self):
        super().setUp()
        self.start_server()
        self.outside = os.path.join(self.dir, 'outside')
        os.mkdir(self.outside)
        self.a = self.attach(layers=3)
        self.b = self.attach(layers=2)
        a_active = self.a.names[0]
        a_name = self.a.fixture.volume_name

        def overlay(directory, name, backing):
            # -u: the backing file need not exist where the name points.
            guest.run('qemu-img', 'create', '-q', '-f', 'qcow2', '-F',
                      'qcow2', '-u', '-b', backing,
                      os.path.join(directory, name), '16M')
            return name

        # Outside the share: a perfect overlay of A's active image (by its
        # header), and a foreign image.
        overlay(self.outside, 'evil.qcow2', a_active)
        guest.create_image(os.path.join(self.outside, 'foreign.qcow2'), 16)
        self.evil = os.path.join(self.outside, 'evil.qcow2')
        self.files = {
            'link_out': a_name + '.link-out',
            'link_active': a_name + '.link-active',
            'link_middle': a_name + '.link-middle',
            'raw': a_name + '.raw',
            'no_backing': a_name + '.no-backing',
            'foreign_rel': a_name + '.foreign-rel',
            'foreign_abs': a_name + '.foreign-abs',
            'backs_on_b': a_name + '.backs-on-b',
            'backing_fmt_raw': a_name + '.backing-fmt-raw',
            'data_file': a_name + '.data-file',
            'subdir': a_name + '.dir',
            'link_dir': a_name + '.link-dir',
            'through_link': a_name + '.through-link',
            'short_header': a_name + '.short-header',
        }
        f = self.files
        os.symlink(self.evil, os.path.join(self.share, f['link_out']))
        os.symlink(a_active, os.path.join(self.share, f['link_active']))
        os.symlink(self.a.names[1], os.path.join(self.share,
                                                 f['link_middle']))
        guest.create_image(os.path.join(self.share, f['raw']), 16, 'raw')
        guest.create_image(os.path.join(self.share, f['no_backing']), 16)
        overlay(self.share, f['foreign_rel'], '../outside/foreign.qcow2')
        overlay(self.share, f['foreign_abs'],
                os.path.join(self.outside, 'foreign.qcow2'))
        overlay(self.share, f['backs_on_b'], self.b.names[0])
        # The right backing file, read as raw: the guest would run on a
        # chain that qemu-img (and Cinder) read differently.
        guest.run('qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'raw',
                  '-b', a_active, os.path.join(self.share,
                                               f['backing_fmt_raw']))
        # The right backing file, but the guest's writes would go to an
        # external data file outside the share (qemu-img creates it; its
        # content is written afterwards, to be found intact).
        self.victim = os.path.join(self.outside, 'victim.img')
        guest.run('qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2',
                  '-b', a_active, '-o', 'data_file=%s' % self.victim,
                  os.path.join(self.share, f['data_file']))
        with open(self.victim, 'r+b') as victim:
            victim.write(b'precious' * (self.a.model.size // 8))
        os.mkdir(os.path.join(self.share, f['subdir']))
        # Backing onto the active image's name through a directory that is
        # a link out of the share: the name reads right, QEMU would open
        # another file.
        os.symlink(self.outside, os.path.join(self.share, f['link_dir']))
        self.through_link = '%s/../%s' % (f['link_dir'], self.a.names[0])
        overlay(self.share, f['through_link'], self.through_link)
        # A qcow2 header cut short: qemu-img cannot open it.
        guest.create_image(os.path.join(self.outside, 'whole.qcow2'), 16)
        with open(os.path.join(self.outside, 'whole.qcow2'), 'rb') as whole:
            with open(os.path.join(self.share, f['short_header']),
                      'wb') as short:
                short.write(whole.read(40))
        self.between_steps(self.a)
        self.between_steps(self.b)

    def state(self):
        """Every file of the share and outside it, as lstat sees it, and
        what the guests run on."""
        files = {}
        for directory in (self.share, self.outside):
            st = os.stat(directory)
            files[directory] = (st.st_mode, st.st_ino, st.st_mtime_ns)
            for entry in os.scandir(directory):
                st = entry.stat(follow_symlinks=False)
                files[entry.path] = (
                    st.st_mode, st.st_ino, st.st_size, st.st_mtime_ns,
                    os.readlink(entry.path) if entry.is_symlink() else None)
        return files, self.a.xml_chain(), self.b.xml_chain()

    def refuse_all(self, step, requests):
        """Send each (send, snapshot id, words expected in the message);
        every one must be a 400 that changed nothing."""
        self.a.flush()
        self.b.flush()
        before = self.state()
        start = time.monotonic()
        slowest = 0
        for send, snapshot_id, words in requests:
            sent = time.monotonic()
            answer = send()
            slowest = max(slowest, time.monotonic() - sent)
            try:
                self.expect_refused(answer, *words)
            except Exception:
                self.addDetail('refused-request', content.text_content(
                    '%s: %r' % (snapshot_id, answer)))
                raise
        self.record_timing(step, time.monotonic() - start,
                           requests=len(requests),
                           slowest_request='%.3f' % slowest)
        for _send, snapshot_id, _words in requests:
            self.assert_unknown(snapshot_id)
        self.a.flush()
        self.b.flush()
        self.assertEqual(before, self.state())
        self.between_steps(self.a)
        self.between_steps(self.b)

    def test_hostile_new_file(self):
        a, b, f = self.a, self.b, self.files

        def create(new_file, *words):
            """A create of ``new_file``, whose 400 must name the field, the
            value and ``words`` (values, not phrasing)."""
            snapshot_id = str(uuid.uuid4())
            if new_file.isprintable():
                words += (new_file,)
            return (lambda: self.send_create(a.volume_id, snapshot_id,
                                             new_file),
                    snapshot_id, ('new_file',) + words)

        requests = [
            create('a/b'),
            create('../outside/evil.qcow2'),
            create('..'),
            create('.'),
            create(self.evil),
            create(a.path(a.names[0])),
            create('x\x00y'),
            # A link out of the share to a perfect overlay, and one to the
            # active image itself.
            create(f['link_out']),
            create(f['link_active']),
            create(f['raw'], 'raw'),
            create(f['no_backing']),
            create(f['foreign_rel'], '../outside/foreign.qcow2'),
            create(f['foreign_abs'], 'foreign.qcow2'),
            create(f['backs_on_b'], b.names[0]),
            create(f['backing_fmt_raw'], 'raw', a.names[0]),
            create(f['data_file'], self.victim),
            create(f['subdir']),
            create(f['through_link'], self.through_link),
            create(f['short_header'], 'header too short'),
            create('missing-overlay'),
            # Files of the volume's own chain.
            create(a.names[0]),
            create(a.names[-1]),
            # Files of ANOTHER volume's chain, in the same share.
            create(b.names[0]),
            create(b.names[1]),
        ]
        self.refuse_all('hostile_new_file_400', requests)
        # After all that, a good create still works.
        self.create('create_after_hostile', a)
        self.between_steps(a)
        self.between_steps(b)

    def test_hostile_files_fuzzed(self):
        """Generated hostile files on the share as new_file: every one a
        400 that names it, nothing changed. ``SNAPDRIVER_FUZZ_SEED`` repeats
        a run (the seed is in the test's details)."""
        seed = int(os.environ.get('SNAPDRIVER_FUZZ_SEED')
                   or random.SystemRandom().randrange(2 ** 32))
        self.addDetail('seed', content.text_content(str(seed)))
        print('HOSTILE FILES SEED=%d' % seed, file=sys.stderr)
        rng = random.Random(seed)
        a = self.a
        made = []
        for number in range(HOSTILE_FILES):
            name = '%s.fuzz-%03d' % (a.fixture.volume_name, number)
            path = os.path.join(self.share, name)
            kind = rng.choice(sorted(HOSTILE_KINDS))
            detail = HOSTILE_KINDS[kind](self, rng, path, name)
            made.append((name, kind, detail))
        self.addDetail('files', content.text_content('\n'.join(
            '%s: %s %s' % item for item in made)))

        def create(new_file):
            snapshot_id = str(uuid.uuid4())
            return (lambda: self.send_create(a.volume_id, snapshot_id,
                                             new_file),
                    snapshot_id, ('new_file', new_file))
        self.refuse_all('hostile_files_fuzzed_400',
                        [create(name) for name, _kind, _detail in made])

    def test_hostile_delete_info(self):
        a, b, f = self.a, self.b, self.files

        def delete(volume, file_to_merge, merge_target_file, field):
            """A delete whose 400 must name ``field`` and its value."""
            snapshot_id = str(uuid.uuid4())
            value = (file_to_merge if field == 'file_to_merge'
                     else merge_target_file)
            return (lambda: self.send_delete(volume.volume_id, snapshot_id,
                                             file_to_merge,
                                             merge_target_file),
                    snapshot_id, (field, value))

        a_mid, a_base = a.names[1], a.names[2]
        share_name = os.path.basename(self.share)
        ftm, mtf = 'file_to_merge', 'merge_target_file'
        requests = [
            delete(a, 'a/b', None, ftm),
            delete(a, '..', None, ftm),
            delete(a, '.', None, ftm),
            delete(a, a.path(a_mid), None, ftm),
            delete(a, '../%s/%s' % (share_name, a_mid), None, ftm),
            delete(a, a_mid, a.path(a_base), mtf),
            delete(a, a_mid, '../%s/%s' % (share_name, a_base), mtf),
            delete(a, '/etc/passwd', None, ftm),
            delete(a, 'evil.qcow2', None, ftm),
            # Symbolic links to members of the chain are not members.
            delete(a, f['link_middle'], None, ftm),
            delete(a, f['link_middle'], a_base, ftm),
            delete(a, f['link_active'], None, ftm),
            # Files of ANOTHER volume's chain.
            delete(a, b.names[1], None, ftm),
            delete(a, b.names[0], b.names[1], ftm),
            delete(a, a_mid, b.names[1], mtf),
            delete(b, a_mid, a_base, ftm),
            delete(b, a_mid, None, ftm),
        ]
        self.refuse_all('hostile_delete_info_400', requests)
        # After all that, a good delete still works.
        self.delete('commit_after_hostile', a, a_mid, a_base)
        self.between_steps(a)
        self.between_steps(b)


# Hostile files for test_hostile_files_fuzzed: each maker writes one at
# ``path`` and returns what it did (for the test's details).

#: How many hostile files one run generates.
HOSTILE_FILES = 64

#: Fields of a qcow2 header (offset, struct format) that qemu-img must
#: refuse when they are huge: backing name offset and size, L1 table size,
#: refcount table clusters, snapshot count.
_HEADER_FIELDS = ((8, '>Q'), (16, '>I'), (36, '>I'), (56, '>I'), (60, '>I'))


def _overlay_of(test, path, backing, unsafe=True):
    args = ['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2']
    if unsafe:
        args.append('-u')
    guest.run(*args + ['-b', backing, path, '16M'])


def _truncated(test, rng, path, name):
    _overlay_of(test, path, test.a.names[0])
    length = rng.randrange(0, 104)
    os.truncate(path, length)
    return 'a good overlay cut to %d bytes' % length


def _garbage(test, rng, path, name):
    data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4096)))
    if rng.random() < 0.5:
        data = b'QFI\xfb' + data
    with open(path, 'wb') as f:
        f.write(data)
    return '%d bytes of garbage%s' % (
        len(data), ' after the qcow2 magic' if data[:4] == b'QFI\xfb' else '')


def _hostile_backing(test, rng, path, name):
    active = test.a.names[0]
    backing = rng.choice([
        name,                                       # itself
        './' + name,
        '../' + os.path.basename(test.share) + '/' + active,
        os.path.join(test.share, active),           # absolute
        'x/' * rng.randrange(1, 40) + '../' * rng.randrange(1, 40) + active,
        active + '/',
        active + '\n',
        'a' * rng.randrange(256, 1000),
        test.b.names[0],
        test.a.names[-1],
    ])
    _overlay_of(test, path, backing)
    return 'backing name %r' % backing


def _looped(test, rng, path, name):
    # Two files backing onto each other; the request names the first.
    other = name + '.loop'
    _overlay_of(test, path, other)
    _overlay_of(test, os.path.join(test.share, other), name)
    return 'a loop with %s' % other


def _huge_field(test, rng, path, name):
    _overlay_of(test, path, test.a.names[0])
    offset, fmt = rng.choice(_HEADER_FIELDS)
    value = (2 ** (8 * struct.calcsize(fmt))) - 1 - rng.randrange(1000)
    with open(path, 'r+b') as f:
        f.seek(offset)
        f.write(struct.pack(fmt, value))
    return 'header field at offset %d set to %d' % (offset, value)


def _special(test, rng, path, name):
    kind = rng.choice(['fifo', 'directory', 'link to a fifo',
                       'hard link to the active image',
                       "hard link to another volume's image"])
    if kind == 'fifo':
        os.mkfifo(path)
    elif kind == 'directory':
        os.mkdir(path)
    elif kind == 'link to a fifo':
        fifo = os.path.join(test.outside, name + '.fifo')
        os.mkfifo(fifo)
        os.symlink(fifo, path)
    elif kind == 'hard link to the active image':
        os.link(test.a.path(test.a.names[0]), path)
    else:
        os.link(test.b.path(test.b.names[0]), path)
    return kind


HOSTILE_KINDS = {
    'truncated': _truncated,
    'garbage': _garbage,
    'hostile backing name': _hostile_backing,
    'backing loop': _looped,
    'huge header field': _huge_field,
    'special file': _special,
}
