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

"""Tests of the libvirt driver against a fake libvirt and a fake qemu-img.

The reference scenarios of spec/libvirt-behaviour.md come first: they fix
the exact calls. Domain: vda is a file disk with serial V, active image
/d/disk1_file, chain disk1_file -> snap.img -> other-snap.img -> base.img;
vdb is a block disk without serial.
"""

import errno
import os
import subprocess
import threading
import time
from xml.etree import ElementTree

import fixtures

from snapdriver import chain
from snapdriver.drivers.libvirt import blockjob
from snapdriver.drivers.libvirt import domxml
from snapdriver.drivers.libvirt import flush
from snapdriver.drivers.libvirt import qcow2
from snapdriver import exception
from snapdriver import objects
from snapdriver.operations import planning
from snapdriver.tests.unit.drivers.libvirt import base
from snapdriver.tests.unit.drivers.libvirt import fakes

libvirt = fakes.libvirt

REFERENCE_CHAIN = ['disk1_file', 'snap.img', 'other-snap.img', 'base.img']


def snapshot_flags(quiesce):
    flags = (libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY
             | libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA
             | libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_REUSE_EXT)
    if quiesce:
        flags |= libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE
    return flags


def canonical(xml):
    return ElementTree.canonicalize(xml, strip_text=True)


REFERENCE_SNAPSHOT_XML = canonical(
    '<domainsnapshot><disks>'
    '<disk name="/d/disk1_file" snapshot="external" type="file">'
    '<source file="/d/new-file"/></disk>'
    '<disk name="vdb" snapshot="no"/>'
    '</disks></domainsnapshot>')


class DriverTestCase(base.LibvirtTestCase):

    def setUp(self):
        super().setUp()
        self.driver = self.make_driver()

    def add_reference_domain(self, name='g1', serial='V', **kwargs):
        active = self.images.add_chain('/d', REFERENCE_CHAIN)
        self.images.add('/dev/sdb', fmt='raw')
        return self.conn.add_domain(name, [
            fakes.FakeDisk('vda', serial=serial, path=active),
            fakes.FakeDisk('vdb', disk_type='block', path='/dev/sdb',
                           fmt='raw')], **kwargs)

    def add_netfs_domain(self, running=True):
        # Source name vol1/root.img (no index: 0) backed by index 1
        # vol1/snap.img and index 2 vol1/snap-b.img.
        return self.conn.add_domain('g2', [fakes.FakeDisk(
            'vdb', serial='N', disk_type='network', protocol='netfs',
            hosts=[{'name': 'gluster1', 'port': '24007'}],
            chain=[('vol1/root.img', 'qcow2', None),
                   ('vol1/snap.img', 'qcow2', 1),
                   ('vol1/snap-b.img', 'qcow2', 2)])], running=running)

    def snapshot_calls(self):
        return [(canonical(call[2]), call[3])
                for call in self.conn.calls_of('snapshotCreateXML')]

    def create(self, volume_id='V', new_file='new-file', backing=None):
        location = self.driver.locate_disk(volume_id)
        overlay = None
        if location.source_type == 'file':
            self.images.add(os.path.join(location.directory, new_file),
                            backing=backing or location.active.name)
            overlay = chain.OverlayInfo(name=new_file, exists=True,
                                        fmt='qcow2',
                                        backing=(backing
                                                 or location.active.name),
                                        backing_fmt='qcow2')
        plan = chain.plan_create(location, 'snap-1', new_file, overlay)
        return self.driver.create_snapshot(plan)

    def delete(self, file_to_merge, merge_target_file, volume_id='V'):
        location = self.driver.locate_disk(volume_id)
        plan = chain.plan_delete(location, 'snap-1', file_to_merge,
                                 merge_target_file)
        return self.driver.delete_snapshot(plan)

    def header(self, path):
        return self.images.files[path].backing

    def restart_libvirtd_during_the_job(self, dom, target='vda'):
        """libvirtd restarts at the first look at the job on ``target``:
        the handles of the guest obtained before are dead from then on."""
        self.conn.handles = True
        real_info = dom.blockJobInfo

        def job_info(disk, flags):
            if disk == target and target in dom.jobs and not restarted:
                restarted.append(self.restart_libvirtd())
                restarted[0].drop()
            return real_info(disk, flags)
        restarted = []
        dom.blockJobInfo = job_info
        return restarted


class ReferenceScenarioTestCase(DriverTestCase):
    """The reference scenarios, one test each."""

    def test_create_with_agent(self):
        self.add_reference_domain()
        chain_after = self.create()
        self.assertEqual([(REFERENCE_SNAPSHOT_XML, snapshot_flags(True))],
                         self.snapshot_calls())
        self.assertEqual(['new-file'] + REFERENCE_CHAIN, chain_after)

    def test_create_quiesce_refused_retries_without(self):
        self.add_reference_domain(agent=False)
        chain_after = self.create()
        self.assertEqual([(REFERENCE_SNAPSHOT_XML, snapshot_flags(True)),
                          (REFERENCE_SNAPSHOT_XML, snapshot_flags(False))],
                         self.snapshot_calls())
        self.assertEqual(['new-file'] + REFERENCE_CHAIN, chain_after)
        self.assertIn('Guest g1 could not be quiesced (argument unsupported:'
                      ' QEMU guest agent is not configured); taking snapshot'
                      ' snap-1 without quiescing', self.log.output)

    def test_create_quiesce_required(self):
        self.conf.config(group='libvirt', quiesce='require')
        self.add_reference_domain(agent=False)
        error = self.assertRaises(exception.OperationFailed, self.create)
        self.assertEqual([(REFERENCE_SNAPSHOT_XML, snapshot_flags(True))],
                         self.snapshot_calls())
        self.assertEqual("Guest g1 could not be quiesced, and quiescing is "
                         "required: argument unsupported: QEMU guest agent "
                         "is not configured", str(error))
        self.assertEqual(REFERENCE_CHAIN, self.driver.locate_disk('V').names)

    def test_create_no_agent_expected(self):
        self.conf.config(group='libvirt', quiesce='never')
        self.add_reference_domain(agent=False)
        self.create()
        self.assertEqual([(REFERENCE_SNAPSHOT_XML, snapshot_flags(False))],
                         self.snapshot_calls())

    def test_pull_onto_a_base(self):
        self.add_reference_domain()
        chain_after = self.delete('other-snap.img', None)
        self.assertEqual([('blockRebase', 'g1', 'vda', 'other-snap.img', 0,
                           libvirt.VIR_DOMAIN_BLOCK_REBASE_RELATIVE)],
                         self.conn.changes())
        self.assertEqual(['disk1_file', 'other-snap.img', 'base.img'],
                         chain_after)
        self.assertEqual('other-snap.img', self.header('/d/disk1_file'))

    def test_commit(self):
        self.add_reference_domain()
        chain_after = self.delete('snap.img', 'other-snap.img')
        self.assertEqual([('blockCommit', 'g1', 'vda', 'other-snap.img',
                           'snap.img', 0,
                           libvirt.VIR_DOMAIN_BLOCK_COMMIT_RELATIVE)],
                         self.conn.changes())
        self.assertEqual(['disk1_file', 'other-snap.img', 'base.img'],
                         chain_after)
        self.assertEqual('other-snap.img', self.header('/d/disk1_file'))

    def test_merges_are_limited_to_the_merge_bandwidth(self):
        self.conf.config(group='libvirt', merge_bandwidth=64)
        self.add_reference_domain()
        self.delete('snap.img', 'other-snap.img')
        self.delete('other-snap.img', None)
        self.assertEqual(
            [('blockCommit', 'g1', 'vda', 'other-snap.img', 'snap.img', 64,
              libvirt.VIR_DOMAIN_BLOCK_COMMIT_RELATIVE),
             ('blockRebase', 'g1', 'vda', 'other-snap.img', 64,
              libvirt.VIR_DOMAIN_BLOCK_REBASE_RELATIVE)],
            self.conn.changes())

    def test_pull_everything(self):
        self.add_reference_domain()
        chain_after = self.delete(None, None)
        self.assertEqual([('blockRebase', 'g1', 'vda', None, 0, 0)],
                         self.conn.changes())
        self.assertEqual(['disk1_file'], chain_after)

    def test_invalid_references_are_refused_before_libvirt(self):
        self.add_reference_domain()
        location = self.driver.locate_disk('V')
        for file_to_merge, target in (('nope.img', None),
                                      ('snap.img', 'base.img')):
            error = self.assertRaises(exception.InvalidChainReference,
                                      chain.plan_delete, location, 's',
                                      file_to_merge, target)
            self.assertEqual(400, error.code)
            self.assertIn('the chain of disk vda of guest g1 is disk1_file '
                          '-> snap.img -> other-snap.img -> base.img',
                          str(error))
        self.assertEqual([], self.conn.changes())
        self.assertEqual([], self.qemu_img.commands)

    def test_netfs_pull(self):
        self.add_netfs_domain()
        chain_after = self.delete('snap-b.img', None, volume_id='N')
        self.assertEqual([('blockRebase', 'g2', 'vdb', 'vdb[2]', 0,
                           libvirt.VIR_DOMAIN_BLOCK_REBASE_RELATIVE)],
                         self.conn.changes())
        self.assertEqual(['root.img', 'snap-b.img'], chain_after)

    def test_netfs_commit(self):
        self.add_netfs_domain()
        chain_after = self.delete('snap.img', 'snap-b.img', volume_id='N')
        self.assertEqual([('blockCommit', 'g2', 'vdb', 'vdb[2]', 'vdb[1]', 0,
                           libvirt.VIR_DOMAIN_BLOCK_COMMIT_RELATIVE)],
                         self.conn.changes())
        self.assertEqual(['root.img', 'snap-b.img'], chain_after)

    def test_pull_of_a_stopped_guest(self):
        self.add_reference_domain(running=False)
        chain_after = self.delete('other-snap.img', None)
        self.assertEqual([], self.conn.changes())
        self.assertEqual([('qemu-img', 'rebase', '-p', '-f', 'qcow2', '-F',
                           'qcow2', '-b', 'other-snap.img', '/d/disk1_file')],
                         self.qemu_img.commands_of('rebase'))
        self.assertEqual(['disk1_file', 'other-snap.img', 'base.img'],
                         chain_after)


class LocateDiskTestCase(DriverTestCase):

    def test_running_guest(self):
        dom = self.add_reference_domain()
        location = self.driver.locate_disk('V')
        self.assertEqual('V', location.volume_id)
        self.assertEqual('g1', location.guest)
        self.assertEqual('vda', location.target)
        self.assertTrue(location.running)
        self.assertEqual('file', location.source_type)
        self.assertEqual('/d', location.directory)
        self.assertEqual(
            (chain.ChainEntry('disk1_file', '/d/disk1_file', 'qcow2', 1),
             chain.ChainEntry('snap.img', '/d/snap.img', 'qcow2', 2),
             chain.ChainEntry('other-snap.img', '/d/other-snap.img',
                              'qcow2', 3),
             chain.ChainEntry('base.img', '/d/base.img', 'qcow2', 4)),
            location.chain)
        self.assertEqual(dom.uuid, location.details['domain_uuid'])
        self.assertEqual('g1', location.details['domain_name'])
        self.assertEqual(('vdb',), location.details['other_targets'])
        # Nothing read from the images: libvirt shows the chain.
        self.assertEqual([], self.qemu_img.commands)

    def test_stopped_guest_chain_comes_from_the_headers(self):
        self.add_reference_domain(running=False)
        location = self.driver.locate_disk('V')
        self.assertFalse(location.running)
        self.assertEqual(REFERENCE_CHAIN, location.names)
        self.assertEqual(['/d/disk1_file', '/d/snap.img',
                          '/d/other-snap.img', '/d/base.img'],
                         [entry.path for entry in location.chain])
        self.assertEqual([('qemu-img', 'info', '--output=json',
                           '--force-share', '--backing-chain', '-f', 'qcow2',
                           '/d/disk1_file')], self.qemu_img.commands)
        self.assertTrue(self.qemu_img.kwargs[0]['limited'])

    def test_not_attached(self):
        self.add_reference_domain()
        error = self.assertRaises(exception.VolumeNotAttached,
                                  self.driver.locate_disk, 'W')
        self.assertEqual(400, error.code)

    def test_serial_attribute_does_not_count(self):
        self.images.add('/e/x')
        self.conn.add_domain('decoy', [fakes.FakeDisk(
            'vda', path='/e/x', serial_attribute='V')])
        self.assertRaises(exception.VolumeNotAttached,
                          self.driver.locate_disk, 'V')
        self.add_reference_domain()
        self.assertEqual('g1', self.driver.locate_disk('V').guest)

    def test_multi_attach_is_refused(self):
        self.add_reference_domain()
        self.conn.add_domain('g2', [fakes.FakeDisk('vdc', serial='V',
                                                   path='/d/disk1_file')],
                             running=False)
        error = self.assertRaises(exception.VolumeMultiAttached,
                                  self.driver.locate_disk, 'V')
        self.assertEqual(400, error.code)
        self.assertIn('g1 (disk vda), g2 (disk vdc)', str(error))

    def test_block_disk(self):
        self.images.add('/dev/vg/lv', backing=None)
        self.conn.add_domain('g', [fakes.FakeDisk(
            'vda', serial='B', disk_type='block', path='/dev/vg/lv')])
        location = self.driver.locate_disk('B')
        self.assertEqual('file', location.source_type)
        self.assertEqual('/dev/vg', location.directory)

    def test_netfs_disk(self):
        self.add_netfs_domain()
        location = self.driver.locate_disk('N')
        self.assertEqual('network', location.source_type)
        self.assertIsNone(location.directory)
        self.assertEqual(['root.img', 'snap.img', 'snap-b.img'],
                         location.names)
        self.assertEqual([0, 1, 2],
                         [entry.index for entry in location.chain])
        self.assertEqual('vol1/snap.img', location.chain[1].path)
        self.assertEqual(((('name', 'gluster1'), ('port', '24007')),),
                         location.details['hosts'])

    def test_stopped_netfs_disk_is_refused_up_front(self):
        self.add_netfs_domain(running=False)
        location = self.driver.locate_disk('N')
        plan = chain.plan_delete(location, 's', None, None)
        error = self.assertRaises(exception.OperationNotSupported,
                                  self.driver.check_plan, plan)
        self.assertIn('network disk vdb while guest', str(error))
        self.assertEqual(400, error.code)

    def test_running_netfs_plan_passes(self):
        self.add_netfs_domain()
        location = self.driver.locate_disk('N')
        self.assertIsNone(self.driver.check_plan(
            chain.plan_delete(location, 's', None, None)))

    def test_other_network_disk_is_not_snapshotable(self):
        self.conn.add_domain('g', [fakes.FakeDisk(
            'vda', serial='R', disk_type='network', protocol='rbd',
            chain=[('pool/img', 'raw', 1)])])
        error = self.assertRaises(exception.NoSnapshotableDisk,
                                  self.driver.locate_disk, 'R')
        self.assertIn('Found no disk to snapshot', str(error))

    def test_disk_without_source_is_not_snapshotable(self):
        self.conn.add_domain('g', [fakes.FakeDisk('hdc', serial='C',
                                                  device='cdrom')])
        self.assertRaises(exception.NoSnapshotableDisk,
                          self.driver.locate_disk, 'C')

    def test_domain_vanishing_while_listed_is_skipped(self):
        self.add_reference_domain()
        gone = self.conn.add_domain('gone', [])

        def vanished(flags=0):
            raise fakes.libvirt_error(libvirt.VIR_ERR_NO_DOMAIN,
                                      'Domain not found')
        gone.XMLDesc = vanished
        self.assertEqual('g1', self.driver.locate_disk('V').guest)

    def test_libvirt_unreachable(self):
        self.add_reference_domain()

        def refuse(uri):
            raise fakes.libvirt_error(libvirt.VIR_ERR_SYSTEM_ERROR,
                                      'Failed to connect socket')
        self.conn.drop()
        self.useFixture(fixtures.MonkeyPatch('libvirt.open', refuse))
        error = self.assertRaises(exception.OperationFailed,
                                  self.driver.locate_disk, 'V')
        self.assertIn('Failed to connect socket', str(error))


class InspectOverlayTestCase(DriverTestCase):

    def setUp(self):
        super().setUp()
        self.dir = self.useFixture(fixtures.TempDir()).path
        active = self.images.add_chain(self.dir, ['vol', 'vol.base'])
        self.conn.add_domain('g', [fakes.FakeDisk('vda', serial='V',
                                                  path=active)])
        self.location = self.driver.locate_disk('V')

    def add(self, name, **kwargs):
        # An empty file: no qcow2 magic to the in-process reader, so the
        # fake qemu-img reads it, as it reads any file that is not qcow2.
        path = os.path.join(self.dir, name)
        fakes.touch(path)
        self.images.add(path, **kwargs)
        return path

    def test_missing(self):
        overlay = self.driver.inspect_overlay(self.location, 'new')
        self.assertEqual(chain.OverlayInfo('new', exists=False), overlay)
        self.assertEqual([], self.qemu_img.commands)

    def test_qcow2_overlay(self):
        path = self.add('new', backing='vol')
        overlay = self.driver.inspect_overlay(self.location, 'new')
        st = os.lstat(path)
        self.assertEqual(chain.OverlayInfo('new', True, 'qcow2', 'vol',
                                           backing_fmt='qcow2',
                                           identity=(st.st_dev, st.st_ino)),
                         overlay)
        # The one qemu-img call without -f: its format is being checked.
        self.assertEqual([('qemu-img', 'info', '--output=json',
                           '--force-share', path)], self.qemu_img.commands)

    def test_header_details_reach_the_chain_rules(self):
        self.add('new', backing='vol', backing_fmt='raw')
        overlay = self.driver.inspect_overlay(self.location, 'new')
        self.assertEqual('raw', overlay.backing_fmt)
        error = self.assertRaises(exception.InvalidOverlay,
                                  chain.plan_create, self.location, 's',
                                  'new', overlay)
        self.assertIn('backing file as raw', str(error))

    def test_raw_overlay_is_reported_as_raw(self):
        self.add('new', fmt='raw')
        overlay = self.driver.inspect_overlay(self.location, 'new')
        self.assertEqual('raw', overlay.fmt)
        self.assertRaises(exception.InvalidOverlay, chain.plan_create,
                          self.location, 's', 'new', overlay)

    def test_symlink_is_refused(self):
        target = self.add('real', backing='vol')
        os.symlink(target, os.path.join(self.dir, 'link'))
        error = self.assertRaises(exception.InvalidOverlay,
                                  self.driver.inspect_overlay, self.location,
                                  'link')
        self.assertIn('is a symbolic link', str(error))
        self.assertEqual(400, error.code)

    def test_dangling_symlink_is_refused(self):
        os.symlink('/etc/passwd-nope', os.path.join(self.dir, 'link'))
        self.assertRaises(exception.InvalidOverlay,
                          self.driver.inspect_overlay, self.location, 'link')

    def test_directory_is_refused(self):
        os.mkdir(os.path.join(self.dir, 'sub'))
        error = self.assertRaises(exception.InvalidOverlay,
                                  self.driver.inspect_overlay, self.location,
                                  'sub')
        self.assertIn('not a regular file', str(error))
        self.assertEqual([], self.qemu_img.commands)

    def plan_then(self, change):
        """Inspect and plan a create of 'new', ``change`` the share, then
        run the create."""
        self.add('new', backing='vol')
        overlay = self.driver.inspect_overlay(self.location, 'new')
        plan = chain.plan_create(self.location, 's', 'new', overlay)
        change(os.path.join(self.dir, 'new'))
        return self.assertRaises(exception.InvalidOverlay,
                                 self.driver.create_snapshot, plan)

    def test_overlay_replaced_after_accept_is_refused(self):
        def replace(path):
            other = self.add('other', backing='vol')
            os.replace(other, path)
        error = self.plan_then(replace)
        self.assertIn("new_file 'new' in %s is no longer the file that was "
                      "checked" % self.dir, str(error))
        self.assertEqual([], self.conn.calls_of('snapshotCreateXML'))

    def test_overlay_made_a_link_after_accept_is_refused(self):
        def link(path):
            os.rename(path, path + '.moved')
            os.symlink(path + '.moved', path)
        self.plan_then(link)
        self.assertEqual([], self.conn.calls_of('snapshotCreateXML'))

    def test_overlay_removed_after_accept_is_refused(self):
        error = self.plan_then(os.unlink)
        self.assertIn('is gone since it was checked', str(error))
        self.assertEqual([], self.conn.calls_of('snapshotCreateXML'))

    def test_the_inspected_overlay_is_switched_onto(self):
        self.add('new', backing='vol')
        overlay = self.driver.inspect_overlay(self.location, 'new')
        plan = chain.plan_create(self.location, 's', 'new', overlay)
        self.assertEqual(['new', 'vol', 'vol.base'],
                         self.driver.create_snapshot(plan))

    def test_unreadable_header_is_the_callers_400(self):
        self.add('new', backing='vol')
        self.qemu_img.failures['info'] = (
            "qemu-img: Could not open 'new': qcow2 header too short")
        error = self.assertRaises(exception.InvalidOverlay,
                                  self.driver.inspect_overlay, self.location,
                                  'new')
        self.assertEqual(400, error.code)
        self.assertIn("new_file 'new' in %s cannot be read as a disk image"
                      % self.dir, str(error))
        self.assertIn('qcow2 header too short', str(error))

    def test_header_reads_are_limited_in_time(self):
        self.conf.config(group='libvirt', qemu_img_info_timeout=7)
        self.add('new', backing='vol')

        def hung(args):
            raise subprocess.TimeoutExpired('qemu-img', 7)
        self.qemu_img._info = hung
        error = self.assertRaises(exception.OperationFailed,
                                  self.driver.inspect_overlay, self.location,
                                  'new')
        self.assertNotIsInstance(error, exception.ImageUnreadable)
        self.assertEqual(503, error.code)
        self.assertIn('did not finish within 7 seconds and was killed',
                      str(error))
        self.assertEqual(7, self.qemu_img.kwargs[-1]['timeout'])

    # The common qcow2 header, read in this process

    def add_qcow2(self, name, **kwargs):
        """A real qcow2 header at ``name``, and the same image in the fake
        qemu-img's records."""
        path = os.path.join(self.dir, name)
        fakes.write_qcow2(path, size=64 * fakes.MIB, **kwargs)
        self.images.add(path, backing=kwargs.get('backing'),
                        backing_fmt=kwargs.get('backing_fmt'))
        return path

    def test_qcow2_header_is_read_without_qemu_img(self):
        path = self.add_qcow2('new', backing='vol', backing_fmt='qcow2')
        overlay = self.driver.inspect_overlay(self.location, 'new')
        st = os.lstat(path)
        self.assertEqual(chain.OverlayInfo('new', True, 'qcow2', 'vol',
                                           backing_fmt='qcow2',
                                           identity=(st.st_dev, st.st_ino)),
                         overlay)
        self.assertEqual([], self.qemu_img.commands)
        plan = chain.plan_create(self.location, 's', 'new', overlay)
        self.assertEqual(['new', 'vol', 'vol.base'],
                         self.driver.create_snapshot(plan))

    def test_header_read_in_process_reaches_the_chain_rules(self):
        self.add_qcow2('new', backing='vol', backing_fmt='raw')
        overlay = self.driver.inspect_overlay(self.location, 'new')
        error = self.assertRaises(exception.InvalidOverlay,
                                  chain.plan_create, self.location, 's',
                                  'new', overlay)
        self.assertIn('backing file as raw', str(error))
        self.add_qcow2('data', backing='vol', backing_fmt='qcow2',
                       data_file='data.bin')
        overlay = self.driver.inspect_overlay(self.location, 'data')
        error = self.assertRaises(exception.InvalidOverlay,
                                  chain.plan_create, self.location, 's',
                                  'data', overlay)
        self.assertIn('external data file data.bin', str(error))
        self.assertEqual([], self.qemu_img.commands)

    def test_unusual_qcow2_header_is_left_to_qemu_img(self):
        path = self.add_qcow2('new', backing='vol', backing_fmt='qcow2',
                              nb_snapshots=1)
        overlay = self.driver.inspect_overlay(self.location, 'new')
        self.assertEqual(('qcow2', 'vol', 'qcow2'),
                         (overlay.fmt, overlay.backing, overlay.backing_fmt))
        self.assertEqual([('qemu-img', 'info', '--output=json',
                           '--force-share', path)], self.qemu_img.commands)

    def test_qemu_img_decides_an_unusual_header_it_cannot_read(self):
        self.add_qcow2('new', backing='vol', crypt_method=2)
        self.qemu_img.failures['info'] = (
            "qemu-img: Could not open 'new': no key given")
        error = self.assertRaises(exception.InvalidOverlay,
                                  self.driver.inspect_overlay, self.location,
                                  'new')
        self.assertIn('cannot be read as a disk image', str(error))

    def raced(self, error):
        """The file changed between kit.overlay_path and the reader's
        open."""
        self.add_qcow2('new', backing='vol')

        def read(path):
            raise error
        self.useFixture(fixtures.MonkeyPatch(
            'snapdriver.drivers.libvirt.qcow2.read', read))
        error = self.assertRaises(exception.InvalidOverlay,
                                  self.driver.inspect_overlay, self.location,
                                  'new')
        self.assertEqual(400, error.code)
        self.assertEqual([], self.qemu_img.commands)
        return str(error)

    def test_made_a_link_before_the_open_is_refused(self):
        self.assertEqual(
            "new_file 'new' in %s is a symbolic link; the overlay must be "
            "a regular file." % self.dir,
            self.raced(OSError(errno.ELOOP, 'Too many levels')))

    def test_gone_before_the_open_is_refused(self):
        self.assertEqual(
            "new_file 'new' in %s is gone since it was checked." % self.dir,
            self.raced(OSError(errno.ENOENT, 'No such file or directory')))

    def test_unopenable_is_refused(self):
        self.assertEqual(
            "new_file 'new' in %s cannot be opened: Permission denied."
            % self.dir,
            self.raced(OSError(errno.EACCES, 'Permission denied')))

    def test_made_a_fifo_before_the_open_is_refused(self):
        self.assertEqual(
            "new_file 'new' in %s is not a regular file." % self.dir,
            self.raced(qcow2.NotRegularFile('x is not a regular file')))

    def test_verify_header_reader_agrees(self):
        self.conf.config(group='libvirt', verify_header_reader=True)
        path = self.add_qcow2('new', backing='vol', backing_fmt='qcow2')
        overlay = self.driver.inspect_overlay(self.location, 'new')
        self.assertEqual('vol', overlay.backing)
        self.assertEqual([('qemu-img', 'info', '--output=json',
                           '--force-share', path)], self.qemu_img.commands)

    def test_verify_header_reader_disagrees(self):
        self.conf.config(group='libvirt', verify_header_reader=True)
        path = self.add_qcow2('new', backing='vol', backing_fmt='qcow2')
        self.images.files[path].backing = 'vol.base'
        error = self.assertRaises(exception.OperationFailed,
                                  self.driver.inspect_overlay, self.location,
                                  'new')
        self.assertIn('The qcow2 header reader and qemu-img disagree on %s'
                      % path, str(error))
        self.assertIn("backing_file='vol.base'", str(error))

    def test_netfs_cannot_be_inspected(self):
        self.add_netfs_domain()
        self.assertIsNone(self.driver.inspect_overlay(
            self.driver.locate_disk('N'), 'new'))


class CreateSnapshotTestCase(DriverTestCase):

    def test_domain_metadata_overrides_the_option(self):
        self.add_reference_domain(metadata=(
            '<snapdriver:quiesce xmlns:snapdriver="%s">never'
            '</snapdriver:quiesce>' % domxml.METADATA_NS))
        self.create()
        self.assertEqual([(REFERENCE_SNAPSHOT_XML, snapshot_flags(False))],
                         self.snapshot_calls())

    def test_domain_metadata_can_require(self):
        self.add_reference_domain(agent=False, metadata=(
            '<sd:quiesce xmlns:sd="%s">require</sd:quiesce>'
            % domxml.METADATA_NS))
        self.assertRaises(exception.OperationFailed, self.create)
        self.assertEqual(1, len(self.snapshot_calls()))

    def test_invalid_metadata_value(self):
        self.add_reference_domain(metadata=(
            '<sd:quiesce xmlns:sd="%s">always</sd:quiesce>'
            % domxml.METADATA_NS))
        error = self.assertRaises(exception.OperationFailed, self.create)
        self.assertEqual("Guest g1 asks for quiesce 'always' in its "
                         "metadata; the choices are never, try, require.",
                         str(error))
        self.assertEqual([], self.snapshot_calls())

    def test_thaw_failure_after_the_snapshot_is_a_success(self):
        dom = self.add_reference_domain()
        dom.thaw_error = fakes.libvirt_error(
            libvirt.VIR_ERR_AGENT_UNRESPONSIVE, 'Guest agent is not '
            'responding')
        self.assertEqual(['new-file'] + REFERENCE_CHAIN, self.create())
        self.assertEqual(1, len(self.snapshot_calls()))

    def test_libvirt_refusal_is_reported(self):
        dom = self.add_reference_domain()
        dom.snapshot_errors = {
            1: fakes.libvirt_error(libvirt.VIR_ERR_INTERNAL_ERROR, 'boom 1'),
            2: fakes.libvirt_error(libvirt.VIR_ERR_INTERNAL_ERROR, 'boom 2')}
        error = self.assertRaises(exception.OperationFailed, self.create)
        self.assertEqual("libvirt could not switch disk vda of guest g1 onto "
                         "new-file: boom 2", str(error))

    def test_stopped_guest_is_not_quiesced(self):
        self.conf.config(group='libvirt', quiesce='require')
        self.add_reference_domain(running=False)
        chain_after = self.create()
        self.assertEqual([(REFERENCE_SNAPSHOT_XML, snapshot_flags(False))],
                         self.snapshot_calls())
        self.assertEqual(['new-file'] + REFERENCE_CHAIN, chain_after)

    def test_chain_is_verified(self):
        dom = self.add_reference_domain()
        dom.applies_snapshots = False
        error = self.assertRaises(exception.OperationFailed, self.create)
        self.assertEqual(
            "After the snapshot, the chain of disk vda of guest g1 should be "
            "new-file -> disk1_file -> snap.img -> other-snap.img -> base.img"
            " but is disk1_file -> snap.img -> other-snap.img -> base.img.",
            str(error))

    def test_chain_changed_since_the_plan(self):
        self.add_reference_domain()
        location = self.driver.locate_disk('V')
        self.images.add('/d/new-file', backing='disk1_file')
        plan = chain.plan_create(location, 's', 'new-file', None)
        self.images.files['/d/disk1_file'].backing = 'other-snap.img'
        error = self.assertRaises(exception.OperationFailed,
                                  self.driver.create_snapshot, plan)
        self.assertIn('changed after the request was accepted', str(error))
        self.assertEqual([], self.snapshot_calls())

    def test_guest_gone(self):
        self.add_reference_domain()
        location = self.driver.locate_disk('V')
        plan = chain.plan_create(location, 's', 'new-file', None)
        self.conn.domains = []
        error = self.assertRaises(exception.OperationFailed,
                                  self.driver.create_snapshot, plan)
        self.assertIn('Guest g1 (%s) cannot be found any more'
                      % location.details['domain_uuid'], str(error))

    def test_netfs(self):
        self.add_netfs_domain()
        chain_after = self.create(volume_id='N')
        self.assertEqual([(canonical(
            '<domainsnapshot><disks>'
            '<disk name="vdb" snapshot="external" type="network">'
            '<source protocol="netfs" name="vol1/new-file">'
            '<host name="gluster1" port="24007"/></source></disk>'
            '</disks></domainsnapshot>'), snapshot_flags(True))],
            self.snapshot_calls())
        self.assertEqual(['new-file', 'root.img', 'snap.img', 'snap-b.img'],
                         chain_after)

    def test_netfs_of_a_stopped_guest(self):
        self.add_netfs_domain(running=False)
        error = self.assertRaises(exception.OperationFailed, self.create,
                                  volume_id='N')
        self.assertIn('Guest g2 is not running', str(error))
        self.assertEqual([], self.snapshot_calls())


class DeleteSnapshotTestCase(DriverTestCase):

    def test_job_followed_by_polling_without_events(self):
        dom = self.add_reference_domain()
        dom.send_events = False
        dom.job_polls = 3
        self.assertEqual(['disk1_file', 'other-snap.img', 'base.img'],
                         self.delete('snap.img', 'other-snap.img'))
        self.assertEqual(4, len([call for call
                                 in self.conn.calls_of('blockJobInfo')
                                 if call[2] == 'vda']))

    def test_timeout_aborts_the_job(self):
        self.conf.config(group='libvirt', block_job_timeout=1)
        dom = self.add_reference_domain()
        dom.job_outcome = 'hang'
        error = self.assertRaises(exception.OperationFailed, self.delete,
                                  'other-snap.img', None)
        self.assertEqual([('blockJobAbort', 'g1', 'vda', 0)],
                         self.conn.calls_of('blockJobAbort'))
        self.assertEqual("The block pull on disk vda of guest g1 did not "
                         "finish within 1 seconds ([libvirt] "
                         "block_job_timeout; 33554432 of 67108864 bytes "
                         "done) and was aborted.", str(error))
        self.assertEqual({}, dom.jobs)

    def test_timeout_with_an_abort_that_fails_says_so(self):
        self.conf.config(group='libvirt', block_job_timeout=1)
        dom = self.add_reference_domain()
        dom.job_outcome = 'hang'

        def refuse(disk, flags):
            raise fakes.libvirt_error(libvirt.VIR_ERR_OPERATION_FAILED,
                                      'operation failed: cannot abort')
        dom.blockJobAbort = refuse
        error = self.assertRaises(exception.OperationFailed, self.delete,
                                  'other-snap.img', None)
        self.assertEqual("The block pull on disk vda of guest g1 did not "
                         "finish within 1 seconds ([libvirt] "
                         "block_job_timeout; 33554432 of 67108864 bytes "
                         "done) and could not be aborted (operation failed: "
                         "cannot abort): it may still be running; see "
                         "'virsh blockjob g1 vda --info'.", str(error))

    def test_timeout_after_a_libvirtd_restart_aborts_the_job(self):
        self.conf.config(group='libvirt', block_job_timeout=1)
        dom = self.add_reference_domain()
        dom.job_outcome = 'hang'
        restarted = self.restart_libvirtd_during_the_job(dom)
        error = self.assertRaises(exception.OperationFailed, self.delete,
                                  'other-snap.img', None)
        self.assertIn('did not finish within 1 seconds', str(error))
        self.assertTrue(restarted)
        # Through the new connection: the guest's old handle is dead.
        self.assertEqual([('blockJobAbort', 'g1', 'vda', 0)],
                         self.conn.calls_of('blockJobAbort'))
        self.assertEqual({}, dom.jobs)
        self.assertNotIn('Aborting the block job', self.log.output)

    def test_job_ending_after_a_libvirtd_restart_is_flushed(self):
        dom = self.add_reference_domain()
        dom.job_polls = 2
        dom.send_events = False
        restarted = self.restart_libvirtd_during_the_job(dom)
        self.assertEqual(['disk1_file', 'other-snap.img', 'base.img'],
                         self.delete('other-snap.img', None))
        self.assertTrue(restarted)
        self.assertEqual(1, dom.flushes)
        self.assertFalse(dom.paused)

    def test_cancelled_job_is_detected_by_the_chain(self):
        dom = self.add_reference_domain()
        dom.job_outcome = 'cancel'
        dom.send_events = False
        error = self.assertRaises(exception.OperationFailed, self.delete,
                                  'snap.img', 'other-snap.img')
        self.assertEqual(
            "After the block commit, the chain of disk vda of guest g1 "
            "should be disk1_file -> other-snap.img -> base.img but is "
            "disk1_file -> snap.img -> other-snap.img -> base.img.",
            str(error))

    def test_cancel_event_is_mentioned(self):
        dom = self.add_reference_domain()
        dom.job_outcome = 'cancel'
        error = self.assertRaises(exception.OperationFailed, self.delete,
                                  'other-snap.img', None)
        self.assertTrue(str(error).endswith(
            'libvirt reported that the job was cancelled.'), str(error))

    def test_failed_job(self):
        dom = self.add_reference_domain()
        dom.job_outcome = 'fail'
        error = self.assertRaises(exception.OperationFailed, self.delete,
                                  None, None)
        self.assertIn('libvirt reported that the job failed.', str(error))

    def test_libvirt_refuses_the_job(self):
        dom = self.add_reference_domain()
        dom.jobs['vda'] = fakes.FakeJob(kind=1, end=1, effect=None,
                                        polls_left=99)
        error = self.assertRaises(exception.OperationFailed, self.delete,
                                  'other-snap.img', None)
        self.assertEqual("libvirt refused the block pull on disk vda of "
                         "guest g1: disk 'vda' already in active block job",
                         str(error))

    def test_absolute_backing_name_is_reported(self):
        dom = self.add_reference_domain()
        dom.keeps_relative = False
        error = self.assertRaises(exception.OperationFailed, self.delete,
                                  'other-snap.img', None)
        self.assertEqual("After the block pull, /d/disk1_file records its "
                         "backing file as the absolute path "
                         "/d/other-snap.img; Cinder needs a relative name.",
                         str(error))

    def test_stopped_guest_pull_reads_the_base_format(self):
        self.images.add('/d/base.raw', fmt='raw')
        self.images.add('/d/mid', backing='base.raw')
        self.images.add('/d/top', backing='mid')
        self.conn.add_domain('g', [fakes.FakeDisk('vda', serial='V',
                                                  path='/d/top')],
                             running=False)
        self.assertEqual(['top', 'base.raw'], self.delete('base.raw', None))
        self.assertEqual([('qemu-img', 'rebase', '-p', '-f', 'qcow2', '-F',
                           'raw', '-b', 'base.raw', '/d/top')],
                         self.qemu_img.commands_of('rebase'))

    def test_stopped_guest_pull_everything(self):
        self.add_reference_domain(running=False)
        self.assertEqual(['disk1_file'], self.delete(None, None))
        self.assertEqual([('qemu-img', 'rebase', '-p', '-f', 'qcow2', '-b',
                           '', '/d/disk1_file')],
                         self.qemu_img.commands_of('rebase'))

    def test_stopped_guest_commit(self):
        self.add_reference_domain(running=False)
        self.assertEqual(['disk1_file', 'other-snap.img', 'base.img'],
                         self.delete('snap.img', 'other-snap.img'))
        self.assertEqual(
            [('qemu-img', 'commit', '-p', '-f', 'qcow2', '-d', '/d/snap.img'),
             ('qemu-img', 'rebase', '-f', 'qcow2', '-u', '-F', 'qcow2', '-b',
              'other-snap.img', '/d/disk1_file')],
            [cmd for cmd in self.qemu_img.commands if cmd[1] != 'info'])
        self.assertEqual([], self.conn.changes())

    def test_stopped_guest_commit_failure_relinks_nothing(self):
        self.add_reference_domain(running=False)
        self.qemu_img.failures['commit'] = 'qemu-img: Lock held'
        error = self.assertRaises(exception.OperationFailed, self.delete,
                                  'snap.img', 'other-snap.img')
        self.assertEqual('qemu-img commit of /d/snap.img failed (exit code '
                         '1): qemu-img: Lock held', str(error))
        self.assertEqual([], self.qemu_img.commands_of('rebase'))

    def test_stopped_guest_netfs_is_refused(self):
        self.add_netfs_domain(running=False)
        location = self.driver.locate_disk('N')
        error = self.assertRaises(
            exception.OperationFailed, self.driver.delete_snapshot,
            chain.plan_delete(location, 's', None, None))
        self.assertIn('only changed while the guest runs', str(error))

    def test_guest_stopping_during_the_job(self):
        dom = self.add_reference_domain()
        dom.job_polls = 5
        dom.send_events = False
        real_info = dom.blockJobInfo

        def stop_during_poll(disk, flags):
            if disk == 'vda':
                dom.running = False
            return real_info(disk, flags)
        dom.blockJobInfo = stop_during_poll
        error = self.assertRaises(exception.OperationFailed, self.delete,
                                  'other-snap.img', None)
        self.assertIn('should be disk1_file -> other-snap.img -> base.img',
                      str(error))


class GuestSafetyTestCase(DriverTestCase):
    """One block job per guest, and no merge reported before QEMU flushed
    what it did (QEMU 7.2: concurrent pulls crash it; a finished pull's
    cluster mapping stays in its cache)."""

    def setUp(self):
        super().setUp()
        first = self.images.add_chain('/d', ['v-top', 'v-mid', 'v-base'])
        second = self.images.add_chain('/d', ['w-top', 'w-mid', 'w-base'])
        self.dom = self.conn.add_domain('g1', [
            fakes.FakeDisk('vdb', serial='V', path=first),
            fakes.FakeDisk('vdc', serial='W', path=second)])
        self.useFixture(fixtures.MonkeyPatch(
            'snapdriver.drivers.libvirt.flush.RESUME_RETRY_DELAY', 0))

    def calls(self):
        return [call[0] for call in self.conn.calls
                if call[0] in ('blockRebase', 'blockCommit', 'suspend',
                               'resume', 'qemuMonitorCommand')]

    def in_thread(self, function, *args):
        outcome = {}

        def run():
            try:
                outcome['result'] = function(*args)
            except Exception as error:
                outcome['error'] = error
        thread = threading.Thread(target=run)
        thread.start()
        self.addCleanup(thread.join, 10)
        return thread, outcome

    def wait_until(self, predicate, what):
        deadline = time.monotonic() + 10
        while not predicate():
            if time.monotonic() > deadline:
                self.fail('never happened: %s' % what)
            time.sleep(0.005)

    def test_pull_is_flushed_before_it_is_done(self):
        self.assertEqual(['v-top'], self.delete(None, None))
        self.assertEqual(['blockRebase', 'suspend', 'resume'], self.calls())
        self.assertEqual(1, self.dom.flushes)
        self.assertFalse(self.dom.paused)
        self.assertIn('The block pull on disk vdb of guest g1 is durable: '
                      'the guest was paused', self.log.output)

    def test_commit_is_flushed_too(self):
        self.delete('v-mid', 'v-base')
        self.assertEqual(['blockCommit', 'suspend', 'resume'], self.calls())

    def test_failed_job_changes_nothing_and_is_not_reported_durable(self):
        self.dom.job_outcome = 'fail'
        self.assertRaises(exception.OperationFailed, self.delete, None, None)
        self.assertNotIn('is durable', self.log.output)

    def test_paused_guest_is_flushed_without_running_it(self):
        self.dom.paused = True
        self.delete(None, None)
        self.assertEqual(['blockRebase', 'qemuMonitorCommand'], self.calls())
        [call] = self.conn.calls_of('qemuMonitorCommand')
        self.assertEqual('{"execute": "stop"}', call[2])
        self.assertTrue(self.dom.paused)
        self.assertEqual(1, self.dom.flushes)

    def test_resume_is_retried(self):
        self.dom.resume_errors = [fakes.libvirt_error(
            libvirt.VIR_ERR_OPERATION_FAILED, 'resume failed')] * 2
        self.assertEqual(['v-top'], self.delete(None, None))
        self.assertFalse(self.dom.paused)
        self.assertEqual(3, len(self.conn.calls_of('resume')))

    def test_guest_resumed_by_somebody_else_is_fine(self):
        error = fakes.libvirt_error(libvirt.VIR_ERR_OPERATION_INVALID,
                                    'Requested operation is not valid: '
                                    'domain is already running')
        real_resume = self.dom.resume

        def resumed_elsewhere():
            real_resume()
            raise error
        self.dom.resume = resumed_elsewhere
        self.assertEqual(['v-top'], self.delete(None, None))
        self.assertFalse(self.dom.paused)

    def test_flushes_of_one_guest_never_overlap_a_switch_or_each_other(self):
        location = self.driver.locate_disk('V')
        with self.driver._slots.graph_change(self.dom.uuid):
            thread, outcome = self.in_thread(self.driver.wait_for_pending,
                                             location)
            time.sleep(0.1)
            self.assertEqual([], self.conn.calls_of('suspend'))
        thread.join(10)
        self.assertEqual(False, outcome['result'])
        self.assertEqual(1, self.dom.flushes)

    def test_guest_that_cannot_be_resumed_is_named(self):
        self.dom.resume_errors = [fakes.libvirt_error(
            libvirt.VIR_ERR_OPERATION_FAILED, 'resume failed')] * 9
        error = self.assertRaises(exception.OperationFailed, self.delete,
                                  None, None)
        self.assertEqual("guest g1 was paused so that QEMU would flush its "
                         "disks, and could not be resumed: resume failed; "
                         "resume it with 'virsh resume g1'", str(error))
        self.assertEqual(flush.RESUME_TRIES,
                         len(self.conn.calls_of('resume')))

    def test_pause_refused(self):
        self.dom.suspend_errors = [fakes.libvirt_error(
            libvirt.VIR_ERR_OPERATION_FAILED, 'cannot stop CPUs')]
        error = self.assertRaises(exception.OperationFailed, self.delete,
                                  None, None)
        self.assertEqual("The block pull on disk vdb of guest g1 finished, "
                         "but its result could not be made durable before "
                         "reporting: pausing the guest (so that QEMU flushes "
                         "its disks) failed: cannot stop CPUs", str(error))

    def test_second_merge_on_the_guest_waits_for_the_first(self):
        self.dom.send_events = False
        self.dom.job_polls = 10 ** 9
        first, first_outcome = self.in_thread(self.delete, None, None, 'V')
        self.wait_until(lambda: 'vdb' in self.dom.jobs, 'first job started')
        second, second_outcome = self.in_thread(self.delete, None, None, 'W')
        self.wait_until(lambda: 'waits for it (one block job per guest)'
                        in self.log.output, 'second merge waiting')
        self.assertEqual(['blockRebase'], self.calls())
        self.dom.jobs['vdb'].polls_left = 0
        first.join(10)
        self.wait_until(lambda: 'vdc' in self.dom.jobs, 'second job started')
        self.dom.jobs['vdc'].polls_left = 0
        second.join(10)
        self.assertEqual(['v-top'], first_outcome['result'])
        self.assertEqual(['w-top'], second_outcome['result'])
        # The first job ended and was flushed before the second began.
        self.assertEqual(['blockRebase', 'suspend', 'resume'] * 2,
                         self.calls())
        self.assertEqual('vdb', self.conn.calls_of('blockRebase')[0][2])

    def test_other_guests_merge_at_the_same_time(self):
        other = self.images.add_chain('/e', ['x-top', 'x-base'])
        self.conn.add_domain('g2', [fakes.FakeDisk('vdb', serial='X',
                                                   path=other)])
        with self.driver._slots.hold(self.dom.uuid):
            self.assertEqual(['x-top'], self.delete(None, None, 'X'))

    def test_create_does_not_wait_for_a_merge(self):
        with self.driver._slots.hold(self.dom.uuid):
            self.assertEqual(['new-file', 'w-top', 'w-mid', 'w-base'],
                             self.create('W'))

    def running_job(self, target, **kwargs):
        settings = dict(kind=libvirt.VIR_DOMAIN_BLOCK_JOB_TYPE_PULL,
                        end=64 * fakes.MIB, effect=lambda: None,
                        polls_left=10 ** 9, moves=True)
        settings.update(kwargs)
        job = fakes.FakeJob(**settings)
        self.dom.jobs[target] = job
        return job

    def test_job_on_another_disk_is_held_still_during_a_switch(self):
        job = self.running_job('vdb', bandwidth=5 * fakes.MIB)
        seen = []
        real_snapshot = self.dom.snapshotCreateXML

        def snapshot(xml, flags):
            # What the job does while the switch runs.
            seen.append((job.bandwidth, job.cur))
            self.dom.blockJobInfo('vdb', 0)
            seen.append((job.bandwidth, job.cur))
            return real_snapshot(xml, flags)
        self.dom.snapshotCreateXML = snapshot
        self.conf.config(group='libvirt', quiesce='never')
        self.assertEqual(['new-file', 'w-top', 'w-mid', 'w-base'],
                         self.create('W'))
        held = blockjob.HOLD_BANDWIDTH
        self.assertEqual([(held, seen[0][1])] * 2, seen)
        bytes_flag = libvirt.VIR_DOMAIN_BLOCK_JOB_SPEED_BANDWIDTH_BYTES
        self.assertEqual(
            [('blockJobSetSpeed', 'g1', 'vdb', held, bytes_flag),
             ('blockJobSetSpeed', 'g1', 'vdb', 5 * fakes.MIB, bytes_flag)],
            self.conn.calls_of('blockJobSetSpeed'))
        self.assertEqual(5 * fakes.MIB, job.bandwidth)
        self.assertIn('the block job on disk vdb of guest g1 is held still '
                      'during the switch', self.log.output)

    def test_job_that_is_ending_is_waited_for(self):
        job = self.running_job('vdb', polls_left=3, moves=False)
        job.cur = job.end - 1           # all copied: libvirt shows end - 1
        self.conf.config(group='libvirt', quiesce='never')
        self.create('W')
        self.assertNotIn('vdb', self.dom.jobs)
        job_gone = max(i for i, call in enumerate(self.conn.calls)
                       if call[0] == 'blockJobInfo')
        switch = self.conn.calls.index(
            self.conn.calls_of('snapshotCreateXML')[0])
        self.assertLess(job_gone, switch)

    def test_job_that_will_not_hold_still_fails_the_create(self):
        self.useFixture(fixtures.MonkeyPatch(
            'snapdriver.drivers.libvirt.blockjob.HOLD_TIMEOUT', 0.3))
        job = self.running_job('vdb')
        real_set_speed = self.dom.blockJobSetSpeed

        def ignore_speed(disk, bandwidth, flags):
            self.conn.record('blockJobSetSpeed', 'g1', disk, bandwidth,
                             flags)
        self.dom.blockJobSetSpeed = ignore_speed
        error = self.assertRaises(exception.OperationFailed, self.create, 'W')
        self.assertEqual("Disk vdc of guest g1 was not switched onto "
                         "new-file: the block job on disk vdb did not hold "
                         "still or end within 0.3 seconds, and QEMU must not "
                         "switch a disk while another disk's job copies "
                         "data.", str(error))
        self.assertEqual([], self.conn.calls_of('snapshotCreateXML'))
        self.dom.blockJobSetSpeed = real_set_speed
        self.assertEqual(0, job.bandwidth)

    def test_job_left_held_by_a_dead_snapdriver_runs_again(self):
        job = self.running_job('vdb', bandwidth=blockjob.HOLD_BANDWIDTH)
        self.make_driver()
        self.assertEqual(0, job.bandwidth)
        self.assertIn('The block job on disk vdb of guest g1 was left held '
                      'still by an earlier snapdriver process',
                      self.log.output)

    def test_job_left_held_gets_the_merge_bandwidth_back(self):
        self.conf.config(group='libvirt', merge_bandwidth=20)
        job = self.running_job('vdb', bandwidth=blockjob.HOLD_BANDWIDTH)
        self.make_driver()
        self.assertEqual(20 * fakes.MIB, job.bandwidth)

    def test_no_job_starts_during_a_switch(self):
        with self.driver._slots.graph_change(self.dom.uuid):
            thread, outcome = self.in_thread(self.delete, None, None, 'V')
            time.sleep(0.1)
            self.assertEqual([], self.conn.calls_of('blockRebase'))
        thread.join(10)
        self.assertEqual(['v-top'], outcome['result'])

    def test_waits_for_a_job_it_did_not_start(self):
        self.dom.jobs['vdc'] = fakes.FakeJob(
            kind=libvirt.VIR_DOMAIN_BLOCK_JOB_TYPE_PULL, end=fakes.MIB,
            effect=lambda: None, polls_left=3)
        self.assertEqual(['v-top'], self.delete(None, None))
        self.assertIn('guest g1 has a block job on disk vdc that snapdriver '
                      'did not start; the pull on disk vdb waits for it',
                      self.log.output)
        job_info = [call[2] for call in self.conn.calls_of('blockJobInfo')]
        rebase = self.conn.calls.index(self.conn.calls_of('blockRebase')[0])
        self.assertEqual(['vdc'] * 4, job_info[:4])
        self.assertNotIn(('blockJobInfo', 'g1', 'vdc', 0),
                         self.conn.calls[rebase:])

    def test_job_it_did_not_start_is_followed_across_a_libvirtd_restart(self):
        self.dom.jobs['vdc'] = fakes.FakeJob(
            kind=libvirt.VIR_DOMAIN_BLOCK_JOB_TYPE_PULL, end=fakes.MIB,
            effect=lambda: None, polls_left=3)
        restarted = self.restart_libvirtd_during_the_job(self.dom, 'vdc')
        self.assertEqual(['v-top'], self.delete(None, None))
        self.assertTrue(restarted)
        # The job on vdc was seen to end on the new connection, before the
        # pull began.
        self.assertEqual(
            ['vdc', 'vdc', 'vdc'],
            [call[2] for call in self.conn.calls_of('blockJobInfo')][:3])
        self.assertEqual(1, len(self.conn.calls_of('blockRebase')))

    def test_job_it_did_not_start_that_does_not_end(self):
        self.conf.config(group='libvirt', block_job_timeout=1)
        self.dom.jobs['vdc'] = fakes.FakeJob(
            kind=libvirt.VIR_DOMAIN_BLOCK_JOB_TYPE_PULL, end=fakes.MIB,
            effect=lambda: None, polls_left=10 ** 9)
        error = self.assertRaises(exception.OperationFailed, self.delete,
                                  None, None)
        self.assertEqual("A block job on disk vdc of guest g1 is still "
                         "running after 1 seconds ([libvirt] "
                         "block_job_timeout); the block pull on disk vdb was "
                         "not started: QEMU runs one block job per guest "
                         "safely, not two.", str(error))
        self.assertEqual([], self.calls())


class WaitForPendingTestCase(DriverTestCase):
    """A block job left running by an earlier snapdriver process."""

    def setUp(self):
        super().setUp()
        self.dom = self.add_reference_domain()
        self.location = self.driver.locate_disk('V')

    def leave_job(self, polls):
        self.dom.jobs['vda'] = fakes.FakeJob(
            kind=libvirt.VIR_DOMAIN_BLOCK_JOB_TYPE_COMMIT, end=fakes.MIB,
            effect=lambda: None, polls_left=polls)

    def test_no_job(self):
        self.assertFalse(self.driver.wait_for_pending(self.location))
        # It may have ended while snapdriver was away, unflushed.
        self.assertEqual(1, self.dom.flushes)

    def test_stopped_guest_has_no_job(self):
        self.dom.running = False
        self.assertFalse(self.driver.wait_for_pending(
            self.driver.locate_disk('V')))
        self.assertEqual([], self.conn.calls_of('blockJobInfo'))

    def test_guest_stopped_since_it_was_located(self):
        self.dom.running = False
        self.assertFalse(self.driver.wait_for_pending(self.location))

    def test_waits_for_the_job(self):
        self.leave_job(polls=3)
        self.assertTrue(self.driver.wait_for_pending(self.location))
        self.assertEqual({}, self.dom.jobs)
        self.assertEqual([], self.conn.changes())
        self.assertEqual(1, self.dom.flushes)
        self.assertFalse(self.dom.paused)

    def test_job_that_does_not_end_is_aborted(self):
        self.conf.config(group='libvirt', block_job_timeout=1)
        self.leave_job(polls=10 ** 9)
        error = self.assertRaises(exception.OperationFailed,
                                  self.driver.wait_for_pending, self.location)
        self.assertIn('The block job on disk vda of guest g1 did not finish '
                      'within 1 seconds', str(error))
        self.assertEqual([('blockJobAbort', 'g1', 'vda', 0)],
                         self.conn.changes())

    def test_job_that_does_not_end_is_aborted_after_a_libvirtd_restart(self):
        self.conf.config(group='libvirt', block_job_timeout=1)
        self.leave_job(polls=10 ** 9)
        self.conn.handles = True
        self.location = self.driver.locate_disk('V')
        real_info = self.dom.blockJobInfo
        polls = []

        def job_info(disk, flags):
            polls.append(disk)
            if len(polls) == 2:
                # Once the wait began.
                self.restart_libvirtd().drop()
            return real_info(disk, flags)
        self.dom.blockJobInfo = job_info
        self.assertRaises(exception.OperationFailed,
                          self.driver.wait_for_pending, self.location)
        self.assertEqual([('blockJobAbort', 'g1', 'vda', 0)],
                         self.conn.changes())
        self.assertEqual({}, self.dom.jobs)


class ConnectionTestCase(base.LibvirtTestCase):

    def test_capabilities(self):
        capabilities = self.make_driver().capabilities()
        self.assertTrue(all(capabilities.as_dict().values()))

    def test_connects_to_the_configured_uri(self):
        self.make_driver()
        self.assertEqual(['qemu:///test'], self.opened)
        self.assertEqual(
            [libvirt.VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2,
             libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
             libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_ADDED,
             libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED],
            [event_id for _cb, event_id, _o in self.conn.event_callbacks])
        self.assertEqual(1, len(self.conn.close_callbacks))

    def test_binding_missing(self):
        self.useFixture(fixtures.MonkeyPatch(
            'snapdriver.drivers.libvirt.driver.libvirt', None))
        error = self.assertRaises(exception.DriverLoadError,
                                  self.make_driver)
        self.assertEqual("Driver libvirt could not be loaded: the libvirt "
                         "Python binding cannot be imported; install "
                         "libvirt-python (PyPI) or python3-libvirt "
                         "(distribution package)", str(error))

    def test_qemu_img_missing(self):
        self.useFixture(fixtures.MonkeyPatch(
            'snapdriver.drivers.libvirt.qemuimg.find', lambda: None))
        error = self.assertRaises(exception.DriverLoadError,
                                  self.make_driver)
        self.assertIn('qemu-img was not found in PATH', str(error))
        self.assertEqual([], self.opened)

    def test_connection_refused(self):
        def refuse(uri):
            raise fakes.libvirt_error(
                libvirt.VIR_ERR_SYSTEM_ERROR, "Failed to connect socket to "
                "'/run/libvirt/libvirt-sock': No such file or directory")
        self.useFixture(fixtures.MonkeyPatch('libvirt.open', refuse))
        error = self.assertRaises(exception.DriverLoadError,
                                  self.make_driver)
        self.assertEqual("Driver libvirt could not be loaded: cannot connect "
                         "to libvirt at qemu:///test ([libvirt] "
                         "connection_uri): Failed to connect socket to "
                         "'/run/libvirt/libvirt-sock': No such file or "
                         "directory", str(error))

    def test_not_qemu(self):
        self.conn.hypervisor = 'LXC'
        error = self.assertRaises(exception.DriverLoadError,
                                  self.make_driver)
        self.assertIn('leads to a LXC hypervisor', str(error))

    def test_reconnects_after_libvirtd_closed_the_connection(self):
        driver = self.make_driver()
        self.images.add('/d/a')
        self.conn.add_domain('g', [fakes.FakeDisk('vda', serial='V',
                                                  path='/d/a')])
        old = self.restart_libvirtd()
        old.drop()
        self.assertEqual('g', driver.locate_disk('V').guest)
        self.assertEqual(2, len(self.opened))
        # Events come from the new connection.
        self.assertEqual(4, len(self.conn.event_callbacks))

    def test_reconnects_when_the_connection_is_dead(self):
        driver = self.make_driver()
        old = self.restart_libvirtd()
        old.alive = False  # no close callback this time
        self.assertRaises(exception.VolumeNotAttached,
                          driver.locate_disk, 'V')
        self.assertEqual(2, len(self.opened))

    def test_late_close_of_a_replaced_connection(self):
        driver = self.make_driver()
        old = self.restart_libvirtd()
        old.alive = False
        self.assertRaises(exception.VolumeNotAttached,
                          driver.locate_disk, 'V')
        self.assertEqual([('close',)], old.calls_of('close'))
        old.drop()
        self.assertRaises(exception.VolumeNotAttached,
                          driver.locate_disk, 'V')
        self.assertEqual(2, len(self.opened))

    def test_read_retried_once_when_the_connection_drops_during_it(self):
        driver = self.make_driver()
        old = self.conn

        def drop(flags=0):
            # isAlive() was still true when the call started.
            old.alive = False
            raise fakes.libvirt_error(libvirt.VIR_ERR_INTERNAL_ERROR,
                                      'client socket is closed')
        old.listAllDomains = drop
        self.restart_libvirtd()
        self.assertRaises(exception.VolumeNotAttached,
                          driver.locate_disk, 'V')
        self.assertEqual(2, len(self.opened))

    def test_block_job_event_reaches_the_tracker(self):
        driver = self.make_driver()
        self.images.add('/d/a')
        dom = self.conn.add_domain('g', [fakes.FakeDisk('vda', serial='V',
                                                        path='/d/a')])
        with driver._jobs.watch(dom.uuid, 'vda') as watch:
            self.conn.emit_block_job(
                dom, 'vda', libvirt.VIR_DOMAIN_BLOCK_JOB_TYPE_PULL,
                libvirt.VIR_DOMAIN_BLOCK_JOB_COMPLETED)
            self.assertEqual([(libvirt.VIR_DOMAIN_BLOCK_JOB_TYPE_PULL,
                               libvirt.VIR_DOMAIN_BLOCK_JOB_COMPLETED)],
                             watch.take())


class LeftPausedTestCase(DriverTestCase):
    """snapdriver killed between the pause of a flush and the resume."""

    def mark(self, dom):
        dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT,
                        '<paused-to-flush pid="1"/>', flush.MARK_KEY,
                        flush.MARK_NS, libvirt.VIR_DOMAIN_AFFECT_LIVE)

    def test_marked_while_paused_for_the_flush(self):
        dom = self.add_reference_domain()
        marks = []
        real_suspend = dom.suspend

        def suspend():
            marks.append(dict(dom.live_metadata))
            return real_suspend()
        dom.suspend = suspend
        self.delete(None, None)
        self.assertEqual([{flush.MARK_NS: '<paused-to-flush pid="%d"/>'
                           % os.getpid()}], marks)
        self.assertEqual({}, dom.live_metadata)

    def test_guest_left_paused_is_resumed_at_start(self):
        dom = self.add_reference_domain()
        self.mark(dom)
        dom.paused = True
        self.make_driver()
        self.assertFalse(dom.paused)
        self.assertEqual({}, dom.live_metadata)
        self.assertIn('Guest g1 was paused by an earlier snapdriver process '
                      'to flush its disks and left paused; resuming it',
                      self.log.output)

    def test_guest_paused_by_somebody_else_stays_paused(self):
        dom = self.add_reference_domain()
        dom.paused = True
        self.make_driver()
        self.assertTrue(dom.paused)
        self.assertEqual([], self.conn.calls_of('resume'))

    def test_mark_left_on_a_running_guest_is_removed(self):
        dom = self.add_reference_domain()
        self.mark(dom)
        self.make_driver()
        self.assertEqual({}, dom.live_metadata)
        self.assertEqual([], self.conn.calls_of('resume'))


NOVA_METADATA = (
    '<nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/%s">'
    '<nova:name>vm-1</nova:name></nova:instance>')


class ComputeManagedGuestTestCase(DriverTestCase):
    """Guests whose domain carries nova-compute's metadata are refused,
    before anything changes, unless the operator allows them."""

    def setUp(self):
        super().setUp()
        self.planner = planning.Planner(self.driver)
        # Inspecting the overlay has tests of its own; it is Cinder's file.
        self.driver.inspect_overlay = lambda location, name: (
            chain.OverlayInfo(name=name, exists=True, fmt='qcow2',
                              backing='disk1_file', backing_fmt='qcow2'))

    def add_reference_domain(self, **kwargs):
        dom = super().add_reference_domain(**kwargs)
        self.images.add('/d/new-file', backing='disk1_file')
        return dom

    def plan_create(self):
        return self.planner.plan(objects.CreateRequest(
            volume_id='V', snapshot_id='s1', new_file='new-file'))

    def plan_delete(self, file_to_merge='snap.img',
                    merge_target_file='other-snap.img'):
        return self.planner.plan(objects.DeleteRequest(
            volume_id='V', snapshot_id='s1', file_to_merge=file_to_merge,
            merge_target_file=merge_target_file))

    def assertNothingChanged(self):
        self.assertEqual([], self.conn.changes())
        self.assertEqual([], self.qemu_img.commands_of('commit'))
        self.assertEqual([], self.qemu_img.commands_of('rebase'))
        self.assertEqual(REFERENCE_CHAIN,
                         self.driver.locate_disk('V').names)

    def assertRefused(self, error, action):
        self.assertEqual(400, error.code)
        message = str(error)
        self.assertTrue(message.startswith(
            'Snapshot %s refused: volume V is disk vda of guest g1, which '
            'nova-compute manages (its domain XML has metadata in '
            'http://openstack.org/xmlns/libvirt/nova/' % action), message)
        for words in ("rebuilds the guest's disks from its own record",
                      'next hard reboot or migration',
                      'the writes made since are lost',
                      'allow_compute_managed_guests = true'):
            self.assertIn(words, message)

    def test_create_is_refused_at_accept(self):
        self.add_reference_domain(metadata=NOVA_METADATA % '1.1')
        error = self.assertRaises(exception.ComputeManagedGuest,
                                  self.plan_create)
        self.assertRefused(error, 'create')
        self.assertNothingChanged()

    def test_delete_is_refused_at_accept(self):
        for version in ('1.0', '1.1', '2.0'):
            self.conn.domains = []
            self.add_reference_domain(metadata=NOVA_METADATA % version)
            for merge in (('snap.img', 'other-snap.img'),   # commit
                          ('snap.img', None),               # pull
                          (None, None)):
                error = self.assertRaises(exception.ComputeManagedGuest,
                                          self.plan_delete, *merge)
                self.assertRefused(error, 'delete')
                self.assertIn('nova/%s)' % version, str(error))
            self.assertNothingChanged()

    def test_stopped_guest_is_refused_too(self):
        self.add_reference_domain(metadata=NOVA_METADATA % '1.1',
                                  running=False)
        self.assertRaises(exception.ComputeManagedGuest, self.plan_create)
        self.assertRaises(exception.ComputeManagedGuest, self.plan_delete)
        self.assertNothingChanged()

    def test_metadata_added_after_accept_is_refused_before_the_switch(self):
        dom = self.add_reference_domain()
        create, delete = self.plan_create(), self.plan_delete()
        dom.metadata_xml = NOVA_METADATA % '1.1'
        error = self.assertRaises(exception.ComputeManagedGuest,
                                  self.driver.create_snapshot, create)
        self.assertRefused(error, 'create')
        error = self.assertRaises(exception.ComputeManagedGuest,
                                  self.driver.delete_snapshot, delete)
        self.assertRefused(error, 'delete')
        self.assertNothingChanged()

    def test_other_namespaces_are_not_refused(self):
        self.add_reference_domain(metadata=(
            '<a:x xmlns:a="http://openstack.org/xmlns/libvirt/novalike/1"/>'
            '<b:y xmlns:b="https://example.com/nova/1.1"/>'))
        self.assertEqual(['new-file'] + REFERENCE_CHAIN,
                         self.driver.create_snapshot(self.plan_create()))

    def test_allowed_by_the_option(self):
        self.conf.config(group='libvirt', allow_compute_managed_guests=True)
        self.add_reference_domain(metadata=NOVA_METADATA % '1.1')
        self.assertEqual(['new-file'] + REFERENCE_CHAIN,
                         self.driver.create_snapshot(self.plan_create()))
        self.assertEqual(['new-file', 'disk1_file', 'other-snap.img',
                          'base.img'],
                         self.driver.delete_snapshot(self.plan_delete()))
        self.assertIn('Guest g1 is managed by nova-compute (metadata in '
                      'http://openstack.org/xmlns/libvirt/nova/1.1); the '
                      'create on disk vda goes ahead because [libvirt] '
                      'allow_compute_managed_guests is true',
                      self.log.output)


class ConnectionDropTestCase(DriverTestCase):
    """The connection to libvirtd drops under a call that changes the disk:
    QEMU may have done it (or started the job) or not. The chain, read once
    libvirtd answers again, decides."""

    def setUp(self):
        super().setUp()
        self.dom = self.add_reference_domain()
        # Handles of a dropped connection are dead, as libvirt's are.
        self.conn.handles = True
        self.drops = []

    def eof(self):
        return fakes.libvirt_error(
            libvirt.VIR_ERR_SYSTEM_ERROR,
            'End of file while reading data: Input/output error',
            domain=libvirt.VIR_FROM_RPC)

    def drop(self, method, done=True, calls=(1,)):
        """libvirtd goes away during the ``calls``-th calls of ``method``
        of the guest: after QEMU did the work (``done``) or before it got
        the request; the caller gets a connection error either way."""
        real = getattr(self.dom, method)
        count = []

        def call(*args):
            count.append(args)
            if len(count) not in calls:
                return real(*args)
            if done:
                real(*args)
            self.drops.append(self.restart_libvirtd())
            self.drops[-1].drop()
            raise self.eof()
        setattr(self.dom, method, call)

    def test_switch_done_before_the_drop_is_a_success(self):
        self.conf.config(group='libvirt', quiesce='never')
        self.drop('snapshotCreateXML')
        self.assertEqual(['new-file'] + REFERENCE_CHAIN, self.create())
        self.assertEqual(1, self.dom.snapshot_calls)
        self.assertEqual(1, len(self.drops))
        self.assertEqual(2, len(self.opened))
        self.assertIn('the connection to libvirtd dropped during the switch '
                      'of disk vda onto new-file of guest g1 (End of file '
                      'while reading data: Input/output error); QEMU may '
                      'have done it or not', self.log.output)
        self.assertIn('QEMU had switched disk vda of guest g1 onto new-file '
                      'before the connection dropped: the snapshot is taken',
                      self.log.output)

    def test_switch_not_done_is_a_failure_that_says_so(self):
        self.conf.config(group='libvirt', quiesce='never')
        self.drop('snapshotCreateXML', done=False)
        error = self.assertRaises(exception.OperationFailed, self.create)
        self.assertEqual(
            'The connection to libvirtd dropped during the switch of disk '
            'vda onto new-file of guest g1 (End of file while reading data: '
            'Input/output error), and the disk was not switched: its chain '
            'is still disk1_file -> snap.img -> other-snap.img -> base.img.',
            str(error))
        self.assertEqual(REFERENCE_CHAIN, self.driver.locate_disk('V').names)

    def test_quiesced_switch_done_before_the_drop_is_a_success(self):
        self.conf.config(group='libvirt', quiesce='require')
        self.drop('snapshotCreateXML')
        self.assertEqual(['new-file'] + REFERENCE_CHAIN, self.create())
        self.assertEqual(1, self.dom.snapshot_calls)

    def test_quiesced_switch_not_done_is_asked_again_on_a_new_handle(self):
        self.conf.config(group='libvirt', quiesce='require')
        self.drop('snapshotCreateXML', done=False)
        self.assertEqual(['new-file'] + REFERENCE_CHAIN, self.create())
        # The first call never reached QEMU; the second one, quiesced
        # still (a dropped connection is no refusal to quiesce), did.
        self.assertEqual(1, self.dom.snapshot_calls)
        self.assertEqual([snapshot_flags(True)],
                         [call[3] for call in self.conn.calls_of(
                             'snapshotCreateXML')])

    def test_quiesce_refused_after_the_drop_goes_on_unquiesced(self):
        self.conf.config(group='libvirt', quiesce='try')
        self.dom.agent = False
        self.drop('snapshotCreateXML', done=False)
        self.assertEqual(['new-file'] + REFERENCE_CHAIN, self.create())
        self.assertEqual([snapshot_flags(True), snapshot_flags(False)],
                         [call[3] for call in self.conn.calls_of(
                             'snapshotCreateXML')])

    def test_drop_under_both_quiesced_tries_is_judged_by_the_chain(self):
        self.conf.config(group='libvirt', quiesce='require')
        self.drop('snapshotCreateXML', done=False, calls=(1, 2))
        error = self.assertRaises(exception.OperationFailed, self.create)
        self.assertIn('and the disk was not switched: its chain is still '
                      'disk1_file', str(error))
        self.assertEqual(2, len(self.drops))

    def test_libvirtd_not_back_leaves_the_outcome_unknown(self):
        self.conf.config(group='libvirt', quiesce='never')
        self.useFixture(fixtures.MonkeyPatch(
            'snapdriver.drivers.libvirt.driver.RECONNECT_TIMEOUT', 0))
        self.drop('snapshotCreateXML')

        def refuse(uri):
            raise fakes.libvirt_error(libvirt.VIR_ERR_SYSTEM_ERROR,
                                      'Failed to connect socket',
                                      domain=libvirt.VIR_FROM_RPC)
        self.useFixture(fixtures.MonkeyPatch(
            'libvirt.open', lambda uri: refuse(uri) if self.drops
            else self._open(uri)))
        error = self.assertRaises(exception.OperationFailed, self.create)
        self.assertEqual(
            "The connection to libvirtd dropped during the switch of disk "
            "vda onto new-file of guest g1 (End of file while reading data: "
            "Input/output error), and qemu:///test could not be reached for "
            "0 seconds afterwards (Failed to connect socket): whether QEMU "
            "did it is unknown. Compare 'virsh domblklist g1' and the "
            "images' headers with the chain expected (new-file -> "
            "disk1_file -> snap.img -> other-snap.img -> base.img) before "
            "anything else is done to the volume.", str(error))

    def test_other_libvirt_errors_are_still_refusals(self):
        self.conf.config(group='libvirt', quiesce='never')
        self.dom.snapshot_errors = {1: fakes.libvirt_error(
            libvirt.VIR_ERR_INTERNAL_ERROR, 'unable to execute QEMU command '
            "'transaction': Could not open 'new-file'")}
        error = self.assertRaises(exception.OperationFailed, self.create)
        self.assertIn('libvirt could not switch disk vda of guest g1 onto '
                      'new-file: unable to execute', str(error))
        self.assertEqual(1, len(self.opened))

    def test_pull_finished_before_the_drop_is_a_success(self):
        self.drop('blockRebase')
        self.assertEqual(['disk1_file', 'other-snap.img', 'base.img'],
                         self.delete('other-snap.img', None))
        self.assertEqual(1, len(self.drops))
        # Made durable through the new connection.
        self.assertEqual(1, self.dom.flushes)
        self.assertIn('The connection to libvirtd dropped while the block '
                      'pull on disk vda of guest g1 was being started (End '
                      'of file while reading data: Input/output error); QEMU '
                      'may have started it: following the disk',
                      self.log.output)

    def test_commit_still_running_after_the_drop_is_waited_for(self):
        self.dom.job_polls = 3
        self.dom.send_events = False
        self.drop('blockCommit')
        self.assertEqual(['disk1_file', 'other-snap.img', 'base.img'],
                         self.delete('snap.img', 'other-snap.img'))
        # Seen running through the new connection, then ended.
        self.assertEqual(4, len(self.conn.calls_of('blockJobInfo')))
        self.assertEqual(1, self.dom.flushes)

    def test_pull_not_started_is_a_failure_that_says_so(self):
        self.drop('blockRebase', done=False)
        error = self.assertRaises(exception.OperationFailed, self.delete,
                                  'other-snap.img', None)
        self.assertEqual(
            'After the block pull, the chain of disk vda of guest g1 should '
            'be disk1_file -> other-snap.img -> base.img but is disk1_file '
            '-> snap.img -> other-snap.img -> base.img. The connection to '
            'libvirtd dropped while the job was being started (End of file '
            'while reading data: Input/output error), and no job was found '
            'on the disk once libvirtd answered again: QEMU did not start '
            'it, or it ended without merging.', str(error))

    def test_job_held_during_the_switch_gets_its_speed_back_anew(self):
        self.conf.config(group='libvirt', quiesce='never')
        job = fakes.FakeJob(kind=libvirt.VIR_DOMAIN_BLOCK_JOB_TYPE_PULL,
                            end=64 * fakes.MIB, effect=lambda: None,
                            polls_left=10 ** 9, bandwidth=5 * fakes.MIB)
        self.dom.jobs['vdb'] = job
        self.drop('snapshotCreateXML')
        self.assertEqual(['new-file'] + REFERENCE_CHAIN, self.create())
        # Held through the old connection, given back through the new one.
        self.assertEqual(5 * fakes.MIB, job.bandwidth)
        self.assertEqual(
            [('blockJobSetSpeed', 'g1', 'vdb', 5 * fakes.MIB,
              libvirt.VIR_DOMAIN_BLOCK_JOB_SPEED_BANDWIDTH_BYTES)],
            self.conn.calls_of('blockJobSetSpeed'))
