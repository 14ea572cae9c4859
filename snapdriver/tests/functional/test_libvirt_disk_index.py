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

"""The disk index on a real libvirtd: the events it relies on arrive.

The driver finds a volume by reading only the guests its index names
(:mod:`snapdriver.drivers.libvirt.diskindex`); libvirt's domain events tell
it which guests to read again. These tests change guests the ways Cinder
and Nova do (hot-plug and unplug on a running guest, a new guest defined,
a definition replaced, one undefined) and show that the driver answers
right *without* reading every guest: the events arrived and were enough.

One change sends no event on libvirt 9.0: a disk added to a stopped
guest's definition alone (``attachDeviceFlags(..., AFFECT_CONFIG)``, as
Nova attaches a volume to a shut-off instance). The index does not name
that guest, so the lookup misses and reads every guest: found all the
same, at the old cost, once.
"""

import os
import time
from xml.etree import ElementTree

import fixtures

from snapdriver.drivers import loader
from snapdriver import exception
from snapdriver.tests import base
from snapdriver.tests.functional import guest

EVENT_TIMEOUT = 20


def disk_xml(path, target, serial):
    disk = ElementTree.Element('disk', type='file', device='disk')
    ElementTree.SubElement(disk, 'driver', name='qemu', type='qcow2')
    ElementTree.SubElement(disk, 'source', file=path)
    ElementTree.SubElement(disk, 'target', dev=target, bus='virtio')
    ElementTree.SubElement(disk, 'serial').text = serial
    return ElementTree.tostring(disk, encoding='unicode')


class HotplugGuest(guest.GuestFixture):
    """A guest whose PCI bus takes hot-plugged disks (that needs ACPI)."""

    def xml(self):
        domain = ElementTree.fromstring(super().xml())
        features = ElementTree.SubElement(domain, 'features')
        ElementTree.SubElement(features, 'acpi')
        return ElementTree.tostring(domain, encoding='unicode')


class TestDiskIndex(base.FunctionalTestCase):

    def setUp(self):
        super().setUp()
        self.uri = guest.libvirt_uri()
        if not self.uri:
            self.skipTest(guest.SKIP_REASON)
        self.useFixture(fixtures.Timeout(180, gentle=True))
        self.conf.config(group='libvirt', connection_uri=self.uri)
        self.directory = self.useFixture(fixtures.TempDir()).path
        self.running = self.add_guest('run-vol')
        self.stopped = self.add_guest('stop-vol', running=False)
        self.driver = loader.load('libvirt')
        # The first lookup reads every guest and builds the index.
        self.assertEqual(self.running.name,
                         self.driver.locate_disk('run-vol').guest)
        self.full_reads = 0
        read_all = self.driver._read_all_guests

        def counted():
            self.full_reads += 1
            return read_all()
        self.driver._read_all_guests = counted

    def add_guest(self, volume_id, running=True):
        return self.useFixture(HotplugGuest(
            self.uri, self.directory, volume_id, size_mb=16,
            running=running))

    def wait_for_event(self, fixture):
        uuid = fixture.domain.UUIDString()
        deadline = time.monotonic() + EVENT_TIMEOUT
        while uuid not in self.driver._index.pending():
            if time.monotonic() > deadline:
                self.fail("no domain event for guest %s within %d s"
                          % (fixture.name, EVENT_TIMEOUT))
            time.sleep(0.02)

    def new_disk(self, serial):
        path = guest.create_image(
            os.path.join(self.directory, 'disk-%s' % serial), 16)
        return disk_xml(path, 'vdc', serial)

    def test_indexed_lookup_reads_no_other_guest(self):
        self.assertEqual(self.stopped.name,
                         self.driver.locate_disk('stop-vol').guest)
        self.assertEqual(0, self.full_reads)

    def test_hot_plug_and_unplug(self):
        libvirt = guest._libvirt()
        xml = self.new_disk('plugged')
        self.running.domain.attachDeviceFlags(
            xml, libvirt.VIR_DOMAIN_AFFECT_LIVE)
        self.wait_for_event(self.running)
        location = self.driver.locate_disk('plugged')
        self.assertEqual((self.running.name, 'vdc'),
                         (location.guest, location.target))
        self.assertEqual(0, self.full_reads)

        self.running.domain.detachDeviceFlags(
            xml, libvirt.VIR_DOMAIN_AFFECT_LIVE)
        # QEMU lets go of the disk when the guest agrees; a guest without
        # an OS never does, so the disk stays (and DEVICE_REMOVED is not
        # sent) until the guest stops. The index must follow what libvirt
        # shows, whichever that is.
        shown = 'plugged' in self.running.domain.XMLDesc(0)
        try:
            self.driver.locate_disk('plugged')
            found = True
        except exception.VolumeNotAttached:
            found = False
        self.assertEqual(shown, found)

    def test_disk_added_to_a_stopped_guests_definition(self):
        libvirt = guest._libvirt()
        self.stopped.domain.attachDeviceFlags(
            self.new_disk('cold'), libvirt.VIR_DOMAIN_AFFECT_CONFIG)
        # No event (libvirt 9.0): a miss, and one full read finds it.
        self.assertEqual(self.stopped.name,
                         self.driver.locate_disk('cold').guest)
        self.assertEqual(1, self.full_reads)
        # From then on the index knows it.
        self.assertEqual(self.stopped.name,
                         self.driver.locate_disk('cold').guest)
        self.assertEqual(1, self.full_reads)

    def test_a_definition_replaced_with_the_volume_in_it(self):
        twin = self.add_guest('twin-vol', running=False)
        self.wait_for_event(twin)
        self.driver.locate_disk('twin-vol')
        # The running guest's volume put into the twin's definition too,
        # as 'virsh edit' does: the definition replaced.
        domain = ElementTree.fromstring(twin.domain.XMLDesc(0))
        domain.find('devices').append(ElementTree.fromstring(
            disk_xml(self.running.volume_path, 'vdc', 'run-vol')))
        twin.conn.defineXML(ElementTree.tostring(domain, encoding='unicode'))
        self.wait_for_event(twin)
        self.assertRaises(exception.VolumeMultiAttached,
                          self.driver.locate_disk, 'run-vol')
        self.assertEqual(0, self.full_reads)

    def test_an_undefined_guest_is_dropped(self):
        gone = self.add_guest('gone-vol', running=False)
        self.wait_for_event(gone)
        self.assertEqual(gone.name, self.driver.locate_disk('gone-vol').guest)
        xml = gone.domain.XMLDesc(0)
        gone.domain.undefine()
        self.wait_for_event(gone)
        self.assertRaises(exception.VolumeNotAttached,
                          self.driver.locate_disk, 'gone-vol')
        # The index named no guest any more; a miss is confirmed by
        # reading every guest (a disk without an event must not be lost).
        self.assertEqual(1, self.full_reads)
        # Defined again (the fixture removes it at the end): found again.
        gone.domain = gone.conn.defineXML(xml)
        self.wait_for_event(gone)
        self.assertEqual(gone.name, self.driver.locate_disk('gone-vol').guest)
