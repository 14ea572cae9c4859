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

"""Tests of the disk index: the driver reads only the guests it must."""

from snapdriver.drivers.libvirt import diskindex
from snapdriver import exception
from snapdriver.tests import base as test_base
from snapdriver.tests.unit.drivers.libvirt import base
from snapdriver.tests.unit.drivers.libvirt import fakes

libvirt = fakes.libvirt


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class DiskIndexTestCase(test_base.TestCase):

    def setUp(self):
        super().setUp()
        self.clock = Clock()
        self.index = diskindex.DiskIndex(60, clock=self.clock)

    def build(self, guests):
        self.index.rebuild(self.index.begin_rebuild(), guests)

    def test_built_only_by_a_full_read(self):
        self.assertTrue(self.index.needs_rebuild())
        self.build({'u1': ['V', 'W'], 'u2': ['X']})
        self.assertFalse(self.index.needs_rebuild())
        self.assertEqual({'u1'}, self.index.guests('V'))
        self.assertEqual({'V', 'W', 'X'}, self.index.serials())
        self.assertEqual(frozenset(), self.index.guests('nope'))

    def test_rebuilt_after_max_age(self):
        self.build({'u1': ['V']})
        self.clock.now += 59.9
        self.assertFalse(self.index.needs_rebuild())
        self.clock.now += 0.1
        self.assertTrue(self.index.needs_rebuild())

    def test_max_age_zero_never_trusts_it(self):
        index = diskindex.DiskIndex(0, clock=self.clock)
        index.rebuild(index.begin_rebuild(), {'u1': ['V']})
        self.assertTrue(index.needs_rebuild())

    def test_update_moves_a_serial(self):
        self.build({'u1': ['V'], 'u2': []})
        self.index.update('u2', ['V'])
        self.assertEqual({'u1', 'u2'}, self.index.guests('V'))
        self.index.update('u1', None)
        self.assertEqual({'u2'}, self.index.guests('V'))
        self.index.update('u2', ['W'])
        self.assertEqual(frozenset(), self.index.guests('V'))
        self.assertEqual({'W'}, self.index.serials())

    def test_changed_guests_are_taken_once(self):
        self.build({})
        self.index.changed('u1')
        self.index.changed('u2')
        self.assertEqual({'u1', 'u2'}, self.index.take_changed())
        self.assertEqual(set(), self.index.take_changed())

    def test_a_change_during_a_rebuild_stays_pending(self):
        self.index.changed('before')
        token = self.index.begin_rebuild()
        self.index.changed('during')
        self.index.rebuild(token, {})
        # The full read covered 'before'; 'during' may have changed after
        # it was read.
        self.assertEqual({'during'}, self.index.take_changed())

    def test_a_new_connection_during_a_rebuild_voids_it(self):
        token = self.index.begin_rebuild()
        self.index.forget_all()
        self.index.rebuild(token, {'u1': ['V']})
        self.assertTrue(self.index.needs_rebuild())

    def test_no_domain_events_means_full_reads_only(self):
        self.build({'u1': ['V']})
        self.index.changed(None)
        self.assertTrue(self.index.needs_rebuild())
        self.build({'u1': ['V']})
        self.assertTrue(self.index.needs_rebuild())


class DriverIndexTestCase(base.LibvirtTestCase):
    """The driver over the index, on the fake libvirt (events delivered
    synchronously)."""

    def setUp(self):
        super().setUp()
        self.driver = self.make_driver()
        self.guests = [self.add_guest('g%d' % i, 'V%d' % i)
                       for i in range(5)]
        # The first lookup reads every guest and builds the index.
        self.driver.locate_disk('V0')
        del self.conn.calls[:]

    def add_guest(self, name, serial, events=True):
        path = self.images.add_chain('/d/' + name, ['active', 'base'])
        return self.conn.add_domain(
            name, [fakes.FakeDisk('vda', serial=serial, path=path)],
            events=events)

    def xml_reads(self):
        return sorted(call[1] for call in self.conn.calls_of('XMLDesc'))

    def test_a_lookup_reads_only_the_indexed_guest(self):
        self.assertEqual('g3', self.driver.locate_disk('V3').guest)
        self.assertEqual(['g3'], self.xml_reads())
        self.assertEqual([], self.conn.calls_of('listAllDomains'))

    def test_a_defined_guest_is_read_once_then_found_alone(self):
        self.add_guest('new', 'N')
        self.assertEqual('new', self.driver.locate_disk('N').guest)
        self.assertEqual(['new', 'new'], self.xml_reads())
        self.assertEqual([], self.conn.calls_of('listAllDomains'))

    def test_a_hot_plugged_disk_is_found(self):
        guest = self.guests[1]
        path = self.images.add_chain('/d/plug', ['active'])
        guest.disks.append(fakes.FakeDisk('vdb', serial='P', path=path))
        self.conn.emit_device(guest, 'virtio-disk1')
        location = self.driver.locate_disk('P')
        self.assertEqual(('g1', 'vdb'), (location.guest, location.target))
        self.assertEqual([], self.conn.calls_of('listAllDomains'))

    def test_an_unplugged_disk_is_not_attached(self):
        guest = self.guests[2]
        guest.disks[:] = []
        self.conn.emit_device(
            guest, 'virtio-disk0',
            event_id=libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED)
        self.assertRaises(exception.VolumeNotAttached,
                          self.driver.locate_disk, 'V2')

    def test_a_lost_event_costs_a_full_read_not_a_wrong_answer(self):
        # The disk moved from g1 to g4 and libvirt said nothing.
        moved = self.guests[1].disks.pop()
        self.guests[4].disks.append(moved)
        self.assertEqual('g4', self.driver.locate_disk('V1').guest)
        self.assertEqual(1, len(self.conn.calls_of('listAllDomains')))
        # And the index learnt it.
        del self.conn.calls[:]
        self.assertEqual('g4', self.driver.locate_disk('V1').guest)
        self.assertEqual(['g4'], self.xml_reads())

    def test_a_miss_reads_every_guest(self):
        self.add_guest('quiet', 'Q', events=False)
        self.assertEqual('quiet', self.driver.locate_disk('Q').guest)
        self.assertEqual(1, len(self.conn.calls_of('listAllDomains')))

    def test_a_second_guest_with_the_volume_is_seen(self):
        self.add_guest('twin', 'V3')
        self.assertRaises(exception.VolumeMultiAttached,
                          self.driver.locate_disk, 'V3')

    def test_a_new_connection_rebuilds_it(self):
        old = self.restart_libvirtd()
        old.drop()
        self.driver.locate_disk('V3')
        self.assertEqual(1, len(self.conn.calls_of('listAllDomains')))

    def test_attached_volumes_from_the_index(self):
        self.add_guest('new', 'N')
        self.assertEqual(['N', 'V0', 'V1', 'V2', 'V3', 'V4'],
                         self.driver.attached_volumes())
        self.assertEqual(['new'], self.xml_reads())

    def test_disabled_reads_every_guest_every_time(self):
        self.conf.config(group='libvirt', disk_index_refresh=0)
        driver = self.make_driver()
        del self.conn.calls[:]
        driver.locate_disk('V3')
        driver.locate_disk('V3')
        self.assertEqual(2, len(self.conn.calls_of('listAllDomains')))
        self.assertEqual(10, len(self.xml_reads()))
