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

"""The driver contract suite against the real libvirt driver.

:class:`LibvirtHost` gives the contract suite (:mod:`snapdriver.tests.
contract`) volumes that are real qcow2 chains attached to real TCG guests
of the private libvirtd that ``tools/with-libvirtd.sh`` starts. The driver
is loaded through stevedore, as the service loads it.

The volume builder here (:func:`attach_volume`, :class:`Volume`) is also
what the HTTP tests of the libvirt driver use (``test_libvirt_api``,
``test_libvirt_restart``): a chain laid out as Cinder lays it out, every
layer holding its own data, the guest with other disks beside the volume,
and one check that the guest still sees what was written and that every
qcow2 header still names its backing file relatively.

A running guest's disk is flushed through the QEMU monitor before it is
read from outside. After a block pull, QEMU 7.2 has already rewritten the
active image's header (new backing file, or none) but keeps the L2 tables
that map the copied clusters in its cache until the next flush: a reader
outside QEMU sees zeros where the guest sees its data. The flush is what
the guest's own next flush would do; without it the check reports loss.
"""

import itertools
import os
import uuid
from xml.etree import ElementTree

import fixtures

from snapdriver.drivers import loader
from snapdriver.tests import base
from snapdriver.tests import contract
from snapdriver.tests.functional import guest

MiB = guest.MiB
KiB = 1024

#: Each write covers this much, and starts this far after the previous one,
#: so that consecutive writes (in different layers) overlap: a merge that
#: loses a layer, or lets an older layer win, shows in the data.
WRITE_LENGTH = 1536 * KiB
WRITE_STRIDE = 1280 * KiB


def snapshot_file_name(volume_name, snapshot_id=None):
    """The name Cinder gives the overlay of a snapshot:
    ``volume-<id>.<snapshot id>``."""
    return '%s.%s' % (volume_name, snapshot_id or uuid.uuid4())


def _patterns():
    # Every byte but 0, which is what unwritten space reads as.
    return itertools.cycle(range(0x21, 0x100))


class Volume:
    """A Cinder volume as a qcow2 chain, attached to a test guest.

    ``names`` is what the chain must be (active image first, as the chain
    records the names); tests update it when an operation succeeds.

    :param fixture: the :class:`guest.GuestFixture` of the guest.
    :param other_disks: ``{target: (path, pattern byte or None)}`` of the
        guest's other disks, which no operation on the volume may touch.
    """

    def __init__(self, fixture, names, model, other_disks):
        self.fixture = fixture
        self.volume_id = fixture.volume_id
        self.directory = fixture.directory
        self.target = fixture.volume_target
        self.names = list(names)
        self.model = model
        self.other_disks = dict(other_disks)
        self._patterns = _patterns()
        self._writes = itertools.count()

    @property
    def domain(self):
        return self.fixture.domain

    @property
    def running(self):
        return bool(self.domain.isActive())

    def path(self, name):
        return os.path.join(self.directory, name)

    def xml_chain(self):
        """The chain's paths as libvirt shows them (a shut-off guest's XML
        shows the active image only)."""
        return guest.domain_chain(self.domain, self.target)

    def active_path(self):
        return self.xml_chain()[0]

    def header_chain(self):
        """The chain's paths as the qcow2 headers record it."""
        return [image['filename']
                for image in guest.backing_chain(self.active_path())]

    # Data

    def next_region(self):
        offset = (next(self._writes) * WRITE_STRIDE) % (
            self.model.size - WRITE_LENGTH)
        return next(self._patterns), offset, WRITE_LENGTH

    def write(self):
        """Write the next pattern as the guest would: through the monitor
        into the active layer of a running guest, with qemu-io into the
        active image of a stopped one.

        :returns: (pattern byte, offset, length)
        """
        pattern, offset, length = self.next_region()
        return self._write(pattern, offset, length)

    def write_region(self, offset, length):
        """Like :meth:`write`, with the next pattern over ``offset`` ..
        ``offset + length`` (a bigger write, for layers with more data).

        :returns: (pattern byte, offset, length)
        """
        return self._write(next(self._patterns), offset, length)

    def _write(self, pattern, offset, length):
        if self.running:
            self.model.write_live(self.domain, pattern, offset, length,
                                  self.fixture.volume_alias)
        else:
            self.model.write_offline(self.active_path(), pattern, offset,
                                     length)
        return pattern, offset, length

    # Cinder's side

    def new_overlay(self, snapshot_id=None, backing=None):
        """Create the overlay of a new snapshot as Cinder does: qcow2,
        beside the active image, naming it (relatively) as backing file.

        :returns: the overlay's name.
        """
        name = snapshot_file_name(self.fixture.volume_name, snapshot_id)
        guest.create_overlay(self.directory, name,
                             backing or self.names[0])
        return name

    # Checks

    def flush(self):
        """Make a running guest's QEMU write out its cached qcow2 metadata
        for the volume, so that readers outside QEMU see what the guest
        sees (after a block pull in particular: see the module doc)."""
        if self.running:
            flush_disk(self.domain, self.fixture.volume_alias)

    def check(self, names=None):
        """Fail unless the volume is as the test expects.

        * the chain is ``names`` (default: :attr:`names`), in libvirt's
          view (a running guest's XML) and in the headers' view alike;
        * every header names its backing file relatively;
        * the guest sees exactly what was written;
        * the guest's other disks are as they were.
        """
        names = list(self.names if names is None else names)
        self.flush()
        headers = self.header_chain()
        xml = self.xml_chain()
        if self.running:
            if xml != headers:
                raise AssertionError(
                    'libvirt shows the chain of %s as %s, the headers as %s'
                    % (self.target, xml, headers))
        elif xml[0] != headers[0]:
            raise AssertionError('libvirt shows active image %s, headers '
                                 'start at %s' % (xml[0], headers[0]))
        for path in headers:
            if os.path.dirname(path) != self.directory:
                raise AssertionError('chain member %s is outside %s'
                                     % (path, self.directory))
        actual = [os.path.basename(path) for path in headers]
        if actual != names:
            raise AssertionError('the chain of volume %s is %s, expected %s'
                                 % (self.volume_id, actual, names))
        guest.assert_relative_backing(headers[0])
        self.model.assert_matches(headers[0])
        self.check_other_disks()

    def check_other_disks(self):
        for target, (path, pattern) in self.other_disks.items():
            chain = guest.domain_chain(self.domain, target)
            if chain[:1] != [path]:
                raise AssertionError('disk %s of %s is on %s, not %s'
                                     % (target, self.fixture.name, chain,
                                        path))
            if len(chain) > 1:
                raise AssertionError('disk %s of %s got a backing chain: %s'
                                     % (target, self.fixture.name, chain))
            if pattern is not None and not guest.read_pattern(
                    path, pattern, 0, MiB):
                raise AssertionError('disk %s (%s) of %s lost its data'
                                     % (target, path, self.fixture.name))


def flush_disk(domain, alias):
    """Flush a running guest's disk through the QEMU monitor."""
    import libvirt_qemu
    out = libvirt_qemu.qemuMonitorCommand(
        domain, 'qemu-io -d /machine/peripheral/%s/virtio-backend "flush"'
        % alias, libvirt_qemu.VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP).strip()
    if out:
        raise RuntimeError('flush of %s of %s: %s' % (alias, domain.name(),
                                                      out))


def _set_volume_source(xml, volume_id, path):
    root = ElementTree.fromstring(xml)
    for disk in root.findall('./devices/disk'):
        if disk.findtext('serial') == volume_id:
            disk.find('source').set('file', path)
            return root
    raise LookupError('no disk with serial %s' % volume_id)


def _add_cdrom(root, target, path=None):
    devices = root.find('devices')
    disk = ElementTree.SubElement(devices, 'disk', type='file',
                                  device='cdrom')
    ElementTree.SubElement(disk, 'driver', name='qemu', type='raw')
    if path:
        ElementTree.SubElement(disk, 'source', file=path)
    ElementTree.SubElement(disk, 'target', dev=target, bus='ide')
    ElementTree.SubElement(disk, 'readonly')


def attach_volume(test, uri, directory, volume_id, layers=3, running=True,
                  size_mb=16, target='vdb', extra_disks=None, cdroms=(),
                  layer_writes=None):
    """Build a volume's chain, attach it to a new guest and start it.

    The base image is ``volume-<volume_id>``; each of the ``layers - 1``
    overlays is ``volume-<volume_id>.<uuid>`` and names the image below it
    relatively, as Cinder does. Each layer gets its own pattern (written
    offline, before the guest opens the chain), overlapping the previous
    layer's; a running guest then gets one more write, through the monitor.

    :param running: False to leave the guest defined but shut off.
    :param target: the volume's target dev; the guest's other disks come
        first (default: ``vda``, a root disk with another serial, with data).
    :param extra_disks: :class:`guest.Disk` list replacing the default.
    :param cdroms: ``(target, with_medium)`` pairs: IDE cdrom drives, with
        a small raw medium or empty.
    :param layer_writes: ``{layer: [(offset, length), ...]}``, more writes
        into a layer (0 is the base), each with its own pattern.
    :returns: a :class:`Volume`.
    """
    if extra_disks is None:
        extra_disks = [guest.Disk('vda', serial='other-%s' % volume_id,
                                  name='root-%s.qcow2' % volume_id,
                                  size_mb=4)]
    fixture = test.useFixture(guest.GuestFixture(
        uri, directory, volume_id, size_mb=size_mb, running=False,
        extra_disks=extra_disks, volume_target=target))
    model = guest.DataModel(fixture.size)
    volume = Volume(fixture, [], model, {})

    # The other disks get data of their own, to be found unchanged.
    for disk in extra_disks:
        path = os.path.join(directory, disk.file_name)
        pattern = next(volume._patterns)
        guest.write_pattern_offline(path, pattern, 0, MiB)
        volume.other_disks[disk.target] = (path, pattern)

    names = [fixture.volume_name]
    layer_writes = layer_writes or {}
    for layer in range(layers):
        if layer:
            names.insert(0, volume.new_overlay(backing=names[0]))
        path = volume.path(names[0])
        pattern, offset, length = volume.next_region()
        model.write_offline(path, pattern, offset, length)
        for offset, length in layer_writes.get(layer, ()):
            model.write_offline(path, next(volume._patterns), offset, length)
    volume.names = names

    root = _set_volume_source(fixture.domain.XMLDesc(0), volume_id,
                              volume.path(names[0]))
    for cdrom_target, with_medium in cdroms:
        medium = None
        if with_medium:
            medium = os.path.join(directory, 'cdrom-%s-%s.iso'
                                  % (volume_id, cdrom_target))
            pattern = next(volume._patterns)
            with open(medium, 'wb') as f:
                f.write(bytes([pattern]) * MiB)
            volume.other_disks[cdrom_target] = (medium, pattern)
        else:
            volume.other_disks[cdrom_target] = None
        _add_cdrom(root, cdrom_target, medium)
    # Empty drives have no chain to compare; keep only the ones with media.
    volume.other_disks = {t: v for t, v in volume.other_disks.items() if v}
    fixture.domain = fixture.conn.defineXML(
        ElementTree.tostring(root, encoding='unicode'))

    if running:
        fixture.start()
        volume.write()
    volume.check()
    return volume


class VolumeDisk:
    """One of several volumes on one guest, seen as :class:`Volume` sees a
    :class:`guest.GuestFixture` (which has one volume): the guest's
    domain, directory and size, with this volume's id, target and file.
    """

    def __init__(self, fixture, volume_id, target):
        self.guest = fixture
        self.volume_id = volume_id
        self.volume_target = target
        self.volume_name = 'volume-%s' % volume_id
        self.volume_path = os.path.join(fixture.directory, self.volume_name)
        self.directory = fixture.directory
        self.size = fixture.size
        self.size_mb = fixture.size_mb

    @property
    def domain(self):
        return self.guest.domain

    @domain.setter
    def domain(self, value):
        self.guest.domain = value

    @property
    def conn(self):
        return self.guest.conn

    @property
    def name(self):
        return self.guest.name

    @property
    def volume_alias(self):
        """The device alias while the guest runs, else None."""
        if not self.domain.isActive():
            return None
        return guest.disk_alias(self.domain, self.volume_target)

    def start(self):
        self.guest.start()

    def chain(self):
        return guest.domain_chain(self.domain, self.volume_target)

    def active_path(self):
        return self.chain()[0]


def attach_volumes(test, uri, directory, volume_ids, layers=3, running=True,
                   size_mb=16, targets=None, layer_writes=None):
    """Build one chain per volume and attach them all to ONE new guest.

    As :func:`attach_volume` does for one volume: each volume's base is
    ``volume-<id>``, each of its ``layers - 1`` overlays is
    ``volume-<id>.<uuid>`` naming the image below it relatively, every
    layer holds a pattern of its own (and ``layer_writes``, as there) and a
    running guest gets one more write per volume. The guest has a root
    disk ``vda`` (another serial, with data) and the volumes at
    ``targets`` (default ``vdb``, ``vdc``, ...), each with its id as
    serial. Each volume's patterns start at a different byte, so that one
    volume's data showing up in another's is caught too.

    :returns: a list of :class:`Volume`, in the order of ``volume_ids``;
        their ``fixture`` is a :class:`VolumeDisk` and ``fixture.guest``
        the guest's :class:`guest.GuestFixture`.
    """
    volume_ids = list(volume_ids)
    if targets is None:
        targets = ['vd%s' % chr(ord('b') + i) for i in range(len(volume_ids))]
    targets = list(targets)
    if len(targets) != len(volume_ids) or 'vda' in targets:
        raise ValueError('one target per volume, vda excepted: %s'
                         % targets)
    root = guest.Disk('vda', serial='other-%s' % volume_ids[0],
                      name='root-%s.qcow2' % volume_ids[0], size_mb=4)
    # The guest fixture's own volume is the last one; the others are extra
    # disks of the same size, named as Cinder names a volume's base.
    extra = [root] + [guest.Disk(target, serial=volume_id,
                                 name='volume-%s' % volume_id,
                                 size_mb=size_mb)
                      for volume_id, target in zip(volume_ids[:-1],
                                                   targets[:-1])]
    fixture = test.useFixture(guest.GuestFixture(
        uri, directory, volume_ids[-1], size_mb=size_mb, running=False,
        extra_disks=extra, volume_target=targets[-1]))
    root_path = os.path.join(directory, root.file_name)
    root_pattern = 0x11
    guest.write_pattern_offline(root_path, root_pattern, 0, MiB)

    volumes = []
    xml = fixture.domain.XMLDesc(0)
    shift = 0xdf // len(volume_ids)
    layer_writes = layer_writes or {}
    for number, (volume_id, target) in enumerate(zip(volume_ids, targets)):
        disk = VolumeDisk(fixture, volume_id, target)
        volume = Volume(disk, [], guest.DataModel(fixture.size),
                        {'vda': (root_path, root_pattern)})
        for _ in range(number * shift):
            next(volume._patterns)
        names = [disk.volume_name]
        for layer in range(layers):
            if layer:
                names.insert(0, volume.new_overlay(backing=names[0]))
            path = volume.path(names[0])
            pattern, offset, length = volume.next_region()
            volume.model.write_offline(path, pattern, offset, length)
            for offset, length in layer_writes.get(layer, ()):
                volume.model.write_offline(path, next(volume._patterns),
                                           offset, length)
        volume.names = names
        xml = ElementTree.tostring(_set_volume_source(
            xml, volume_id, volume.path(names[0])), encoding='unicode')
        volumes.append(volume)
    fixture.domain = fixture.conn.defineXML(xml)

    if running:
        fixture.start()
        for volume in volumes:
            volume.write()
    for volume in volumes:
        volume.check()
    return volumes


class LibvirtHost(contract.Host):
    """Volumes of the contract suite on the private libvirtd.

    Every volume of a test is in one directory, as the volumes of one
    Cinder NFS share are; each is attached (as vdb) to a guest of its own
    whose root disk (vda) has another serial and whose IDE cdrom drive
    holds a medium.
    """

    def __init__(self, test, uri):
        self._test = test
        self._uri = uri
        self.directory = test.useFixture(fixtures.TempDir()).path
        self._driver = loader.load('libvirt')
        self.volumes = {}

    def driver(self):
        return self._driver

    def add_volume(self, volume_id, layers=3, running=True):
        volume = attach_volume(self._test, self._uri, self.directory,
                               volume_id, layers=layers, running=running,
                               cdroms=[('hdc', True)])
        self.volumes[volume_id] = volume
        return list(volume.names)

    def add_file(self, volume_id, name, backing=None, fmt='qcow2'):
        path = os.path.join(self.directory, name)
        if fmt == 'qcow2' and backing is not None:
            guest.create_overlay(self.directory, name, backing)
        else:
            guest.create_image(path, self.volumes[volume_id].model.size
                               // MiB, fmt=fmt)

    def check_data(self, volume_id):
        volume = self.volumes[volume_id]
        names = self._driver.locate_disk(volume_id).names
        # The driver's view, libvirt's and the headers' must agree, and the
        # guest must see what it wrote.
        volume.check(names)
        # Later steps of the test merge this too.
        volume.write()
        volume.check(names)


class TestLibvirtDriverContract(contract.DriverContractTests,
                                base.FunctionalTestCase):

    def make_host(self):
        uri = guest.libvirt_uri()
        if not uri:
            self.skipTest(guest.SKIP_REASON)
        self.useFixture(fixtures.Timeout(120, gentle=True))
        self.conf.config(group='libvirt', connection_uri=uri,
                         block_job_poll_interval=0.1)
        return LibvirtHost(self, uri)
