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

"""The in-process qcow2 header reader against qemu-img, on images made by
a real ``qemu-img create``.

For every variant the reader either agrees with ``qemu-img info`` on the
format, the backing file name and format, the data file and the virtual
size, or defers to it (None, Unsupported). Needs qemu-img only.
"""

import os
import subprocess

import fixtures
from testtools import content

from snapdriver.drivers.libvirt import qcow2
from snapdriver.drivers.libvirt import qemuimg
from snapdriver.tests import base

#: The variants the reader must answer itself; the first is what Cinder
#: creates.
ANSWERED = {'cinder-v3-relative-qcow2', 'v2-relative-qcow2',
            'v3-relative-raw', 'v3-absolute', 'v3-no-backing',
            'cluster-512', 'cluster-2M', 'data-file', 'extended-l2',
            'lazy-refcounts', 'v2-no-backing', 'backing-without-format'}
#: The variants it must leave to qemu-img.
DEFERRED = {'raw', 'vmdk', 'bitmap', 'luks', 'zstd', 'internal-snapshot'}


class Qcow2ReaderTest(base.FunctionalTestCase):

    def setUp(self):
        super().setUp()
        if qemuimg.find() is None:
            self.skipTest("qemu-img is not installed: the reader is compared "
                          "with it")
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.qemu_img('create', '-q', '-f', 'qcow2', self.path('base'), '8M')
        self.qemu_img('create', '-q', '-f', 'raw', self.path('base.raw'),
                      '8M')

    def path(self, name):
        return os.path.join(self.dir, name)

    def qemu_img(self, *args, check=True):
        result = subprocess.run(('qemu-img',) + args, cwd=self.dir,
                                capture_output=True, text=True)
        if check and result.returncode:
            self.fail("qemu-img %s failed: %s" % (' '.join(args),
                                                  result.stderr))
        return result

    def create(self, name, *args, size='8M', fmt='qcow2'):
        """``qemu-img create``; None when this qemu-img cannot make it."""
        result = self.qemu_img('create', '-q', '-f', fmt, *args,
                               self.path(name), size, check=False)
        if result.returncode:
            self.addDetail('not made: ' + name,
                           content.text_content(result.stderr))
            return None
        return self.path(name)

    def variants(self):
        """{name: path} of the images this qemu-img can make."""
        made = {}

        def add(name, *args, **kwargs):
            path = self.create(name, *args, **kwargs)
            if path is not None:
                made[name] = path
        add('cinder-v3-relative-qcow2', '-o', 'compat=1.1', '-b', 'base',
            '-F', 'qcow2')
        add('v2-relative-qcow2', '-o', 'compat=0.10', '-b', 'base', '-F',
            'qcow2')
        add('v3-relative-raw', '-b', 'base.raw', '-F', 'raw')
        add('v3-absolute', '-b', self.path('base'), '-F', 'qcow2')
        add('v3-no-backing')
        add('v2-no-backing', '-o', 'compat=0.10')
        add('cluster-512', '-o', 'cluster_size=512', '-b', 'base', '-F',
            'qcow2')
        add('cluster-64k', '-o', 'cluster_size=65536')
        add('cluster-2M', '-o', 'cluster_size=2M', '-b', 'base', '-F',
            'qcow2')
        add('data-file', '-o', 'data_file=%s' % self.path('data-file.bin'))
        add('data-file-raw', '-o', 'data_file=%s,data_file_raw=on'
            % self.path('data-file-raw.bin'))
        add('extended-l2', '-o', 'extended_l2=on', '-b', 'base', '-F',
            'qcow2')
        add('zstd', '-o', 'compression_type=zstd')
        add('lazy-refcounts', '-o', 'lazy_refcounts=on', '-b', 'base', '-F',
            'qcow2')
        add('raw', fmt='raw')
        add('vmdk', fmt='vmdk')
        add('luks', '--object', 'secret,id=sec0,data=123456', '-o',
            'encrypt.format=luks,encrypt.key-secret=sec0')
        bitmap = self.create('bitmap', '-b', 'base', '-F', 'qcow2')
        if bitmap and not self.qemu_img('bitmap', '--add', bitmap, 'b0',
                                        check=False).returncode:
            made['bitmap'] = bitmap
        snap = self.create('internal-snapshot')
        if snap and not self.qemu_img('snapshot', '-c', 's1', snap,
                                      check=False).returncode:
            made['internal-snapshot'] = snap
        # Backing file without a recorded format: made by an unsafe rebase.
        nofmt = self.create('backing-without-format')
        if nofmt:
            self.qemu_img('rebase', '-u', '-f', 'qcow2', '-b', 'base', nofmt,
                          check=False)
            made['backing-without-format'] = nofmt
        return made

    def test_the_reader_agrees_with_qemu_img_or_defers(self):
        answered, deferred = set(), {}
        for name, path in sorted(self.variants().items()):
            try:
                header = qcow2.read(path)
            except qcow2.Unsupported as error:
                deferred[name] = str(error)
                continue
            if header is None:
                deferred[name] = 'not qcow2'
                continue
            answered.add(name)
            info = qemuimg.probe(path)
            self.assertEqual(qcow2.Facts.of_info(info), header.facts(),
                             "the reader and qemu-img disagree on %s" % name)
            st = os.stat(path)
            self.assertEqual((st.st_dev, st.st_ino), header.identity)
        self.addDetail('answered', content.text_content(
            ', '.join(sorted(answered))))
        self.addDetail('deferred', content.text_content(''.join(
            '%s: %s\n' % item for item in sorted(deferred.items()))))
        self.assertIn('cinder-v3-relative-qcow2', answered)
        # Each named variant this qemu-img could make went the expected
        # way (qemu-img may lack zstd or luks; then there is no such file).
        self.assertEqual(set(), (answered & DEFERRED))
        self.assertEqual(set(), (set(deferred) & ANSWERED))
        self.assertIn('raw', deferred)

    def test_the_driver_s_checks_with_verification(self):
        """image_facts and overlay_header, as the driver calls them, with
        [libvirt] verify_header_reader on: qemu-img is run as well and
        agrees."""
        self.conf.config(group='libvirt', verify_header_reader=True)
        path = self.create('over', '-b', 'base', '-F', 'qcow2')
        header = qcow2.overlay_header(path)
        self.assertEqual(('base', 'qcow2'),
                         (header.backing_file, header.backing_format))
        self.assertEqual(('qcow2', 'base', 'qcow2', None, 8 * 1024 * 1024),
                         qcow2.image_facts(path, 'qcow2'))
        # A raw file: qemu-img's answer.
        self.assertEqual('raw', qcow2.image_facts(self.path('base.raw'),
                                                  'raw').fmt)
        self.assertIsNone(qcow2.overlay_header(self.path('base.raw')))
