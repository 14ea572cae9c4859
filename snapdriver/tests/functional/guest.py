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

"""Real guests and images for functional tests.

These helpers run QEMU guests through a real libvirtd, normally the private
one that ``tools/with-libvirtd.sh`` starts and names in the environment
variable ``SNAPDRIVER_TEST_LIBVIRT_URI``. Images are laid out as Cinder's
file-based drivers lay them out: ``volume-<id>`` as the base, overlays next
to it whose qcow2 headers name their backing file by a relative name.

A guest has no OS: it sits in the firmware, which is all that snapshots and
block jobs need. Data is written "as the guest would" through the QEMU
monitor into the disk device's active layer, and checked from outside with
``qemu-io``; :class:`DataModel` keeps track of what the guest must see.
"""

import dataclasses
import json
import os
import re
import subprocess
import uuid
from xml.etree import ElementTree

import fixtures

URI_ENV = 'SNAPDRIVER_TEST_LIBVIRT_URI'
SKIP_REASON = ('%s is not set: run the functional tests through '
               'tools/with-libvirtd.sh to get a private libvirtd' % URI_ENV)

MiB = 1024 * 1024


def libvirt_uri():
    """The URI of the libvirtd to test against, or None if there is none."""
    return os.environ.get(URI_ENV) or None


def _libvirt():
    import libvirt
    return libvirt


def run(*cmd, check=True):
    """Run a command, returning the CompletedProcess (text output)."""
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    if check and proc.returncode != 0:
        raise RuntimeError('%s failed (rc %d): %s%s' % (
            ' '.join(cmd), proc.returncode, proc.stdout, proc.stderr))
    return proc


# Images -------------------------------------------------------------------

def create_image(path, size_mb, fmt='qcow2'):
    run('qemu-img', 'create', '-q', '-f', fmt, path, '%dM' % size_mb)
    return path


def create_overlay(directory, new_name, backing_name):
    """Create ``directory/new_name`` on top of ``backing_name``.

    The backing file is named relative to the overlay, as Cinder's
    snapshots do; qemu-img resolves it against the overlay's directory.
    """
    if os.path.isabs(backing_name):
        raise ValueError('backing_name must be relative: %s' % backing_name)
    path = os.path.join(directory, new_name)
    run('qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2',
        '-b', backing_name, path)
    return path


def backing_chain(path):
    """qemu-img's view of the chain from ``path`` down, active first.

    Each entry is qemu-img's JSON dict: ``filename``, ``format``,
    ``virtual-size``, and, above the base, ``backing-filename`` (as written
    in the header) and ``full-backing-filename``.
    """
    out = run('qemu-img', 'info', '--backing-chain', '--output=json',
              '--force-share', path).stdout
    return json.loads(out)


def assert_relative_backing(path):
    """Fail unless every header in the chain names its backing relatively."""
    chain = backing_chain(path)
    absolute = [(image['filename'], image['backing-filename'])
                for image in chain
                if os.path.isabs(image.get('backing-filename', ''))]
    if absolute:
        raise AssertionError('absolute backing file names in the chain of '
                             '%s: %s' % (path, absolute))
    return chain


def _pattern(pattern_byte):
    if not 0 <= pattern_byte <= 0xff:
        raise ValueError('pattern must be a byte: %r' % pattern_byte)
    return '0x%02x' % pattern_byte


def write_pattern_offline(path, pattern_byte, offset, length, fmt='qcow2'):
    """Write ``length`` bytes of ``pattern_byte`` at ``offset`` into an image
    no process has open."""
    run('qemu-io', '-f', fmt, '-c',
        'write -P %s %d %d' % (_pattern(pattern_byte), offset, length), path)


def read_patterns(path, regions, fmt=None):
    """Check (pattern_byte, offset, length) regions of what ``path`` shows.

    Reads through the whole backing chain, while a guest may be running
    (force-share). Returns the regions that did not match; raises if the
    image could not be read at all.
    """
    cmd = ['qemu-io', '-r', '-U']
    if fmt:
        cmd += ['-f', fmt]
    for pattern_byte, offset, length in regions:
        cmd += ['-c', 'read -P %s %d %d'
                % (_pattern(pattern_byte), offset, length)]
    cmd.append(path)
    proc = run(*cmd, check=False)
    failed = {(int(m.group(1)), int(m.group(2))) for m in re.finditer(
        r'Pattern verification failed at offset (\d+), (\d+) bytes',
        proc.stdout)}
    # qemu-io also exits 1 when a read fails outright; that is no answer.
    reads = len(re.findall(r'^read \d+/\d+ bytes', proc.stdout, re.M))
    if proc.returncode not in (0, 1) or reads != len(regions):
        raise RuntimeError('qemu-io could not read %s (rc %d): %s%s' % (
            path, proc.returncode, proc.stdout, proc.stderr))
    return [r for r in regions if (r[1], r[2]) in failed]


def read_pattern(path, pattern_byte, offset, length, fmt=None):
    """True if the guest-visible bytes at offset..+length are all
    ``pattern_byte``."""
    return not read_patterns(path, [(pattern_byte, offset, length)], fmt)


# Guests -------------------------------------------------------------------

def _hmp(domain, command):
    import libvirt_qemu
    return libvirt_qemu.qemuMonitorCommand(
        domain, command, libvirt_qemu.VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP)


def _domain_xml(domain):
    return ElementTree.fromstring(domain.XMLDesc(0))


def _disk_element(domain, target=None, alias=None):
    for disk in _domain_xml(domain).findall('./devices/disk'):
        if target is not None and disk.find('target').get('dev') == target:
            return disk
        alias_el = disk.find('alias')
        if (alias is not None and alias_el is not None and
                alias_el.get('name') == alias):
            return disk
    raise LookupError('%s has no disk %s' % (domain.name(), target or alias))


def disk_alias(domain, target):
    """The device alias libvirt gave the disk ``target`` of a running guest
    (``virtio-disk<N>``, N from the target name: vdb is virtio-disk1)."""
    alias = _disk_element(domain, target=target).find('alias')
    if alias is None:
        raise LookupError('disk %s of %s has no alias: is it running?'
                          % (target, domain.name()))
    return alias.get('name')


def domain_chain(domain, target):
    """Paths of the disk's chain as libvirt shows it, active layer first.

    A shut-off domain's XML names only the active layer.
    """
    chain = []
    node = _disk_element(domain, target=target)
    while node is not None:
        source = node.find('source')
        if source is None:
            break
        chain.append(source.get('file') or source.get('dev') or
                     source.get('name'))
        node = node.find('backingStore')
    return chain


def write_pattern_live(domain, pattern_byte, offset, length,
                       device_alias='virtio-disk0', verify=True):
    """Write as the running guest would, into the disk's active layer.

    Goes through the virtio-blk device's own block backend, so whatever
    chain the device is on at the moment gets the write. qemu-io's messages,
    errors included, go to QEMU's stdout rather than back to the monitor, so
    the range is checked first and the result read back afterwards.
    """
    disk = _disk_element(domain, alias=device_alias)
    target = disk.find('target').get('dev')
    capacity = domain.blockInfo(target)[0]
    if offset < 0 or length <= 0 or offset + length > capacity:
        raise ValueError('%d+%d is outside disk %s (%d bytes)'
                         % (offset, length, target, capacity))
    device = '/machine/peripheral/%s/virtio-backend' % device_alias
    write = 'write -P %s %d %d' % (_pattern(pattern_byte), offset, length)
    # flush, so that outside readers see the new qcow2 metadata too.
    for command in (write, 'flush'):
        out = _hmp(domain, 'qemu-io -d %s "%s"' % (device, command)).strip()
        if out:
            raise RuntimeError('qemu-io %r on %s of %s: %s'
                               % (command, device, domain.name(), out))
    if verify:
        active = domain_chain(domain, target)[0]
        if not read_pattern(active, pattern_byte, offset, length):
            raise RuntimeError(
                'live write of %s at %d+%d to %s did not reach %s (see the '
                'guest log)' % (_pattern(pattern_byte), offset, length,
                                target, active))


def qemu_pids(domain_name):
    """PIDs of the QEMU processes running the guest ``domain_name``.

    Found by command line (libvirt starts QEMU with ``-name
    guest=<name>,...``), so that it works with any libvirtd, whatever its
    state directory. A test that must kill QEMU itself (not through libvirt,
    whose destroy lets QEMU flush on SIGTERM first) uses this.
    """
    wanted = ('guest=%s' % domain_name).encode()
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % entry, 'rb') as f:
                args = f.read().split(b'\0')
        except OSError:
            continue
        if not args or b'qemu-system' not in os.path.basename(args[0]):
            continue
        if any(arg == wanted or arg.startswith(wanted + b',')
               for arg in args):
            found.append(int(entry))
    return found


def external_snapshot(domain, target, new_file, quiesce=False):
    """Switch disk ``target`` onto ``new_file``, an overlay made beforehand
    (disk-only, no libvirt metadata, reusing the file: as Nova does for
    Cinder). Every other disk is left out of the snapshot."""
    libvirt = _libvirt()
    snapshot = ElementTree.Element('domainsnapshot')
    disks = ElementTree.SubElement(snapshot, 'disks')
    for disk in _domain_xml(domain).findall('./devices/disk'):
        dev = disk.find('target').get('dev')
        el = ElementTree.SubElement(disks, 'disk', name=dev)
        if dev == target:
            el.set('snapshot', 'external')
            el.set('type', 'file')
            ElementTree.SubElement(el, 'driver', type='qcow2')
            ElementTree.SubElement(el, 'source', file=new_file)
        else:
            el.set('snapshot', 'no')
    flags = (libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY |
             libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA |
             libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_REUSE_EXT)
    if quiesce:
        flags |= libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE
    domain.snapshotCreateXML(
        ElementTree.tostring(snapshot, encoding='unicode'), flags)


@dataclasses.dataclass
class Disk:
    """A disk of a test guest that is not the volume."""
    target: str
    serial: str = None
    name: str = None          # file name in the guest's directory
    size_mb: int = 16

    @property
    def file_name(self):
        return self.name or 'disk-%s.qcow2' % self.target


class GuestFixture(fixtures.Fixture):
    """A TCG guest with a Cinder volume attached as a qcow2 file.

    Creates ``directory/volume-<volume_id>`` (empty qcow2 of ``size_mb``)
    and any ``extra_disks`` (:class:`Disk`), defines a persistent domain
    with the extra disks first and the volume at ``volume_target`` (serial:
    the volume id), and starts it unless ``running`` is False. Cleanup
    destroys and undefines it; the files stay in ``directory``.

    Attributes: ``conn``, ``domain``, ``name``, ``volume_path``,
    ``volume_name``, ``volume_target``, ``volume_alias`` (None while shut
    off), ``size`` (bytes).
    """

    def __init__(self, uri, directory, volume_id, size_mb=64, running=True,
                 extra_disks=(), volume_target='vda'):
        super().__init__()
        self.uri = uri
        self.directory = directory
        self.volume_id = volume_id
        self.size_mb = size_mb
        self.size = size_mb * MiB
        self.running = running
        self.extra_disks = list(extra_disks)
        self.volume_target = volume_target
        self.volume_name = 'volume-%s' % volume_id
        self.volume_path = os.path.join(directory, self.volume_name)
        self.name = 'snapdriver-test-%s' % uuid.uuid4().hex[:12]
        self.conn = self.domain = self.volume_alias = None

    def _setUp(self):
        libvirt = _libvirt()
        # The default handler prints every libvirt error to stderr, expected
        # ones included; the exceptions carry them anyway.
        libvirt.registerErrorHandler(lambda ctx, err: None, None)
        for disk in self.extra_disks:
            create_image(os.path.join(self.directory, disk.file_name),
                         disk.size_mb)
        create_image(self.volume_path, self.size_mb)

        self.conn = libvirt.open(self.uri)
        self.addCleanup(self.conn.close)
        self.domain = self.conn.defineXML(self.xml())
        self.addCleanup(self._remove)
        if self.running:
            self.start()

    def start(self):
        self.domain.create()
        self.volume_alias = disk_alias(self.domain, self.volume_target)

    def _remove(self):
        libvirt = _libvirt()
        if self.domain.isActive():
            self.domain.destroy()
        self.domain.undefineFlags(
            libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
            libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA)

    def xml(self):
        E, Sub = ElementTree.Element, ElementTree.SubElement
        domain = E('domain', type='qemu')
        Sub(domain, 'name').text = self.name
        Sub(domain, 'memory', unit='MiB').text = '64'
        Sub(domain, 'vcpu').text = '1'
        os_el = Sub(domain, 'os')
        Sub(os_el, 'type', arch='x86_64', machine='pc').text = 'hvm'
        devices = Sub(domain, 'devices')
        disks = [(os.path.join(self.directory, d.file_name), d.target,
                  d.serial) for d in self.extra_disks]
        disks.append((self.volume_path, self.volume_target, self.volume_id))
        for path, target, serial in disks:
            disk = Sub(devices, 'disk', type='file', device='disk')
            Sub(disk, 'driver', name='qemu', type='qcow2')
            Sub(disk, 'source', file=path)
            Sub(disk, 'target', dev=target, bus='virtio')
            if serial:
                Sub(disk, 'serial').text = serial
        Sub(devices, 'controller', type='usb', model='none')
        Sub(devices, 'memballoon', model='none')
        return ElementTree.tostring(domain, encoding='unicode')

    def chain(self):
        return domain_chain(self.domain, self.volume_target)

    def active_path(self):
        return self.chain()[0]


# What the guest must see --------------------------------------------------

class DataModel:
    """Records what was written to a volume, to check that none of it is
    lost whatever the chain underneath has become.

    The whole disk is checked: unwritten space must read as zeros.
    """

    def __init__(self, size):
        self.size = size
        self._writes = []      # (pattern_byte, offset, length), in order

    def record(self, pattern_byte, offset, length):
        if offset < 0 or length <= 0 or offset + length > self.size:
            raise ValueError('%d+%d is outside the disk' % (offset, length))
        _pattern(pattern_byte)
        self._writes.append((pattern_byte, offset, length))

    def write_live(self, domain, pattern_byte, offset, length,
                   device_alias='virtio-disk0'):
        write_pattern_live(domain, pattern_byte, offset, length,
                           device_alias)
        self.record(pattern_byte, offset, length)

    def write_offline(self, path, pattern_byte, offset, length):
        write_pattern_offline(path, pattern_byte, offset, length)
        self.record(pattern_byte, offset, length)

    def regions(self):
        """The expected content as (pattern_byte, offset, length) runs that
        cover the whole disk, later writes winning."""
        points = sorted({0, self.size} |
                        {o for _, o, _ in self._writes} |
                        {o + n for _, o, n in self._writes})
        runs = []
        for start, end in zip(points, points[1:]):
            byte = 0
            for pattern_byte, offset, length in self._writes:
                if offset <= start and end <= offset + length:
                    byte = pattern_byte
            if runs and runs[-1][0] == byte and sum(runs[-1][1:]) == start:
                runs[-1] = (byte, runs[-1][1], end - runs[-1][1])
            else:
                runs.append((byte, start, end - start))
        return runs

    def mismatches(self, path):
        return read_patterns(path, self.regions())

    def assert_matches(self, path):
        """Fail unless ``path`` (read through its chain) shows exactly what
        was written."""
        wrong = self.mismatches(path)
        if wrong:
            raise AssertionError(
                '%s does not show what was written; wrong regions '
                '(pattern, offset, length): %s; chain: %s' % (
                    path, wrong, [i['filename'] for i in
                                  backing_chain(path)]))

    def build_reference(self, path):
        """Write the expected content to a raw file, without QEMU."""
        with open(path, 'wb') as f:
            f.truncate(self.size)
            for pattern_byte, offset, length in self.regions():
                if pattern_byte:
                    f.seek(offset)
                    f.write(bytes([pattern_byte]) * length)
        return path

    def assert_same_as_reference(self, path, scratch_dir):
        """Compare ``path`` byte for byte against an independently built
        reference (``qemu-img compare``)."""
        ref = self.build_reference(os.path.join(
            scratch_dir, 'reference-%s.raw' % uuid.uuid4().hex[:8]))
        try:
            proc = run('qemu-img', 'compare', '-U', '-f', 'raw', ref, path,
                       check=False)
        finally:
            os.unlink(ref)
        if proc.returncode != 0:
            raise AssertionError('%s differs from the expected content: '
                                 '%s%s' % (path, proc.stdout, proc.stderr))
