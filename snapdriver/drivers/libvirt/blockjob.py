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

"""Block jobs of a guest: their events, one at a time, held still.

:class:`BlockJobTracker` collects libvirt's BLOCK_JOB_2 events for the
disks whose jobs are being waited for (:mod:`blockdev` waits, with polling
behind the events). :class:`GuestJobSlots` runs one block job per guest
and one change of a guest's block graph at a time;
:func:`jobs_held_still` holds a guest's jobs still while its graph
changes, and :func:`release_held` undoes what a snapdriver that died left
held. :func:`busy` tells which disks have a job. See doc/architecture.md,
"Block work on one guest".
"""

import collections
import contextlib
import threading
import time

from oslo_log import log
from oslo_utils import units

from snapdriver.drivers.libvirt import host

try:
    import libvirt
except ImportError:  # the driver reports it when it loads
    libvirt = None

LOG = log.getLogger(__name__)

#: The speed, in bytes per second, at which a block job is held while a
#: snapshot switch runs beside it: it copies nothing, and it cannot end.
#: Nobody else sets a job to one byte a second, so a job found at this
#: speed was left held by a snapdriver that died (:func:`release_held`).
HOLD_BANDWIDTH = 1
#: A held job whose progress did not move for this long has no copy in
#: flight.
SETTLE_INTERVAL = 0.1
#: How long a job may take to settle, or to end when it was ending.
HOLD_TIMEOUT = 30.0


class BlockJobTracker:
    """Collects block job events for the disks being watched.

    The libvirt event loop thread calls :meth:`handle_event`; the threads
    that run operations call :meth:`watch`. Jobs are keyed by the domain's
    UUID and the disk's target dev, which is what BLOCK_JOB_2 reports.
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._events = {}

    def handle_event(self, uuid, disk, job_type, status):
        """Record an event, if anyone watches that disk."""
        key = (uuid, disk)
        with self._cond:
            if key not in self._events:
                return
            self._events[key].append((job_type, status))
            self._cond.notify_all()
        LOG.debug("Block job event for disk %s of domain %s: type %s, "
                  "status %s", disk, uuid, job_type, status)

    @contextlib.contextmanager
    def watch(self, uuid, disk):
        """Collect the events of the disk for the ``with`` block.

        Enter before starting a job, so that an event sent at once is not
        missed.

        :returns: (as a context manager) a :class:`BlockJobWatch`.
        :raises: RuntimeError when the disk is watched already.
        """
        key = (uuid, disk)
        with self._cond:
            if key in self._events:
                # Operations on one volume run one at a time; two waiters
                # for one disk mean a bug, not a race to arbitrate.
                raise RuntimeError("already waiting for a block job on "
                                   "disk %s of domain %s" % (disk, uuid))
            self._events[key] = []
        try:
            yield BlockJobWatch(self, key)
        finally:
            with self._cond:
                del self._events[key]

    def _take(self, key):
        with self._cond:
            events = self._events[key]
            self._events[key] = []
            return events

    def _sleep(self, key, seconds):
        with self._cond:
            if not self._events[key]:
                self._cond.wait(seconds)


class BlockJobWatch:
    """The events of one disk; see :meth:`BlockJobTracker.watch`."""

    def __init__(self, tracker, key):
        self._tracker = tracker
        self._key = key

    def take(self):
        """The events that came since the last call (or since the watch
        began), oldest first, as ``(job_type, status)``; they are gone
        from the watch afterwards."""
        return self._tracker._take(self._key)

    def sleep(self, seconds):
        """Wait until an event comes or ``seconds`` have passed.

        Returns at once if an event came since :meth:`take` last ran, so
        that none is slept through.
        """
        self._tracker._sleep(self._key, seconds)


class GuestJobSlots:
    """One block job per guest at a time, first come first served; and
    changes to a guest's block graph one at a time.

    QEMU 7.2 crashes when two block pulls start together on two disks of
    one guest, and sometimes when a disk is switched onto a new overlay
    while a pull copies data on another disk (see doc/architecture.md,
    "Block work on one guest"). So a merge holds its guest's slot from
    before it starts its job until the job's result is durable, and the
    moments that change the guest's block graph (starting a job, a
    snapshot switch) hold the guest's graph lock, a short one. Merges on
    different guests do not wait for each other; creates never wait for a
    slot, only for the graph lock.

    Keyed by domain UUID. Waiters for a slot are served in the order they
    came, so a volume's merge cannot be overtaken for ever by its
    neighbours'.
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._queues = {}      # uuid -> deque of tickets, holder first
        self._graph_locks = collections.defaultdict(threading.Lock)

    def graph_change(self, uuid):
        """The guest's graph lock, as a context manager.

        Kept for the guest's lifetime in this process: a few bytes each.
        """
        with self._cond:
            return self._graph_locks[uuid]

    @contextlib.contextmanager
    def hold(self, uuid, on_wait=None):
        """Hold the slot of guest ``uuid`` for the ``with`` block.

        :param on_wait: called once, without arguments, if the slot is
            taken and the caller has to wait (to say so in the log).
        """
        ticket = object()
        with self._cond:
            queue = self._queues.setdefault(uuid, collections.deque())
            queue.append(ticket)
            taken = queue[0] is not ticket
        try:
            if taken:
                if on_wait is not None:
                    on_wait()
                with self._cond:
                    self._cond.wait_for(lambda: queue[0] is ticket)
            yield
        finally:
            with self._cond:
                queue.remove(ticket)
                if not queue:
                    del self._queues[uuid]
                self._cond.notify_all()

    def waiting(self, uuid):
        """How many merges hold or wait for the slot of guest ``uuid``."""
        with self._cond:
            return len(self._queues.get(uuid, ()))


def busy(dom, targets):
    """The disks among ``targets`` that have a block job, in that order.

    A disk libvirt tells nothing about (a drive without a medium, a disk
    unplugged meanwhile) has none; one it cannot be asked about (the
    connection is gone) counts as busy: not knowing is not "no job".
    """
    found = []
    for target in targets:
        try:
            if dom.blockJobInfo(target, 0):
                found.append(target)
        except libvirt.libvirtError as error:
            if host.is_connection_error(error):
                found.append(target)
                continue
            LOG.debug("No block job information for disk %s: %s", target,
                      error.get_error_message() or str(error))
    return found


def _bandwidth_bytes(dom, target):
    info = dom.blockJobInfo(
        target, libvirt.VIR_DOMAIN_BLOCK_JOB_INFO_BANDWIDTH_BYTES)
    return info, (info or {}).get('bandwidth', 0)


def _set_speed(dom, target, bandwidth):
    dom.blockJobSetSpeed(target, bandwidth,
                         libvirt.VIR_DOMAIN_BLOCK_JOB_SPEED_BANDWIDTH_BYTES)


class JobHoldError(Exception):
    """A block job could not be held still."""


@contextlib.contextmanager
def jobs_held_still(dom, targets, clock=time.monotonic, sleep=time.sleep,
                    lookup=None):
    """Hold the block jobs on ``targets`` still for the ``with`` block.

    Each running job is set to :data:`HOLD_BANDWIDTH`; then, once the copy
    it had in flight is done (its progress stops), the block runs. A job
    that was ending (all copied) is waited for instead: its end changes the
    graph too. Afterwards each job gets its speed back.

    :param lookup: called without arguments for a fresh handle of the
        guest when ``dom`` lost its connection meanwhile (libvirtd
        restarted during the block): QEMU keeps a held job held across a
        restart of libvirtd, so its speed is given back on the new one.
    :raises: JobHoldError when a job neither settles nor ends within
        :data:`HOLD_TIMEOUT` seconds (its speed is given back first).
    """
    held = {}
    try:
        for target in targets:
            try:
                info, bandwidth = _bandwidth_bytes(dom, target)
                if info:
                    _set_speed(dom, target, HOLD_BANDWIDTH)
                    held[target] = bandwidth
            except libvirt.libvirtError as error:
                # No job (any more), or a drive without a medium.
                LOG.debug("Not holding disk %s: %s", target, error)
        if held:
            _settle(dom, held, clock, sleep)
        yield sorted(held)
    finally:
        for target, bandwidth in held.items():
            try:
                _set_speed(dom, target, bandwidth)
            except libvirt.libvirtError as error:
                if lookup is not None and host.is_connection_error(error):
                    dom = _give_back_anew(dom, lookup, target, bandwidth,
                                          error)
                    continue
                LOG.debug("Speed of the job on disk %s not given back (it "
                          "ended?): %s", target, error)


def _give_back_anew(dom, lookup, target, bandwidth, error):
    """Give a held job its speed back through a fresh handle of its guest.

    :returns: the handle to go on with: the fresh one, or ``dom`` when
        none was had.
    """
    try:
        fresh = lookup()
        _set_speed(fresh, target, bandwidth)
        return fresh
    except Exception as again:
        # At worst the job stays held until snapdriver starts again
        # (release_held).
        LOG.warning("The block job on disk %s could not be given its speed "
                    "back after the connection to libvirtd dropped (%s; "
                    "then %s); it runs at %d bytes a second until it is "
                    "set with 'virsh blockjob' or snapdriver restarts",
                    target, error.get_error_message() or error, again,
                    HOLD_BANDWIDTH)
        return dom


def _settle(dom, held, clock, sleep):
    deadline = clock() + HOLD_TIMEOUT
    last = {}
    while True:
        moving = []
        for target in held:
            try:
                info = dom.blockJobInfo(target, 0)
            except libvirt.libvirtError:
                info = {}
            if not info:
                continue                       # ended: nothing in flight
            progress = (info.get('cur', 0), info.get('end', 0))
            # libvirt shows a job that copied everything but has not ended
            # at end - 1: such a job is ending, and its end is waited for.
            if (progress[0] >= progress[1] - 1
                    or last.get(target) != progress):
                moving.append(target)
            last[target] = progress
        if not moving:
            return
        if clock() > deadline:
            raise JobHoldError(
                "the block job on disk %s did not hold still or end within "
                "%g seconds" % (', '.join(moving), HOLD_TIMEOUT))
        sleep(SETTLE_INTERVAL)


def release_held(dom, targets, bandwidth=0):
    """Give their speed back to jobs a dead snapdriver left held.

    :param bandwidth: the speed, in MiB/s (0: no limit).
    :returns: the targets released.
    """
    released = []
    for target in targets:
        try:
            info, current = _bandwidth_bytes(dom, target)
            if info and current == HOLD_BANDWIDTH:
                _set_speed(dom, target, bandwidth * units.Mi)
                released.append(target)
        except libvirt.libvirtError as error:
            LOG.debug("No block job on disk %s to release: %s", target, error)
    return released
