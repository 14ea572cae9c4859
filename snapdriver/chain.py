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

"""The qcow2 chain rules, in one place, for every driver.

A volume is a chain of qcow2 images, the active image first. Cinder refers
to chain members by the names the chain records: relative names as Cinder
wrote them into the headers, which for a file disk are the basenames of the
absolute paths that libvirt shows. This module decides, before anything is
changed, whether a create or a delete makes sense on the disk's *current*
chain, and what the chain must look like afterwards. It is plain Python: it
imports nothing of libvirt, HTTP or configuration, so the fake driver and
the libvirt driver give a client the same answers.
"""

import dataclasses
import typing

from snapdriver import exception

QCOW2 = 'qcow2'
PULL = 'pull'
COMMIT = 'commit'
CREATE = 'create'


@dataclasses.dataclass(frozen=True)
class ChainEntry:
    """One image of a disk's backing chain.

    :param name: the name the chain records (what Cinder uses).
    :param path: where the driver finds the image (absolute path of a file
        disk, or the source name of a netfs disk).
    :param fmt: the image format.
    :param index: the driver's own handle for the image, if any (libvirt's
        ``<backingStore index=...>``; the active image is index 0).
    """
    name: str
    path: str
    fmt: str = QCOW2
    index: typing.Optional[int] = None


@dataclasses.dataclass(frozen=True)
class DiskLocation:
    """Where a volume is attached on this host, and its current chain.

    :param directory: the directory of the active image of a file disk;
        None for a network disk.
    :param details: driver-private data (for example netfs hosts).
    """
    volume_id: str
    guest: str
    target: str
    running: bool
    chain: typing.Tuple[ChainEntry, ...]
    source_type: str = 'file'
    directory: typing.Optional[str] = None
    details: typing.Mapping = dataclasses.field(default_factory=dict)

    @property
    def active(self):
        return self.chain[0]

    @property
    def names(self):
        return [entry.name for entry in self.chain]

    def describe(self):
        """The chain in words, for error messages."""
        return ("the chain of disk %s of guest %s is %s (active image first)"
                % (self.target, self.guest, ' -> '.join(self.names)))

    def entry(self, name):
        """The chain entry recorded as ``name``."""
        return self.chain[self.names.index(name)]


@dataclasses.dataclass(frozen=True)
class OverlayInfo:
    """What the driver found out about ``new_file`` before a create.

    :param exists: whether the file is there.
    :param fmt: its format as qemu-img reports it.
    :param backing: its backing file name exactly as its header records it
        (None when it has none).
    :param backing_fmt: the backing file's format as its header records it
        (None when it records none).
    :param data_file: the external data file its header names, if any.
    :param identity: the file's (device, inode) when it was inspected, so
        that the driver can tell, just before the switch, that it is still
        the same file (None: not known).
    """
    name: str
    exists: bool
    fmt: typing.Optional[str] = None
    backing: typing.Optional[str] = None
    backing_fmt: typing.Optional[str] = None
    data_file: typing.Optional[str] = None
    identity: typing.Optional[typing.Tuple[int, int]] = None


@dataclasses.dataclass(frozen=True)
class CreatePlan:
    """A validated create: switch ``disk`` onto ``new_file``."""
    snapshot_id: str
    disk: DiskLocation
    new_file: str
    expected_chain: typing.Tuple[str, ...]
    kind: str = CREATE
    #: (device, inode) of ``new_file`` when it was inspected, or None.
    overlay_identity: typing.Optional[typing.Tuple[int, int]] = None


@dataclasses.dataclass(frozen=True)
class DeletePlan:
    """A validated delete.

    A pull merges everything between the active image and ``base`` into the
    active image (``base`` None: flatten the whole chain into it). A commit
    merges ``top`` down into ``base``, the image directly below it.
    """
    snapshot_id: str
    disk: DiskLocation
    kind: str
    base: typing.Optional[str]
    top: typing.Optional[str]
    expected_chain: typing.Tuple[str, ...]


def check_file_name(field, value):
    """A file name from a request must name a file in the volume's directory.

    :raises: InvalidFileName
    """
    if (not isinstance(value, str) or not value or '/' in value
            or '\0' in value or value in ('.', '..')):
        raise exception.InvalidFileName(field=field, value=value)


def _position(disk, field, name):
    names = disk.names
    count = names.count(name)
    if count == 0:
        raise exception.InvalidChainReference(
            reason="%s %r is not in the backing chain of volume %s: %s."
            % (field, name, disk.volume_id, disk.describe()))
    if count > 1:
        raise exception.InvalidChainReference(
            reason="%s %r names more than one image of volume %s: %s."
            % (field, name, disk.volume_id, disk.describe()))
    return names.index(name)


def _check_overlay(disk, new_file, overlay):
    """The overlay must be a qcow2 image holding its own data, whose header
    names the active image, by that name alone as Cinder writes it, with the
    active image's format."""
    where = ("in %s" % disk.directory) if disk.directory else (
        "beside %s" % disk.active.path)
    if not overlay.exists:
        reason = ("new_file %r does not exist %s; Cinder creates the overlay "
                  "before it asks for the snapshot." % (new_file, where))
    elif overlay.fmt != QCOW2:
        reason = ("new_file %r is %s, not a qcow2 image."
                  % (new_file, ('a %s image' % overlay.fmt) if overlay.fmt
                     else 'of an unrecognised format'))
    elif overlay.data_file:
        # The guest would write into a file of the header's choosing.
        reason = ("new_file %r keeps its data in the external data file %s;"
                  " an overlay must hold its own data."
                  % (new_file, overlay.data_file))
    elif overlay.backing not in (disk.active.name,
                                 './' + disk.active.name):
        # Exactly the name: 'sub/../<active>' reads as the active image only
        # while 'sub' is a directory; were it a link elsewhere, QEMU would
        # open another file than the one checked here.
        reason = ("new_file %r must name the active image %r of volume %s "
                  "as its backing file, by that name alone (relative, in "
                  "the same directory), but its header names %s."
                  % (new_file, disk.active.name, disk.volume_id,
                     repr(overlay.backing) if overlay.backing
                     else 'no backing file'))
    elif overlay.backing_fmt != disk.active.fmt:
        # qemu-img (Cinder, offline merges) would read the chain otherwise
        # than the guest does.
        reason = ("new_file %r records the format of its backing file as "
                  "%s, but the active image %r of volume %s is %s."
                  % (new_file, overlay.backing_fmt or 'unknown (none '
                     'recorded)', disk.active.name, disk.volume_id,
                     disk.active.fmt))
    else:
        return
    raise exception.InvalidOverlay(reason=reason)


def plan_create(disk, snapshot_id, new_file, overlay):
    """Validate a create against the disk's current chain.

    :param overlay: an :class:`OverlayInfo`, or None when the driver cannot
        look at the file (netfs disks).
    :returns: a :class:`CreatePlan`.
    :raises: InvalidFileName, InvalidOverlay
    """
    check_file_name('new_file', new_file)
    if new_file in disk.names:
        raise exception.InvalidOverlay(
            reason="new_file %r is already part of volume %s: %s."
            % (new_file, disk.volume_id, disk.describe()))
    if overlay is not None:
        _check_overlay(disk, new_file, overlay)
    return CreatePlan(snapshot_id=snapshot_id, disk=disk, new_file=new_file,
                      expected_chain=tuple([new_file] + disk.names),
                      overlay_identity=overlay.identity if overlay else None)


def plan_delete(disk, snapshot_id, file_to_merge, merge_target_file):
    """Validate a delete against the disk's current chain.

    ``merge_target_file`` None asks for a pull into the active image with
    ``file_to_merge`` as the new base (None: no base at all); otherwise
    ``file_to_merge`` is committed into ``merge_target_file``, which must be
    the image directly below it.

    :returns: a :class:`DeletePlan`.
    :raises: InvalidFileName, InvalidChainReference
    """
    names = disk.names
    for field, value in (('file_to_merge', file_to_merge),
                         ('merge_target_file', merge_target_file)):
        if value is not None:
            check_file_name(field, value)

    if merge_target_file is None:
        if file_to_merge is None:
            expected = [names[0]]
        else:
            pos = _position(disk, 'file_to_merge', file_to_merge)
            if pos == 0:
                raise exception.InvalidChainReference(
                    reason="file_to_merge %r is the active image of volume "
                    "%s; a pull needs a base below it: %s."
                    % (file_to_merge, disk.volume_id, disk.describe()))
            expected = [names[0]] + names[pos:]
        return DeletePlan(snapshot_id=snapshot_id, disk=disk, kind=PULL,
                          base=file_to_merge, top=None,
                          expected_chain=tuple(expected))

    if file_to_merge is None:
        raise exception.InvalidChainReference(
            reason="merge_target_file %r is set but file_to_merge is null; a "
            "commit needs the image to merge." % merge_target_file)
    pos = _position(disk, 'file_to_merge', file_to_merge)
    if pos == 0:
        raise exception.InvalidChainReference(
            reason="file_to_merge %r is the active image of volume %s; only "
            "an image below the active image can be committed: %s."
            % (file_to_merge, disk.volume_id, disk.describe()))
    below = names[pos + 1] if pos + 1 < len(names) else None
    if merge_target_file != below:
        raise exception.InvalidChainReference(
            reason="merge_target_file %r is not the image directly below "
            "file_to_merge %r (%s): %s."
            % (merge_target_file, file_to_merge,
               repr(below) if below else 'it has no backing file',
               disk.describe()))
    expected = names[:pos] + names[pos + 1:]
    return DeletePlan(snapshot_id=snapshot_id, disk=disk, kind=COMMIT,
                      base=merge_target_file, top=file_to_merge,
                      expected_chain=tuple(expected))
