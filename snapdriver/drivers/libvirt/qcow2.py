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

"""A qcow2 header, read in this process instead of by ``qemu-img info``.

Forking qemu-img costs about 10 ms per call, and the driver reads a header
at the accept of every create and after every offline merge. This reader
answers the common case (the overlays Cinder creates) exactly and defers
everything else to qemu-img, so that no verdict of the driver depends on
which of the two read the header:

* a file that does not start with the qcow2 magic is not this reader's:
  :func:`read` returns None and qemu-img finds out its format;
* a qcow2 header with anything unusual (another version, a feature this
  reader does not know, encryption, the corrupt bit, internal snapshots,
  bitmaps, an offset or a length out of bounds, a name that is not UTF-8,
  ...) raises :class:`Unsupported`, and qemu-img decides.

The file is opened once, without following a symbolic link and without
blocking on a FIFO, and examined through that one descriptor: its
(device, inode) identity and its header come from the same open file.
Nothing is read beyond the file's size nor beyond its first
:data:`READ_CAP` bytes, in all.

The layout is the one of QEMU's docs/interop/qcow2.txt; the bounds are the
ones QEMU itself enforces when it opens an image, so that an image this
reader answers for is one qemu-img opens too.
"""

import dataclasses
import os
import stat
import struct
import typing

from oslo_log import log

from snapdriver.conf import CONF
from snapdriver.drivers.libvirt import qemuimg
from snapdriver import exception

LOG = log.getLogger(__name__)

FORMAT = 'qcow2'
MAGIC = b'QFI\xfb'
#: The most this reader reads of a file, in all.
READ_CAP = 64 * 1024
#: What is read first: the header and, usually, its extensions and names.
_FIRST_READ = 4096

#: The header of version 2 ends here; header extensions follow it.
_V2_LENGTH = 72
#: The shortest header of version 3 (through ``header_length``).
_V3_MIN_LENGTH = 104
# magic, version, backing_file_offset, backing_file_size, cluster_bits,
# size, crypt_method, l1_size, l1_table_offset, refcount_table_offset,
# refcount_table_clusters, nb_snapshots, snapshots_offset
_V2_FIELDS = struct.Struct('>4sIQIIQIIQQIIQ')
# incompatible, compatible and autoclear features, refcount_order,
# header_length
_V3_FIELDS = struct.Struct('>QQQII')
_EXTENSION = struct.Struct('>II')
_COMPRESSION_TYPE_OFFSET = 104

#: Cluster sizes QEMU opens: 512 bytes to 2 MiB.
MIN_CLUSTER_BITS = 9
MAX_CLUSTER_BITS = 21
#: Extended L2 entries need clusters of 16 KiB at least.
MIN_CLUSTER_BITS_EXTENDED_L2 = 14
#: QEMU refuses longer backing file names.
MAX_BACKING_NAME = 1023
#: QEMU keeps the backing format name in 16 bytes, NUL included.
MAX_BACKING_FORMAT = 15
#: QEMU's limits of the active L1 table and of the refcount table.
MAX_L1_BYTES = 32 * 1024 * 1024
MAX_REFCOUNT_TABLE_BYTES = 8 * 1024 * 1024
MAX_REFCOUNT_ORDER = 6

INCOMPAT_DIRTY = 1 << 0
INCOMPAT_CORRUPT = 1 << 1
INCOMPAT_DATA_FILE = 1 << 2
INCOMPAT_COMPRESSION = 1 << 3
INCOMPAT_EXTENDED_L2 = 1 << 4
#: The incompatible features this reader answers for. The corrupt bit and
#: a non-default compression type (which a qemu-img built without zstd
#: refuses) are left to qemu-img, as are bits it does not know.
KNOWN_INCOMPATIBLE = (INCOMPAT_DIRTY | INCOMPAT_DATA_FILE
                      | INCOMPAT_EXTENDED_L2)

EXT_END = 0x00000000
EXT_BACKING_FORMAT = 0xe2792aca
EXT_FEATURE_NAMES = 0x6803f857
EXT_BITMAPS = 0x23852875
EXT_ENCRYPTION = 0x0537be77
EXT_DATA_FILE = 0x44415441


class Unsupported(Exception):
    """A qcow2 header this reader does not answer for: qemu-img decides.

    :param reason: what is unusual or wrong, in words.
    """

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class NotRegularFile(Unsupported):
    """The path opened is not a regular file (a FIFO, a directory, a
    device)."""


@dataclasses.dataclass(frozen=True)
class Header:
    """What a qcow2 header records, as far as the driver needs it.

    :param version: 2 (compat=0.10) or 3 (compat=1.1).
    :param virtual_size: the size of the disk the guest sees, in bytes.
    :param cluster_bits: log2 of the cluster size.
    :param backing_file: the backing file's name exactly as recorded (None
        when there is none).
    :param backing_format: the backing file's format as recorded (None
        when the header records none).
    :param data_file: the external data file's name (None: none).
    :param incompatible_features: the header's bitmask (0 for version 2).
    :param identity: (st_dev, st_ino) of the file the header was read from.
    """
    version: int
    virtual_size: int
    cluster_bits: int
    backing_file: typing.Optional[str]
    backing_format: typing.Optional[str]
    data_file: typing.Optional[str]
    incompatible_features: int
    identity: typing.Tuple[int, int]

    fmt = FORMAT

    def facts(self):
        """What the driver compares with qemu-img: a :class:`Facts`."""
        return Facts(FORMAT, self.backing_file, self.backing_format,
                     self.data_file, self.virtual_size)


class Facts(typing.NamedTuple):
    """What the driver uses of an image's header, from either source."""
    fmt: typing.Optional[str]
    backing_file: typing.Optional[str]
    backing_format: typing.Optional[str]
    data_file: typing.Optional[str]
    virtual_size: typing.Optional[int]

    @classmethod
    def of_info(cls, info):
        """The facts of an ``oslo_utils.imageutils.QemuImgInfo``."""
        return cls(info.file_format, info.backing_file or None,
                   info.backing_file_format or None,
                   qemuimg.data_file(info), info.virtual_size)


class _Prefix:
    """The first bytes of an open file, read as far as needed.

    Reads never overlap and never go beyond the file's size or
    :data:`READ_CAP`: what is not within both is :class:`Unsupported`.
    """

    def __init__(self, fd, size, path):
        self.fd = fd
        self.limit = min(size, READ_CAP)
        self.size = size
        self.path = path
        self.data = b''

    def get(self, offset, length, what):
        """``length`` bytes at ``offset``.

        :param what: the field read, for the message.
        """
        end = offset + length
        if end > self.limit:
            if end > self.size:
                raise Unsupported(
                    "%s (bytes %d to %d) lies beyond the end of the file "
                    "(%d bytes)" % (what, offset, end, self.size))
            raise Unsupported(
                "%s (bytes %d to %d) lies beyond the first %d bytes, which "
                "is all this reader reads" % (what, offset, end, READ_CAP))
        if end > len(self.data):
            # Whole pages at a time: usually the first read is the only one.
            want = min(self.limit,
                       max(end, len(self.data) + _FIRST_READ))
            start = len(self.data)
            chunk = os.pread(self.fd, want - start, start)
            if len(chunk) != want - start:
                raise Unsupported(
                    "the file became shorter while its header was read "
                    "(%d bytes at %d, %d read)"
                    % (want - start, start, len(chunk)))
            self.data += chunk
        return self.data[offset:end]


def _name(raw, what):
    """A name recorded in the header, as text.

    QEMU stops a name at a NUL byte: a name with one is not answered for,
    nor one that is not UTF-8 (qemu-img prints it otherwise).
    """
    if b'\0' in raw:
        raise Unsupported("the %s contains a NUL byte" % what)
    try:
        return raw.decode('utf-8')
    except UnicodeDecodeError as error:
        raise Unsupported("the %s is not UTF-8: %s" % (what, error))


def _table(offset, byte_size, cluster_size, file_size, what):
    """A table the header points to must be cluster aligned and within the
    file (QEMU refuses misaligned ones; none is read here)."""
    if offset % cluster_size:
        raise Unsupported("the %s offset %d is not aligned to a cluster "
                          "(%d bytes)" % (what, offset, cluster_size))
    if offset + byte_size > file_size:
        raise Unsupported("the %s (%d bytes at %d) lies beyond the end of "
                          "the file (%d bytes)"
                          % (what, byte_size, offset, file_size))


def read(path):
    """Read the qcow2 header of the file at ``path``.

    :returns: a :class:`Header`; None when the file does not start with the
        qcow2 magic (qemu-img is to find out what it is).
    :raises: OSError when it cannot be opened (``ELOOP``: a symbolic link)
        or examined; :class:`NotRegularFile`; :class:`Unsupported` for a
        qcow2 header this reader does not answer for.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
                 | os.O_NONBLOCK | os.O_NOCTTY)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile("%s is not a regular file" % path)
        return _parse(_Prefix(fd, st.st_size, path),
                      (st.st_dev, st.st_ino))
    finally:
        os.close(fd)


def _parse(prefix, identity):
    if prefix.size < len(MAGIC) or prefix.get(0, len(MAGIC),
                                              'the magic') != MAGIC:
        return None
    (_magic, version, backing_offset, backing_size, cluster_bits, size,
     crypt_method, l1_size, l1_offset, refcount_offset, refcount_clusters,
     nb_snapshots, _snapshots_offset) = _V2_FIELDS.unpack(
        prefix.get(0, _V2_FIELDS.size, 'the header'))
    if version not in (2, 3):
        raise Unsupported("qcow2 version %d (this reader knows 2 and 3)"
                          % version)
    if version == 3:
        (incompatible, _compatible, autoclear, refcount_order,
         header_length) = _V3_FIELDS.unpack(
            prefix.get(_V2_LENGTH, _V3_FIELDS.size, 'the version 3 header'))
    else:
        incompatible, autoclear, refcount_order = 0, 0, 4
        header_length = _V2_LENGTH
    if not MIN_CLUSTER_BITS <= cluster_bits <= MAX_CLUSTER_BITS:
        raise Unsupported("cluster_bits %d (QEMU opens %d to %d)"
                          % (cluster_bits, MIN_CLUSTER_BITS,
                             MAX_CLUSTER_BITS))
    cluster_size = 1 << cluster_bits
    if version == 3 and (header_length < _V3_MIN_LENGTH
                         or header_length % 8
                         or header_length > cluster_size):
        raise Unsupported("header_length %d (at least %d, a multiple of 8, "
                          "within the first cluster of %d bytes)"
                          % (header_length, _V3_MIN_LENGTH, cluster_size))
    if incompatible & ~KNOWN_INCOMPATIBLE:
        raise Unsupported("incompatible features %#x (this reader answers "
                          "for %#x only)" % (incompatible,
                                             KNOWN_INCOMPATIBLE))
    if (incompatible & INCOMPAT_EXTENDED_L2
            and cluster_bits < MIN_CLUSTER_BITS_EXTENDED_L2):
        raise Unsupported("extended L2 entries with clusters of %d bytes"
                          % cluster_size)
    if header_length > _COMPRESSION_TYPE_OFFSET and prefix.get(
            _COMPRESSION_TYPE_OFFSET, 1, 'compression_type') != b'\0':
        raise Unsupported("a compression type other than zlib")
    if autoclear:
        raise Unsupported("autoclear features %#x (bitmaps, a raw data "
                          "file)" % autoclear)
    if crypt_method:
        raise Unsupported("encrypted (crypt_method %d)" % crypt_method)
    if refcount_order > MAX_REFCOUNT_ORDER:
        raise Unsupported("refcount_order %d (at most %d)"
                          % (refcount_order, MAX_REFCOUNT_ORDER))
    if nb_snapshots:
        raise Unsupported("%d internal snapshots" % nb_snapshots)
    if size % 512 or size >= 1 << 63:
        raise Unsupported("virtual size %d (not a multiple of 512 bytes, or "
                          "too large)" % size)
    _check_tables(prefix.size, cluster_bits, size, incompatible, l1_size,
                  l1_offset, refcount_offset, refcount_clusters)

    extensions = _extensions(prefix, header_length,
                             backing_offset or cluster_size)
    backing_format = extensions.get(EXT_BACKING_FORMAT)
    data_file = extensions.get(EXT_DATA_FILE)
    if (data_file is None) != (not incompatible & INCOMPAT_DATA_FILE):
        raise Unsupported(
            "the external data file bit is %s but the header %s the data "
            "file's name" % (('set', 'does not record')
                             if data_file is None
                             else ('clear', 'records')))
    backing_file = None
    if backing_offset:
        if not 0 < backing_size <= MAX_BACKING_NAME:
            raise Unsupported("a backing file name of %d bytes (1 to %d)"
                              % (backing_size, MAX_BACKING_NAME))
        if backing_offset + backing_size > cluster_size:
            raise Unsupported("the backing file name (%d bytes at %d) "
                              "overruns the first cluster (%d bytes)"
                              % (backing_size, backing_offset,
                                 cluster_size))
        backing_file = _name(prefix.get(backing_offset, backing_size,
                                        'the backing file name'),
                             'backing file name')
    elif backing_format is not None:
        raise Unsupported("a backing file format without a backing file")
    return Header(version=version, virtual_size=size,
                  cluster_bits=cluster_bits, backing_file=backing_file,
                  backing_format=backing_format, data_file=data_file,
                  incompatible_features=incompatible, identity=identity)


def _check_tables(file_size, cluster_bits, size, incompatible, l1_size,
                  l1_offset, refcount_offset, refcount_clusters):
    """The L1 and refcount tables, as QEMU checks them when it opens an
    image (it reads both); also within the file, to leave no doubt."""
    cluster_size = 1 << cluster_bits
    l2_entries = cluster_size // (16 if incompatible & INCOMPAT_EXTENDED_L2
                                  else 8)
    per_l1_entry = cluster_size * l2_entries
    needed = -(-size // per_l1_entry)
    if l1_size * 8 > MAX_L1_BYTES or l1_size < needed:
        raise Unsupported("an L1 table of %d entries for a virtual size of "
                          "%d bytes (%d needed, at most %d)"
                          % (l1_size, size, needed, MAX_L1_BYTES // 8))
    if l1_size:
        _table(l1_offset, l1_size * 8, cluster_size, file_size,
               'L1 table')
    if not (0 < refcount_clusters
            <= MAX_REFCOUNT_TABLE_BYTES >> cluster_bits):
        raise Unsupported("a refcount table of %d clusters"
                          % refcount_clusters)
    _table(refcount_offset, refcount_clusters * cluster_size, cluster_size,
           file_size, 'refcount table')


def _extensions(prefix, start, end):
    """The header extensions from ``start`` up to ``end`` (the backing
    file name, or the end of the first cluster).

    :returns: {type: text} for the backing format and the data file's
        name. The end marker must come before ``end``: the backing file
        name never overlaps the extensions.
    """
    found = {}
    offset = start
    while True:
        if offset + _EXTENSION.size > end:
            raise Unsupported("no end of the header extensions before %d"
                              % end)
        kind, length = _EXTENSION.unpack(
            prefix.get(offset, _EXTENSION.size,
                       'the header extension at %d' % offset))
        offset += _EXTENSION.size
        if kind == EXT_END:
            return found
        if length > end - offset:
            raise Unsupported("header extension %#x of %d bytes at %d "
                              "overruns %d" % (kind, length, offset, end))
        if kind in (EXT_BITMAPS, EXT_ENCRYPTION):
            raise Unsupported("header extension %#x (bitmaps, encryption)"
                              % kind)
        if kind in (EXT_BACKING_FORMAT, EXT_DATA_FILE):
            if kind in found:
                raise Unsupported("header extension %#x twice" % kind)
            if kind == EXT_BACKING_FORMAT and not (
                    0 < length <= MAX_BACKING_FORMAT):
                raise Unsupported("a backing format name of %d bytes (1 to "
                                  "%d)" % (length, MAX_BACKING_FORMAT))
            if kind == EXT_DATA_FILE and not 0 < length <= MAX_BACKING_NAME:
                raise Unsupported("a data file name of %d bytes (1 to %d)"
                                  % (length, MAX_BACKING_NAME))
            what = ('backing file format' if kind == EXT_BACKING_FORMAT
                    else 'data file name')
            found[kind] = _name(prefix.get(offset, length, 'the ' + what),
                                what)
        # Others (the feature name table, unknown ones) are skipped.
        offset += (length + 7) & ~7


# How the driver uses it.

def _verify(path, facts, qemu_img):
    """With ``[libvirt] verify_header_reader``, compare the reader's
    ``facts`` with qemu-img's answer (``qemu_img()``, a QemuImgInfo).

    :raises: OperationFailed when they differ, or qemu-img fails.
    """
    if not CONF.libvirt.verify_header_reader:
        return
    try:
        theirs = Facts.of_info(qemu_img())
    except exception.OperationFailed as error:
        theirs = error
    if theirs != facts:
        raise exception.OperationFailed(
            reason="The qcow2 header reader and qemu-img disagree on %s: "
            "the reader read %s, qemu-img %s." % (path, facts, theirs))


def overlay_header(path):
    """The header of Cinder's new overlay at ``path``, read in-process.

    :returns: a :class:`Header`, or None when qemu-img is to read it (not
        qcow2, or a header this reader does not answer for; logged).
    :raises: OSError (it could not be opened: ``ELOOP``, a symbolic link;
        ``ENOENT``, gone), NotRegularFile
    """
    try:
        header = read(path)
    except NotRegularFile:
        raise
    except Unsupported as error:
        LOG.debug("qemu-img reads the header of %s: %s", path, error)
        return None
    if header is None:
        LOG.debug("qemu-img reads the header of %s: not qcow2", path)
        return None
    _verify(path, header.facts(), lambda: qemuimg.probe(path))
    return header


def image_facts(path, fmt):
    """What the header of the image at ``path`` (format ``fmt``) records:
    read in-process for qcow2 when the reader answers, by qemu-img
    otherwise.

    :returns: a :class:`Facts`.
    :raises: OperationFailed (qemu-img's failures)
    """
    if fmt == FORMAT:
        try:
            header = read(path)
        except (Unsupported, OSError) as error:
            LOG.debug("qemu-img reads the header of %s: %s", path, error)
        else:
            if header is not None:
                facts = header.facts()
                _verify(path, facts, lambda: qemuimg.info(path, fmt))
                return facts
            LOG.debug("qemu-img reads the header of %s: no qcow2 magic",
                      path)
    return Facts.of_info(qemuimg.info(path, fmt))
