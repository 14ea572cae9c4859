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

"""Tests of a chain read and changed with qemu-img, on the fake qemu-img.

The driver's tests of stopped guests (test_driver) fix the commands of
whole merges; these look at the pieces.
"""

import os

import fixtures

from snapdriver import chain
from snapdriver.drivers.libvirt import offline
from snapdriver import exception
from snapdriver.tests.unit.drivers.libvirt import base
from snapdriver.tests.unit.drivers.libvirt import fakes

NAMES = ['top', 'mid', 'base']


class OfflineTestCase(base.LibvirtTestCase):

    def setUp(self):
        super().setUp()
        self.images.add_chain('/d', NAMES)

    def location(self):
        return chain.DiskLocation(
            volume_id='V', guest='g', target='vda', running=False,
            chain=offline.read_chain('/d/top', 'qcow2'), directory='/d')

    def test_read_chain(self):
        self.images.add('/d/raw-base', fmt='raw')
        self.images.add('/d/over', backing='raw-base')
        self.assertEqual(
            (chain.ChainEntry('over', '/d/over', 'qcow2'),
             chain.ChainEntry('raw-base', '/d/raw-base', 'raw')),
            offline.read_chain('/d/over', 'qcow2'))
        self.assertEqual([('qemu-img', 'info', '--output=json',
                           '--force-share', '--backing-chain', '-f', 'qcow2',
                           '/d/over')], self.qemu_img.commands)

    def test_commit_writes_top_down_then_relinks_without_copying(self):
        location = self.location()
        offline.merge(location, chain.plan_delete(location, 's', 'mid',
                                                  'base'))
        self.assertEqual(
            [('qemu-img', 'commit', '-f', 'qcow2', '-d', '/d/mid'),
             ('qemu-img', 'rebase', '-f', 'qcow2', '-u', '-F', 'qcow2', '-b',
              'base', '/d/top')],
            [cmd for cmd in self.qemu_img.commands if cmd[1] != 'info'])
        self.assertEqual(['top', 'base'],
                         [entry.name for entry
                          in offline.read_chain('/d/top', 'qcow2')])

    def test_relative_backing_passes(self):
        location = self.location()
        plan = chain.plan_delete(location, 's', 'mid', 'base')
        offline.merge(location, plan)
        self.assertIsNone(offline.check_relative(location, plan))

    def test_absolute_backing_after_a_commit_names_the_image_above(self):
        location = self.location()
        plan = chain.plan_delete(location, 's', 'mid', 'base')
        self.images.files['/d/top'].backing = '/d/base'
        error = self.assertRaises(exception.OperationFailed,
                                  offline.check_relative, location, plan)
        self.assertEqual("After the block commit, /d/top records its backing "
                         "file as the absolute path /d/base; Cinder needs a "
                         "relative name.", str(error))

    def test_nothing_to_check_after_a_whole_pull(self):
        location = self.location()
        commands = len(self.qemu_img.commands)
        offline.check_relative(location, chain.plan_delete(location, 's',
                                                           None, None))
        self.assertEqual(commands, len(self.qemu_img.commands))


class CheckRelativeInProcessTestCase(base.LibvirtTestCase):
    """check_relative reads a real qcow2 header in this process, and falls
    back to qemu-img for anything else."""

    def setUp(self):
        super().setUp()
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.images.add_chain(self.dir, NAMES)
        self.top = os.path.join(self.dir, 'top')
        location = chain.DiskLocation(
            volume_id='V', guest='g', target='vda', running=False,
            chain=offline.read_chain(self.top, 'qcow2'),
            directory=self.dir)
        self.location = location
        self.plan = chain.plan_delete(location, 's', 'mid', 'base')
        del self.qemu_img.commands[:]

    def test_relative_backing_without_qemu_img(self):
        fakes.write_qcow2(self.top, backing='base', backing_fmt='qcow2')
        self.assertIsNone(offline.check_relative(self.location, self.plan))
        self.assertEqual([], self.qemu_img.commands)

    def test_absolute_backing_without_qemu_img(self):
        fakes.write_qcow2(self.top, backing=os.path.join(self.dir, 'base'),
                          backing_fmt='qcow2')
        error = self.assertRaises(exception.OperationFailed,
                                  offline.check_relative, self.location,
                                  self.plan)
        self.assertIn('records its backing file as the absolute path %s/base'
                      % self.dir, str(error))
        self.assertEqual([], self.qemu_img.commands)

    def test_unusual_header_is_read_by_qemu_img(self):
        # The fake qemu-img's records say 'mid' (relative); the header,
        # which the reader does not answer for, is not looked at.
        fakes.write_qcow2(self.top, backing='/elsewhere', crypt_method=2)
        self.assertIsNone(offline.check_relative(self.location, self.plan))
        self.assertEqual([('qemu-img', 'info', '--output=json',
                           '--force-share', '-f', 'qcow2', self.top)],
                         self.qemu_img.commands)

    def test_not_qcow2_or_missing_is_read_by_qemu_img(self):
        fakes.touch(self.top)
        offline.check_relative(self.location, self.plan)
        os.unlink(self.top)
        offline.check_relative(self.location, self.plan)
        self.assertEqual(2, len(self.qemu_img.commands_of('info')))

    def test_verify_header_reader_disagrees(self):
        self.conf.config(group='libvirt', verify_header_reader=True)
        fakes.write_qcow2(self.top, backing='base', backing_fmt='qcow2')
        error = self.assertRaises(exception.OperationFailed,
                                  offline.check_relative, self.location,
                                  self.plan)
        self.assertIn('disagree', str(error))
        self.assertIn("backing_file='mid'", str(error))


class UnsafeChainTestCase(base.LibvirtTestCase):
    """A stopped guest's chain must stay among the volume's files before
    any offline merge writes."""

    def refused(self, *words):
        error = self.assertRaises(exception.UnsafeChain, offline.read_chain,
                                  '/d/top', 'qcow2')
        self.assertEqual(400, error.code)
        for word in words:
            self.assertIn(word, str(error))
        self.assertEqual([], [cmd for cmd in self.qemu_img.commands
                              if cmd[1] != 'info'])

    def test_backing_names_leaving_the_directory(self):
        self.images.add('/elsewhere/base')
        for backing in ('../elsewhere/base', '/elsewhere/base',
                        'sub/../../elsewhere/base'):
            self.images.add('/d/top', backing=backing)
            self.refused(repr(backing), 'by its plain name')

    def test_a_dotted_plain_name_is_accepted(self):
        self.images.add('/d/base')
        self.images.add('/d/top', backing='./base')
        self.assertEqual(['top', 'base'], [
            entry.name for entry in offline.read_chain('/d/top', 'qcow2')])

    def test_backing_format_not_recorded(self):
        self.images.add('/d/base')
        self.images.add('/d/top', backing='base')
        self.images.files['/d/top'].backing_fmt = None
        self.refused("'base'", 'without recording its format')

    def test_backing_file_that_is_a_link_out(self):
        share = self.useFixture(fixtures.TempDir()).path
        outside = self.useFixture(fixtures.TempDir()).path
        for path in (os.path.join(share, 'top'),
                     os.path.join(outside, 'base')):
            open(path, 'w').close()
        os.symlink(os.path.join(outside, 'base'),
                   os.path.join(share, 'base'))
        self.images.add(os.path.join(share, 'base'))
        self.images.add(os.path.join(share, 'top'), backing='base')
        error = self.assertRaises(exception.UnsafeChain, offline.read_chain,
                                  os.path.join(share, 'top'), 'qcow2')
        self.assertIn('not a regular file in %s' % share, str(error))
