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

"""Tests of the in-process qcow2 header reader, on headers made here.

The functional test_qcow2_reader compares it with qemu-img on images
qemu-img made.
"""

import errno
import os
import random
import struct
from unittest import mock

import fixtures

from snapdriver.drivers.libvirt import qcow2
from snapdriver.tests import base
from snapdriver.tests.unit.drivers.libvirt import fakes

MIB = 1024 * 1024


class ReaderTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = self.useFixture(fixtures.TempDir()).path

    def path(self, name='img'):
        return os.path.join(self.dir, name)

    def write(self, name='img', **kwargs):
        return fakes.write_qcow2(self.path(name), **kwargs)

    def write_bytes(self, data, name='img'):
        with open(self.path(name), 'wb') as f:
            f.write(data)
        return self.path(name)

    def identity(self, path):
        st = os.stat(path)
        return st.st_dev, st.st_ino

    # What it answers

    def test_v3_with_backing_and_format(self):
        path = self.write(backing='vol', backing_fmt='qcow2')
        self.assertEqual(
            qcow2.Header(version=3, virtual_size=64 * MIB, cluster_bits=16,
                         backing_file='vol', backing_format='qcow2',
                         data_file=None, incompatible_features=0,
                         identity=self.identity(path)),
            qcow2.read(path))

    def test_v2_with_backing_and_format(self):
        header = qcow2.read(self.write(version=2, backing='../x/vol.raw',
                                       backing_fmt='raw'))
        self.assertEqual((2, '../x/vol.raw', 'raw', 0),
                         (header.version, header.backing_file,
                          header.backing_format,
                          header.incompatible_features))
        self.assertEqual('qcow2', header.fmt)

    def test_backing_without_format(self):
        header = qcow2.read(self.write(backing='/abs/vol'))
        self.assertEqual(('/abs/vol', None),
                         (header.backing_file, header.backing_format))

    def test_no_backing(self):
        header = qcow2.read(self.write(size=3 * MIB, cluster_bits=9))
        self.assertEqual((None, None, None, 3 * MIB, 9),
                         (header.backing_file, header.backing_format,
                          header.data_file, header.virtual_size,
                          header.cluster_bits))

    def test_data_file(self):
        header = qcow2.read(self.write(data_file='img.data'))
        self.assertEqual(('img.data', qcow2.INCOMPAT_DATA_FILE),
                         (header.data_file, header.incompatible_features))
        self.assertEqual(('qcow2', None, None, 'img.data', 64 * MIB),
                         header.facts())

    def test_other_extensions_are_skipped(self):
        names = bytes(48) * 3
        header = qcow2.read(self.write(
            backing='vol', backing_fmt='qcow2',
            extensions=[(0x6803f857, names), (0x12345678, b'abc')]))
        self.assertEqual(('vol', 'qcow2'),
                         (header.backing_file, header.backing_format))

    def test_dirty_lazy_refcounts_and_extended_l2(self):
        header = qcow2.read(self.write(
            backing='vol', compatible_features=1,
            incompatible_features=(qcow2.INCOMPAT_DIRTY
                                   | qcow2.INCOMPAT_EXTENDED_L2)))
        self.assertEqual('vol', header.backing_file)

    def test_a_utf8_name(self):
        self.assertEqual('v\u00f6l', qcow2.read(
            self.write(backing='v\u00f6l')).backing_file)

    def test_the_longest_backing_name(self):
        name = 'n' * 1023
        self.assertEqual(name, qcow2.read(self.write(backing=name))
                         .backing_file)

    # Not qcow2: qemu-img finds out

    def test_not_qcow2_is_not_its_answer(self):
        self.assertIsNone(qcow2.read(self.write_bytes(bytes(1024))))
        self.assertIsNone(qcow2.read(self.write_bytes(b'KDMV' + bytes(508))))
        self.assertIsNone(qcow2.read(self.write_bytes(b'')))
        self.assertIsNone(qcow2.read(self.write_bytes(b'QF')))

    # Not files it opens

    def test_symlink_is_not_followed(self):
        target = self.write(backing='vol')
        os.symlink(target, self.path('link'))
        error = self.assertRaises(OSError, qcow2.read, self.path('link'))
        self.assertEqual(errno.ELOOP, error.errno)

    def test_missing(self):
        error = self.assertRaises(OSError, qcow2.read, self.path('nope'))
        self.assertEqual(errno.ENOENT, error.errno)

    def test_fifo_is_not_a_regular_file_and_does_not_hang(self):
        os.mkfifo(self.path('fifo'))
        error = self.assertRaises(qcow2.NotRegularFile, qcow2.read,
                                  self.path('fifo'))
        self.assertIn('is not a regular file', str(error))

    def test_directory_is_not_a_regular_file(self):
        os.mkdir(self.path('sub'))
        self.assertRaises(qcow2.NotRegularFile, qcow2.read, self.path('sub'))

    # Unusual or malformed: qemu-img decides

    def unsupported(self, *words, **kwargs):
        error = self.assertRaises(qcow2.Unsupported, qcow2.read,
                                  self.write(**kwargs))
        for word in words:
            self.assertIn(word, str(error))
        return error

    def test_other_versions(self):
        self.unsupported('version 1', version=2, header_version=1)
        self.unsupported('version 4', header_version=4)

    def test_unknown_incompatible_feature(self):
        self.unsupported('incompatible features 0x20',
                         incompatible_features=1 << 5)

    def test_corrupt_bit(self):
        self.unsupported('incompatible features 0x2',
                         incompatible_features=qcow2.INCOMPAT_CORRUPT)

    def test_compression_type(self):
        self.unsupported('incompatible features',
                         incompatible_features=qcow2.INCOMPAT_COMPRESSION)

    def test_compression_type_field_without_its_bit(self):
        first, _length = fakes.qcow2_layout(header_length=112,
                                            end_marker=False)
        data = (first[:104] + b'\1' + bytes(7) + struct.pack('>II', 0, 0)
                + first[112 + 8:])
        error = self.assertRaises(qcow2.Unsupported, qcow2.read,
                                  self.write_bytes(data + bytes(2 * 65536)))
        self.assertIn('compression type', str(error))

    def test_encryption(self):
        self.unsupported('encrypted', crypt_method=2)
        self.unsupported('encrypted', crypt_method=1)

    def test_encryption_and_bitmaps_extensions(self):
        self.unsupported('encryption',
                         extensions=[(0x0537be77, bytes(16))])
        self.unsupported('bitmaps', extensions=[(0x23852875, bytes(24))])

    def test_autoclear_features(self):
        self.unsupported('autoclear', autoclear_features=1)

    def test_internal_snapshots(self):
        self.unsupported('internal snapshots', nb_snapshots=1)

    def test_cluster_bits_out_of_range(self):
        self.unsupported('cluster_bits 8', cluster_bits=9, size=MIB,
                         header_cluster_bits=8)
        self.unsupported('cluster_bits 22', cluster_bits=22)

    def test_header_length(self):
        self.unsupported('header_length 100', header_length=100)
        self.unsupported('header_length 108', header_length=108)
        self.unsupported('header_length 1024', cluster_bits=9,
                         size=MIB, header_length=1024)

    def test_virtual_size_not_in_sectors(self):
        self.unsupported('virtual size 1000', size=1000)

    def test_l1_table_too_small(self):
        self.unsupported('L1 table of 0 entries', l1_size=0)

    def test_tables_beyond_the_file_or_misaligned(self):
        self.unsupported('L1 table', 'beyond the end of the file',
                         l1_table_offset=1 << 40)
        self.unsupported('refcount table', 'not aligned',
                         refcount_table_offset=65536 + 8)
        self.unsupported('refcount table of 0 clusters',
                         refcount_table_clusters=0)

    def test_truncated_header(self):
        first, _length = fakes.qcow2_layout()
        for length in (8, 60, 90):
            error = self.assertRaises(qcow2.Unsupported, qcow2.read,
                                      self.write_bytes(first[:length]))
            self.assertIn('beyond the end of the file', str(error))

    def test_backing_offset_out_of_bounds(self):
        self.unsupported('overruns the first cluster', backing='vol',
                         backing_file_offset=1 << 50)
        self.unsupported('overruns the first cluster', backing='vol',
                         backing_file_offset=65536 - 2)

    def test_backing_name_lengths(self):
        self.unsupported('backing file name of 0 bytes', backing='vol',
                         backing_file_size=0)
        self.unsupported('backing file name of 1024 bytes',
                         backing='n' * 1024)
        self.unsupported('backing file name of 4294967295 bytes',
                         backing='vol', backing_file_size=2 ** 32 - 1)

    def test_backing_name_overlapping_the_extensions(self):
        self.unsupported('no end of the header extensions before 120',
                         backing='vol', backing_fmt='qcow2',
                         backing_file_offset=120)

    def test_extension_overrunning_the_cluster(self):
        self.unsupported('overruns', cluster_bits=9, size=MIB,
                         extensions=[(0x12345678, bytes(300)),
                                     (0x12345679, bytes(200))])
        self.unsupported('overruns', backing='vol',
                         extensions=[(0x12345678, b'x' * 8)],
                         backing_file_offset=104 + 12)

    def test_extension_of_a_huge_length(self):
        first, _length = fakes.qcow2_layout(end_marker=False)
        data = (first[:104] + struct.pack('>II', 0x12345678, 2 ** 32 - 8)
                + first[112:])
        error = self.assertRaises(qcow2.Unsupported, qcow2.read,
                                  self.write_bytes(data + bytes(2 * 65536)))
        self.assertIn('overruns', str(error))

    def test_no_end_of_extensions(self):
        self.unsupported('no end of the header extensions', backing='vol',
                         backing_fmt='qcow2', end_marker=False)

    def test_extensions_beyond_the_read_cap(self):
        # 2 MiB clusters: an extension area longer than the 64 KiB read.
        self.unsupported('beyond the first 65536 bytes', cluster_bits=21,
                         extensions=[(0x12345678, bytes(70000))])

    def test_names_not_utf8_or_with_nul(self):
        self.unsupported('backing file name is not UTF-8',
                         backing=b'\xff\xfe')
        self.unsupported('backing file name contains a NUL',
                         backing=b'vol\0x')
        self.unsupported('backing file format is not UTF-8',
                         backing='vol', backing_fmt=b'\xc3')
        self.unsupported('data file name contains a NUL',
                         data_file=b'a\0')

    def test_backing_format_lengths(self):
        self.unsupported('backing format name of 16 bytes', backing='vol',
                         backing_fmt='q' * 16)
        self.unsupported('backing format name of 0 bytes', backing='vol',
                         backing_fmt='')

    def test_backing_format_without_backing(self):
        self.unsupported('backing file format without a backing file',
                         backing_fmt='qcow2')

    def test_data_file_bit_and_extension_go_together(self):
        self.unsupported('bit is set but the header does not record',
                         incompatible_features=qcow2.INCOMPAT_DATA_FILE)
        self.unsupported('bit is clear but the header records',
                         data_file='d', incompatible_features=0)

    def test_an_extension_twice(self):
        self.unsupported('twice', backing='vol', backing_fmt='qcow2',
                         extensions=[(fakes.QCOW2_BACKING_FORMAT, b'raw')])

    # Bounded reads

    def recorded_reads(self, path):
        reads = []
        real = os.pread

        def pread(fd, length, offset):
            reads.append((offset, length))
            return real(fd, length, offset)
        with mock.patch('os.pread', pread):
            try:
                result = qcow2.read(path)
            except qcow2.Unsupported as error:
                result = error
        return result, reads

    def assertBounded(self, path, reads):
        limit = min(os.path.getsize(path), qcow2.READ_CAP)
        for offset, length in reads:
            self.assertLessEqual(offset + length, limit)
            self.assertGreaterEqual(offset, 0)
        self.assertLessEqual(sum(length for _, length in reads),
                             qcow2.READ_CAP)

    def test_a_large_cluster_is_not_read_whole(self):
        path = self.write(cluster_bits=21, backing='n' * 1000,
                          extensions=[(0x12345678, bytes(30000))])
        header, reads = self.recorded_reads(path)
        self.assertEqual('n' * 1000, header.backing_file)
        self.assertBounded(path, reads)
        self.assertGreater(len(reads), 1)

    def test_a_common_header_is_one_read(self):
        path = self.write(backing='vol', backing_fmt='qcow2')
        header, reads = self.recorded_reads(path)
        self.assertEqual('vol', header.backing_file)
        self.assertEqual([(0, 4096)], reads)

    def test_fuzz(self):
        """Seeded random mutations of valid headers: a Header within
        bounds, or Unsupported; never another exception, never a read
        beyond the file or the cap."""
        rng = random.Random(20240611)
        seeds = [
            fakes.qcow2_layout(backing='vol', backing_fmt='qcow2'),
            fakes.qcow2_layout(version=2, backing='../base', cluster_bits=9,
                               size=MIB),
            fakes.qcow2_layout(data_file='img.data', cluster_bits=12,
                               size=8 * MIB,
                               extensions=[(0x6803f857, bytes(96))]),
        ]
        answered = deferred = 0
        for _ in range(3000):
            first, length = rng.choice(seeds)
            data = bytearray(first[:1024])
            for _ in range(rng.randint(1, 4)):
                how = rng.randrange(5)
                spot = rng.randrange(len(data))
                if how == 0:
                    data[spot] ^= 1 << rng.randrange(8)
                elif how == 1:
                    data[spot] = rng.randrange(256)
                elif how == 2:
                    # A field made huge, or zero, or just beyond a bound.
                    field = rng.choice((8, 16, 20, 24, 36, 40, 48, 56, 72,
                                        100, 104, 112, 116))
                    value = rng.choice((0, 1, 2 ** 31, 2 ** 32 - 1,
                                        2 ** 63, 2 ** 64 - 1, 1023, 1024,
                                        65536, length, length - 1))
                    width = 8 if value >= 2 ** 32 else 4
                    data[field:field + width] = value.to_bytes(width, 'big')
                elif how == 3:
                    del data[rng.randrange(len(data)):]
                    if not data:
                        data = bytearray(b'Q')
                else:
                    pos = rng.randrange(104, 160)
                    data[pos:pos + 8] = struct.pack(
                        '>II', rng.choice((0xe2792aca, 0x44415441,
                                           0x6803f857, 0x12345678, 0)),
                        rng.choice((0, 3, 15, 16, 1024, 2 ** 31)))
            truncated = len(data) < 1024
            path = self.write_bytes(bytes(data))
            if not truncated and rng.random() < 0.7:
                with open(path, 'ab') as f:
                    f.truncate(rng.choice((length, 4096, 70000)))
            try:
                result, reads = self.recorded_reads(path)
            except Exception as error:  # noqa: B902 (what the test is for)
                self.fail("%r on mutated header %r" % (error, bytes(data)))
            self.assertBounded(path, reads)
            if isinstance(result, qcow2.Header):
                answered += 1
                for name in (result.backing_file, result.data_file):
                    self.assertTrue(name is None or 0 < len(name) <= 1023)
                self.assertTrue(result.backing_format is None
                                or 0 < len(result.backing_format) <= 15)
                self.assertIn(result.version, (2, 3))
            elif result is not None:
                self.assertIsInstance(result, qcow2.Unsupported)
                deferred += 1
        # Both outcomes occur: the mutations are neither all harmless nor
        # all fatal.
        self.assertGreater(answered, 100)
        self.assertGreater(deferred, 100)
