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

"""The functional test environment itself: guests, images, data checks."""

import os
import uuid
from xml.etree import ElementTree

import fixtures
import testtools

from snapdriver.tests.functional import guest

MiB = guest.MiB


class GuestEnvTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.uri = guest.libvirt_uri()
        if not self.uri:
            self.skipTest(guest.SKIP_REASON)
        self.useFixture(fixtures.Timeout(120, gentle=True))
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.volume_id = str(uuid.uuid4())

    def guest(self, **kwargs):
        return self.useFixture(guest.GuestFixture(
            self.uri, self.dir, self.volume_id, size_mb=16, **kwargs))

    def test_live_writes_across_external_snapshot(self):
        g = self.guest()
        self.assertTrue(g.domain.isActive())
        self.assertEqual([g.volume_path], g.chain())
        model = guest.DataModel(g.size)

        model.write_live(g.domain, 0xab, 0, MiB, g.volume_alias)
        self.assertTrue(guest.read_pattern(g.volume_path, 0xab, 0, MiB))
        model.assert_matches(g.volume_path)

        snap_name = '%s.%s' % (g.volume_name, uuid.uuid4())
        overlay = guest.create_overlay(self.dir, snap_name, g.volume_name)
        guest.external_snapshot(g.domain, g.volume_target, overlay)
        self.assertEqual([overlay, g.volume_path], g.chain())

        model.write_live(g.domain, 0xcd, MiB // 2, MiB, g.volume_alias)
        model.assert_matches(overlay)
        model.assert_same_as_reference(overlay, self.dir)
        # The second write went to the overlay only.
        self.assertTrue(guest.read_pattern(g.volume_path, 0xab, 0, MiB))
        self.assertTrue(guest.read_pattern(g.volume_path, 0, MiB, MiB))

        chain = guest.assert_relative_backing(overlay)
        self.assertEqual([overlay, g.volume_path],
                         [image['filename'] for image in chain])
        self.assertEqual(g.volume_name, chain[0]['backing-filename'])

    def test_volume_as_second_disk(self):
        other = guest.Disk('vda', serial='not-the-volume')
        g = self.guest(extra_disks=[other], volume_target='vdb')
        self.assertEqual('virtio-disk1', g.volume_alias)
        other_path = os.path.join(self.dir, other.file_name)

        model = guest.DataModel(g.size)
        model.write_live(g.domain, 0x5a, 3 * MiB, 2 * MiB, g.volume_alias)
        model.assert_matches(g.volume_path)
        self.assertTrue(
            guest.read_pattern(other_path, 0, 0, other.size_mb * MiB))

        overlay = guest.create_overlay(self.dir, g.volume_name + '.snap',
                                       g.volume_name)
        guest.external_snapshot(g.domain, 'vdb', overlay)
        self.assertEqual([overlay, g.volume_path],
                         guest.domain_chain(g.domain, 'vdb'))
        self.assertEqual([other_path], guest.domain_chain(g.domain, 'vda'))
        model.write_live(g.domain, 0x77, 4 * MiB, MiB, g.volume_alias)
        model.assert_matches(overlay)

    def test_shut_off_guest(self):
        g = self.guest(running=False, extra_disks=[guest.Disk('vda')],
                       volume_target='vdb')
        self.assertFalse(g.domain.isActive())
        self.assertTrue(g.domain.isPersistent())
        self.assertIsNone(g.volume_alias)
        self.assertEqual([g.volume_path], g.chain())
        serials = {
            disk.find('target').get('dev'): disk.findtext('serial')
            for disk in ElementTree.fromstring(
                g.domain.XMLDesc(0)).findall('./devices/disk')}
        self.assertEqual({'vda': None, 'vdb': self.volume_id}, serials)

        model = guest.DataModel(g.size)
        model.write_offline(g.volume_path, 0x11, 0, 2 * MiB)
        overlay = guest.create_overlay(self.dir, 'snap1', g.volume_name)
        model.write_offline(overlay, 0x22, MiB, 2 * MiB)
        model.assert_matches(overlay)
        model.assert_same_as_reference(overlay, self.dir)
        guest.assert_relative_backing(overlay)

        # Started later, it runs on what its definition names: the base.
        g.start()
        self.assertEqual('virtio-disk1', g.volume_alias)
        self.assertEqual([g.volume_path], g.chain())
        self.assertTrue(guest.read_pattern(g.volume_path, 0x11, 0, 2 * MiB))

    def test_checks_catch_wrong_data(self):
        g = self.guest()
        model = guest.DataModel(g.size)
        model.write_live(g.domain, 0xab, 0, MiB, g.volume_alias)
        self.assertFalse(guest.read_pattern(g.volume_path, 0xcd, 0, MiB))
        # Written behind the model's back: the whole-disk checks notice.
        guest.write_pattern_live(g.domain, 0x99, 8 * MiB, 4096,
                                 g.volume_alias)
        self.assertEqual([(0, MiB, 15 * MiB)],
                         model.mismatches(g.volume_path))
        self.assertRaises(AssertionError, model.assert_matches,
                          g.volume_path)
        self.assertRaises(AssertionError, model.assert_same_as_reference,
                          g.volume_path, self.dir)
        # QEMU would drop this write silently.
        self.assertRaises(ValueError, guest.write_pattern_live, g.domain,
                          0xab, g.size - 512, MiB, g.volume_alias)

    def test_absolute_backing_is_reported(self):
        base = guest.create_image(os.path.join(self.dir, 'volume-x'), 1)
        top = os.path.join(self.dir, 'volume-x.snap')
        guest.run('qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2',
                  '-b', base, top)
        self.assertRaises(AssertionError, guest.assert_relative_backing, top)

    def test_cleanup_removes_guest(self):
        fixture = guest.GuestFixture(self.uri, self.dir, self.volume_id,
                                     size_mb=1)
        with fixture:
            name = fixture.name
            conn = guest._libvirt().open(self.uri)
            self.addCleanup(conn.close)
            self.assertTrue(conn.lookupByName(name).isActive())
        self.assertNotIn(name, [d.name() for d in conn.listAllDomains()])
