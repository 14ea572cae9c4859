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

"""Everything a driver needs, from one import.

A driver, in snapdriver or in a package of its own, imports this module
and nothing else of snapdriver's (its options go in ``oslo_config.cfg.CONF``
in a group of its own)::

    from snapdriver.drivers import kit

    class MyDriver(kit.BaseDriver):

        def locate_disk(self, volume_id):
            guest, disk = kit.the_one_disk(volume_id, (
                (disk.serial, guest.name, (guest, disk))
                for guest in self.hypervisor.guests()
                for disk in guest.disks))
            ...

It holds the contract (:class:`BaseDriver`, :class:`Capabilities`, and
:class:`UnsupportedDriver` for a hypervisor that cannot do assisted
snapshots), the chain types a driver returns and receives, the exceptions a
driver raises, and the checks every driver makes the same way: the one disk
whose serial is the volume, where the overlay Cinder created may be, that a
chain is still the one a plan was made for, and that it is the expected one
afterwards. The contract test suite is :mod:`snapdriver.testing`.
"""

import os
import stat

from snapdriver import chain
from snapdriver.drivers import base
from snapdriver.drivers import stubs
from snapdriver import exception

__all__ = [
    # The contract
    'BaseDriver', 'Capabilities', 'JobProgress', 'UnsupportedDriver',
    # What a driver returns and receives
    'ChainEntry', 'DiskLocation', 'OverlayInfo', 'CreatePlan', 'DeletePlan',
    'CREATE', 'PULL', 'COMMIT', 'QCOW2',
    # What a driver raises
    'DriverLoadError', 'VolumeNotAttached', 'VolumeMultiAttached',
    'NoSnapshotableDisk', 'InvalidOverlay', 'OperationFailed',
    'OperationNotSupported', 'UnsupportedOperation',
    # Shared checks
    'the_one_disk', 'overlay_path', 'check_unchanged', 'check_result',
]

BaseDriver = base.BaseDriver
Capabilities = base.Capabilities
JobProgress = base.JobProgress
UnsupportedDriver = stubs.UnsupportedDriver

ChainEntry = chain.ChainEntry
DiskLocation = chain.DiskLocation
OverlayInfo = chain.OverlayInfo
CreatePlan = chain.CreatePlan
DeletePlan = chain.DeletePlan
CREATE = chain.CREATE
PULL = chain.PULL
COMMIT = chain.COMMIT
QCOW2 = chain.QCOW2

DriverLoadError = exception.DriverLoadError
VolumeNotAttached = exception.VolumeNotAttached
VolumeMultiAttached = exception.VolumeMultiAttached
NoSnapshotableDisk = exception.NoSnapshotableDisk
InvalidOverlay = exception.InvalidOverlay
OperationFailed = exception.OperationFailed
OperationNotSupported = exception.OperationNotSupported
UnsupportedOperation = exception.UnsupportedOperation


def the_one_disk(volume_id, disks):
    """The one disk of this host whose serial is ``volume_id``.

    :param disks: every disk of the host, as ``(serial, guest, disk)``:
        the disk's serial (None when it has none), its guest as the
        multi-attach error should name it, and the disk itself in whatever
        form the driver keeps it.
    :returns: the ``disk`` of the one match.
    :raises: VolumeNotAttached when no disk has that serial;
        VolumeMultiAttached, naming the guests, when several have.
    """
    found = [(guest, disk) for serial, guest, disk in disks
             if serial == volume_id]
    if not found:
        raise exception.VolumeNotAttached(volume_id=volume_id)
    if len(found) > 1:
        raise exception.VolumeMultiAttached(
            volume_id=volume_id,
            guests=', '.join(sorted(guest for guest, _ in found)))
    return found[0][1]


def overlay_path(directory, new_file):
    """Where the overlay ``new_file`` is, beside a disk's active image.

    ``new_file`` has passed :func:`snapdriver.chain.check_file_name` (a
    plain name). The overlay must be a regular file in ``directory``
    itself: a symbolic link, or anything that resolves elsewhere, could
    make the guest write to a file Cinder does not manage.

    :param directory: the directory of the active image
        (``DiskLocation.directory``).
    :returns: the path of the file, or None when there is nothing by that
        name.
    :raises: InvalidOverlay when it is a symbolic link, resolves outside
        ``directory`` or is not a regular file.
    """
    path = os.path.join(directory, new_file)
    if os.path.islink(path):
        raise exception.InvalidOverlay(
            reason="new_file %r in %s is a symbolic link; the overlay "
            "must be a regular file." % (new_file, directory))
    if not os.path.lexists(path):
        return None
    if (os.path.dirname(os.path.realpath(path))
            != os.path.realpath(directory)):
        raise exception.InvalidOverlay(
            reason="new_file %r resolves to %s, outside %s."
            % (new_file, os.path.realpath(path), directory))
    if not os.path.isfile(path):
        raise exception.InvalidOverlay(
            reason="new_file %r in %s is not a regular file."
            % (new_file, directory))
    return path


def file_identity(path):
    """(device, inode) of ``path`` itself (a link is not followed)."""
    st = os.lstat(path)
    return st.st_dev, st.st_ino


def check_same_overlay(directory, plan):
    """Refuse to switch onto another file than the one inspected.

    Between the inspection of ``new_file`` (at accept) and the switch (after
    the queue) the name may have been pointed elsewhere: replaced by a link
    or by another file. Call right before the switch.

    :param plan: a :class:`snapdriver.chain.CreatePlan`; nothing is checked
        when it records no identity (the file could not be inspected).
    :raises: InvalidOverlay
    """
    if plan.overlay_identity is None:
        return
    path = os.path.join(directory, plan.new_file)
    try:
        st = os.lstat(path)
    except OSError as error:
        raise exception.InvalidOverlay(
            reason="new_file %r in %s is gone since it was checked: %s; "
            "nothing was switched." % (plan.new_file, directory,
                                       error.strerror))
    if (not stat.S_ISREG(st.st_mode)
            or (st.st_dev, st.st_ino) != tuple(plan.overlay_identity)):
        raise exception.InvalidOverlay(
            reason="new_file %r in %s is no longer the file that was "
            "checked when the request was accepted (replaced, or made a "
            "link); nothing was switched." % (plan.new_file, directory))


def check_unchanged(disk, names):
    """Refuse to act on another chain than the one a plan was made for.

    :param disk: the plan's :class:`DiskLocation` (``plan.disk``).
    :param names: the disk's chain now, active image first.
    :raises: OperationFailed when they differ.
    """
    if list(names) != list(disk.names):
        raise exception.OperationFailed(
            reason="The chain of volume %s changed after the request was "
            "accepted: it was %s, now %s."
            % (disk.volume_id, ' -> '.join(disk.names),
               ' -> '.join(names)))


def check_result(plan, names, what=None, hint=''):
    """Compare the chain after an operation with ``plan.expected_chain``.

    :param names: the disk's chain now, active image first.
    :param what: the operation in words (default ``plan.kind``).
    :param hint: added to the message, such as what the hypervisor said.
    :returns: ``names`` as a list, when they are the expected chain.
    :raises: OperationFailed when they are not.
    """
    if tuple(names) != tuple(plan.expected_chain):
        raise exception.OperationFailed(
            reason="After the %s, the chain of disk %s of guest %s should "
            "be %s but is %s.%s"
            % (what or plan.kind, plan.disk.target, plan.disk.guest,
               ' -> '.join(plan.expected_chain), ' -> '.join(names), hint))
    return list(names)
