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

"""The contract every hypervisor driver meets.

A driver answers three questions and does two things:

* :meth:`BaseDriver.capabilities`: what it can do at all;
* :meth:`BaseDriver.locate_disk`: where a volume is attached on this host
  and what its current backing chain is (a located disk, a
  :class:`snapdriver.chain.DiskLocation`, is called a *location*);
* :meth:`BaseDriver.inspect_overlay`: what the overlay file Cinder created
  for a snapshot looks like;
* :meth:`BaseDriver.create_snapshot` and :meth:`BaseDriver.delete_snapshot`:
  carry out a plan that :mod:`snapdriver.chain` has already validated.

Four hooks are optional: :meth:`BaseDriver.attached_volumes` lists the
volumes of the host (for the API tier of a region),
:meth:`BaseDriver.check_plan` refuses, before anything changes, a plan the
driver cannot carry out on that disk,
:meth:`BaseDriver.merge_progress` tells how far a running merge is (for
GET, Cinder and the operator's watch), and
:meth:`BaseDriver.wait_for_pending` lets recovery wait for work the driver
left running when snapdriver stopped. :mod:`snapdriver.drivers.kit` is the
one import point for what a driver needs.

The driver does not decide whether a request makes sense: the chain rules
do, once, for every driver. The operation manager locates, inspects and
plans synchronously (so the caller gets a 400 before anything changes) and
runs the plan in the background.

A driver that cannot do assisted snapshots at all raises
:class:`snapdriver.exception.UnsupportedOperation` from every method; see
:mod:`snapdriver.drivers.stubs`.

Drivers are found by name through the ``snapdriver.drivers`` entry point
namespace, so a third party adds one from its own package.
"""

import abc
import dataclasses
import typing


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What a driver can do; each flag is one operation."""
    create: bool = False
    pull: bool = False
    commit: bool = False
    offline_pull: bool = False
    offline_commit: bool = False
    network_disks: bool = False
    quiesce: bool = False

    def as_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class JobProgress:
    """How far a merge's job is, as the hypervisor counts it.

    :param done: bytes of the job done (QEMU's block job ``cur``).
    :param total: bytes the job has to go through (``end``); it may grow
        while the job runs, as QEMU's does.
    :param started_at: when the job itself started (``time.time()``), if
        the driver knows; the operation may have waited before it.
    """
    done: int
    total: int
    started_at: typing.Optional[float] = None


class BaseDriver(abc.ABC):
    """Base class of hypervisor drivers.

    The constructor takes no arguments (drivers read their own options from
    ``snapdriver.conf.CONF``) and must check the driver's prerequisites, so
    that a host that cannot work fails at start-up with a clear message
    (raise :class:`snapdriver.exception.DriverLoadError`).
    """

    #: The entry point name; the loader sets it on the instance.
    name = None

    @abc.abstractmethod
    def capabilities(self):
        """:returns: a :class:`Capabilities`."""

    @abc.abstractmethod
    def locate_disk(self, volume_id):
        """Find the disk whose serial is ``volume_id``.

        :returns: a :class:`snapdriver.chain.DiskLocation` with the live
            chain, active image first.
        :raises: VolumeNotAttached, VolumeMultiAttached, NoSnapshotableDisk,
            UnsupportedOperation
        """

    @abc.abstractmethod
    def inspect_overlay(self, location, new_file):
        """Look at ``new_file`` in the directory of the located disk's
        active image.

        ``new_file`` has passed :func:`snapdriver.chain.check_file_name`.

        :returns: a :class:`snapdriver.chain.OverlayInfo`, or None when the
            driver has no way to look (a network disk).
        :raises: UnsupportedOperation
        """

    @abc.abstractmethod
    def create_snapshot(self, plan):
        """Switch the guest onto ``plan.new_file``.

        :param plan: a :class:`snapdriver.chain.CreatePlan`.
        :returns: the disk's chain afterwards (names, active first).
        :raises: OperationFailed, UnsupportedOperation
        """

    @abc.abstractmethod
    def delete_snapshot(self, plan):
        """Merge as ``plan`` says (pull or commit), and wait for the end.

        :param plan: a :class:`snapdriver.chain.DeletePlan`.
        :returns: the disk's chain afterwards (names, active first).
        :raises: OperationFailed, UnsupportedOperation
        """

    def check_plan(self, plan):
        """Refuse, before anything changes, a plan this driver cannot carry
        out on this particular disk (its capabilities already passed).

        :raises: OperationNotSupported (a 400 for the caller)
        """

    def attached_volumes(self):
        """The ids (disk serials) of the volumes attached on this host.

        An agent reports them to the API tier, whose ``agents`` locator
        sends each request to the host that has the volume.

        :returns: an iterable of volume ids, or None when the driver cannot
            tell (the ``agents`` locator then finds no volume there).
        """
        return None

    def merge_progress(self, plan):
        """How far the merge of ``plan`` is, while :meth:`delete_snapshot`
        runs it.

        Called from another thread every ``[DEFAULT] progress_interval``
        seconds while the merge runs, and once more right after
        :meth:`delete_snapshot` returns (the figures of the job just ended,
        if the driver still has them). It must be cheap and must not
        raise for a job that has not started or has ended: return None.

        :param plan: the :class:`snapdriver.chain.DeletePlan` being run.
        :returns: a :class:`JobProgress`, or None when the driver cannot
            tell (no job yet, or no way to know).
        """
        return None

    @classmethod
    def check_reachable(cls):
        """Whether the hypervisor answers, without starting the driver
        (``snapdriver-status upgrade check``).

        :returns: what was found, in words, or None when there is nothing
            to reach.
        :raises: any exception, whose text says what is wrong.
        """
        return None

    def check_health(self):
        """Raise when the hypervisor cannot be reached now (the health
        check's ``snapdriver_driver`` plugin calls it, often: keep it
        cheap).

        :raises: any exception, whose text says what is wrong.
        """

    def wait_for_pending(self, location):
        """Wait for work left running on the located disk by an earlier
        process, and make what it did durable.

        Called when snapdriver restarts with an operation journalled as
        running: a hypervisor that keeps block jobs going across our restart
        (libvirt does) must let that job end before the chain is judged.

        :returns: True if there was something to wait for.
        :raises: OperationFailed if that work failed or timed out.
        """
        return False
