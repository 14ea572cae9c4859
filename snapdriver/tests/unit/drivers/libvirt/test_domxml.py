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

"""Tests of the domain XML parser and the snapshot XML builder."""

from xml.etree import ElementTree

from snapdriver.drivers.libvirt import domxml
from snapdriver.tests import base

# What libvirt 9.0 shows for a running guest (abridged): the active image
# has index 1 and the indices below it need not be consecutive.
RUNNING = """
<domain type='qemu' id='1'>
  <name>g1</name>
  <uuid>9a5b0a4c-5e3e-4b8f-9d0a-1c2d3e4f5a6b</uuid>
  <metadata>
    <snapdriver:quiesce xmlns:snapdriver="%s"> require </snapdriver:quiesce>
  </metadata>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/d/disk1_file' index='1'/>
      <backingStore type='file' index='3'>
        <format type='qcow2'/>
        <source file='/d/snap.img'/>
        <backingStore type='file' index='7'>
          <format type='raw'/>
          <source file='/d/base.img'/>
          <backingStore/>
        </backingStore>
      </backingStore>
      <target dev='vda' bus='virtio'/>
      <serial>V</serial>
    </disk>
    <disk type='block' device='disk'>
      <driver name='qemu' type='raw'/>
      <source dev='/dev/sdb' index='2'/>
      <backingStore/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <target dev='hdc' bus='ide'/>
      <readonly/>
    </disk>
    <disk type='network' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source protocol='netfs' name='vol1/root.img'>
        <host name='server1' port='24007'/>
        <host name='server2'/>
      </source>
      <backingStore type='network' index='1'>
        <format type='qcow2'/>
        <source protocol='netfs' name='vol1/snap.img'/>
      </backingStore>
      <target dev='vdc' bus='virtio'/>
      <serial>N</serial>
    </disk>
    <disk type='file' device='disk'>
      <source file='/d/no-target'/>
      <serial>T</serial>
    </disk>
  </devices>
</domain>
""" % domxml.METADATA_NS


def canonical(xml):
    return ElementTree.canonicalize(xml, strip_text=True)


class ParseDomainTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.domain = domxml.parse_domain(RUNNING)

    def test_identity(self):
        self.assertEqual('g1', self.domain.name)
        self.assertEqual('9a5b0a4c-5e3e-4b8f-9d0a-1c2d3e4f5a6b',
                         self.domain.uuid)

    def test_disks_without_target_are_left_out(self):
        self.assertEqual(['vda', 'vdb', 'hdc', 'vdc'],
                         [disk.target for disk in self.domain.disks])

    def test_file_chain_with_the_indices_libvirt_shows(self):
        vda = self.domain.disk('vda')
        self.assertEqual('V', vda.serial)
        self.assertTrue(vda.is_local)
        self.assertEqual(
            (domxml.Image('/d/disk1_file', 'qcow2', 1),
             domxml.Image('/d/snap.img', 'qcow2', 3),
             domxml.Image('/d/base.img', 'raw', 7)), vda.chain)

    def test_block_disk(self):
        vdb = self.domain.disk('vdb')
        self.assertIsNone(vdb.serial)
        self.assertTrue(vdb.is_local)
        self.assertEqual((domxml.Image('/dev/sdb', 'raw', 2),), vdb.chain)

    def test_empty_cdrom_has_no_chain(self):
        hdc = self.domain.disk('hdc')
        self.assertEqual('cdrom', hdc.device)
        self.assertEqual((), hdc.chain)

    def test_netfs_disk(self):
        vdc = self.domain.disk('vdc')
        self.assertTrue(vdc.is_netfs)
        self.assertFalse(vdc.is_local)
        self.assertEqual(((('name', 'server1'), ('port', '24007')),
                          (('name', 'server2'),)), vdc.hosts)
        # No index on the active image: libvirt's "vdc" is index 0.
        self.assertEqual((domxml.Image('vol1/root.img', 'qcow2', 0),
                          domxml.Image('vol1/snap.img', 'qcow2', 1)),
                         vdc.chain)

    def test_quiesce_metadata(self):
        self.assertEqual('require', self.domain.quiesce)

    def test_quiesce_metadata_inside_a_container(self):
        xml = ("<domain><name>g</name><metadata><sd:settings xmlns:sd='%s'>"
               "<sd:quiesce>never</sd:quiesce></sd:settings></metadata>"
               "</domain>" % domxml.METADATA_NS)
        self.assertEqual('never', domxml.parse_domain(xml).quiesce)

    def test_quiesce_of_another_namespace_is_ignored(self):
        xml = ("<domain><name>g</name><metadata><x:quiesce xmlns:x='urn:x'>"
               "never</x:quiesce></metadata></domain>")
        self.assertIsNone(domxml.parse_domain(xml).quiesce)

    def test_no_metadata(self):
        self.assertIsNone(
            domxml.parse_domain('<domain><name>g</name></domain>').quiesce)

    def test_compute_metadata_any_version(self):
        for version in ('1.0', '1.1', '2.0'):
            namespace = 'http://openstack.org/xmlns/libvirt/nova/' + version
            xml = ("<domain><name>g</name><metadata><sd:quiesce xmlns:sd="
                   "'%s'>try</sd:quiesce><nova:instance xmlns:nova='%s'>"
                   "<nova:name>vm</nova:name></nova:instance></metadata>"
                   "</domain>" % (domxml.METADATA_NS, namespace))
            self.assertEqual(namespace,
                             domxml.parse_domain(xml).compute_namespace)

    def test_no_compute_metadata(self):
        self.assertIsNone(self.domain.compute_namespace)
        xml = ("<domain><name>g</name><metadata><x:instance xmlns:x="
               "'http://openstack.org/xmlns/libvirt/novanet/1.0'/>"
               "</metadata><description>http://openstack.org/xmlns/libvirt/"
               "nova/1.1</description></domain>")
        self.assertIsNone(domxml.parse_domain(xml).compute_namespace)

    def test_serial_attribute_is_not_a_serial(self):
        xml = ("<domain><name>g</name><devices><disk type='file' serial='V'>"
               "<source file='/d/a'/><target dev='vda'/></disk></devices>"
               "</domain>")
        self.assertIsNone(domxml.parse_domain(xml).disk('vda').serial)

    def test_stopped_domain_shows_part_of_a_chain(self):
        # After a snapshot of a running persistent guest, libvirt keeps one
        # <backingStore> without index in the persistent definition.
        xml = ("<domain><name>g</name><devices><disk type='file'>"
               "<driver type='qcow2'/><source file='/d/new'/>"
               "<backingStore type='file'><format type='qcow2'/>"
               "<source file='/d/old'/></backingStore>"
               "<target dev='vda'/></disk></devices></domain>")
        self.assertEqual((domxml.Image('/d/new', 'qcow2', 0),
                          domxml.Image('/d/old', 'qcow2', None)),
                         domxml.parse_domain(xml).disk('vda').chain)

    def test_not_xml(self):
        self.assertRaises(ValueError, domxml.parse_domain, '<domain')

    def test_not_a_domain(self):
        self.assertRaises(ValueError, domxml.parse_domain, '<network/>')


class SnapshotXMLTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.domain = domxml.parse_domain(RUNNING)

    def test_file_disk(self):
        xml = domxml.snapshot_xml(self.domain, self.domain.disk('vda'),
                                  '/d/new-file')
        self.assertEqual(canonical(
            '<domainsnapshot><disks>'
            '<disk name="/d/disk1_file" snapshot="external" type="file">'
            '<source file="/d/new-file"/></disk>'
            '<disk name="vdb" snapshot="no"/>'
            '<disk name="hdc" snapshot="no"/>'
            '<disk name="vdc" snapshot="no"/>'
            '</disks></domainsnapshot>'), canonical(xml))

    def test_netfs_disk_keeps_its_hosts(self):
        xml = domxml.snapshot_xml(self.domain, self.domain.disk('vdc'),
                                  'vol1/new-file')
        self.assertEqual(canonical(
            '<domainsnapshot><disks>'
            '<disk name="vdc" snapshot="external" type="network">'
            '<source protocol="netfs" name="vol1/new-file">'
            '<host name="server1" port="24007"/><host name="server2"/>'
            '</source></disk>'
            '<disk name="vda" snapshot="no"/>'
            '<disk name="vdb" snapshot="no"/>'
            '<disk name="hdc" snapshot="no"/>'
            '</disks></domainsnapshot>'), canonical(xml))

    def test_no_name(self):
        xml = domxml.snapshot_xml(self.domain, self.domain.disk('vda'),
                                  '/d/new-file')
        self.assertIsNone(ElementTree.fromstring(xml).find('name'))
