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

"""Tests of the qemu-img wrapper: command lines, limits, errors."""

import json
import subprocess
from unittest import mock

import fixtures
from oslo_concurrency import processutils

from snapdriver.drivers.libvirt import qemuimg
from snapdriver import exception
from snapdriver.tests import base

MIB = 1024 * 1024


class QemuImgTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.execute = mock.Mock(return_value=('{}', ''))
        self.useFixture(fixtures.MonkeyPatch(
            'oslo_concurrency.processutils.execute', self.execute))

    def _call(self):
        """The qemu-img command line, and the keyword arguments with the
        limits prlimit(1) was given as ``kwargs['limits']``."""
        args, kwargs = self.execute.call_args
        args, kwargs = list(args), dict(kwargs)
        # Every qemu-img dies with snapdriver.
        self.assertTrue(args[0].endswith('setpriv'), args)
        self.assertEqual(['--pdeathsig', 'KILL', '--'], args[1:4])
        args = args[4:]
        limits = {'address_space': None, 'cpu_time': None}
        if args[0].endswith('prlimit'):
            end = args.index('--')
            for option in args[1:end]:
                name, value = option.split('=')
                limits[{'--as': 'address_space',
                        '--cpu': 'cpu_time'}[name]] = int(value)
            args = args[end + 1:]
        self.assertIsNone(kwargs.pop('prlimit'))
        kwargs['limits'] = limits
        return args, kwargs

    def test_probe_detects_the_format(self):
        self.execute.return_value = (json.dumps(
            {'format': 'qcow2', 'backing-filename': 'disk1_file'}), '')
        info = qemuimg.probe('/d/new-file')
        self.assertEqual('qcow2', info.file_format)
        self.assertEqual('disk1_file', info.backing_file)
        args, kwargs = self._call()
        # No -f: finding out the format is the point.
        self.assertEqual(['qemu-img', 'info', '--output=json',
                          '--force-share', '/d/new-file'], args)
        self.assertEqual({'address_space': 1024 * MIB, 'cpu_time': 30},
                         kwargs['limits'])

    def test_backing_chain(self):
        self.execute.return_value = ('[{"filename": "/d/a"}]', '')
        self.assertEqual(['/d/a'], [image.image for image in
                                    qemuimg.backing_chain('/d/a', 'qcow2')])
        args, _kwargs = self._call()
        self.assertEqual(['qemu-img', 'info', '--output=json',
                          '--force-share', '--backing-chain', '-f', 'qcow2',
                          '/d/a'], args)

    def test_fields_read(self):
        # What qemu-img 8 prints for a qcow2 overlay with an external data
        # file, above a raw base (trimmed).
        overlay = {
            'virtual-size': 64 * MIB, 'filename': '/d/top', 'format': 'qcow2',
            'actual-size': 200704, 'cluster-size': 65536,
            'backing-filename': 'base', 'full-backing-filename': '/d/base',
            'backing-filename-format': 'raw', 'dirty-flag': False,
            'format-specific': {'type': 'qcow2', 'data': {
                'compat': '1.1', 'data-file': 'top.data',
                'data-file-raw': False, 'lazy-refcounts': False}}}
        base_image = {'virtual-size': 64 * MIB, 'filename': '/d/base',
                      'format': 'raw', 'actual-size': 4096}
        self.execute.return_value = (json.dumps([overlay, base_image]), '')
        top, base_info = qemuimg.backing_chain('/d/top', 'qcow2')
        self.assertEqual(('/d/top', 'qcow2', 'base', 'raw', 64 * MIB),
                         (top.image, top.file_format, top.backing_file,
                          top.backing_file_format, top.virtual_size))
        self.assertEqual('top.data', qemuimg.data_file(top))
        self.assertEqual(('/d/base', 'raw', None, None),
                         (base_info.image, base_info.file_format,
                          base_info.backing_file,
                          base_info.backing_file_format))
        self.assertIsNone(qemuimg.data_file(base_info))

        self.execute.return_value = (json.dumps(overlay), '')
        info = qemuimg.info('/d/top', 'qcow2')
        self.assertEqual(64 * MIB, info.virtual_size)
        self.assertEqual('top.data', qemuimg.data_file(info))

    def test_output_that_is_not_an_image(self):
        for out in ('', 'not json', '[]', '"x"'):
            self.execute.return_value = (out, '')
            self.assertRaises(exception.OperationFailed, qemuimg.info,
                              '/d/a', 'qcow2')
        for out in ('', 'not json', '{}', '[1]'):
            self.execute.return_value = (out, '')
            self.assertRaises(exception.OperationFailed,
                              qemuimg.backing_chain, '/d/a', 'qcow2')

    def test_info_of_a_known_format(self):
        qemuimg.info('/d/a', 'qcow2')
        self.assertEqual(['qemu-img', 'info', '--output=json',
                          '--force-share', '-f', 'qcow2', '/d/a'],
                         self._call()[0])

    def test_limits_follow_the_options(self):
        self.conf.config(group='libvirt', qemu_img_address_space_mb=256,
                         qemu_img_cpu_time=5)
        qemuimg.probe('/d/a')
        self.assertEqual({'address_space': 256 * MIB, 'cpu_time': 5},
                         self._call()[1]['limits'])

    def test_limits_without_prlimit_1(self):
        real_which = qemuimg.shutil.which
        self.useFixture(fixtures.MonkeyPatch(
            'snapdriver.drivers.libvirt.qemuimg.shutil.which',
            lambda name: None if name == 'prlimit' else real_which(name)))
        qemuimg.probe('/d/a')
        args, kwargs = self.execute.call_args
        self.assertEqual('qemu-img', args[4])
        self.assertEqual(1024 * MIB, kwargs['prlimit'].address_space)
        self.assertEqual(30, kwargs['prlimit'].cpu_time)

    def test_rebase_safe(self):
        qemuimg.rebase('/d/disk1_file', 'qcow2', 'other-snap.img', 'raw')
        args, kwargs = self._call()
        self.assertEqual(['qemu-img', 'rebase', '-f', 'qcow2', '-F', 'raw',
                          '-b', 'other-snap.img', '/d/disk1_file'], args)
        # Copying data takes CPU: a timeout instead of a CPU limit.
        self.assertEqual({'address_space': None, 'cpu_time': None},
                         kwargs['limits'])
        self.assertEqual(7200, kwargs['timeout'])

    def test_rebase_onto_nothing(self):
        qemuimg.rebase('/d/disk1_file', 'qcow2', '')
        self.assertEqual(['qemu-img', 'rebase', '-f', 'qcow2', '-b', '',
                          '/d/disk1_file'], self._call()[0])

    def test_rebase_unsafe(self):
        qemuimg.rebase('/d/a', 'qcow2', 'c', 'qcow2', unsafe=True)
        self.assertEqual(['qemu-img', 'rebase', '-f', 'qcow2', '-u', '-F',
                          'qcow2', '-b', 'c', '/d/a'], self._call()[0])

    def test_commit_keeps_the_top_image(self):
        self.conf.config(group='libvirt', qemu_img_timeout=60)
        qemuimg.commit('/d/snap.img', 'qcow2')
        args, kwargs = self._call()
        self.assertEqual(['qemu-img', 'commit', '-f', 'qcow2', '-d',
                          '/d/snap.img'], args)
        self.assertEqual(60, kwargs['timeout'])
        self.assertEqual({'address_space': None, 'cpu_time': None},
                         kwargs['limits'])

    def test_failure_carries_stderr(self):
        self.execute.side_effect = processutils.ProcessExecutionError(
            exit_code=1, stderr="qemu-img: Could not open '/d/x': No such "
            "file or directory\n")
        error = self.assertRaises(exception.OperationFailed,
                                  qemuimg.probe, '/d/x')
        self.assertEqual("qemu-img info of /d/x failed (exit code 1): "
                         "qemu-img: Could not open '/d/x': No such file or "
                         "directory", str(error))

    def test_timeout_kills_the_process(self):
        child = mock.Mock()

        def hang(*args, **kwargs):
            kwargs['on_execute'](child)
            raise subprocess.TimeoutExpired(args, kwargs['timeout'])
        self.execute.side_effect = hang
        error = self.assertRaises(exception.OperationFailed,
                                  qemuimg.commit, '/d/snap.img', 'qcow2')
        child.kill.assert_called_once_with()
        child.wait.assert_called_once_with()
        self.assertIn('did not finish within 7200 seconds and was killed',
                      str(error))

    def test_not_json(self):
        self.execute.return_value = ('image: /d/a', '')
        error = self.assertRaises(exception.OperationFailed,
                                  qemuimg.probe, '/d/a')
        self.assertIn('printed no valid JSON', str(error))

    def test_cannot_start(self):
        self.execute.side_effect = OSError(2, 'No such file or directory')
        error = self.assertRaises(exception.OperationFailed,
                                  qemuimg.probe, '/d/a')
        self.assertIn('could not be started', str(error))
