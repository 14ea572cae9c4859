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

"""An example out-of-tree snapdriver driver: guests described in a file.

The "hypervisor" of this driver is a JSON state file that lists guests,
their disks, and each disk's qcow2 chain (active image first)::

    {"guests": [
        {"name": "vm1", "running": true,
         "disks": [
            {"target": "vdb", "serial": "<Cinder volume id>",
             "directory": "/mnt/share/abc",
             "chain": ["volume-1.snap1", "volume-1"]}]}]}

What is real: the overlay that Cinder creates beside the active image is
read from the share (its qcow2 header: format and backing file name).
What is modelled: switching the guest onto the overlay and merging images
only rewrite the chain in the state file; no guest and no image data is
touched. A driver for a real hypervisor keeps the structure and replaces
the marked places (``_switch`` and ``_merge``) with calls to it.
"""

import json
import os
import struct
import tempfile
import threading

from oslo_config import cfg
from oslo_log import log

# Everything a driver needs from snapdriver, in one module.
from snapdriver.drivers import kit

LOG = log.getLogger(__name__)

NAME = 'example_directory'

group = cfg.OptGroup(NAME, title='Example directory driver')

opts = [
    cfg.StrOpt('state_file',
               help="JSON file describing the guests, their disks and each "
                    "disk's chain. The driver rewrites the chains in it as "
                    "snapshots are created and deleted."),
]

# Registered on import: stevedore imports this module before the
# constructor runs, and oslo.config reads values registered after the
# files were parsed.
cfg.CONF.register_group(group)
cfg.CONF.register_opts(opts, group=group)


def list_opts():
    """The oslo.config.opts entry point (oslo-config-generator)."""
    return [(group, opts)]


QCOW2_MAGIC = b'QFI\xfb'
#: The qcow2 specification limits a backing file name to 1023 bytes.
MAX_BACKING_NAME = 1023


# qcow2 header extensions (docs/interop/qcow2.txt in QEMU's sources).
_EXT_END = 0
_EXT_BACKING_FORMAT = 0xE2792ACA
_EXT_DATA_FILE = 0x44415441
_MAX_EXTENSIONS = 64


def read_image_header(path):
    """What the chain rules need from an image's header.

    :returns: a dict: ``format`` ('qcow2', or 'raw' for a file without a
        qcow2 header, as qemu-img would call it), ``backing`` (the backing
        name or None), ``backing_format`` and ``data_file`` (from the
        header extensions, or None).
    :raises: OSError when the file cannot be read.
    """
    found = {'format': 'raw', 'backing': None, 'backing_format': None,
             'data_file': None}
    with open(path, 'rb') as f:
        header = f.read(104)
        if len(header) < 72 or header[:4] != QCOW2_MAGIC:
            return found
        found['format'] = 'qcow2'
        # magic, version, backing_file_offset (u64), backing_file_size (u32)
        version, = struct.unpack('>I', header[4:8])
        offset, size = struct.unpack('>QI', header[8:20])
        length = 72
        if version >= 3 and len(header) == 104:
            length, = struct.unpack('>I', header[100:104])
        f.seek(length)
        for _ in range(_MAX_EXTENSIONS):
            kind_size = f.read(8)
            if len(kind_size) < 8:
                break
            kind, ext_size = struct.unpack('>II', kind_size)
            if kind == _EXT_END:
                break
            data = f.read(min(ext_size, MAX_BACKING_NAME))
            f.seek(f.tell() + ext_size - len(data) + (-ext_size % 8))
            if kind == _EXT_BACKING_FORMAT:
                found['backing_format'] = data.decode('utf-8', 'replace')
            elif kind == _EXT_DATA_FILE:
                found['data_file'] = data.decode('utf-8', 'replace')
        if offset and size:
            f.seek(offset)
            found['backing'] = f.read(min(size, MAX_BACKING_NAME)).decode(
                'utf-8', 'replace')
    return found


class _StateError(Exception):
    """The state file cannot be used."""


class DirectoryDriver(kit.BaseDriver):
    """Guests, disks and chains from ``[example_directory] state_file``."""

    def __init__(self):
        # Prerequisites are checked here: a DriverLoadError stops start-up
        # with this reason.
        path = cfg.CONF[NAME].state_file
        if not path:
            raise kit.DriverLoadError(
                driver=NAME, reason="[%s] state_file is not set" % NAME)
        self._path = path
        self._lock = threading.Lock()
        try:
            guests = self._read()
        except _StateError as e:
            raise kit.DriverLoadError(driver=NAME, reason=str(e))
        LOG.info("Example directory driver: %d guest(s) in %s",
                 len(guests), path)

    # The state file

    def _read(self):
        try:
            with open(self._path, encoding='utf-8') as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise _StateError("cannot read state file %s: %s"
                              % (self._path, e))
        if not isinstance(data, dict) or not isinstance(
                data.get('guests'), list):
            raise _StateError("state file %s must be an object with a "
                              "'guests' list" % self._path)
        return data['guests']

    def _load(self):
        """The guests, for an operation: a broken file fails it."""
        try:
            return self._read()
        except _StateError as e:
            raise kit.OperationFailed(reason=str(e))

    def _save(self, guests):
        # Write a new file and rename it over the old one, so that a crash
        # never leaves half a file behind.
        directory = os.path.dirname(os.path.abspath(self._path))
        fd, tmp = tempfile.mkstemp(dir=directory, prefix='.state-')
        try:
            with os.fdopen(fd, 'w', encoding='utf-8') as f:
                json.dump({'guests': guests}, f, indent=2)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self._path)
        except BaseException:
            os.unlink(tmp)
            raise

    @staticmethod
    def _find(guests, volume_id):
        """The (guest, disk) of ``volume_id``; the kit raises
        VolumeNotAttached / VolumeMultiAttached."""
        return kit.the_one_disk(volume_id, (
            (disk.get('serial'), guest.get('name'), (guest, disk))
            for guest in guests for disk in guest.get('disks', [])))

    # The contract

    def capabilities(self):
        return kit.Capabilities(create=True, pull=True, commit=True,
                                offline_pull=True, offline_commit=True,
                                network_disks=False, quiesce=False)

    def locate_disk(self, volume_id):
        with self._lock:
            guest, disk = self._find(self._load(), volume_id)
        directory = disk['directory']
        return kit.DiskLocation(
            volume_id=volume_id, guest=guest['name'], target=disk['target'],
            running=bool(guest.get('running', True)),
            chain=tuple(kit.ChainEntry(name=name,
                                       path=os.path.join(directory, name))
                        for name in disk['chain']),
            source_type='file', directory=directory)

    def inspect_overlay(self, location, new_file):
        # A regular file in the volume's directory, or InvalidOverlay.
        path = kit.overlay_path(location.directory, new_file)
        if path is None:
            return kit.OverlayInfo(name=new_file, exists=False)
        try:
            header = read_image_header(path)
        except OSError as e:
            raise kit.OperationFailed(
                reason="cannot read the header of %s: %s" % (path, e))
        return kit.OverlayInfo(
            name=new_file, exists=True, fmt=header['format'],
            backing=header['backing'],
            backing_fmt=header['backing_format'],
            data_file=header['data_file'])

    def create_snapshot(self, plan):
        return self._change(plan, self._switch)

    def delete_snapshot(self, plan):
        return self._change(plan, self._merge)

    def _change(self, plan, act):
        """Act on the disk of ``plan``, then check the resulting chain."""
        with self._lock:
            guests = self._load()
            _guest, disk = self._find(guests, plan.disk.volume_id)
            # The plan was validated against that chain only.
            kit.check_unchanged(plan.disk, disk['chain'])
            act(guests, disk, plan)
            after = self._find(self._load(), plan.disk.volume_id)[1]['chain']
        return kit.check_result(plan, after)

    # Where a real driver talks to its hypervisor.

    def _switch(self, guests, disk, plan):
        """Make ``plan.new_file`` the guest's active image.

        A real driver asks its hypervisor to reopen the disk on the overlay
        Cinder created (for libvirt: an external disk-only snapshot that
        reuses the file), quiescing the guest if it can.
        """
        LOG.info("Snapshot %s: disk %s of guest %s now runs on %s",
                 plan.snapshot_id, plan.disk.target, plan.disk.guest,
                 plan.new_file)
        disk['chain'] = [plan.new_file] + disk['chain']
        self._save(guests)

    def _merge(self, guests, disk, plan):
        """Merge images as ``plan`` says and wait until that is done.

        ``plan.kind`` is ``pull`` (copy everything between the active
        image and ``plan.base`` into the active image; no base: flatten)
        or ``commit`` (copy ``plan.top`` into ``plan.base``, the image
        directly below it, and relink the image above). A real driver
        runs its hypervisor's block job, or qemu-img for a stopped guest,
        keeping backing file names relative.
        """
        names = disk['chain']
        if plan.kind == kit.PULL:
            keep = names.index(plan.base) if plan.base else len(names)
            disk['chain'] = [names[0]] + names[keep:]
        else:
            disk['chain'] = [name for name in names if name != plan.top]
        LOG.info("Snapshot %s: %s on disk %s of guest %s done",
                 plan.snapshot_id, plan.kind, plan.disk.target,
                 plan.disk.guest)
        self._save(guests)
