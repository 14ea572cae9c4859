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

"""One disk of one running guest, and its block jobs.

:class:`BlockDevice` starts a block pull or a block commit on the disk,
looks at its job, aborts it, and waits for its end. The driver says what
to merge; the device knows how libvirt names the images, which flags keep
backing names relative, and how to follow a job.

Waiting: libvirt sends a BLOCK_JOB_2 event when a job ends, usually long
before a poll would notice, but an event can be lost (libvirtd restarted,
the event loop was late). So events only wake the waiter up early; the end
of a job is always confirmed by ``blockJobInfo`` showing no job on the
disk, and whether the job did what was asked is decided afterwards from
the chain (a job that vanished may also have been cancelled or have
failed).
"""

import contextlib
import os
import time

from oslo_log import log

from snapdriver.conf import CONF
from snapdriver import exception

try:
    import libvirt
except ImportError:  # the driver reports it when it loads
    libvirt = None

LOG = log.getLogger(__name__)

#: What a look at a block job gives when libvirt cannot say: not knowing is
#: not "no job", so the wait goes on.
JOB_UNKNOWN = {'unknown': True}
#: Seconds between two warnings that a block job cannot be looked at.
WARN_EVERY = 60


def _message(error):
    return error.get_error_message() or str(error)


def _failed(reason, *args):
    return exception.OperationFailed(reason=reason % args)


class BlockDevice:
    """A disk of a running guest, as block jobs see it.

    :param host: the :class:`snapdriver.drivers.libvirt.host.Host`.
    :param tracker: the :class:`blockjob.BlockJobTracker` that the host's
        block job events reach.
    :param location: the located disk, a
        :class:`snapdriver.chain.DiskLocation`: its guest (by UUID), its
        target dev, and the chain whose names :meth:`pull` and
        :meth:`commit` take.
    :param dom: the guest's libvirt domain, on which :meth:`pull` and
        :meth:`commit` start a job (the one the chain was just read from).
        Everything else looks the guest up afresh, so that a job that
        outlives a connection to libvirtd (libvirtd restarted) is still
        followed and aborted.
    :param clock: seconds, for the timeout of :meth:`wait`.
    :param bandwidth: MiB/s a job started here may copy, 0 for no limit
        (``[libvirt] merge_bandwidth``).
    """

    def __init__(self, host, tracker, location, dom=None,
                 clock=time.monotonic, bandwidth=0):
        self._host = host
        self._tracker = tracker
        self.location = location
        self._dom = dom
        self._clock = clock
        self._bandwidth = bandwidth
        self._watch = None
        #: What runs on the disk, in messages.
        self._job = 'block job'
        #: libvirt's message when the connection dropped while the job was
        #: being started (it may have started or not).
        self._lost_start = None
        self._quiet_until = 0.0

    @property
    def uuid(self):
        return self.location.details['domain_uuid']

    @property
    def target(self):
        return self.location.target

    @property
    def guest(self):
        return self.location.guest

    # Starting a job

    @contextlib.contextmanager
    def watching(self):
        """Collect the disk's block job events for the ``with`` block.

        Start a job and wait for it inside: an event sent as soon as the
        job starts is not missed.
        """
        with self._tracker.watch(self.uuid, self.target) as watch:
            self._watch = watch
            try:
                yield self
            finally:
                self._watch = None

    def pull(self, base):
        """Start a block pull (``blockRebase``) into the active image.

        :param base: the chain name of the image that stays as the active
            image's backing file (written relatively), or None to pull the
            whole chain in.
        :raises: OperationFailed when libvirt refuses.
        """
        name = self._libvirt_name(base)
        flags = libvirt.VIR_DOMAIN_BLOCK_REBASE_RELATIVE if name else 0
        self._start('block pull', lambda: self._dom.blockRebase(
            self.target, name, self._bandwidth, flags))

    def commit(self, base, top):
        """Start a block commit (``blockCommit``) of ``top`` into ``base``,
        the image right below it; the image above ``top`` is relinked onto
        ``base`` by a relative name.

        :param base: the chain name of the image written into.
        :param top: the chain name of the image merged (never the active
            image).
        :raises: OperationFailed when libvirt refuses.
        """
        base_name = self._libvirt_name(base)
        top_name = self._libvirt_name(top)
        self._start('block commit', lambda: self._dom.blockCommit(
            self.target, base_name, top_name, self._bandwidth,
            libvirt.VIR_DOMAIN_BLOCK_COMMIT_RELATIVE))

    def _libvirt_name(self, name):
        """How to name a chain member in blockRebase/blockCommit.

        File disks: the name Cinder used, which libvirt matches against the
        backing names recorded in the chain. Network disks: ``vdX[N]``.
        """
        if name is None or self.location.source_type == 'file':
            return name
        return '%s[%d]' % (self.target, self.location.entry(name).index)

    def _start(self, job, call):
        if self._watch is None:
            raise RuntimeError("a block job is started inside watching(), "
                               "or its end event may be missed")
        self._job = job
        try:
            call()
        except libvirt.libvirtError as error:
            if self._host.connection_lost(error):
                # libvirtd may have had QEMU start the job before the
                # connection dropped: wait() follows the disk once libvirtd
                # answers again, and the chain tells what happened.
                self._lost_start = _message(error)
                LOG.warning("The connection to libvirtd dropped while the %s "
                            "on disk %s of guest %s was being started (%s); "
                            "QEMU may have started it: following the disk",
                            job, self.target, self.guest, self._lost_start)
                return
            raise _failed("libvirt refused the %s on disk %s of guest %s: %s",
                          job, self.target, self.guest, _message(error))

    # Following a job

    def job_info(self):
        """``blockJobInfo`` of the disk, the guest looked up afresh.

        :returns: libvirt's dict (empty when there is no job; also when the
            guest stopped, which ends its job, whatever became of it: the
            chain tells), or :data:`JOB_UNKNOWN` when libvirt cannot be
            asked (warned once a minute).
        :raises: OperationFailed when the guest is gone.
        """
        try:
            dom = self._host.lookup(self.uuid)
            return dom.blockJobInfo(self.target, 0)
        except libvirt.libvirtError as error:
            code = error.get_error_code()
            if code == libvirt.VIR_ERR_NO_DOMAIN:
                raise _failed("Guest %s went away during the block job on "
                              "disk %s.", self.guest, self.target)
            if code == libvirt.VIR_ERR_OPERATION_INVALID:
                # The guest stopped: its job is over, whatever became of it
                # (the chain check that follows tells).
                LOG.warning("Guest %s stopped during the block job on disk "
                            "%s", self.guest, self.target)
                return {}
            # Polled every block_job_poll_interval while libvirtd is away:
            # say so once a minute, not twice a second.
            now = time.monotonic()
            if now >= self._quiet_until:
                self._quiet_until = now + WARN_EVERY
                LOG.warning("Cannot look at the block job on disk %s of "
                            "guest %s (%s); still waiting", self.target,
                            self.guest, _message(error))
            return JOB_UNKNOWN

    def abort(self):
        """Cancel the disk's job; a failure is logged, not raised.

        :returns: None once aborted, else libvirt's message.
        """
        try:
            dom = self._host.lookup(self.uuid)
            dom.blockJobAbort(self.target, 0)
        except libvirt.libvirtError as error:
            LOG.error("Aborting the block job on disk %s of guest %s failed:"
                      " %s", self.target, self.guest, _message(error))
            return _message(error)
        return None

    def wait(self):
        """Wait, inside :meth:`watching`, until the disk has no block job.

        Wakes up on each event, and looks every ``[libvirt]
        block_job_poll_interval`` seconds when none comes.

        :returns: a :class:`JobEnd`.
        :raises: OperationFailed when the job is still running after
            ``[libvirt] block_job_timeout`` seconds (it is aborted first),
            or the guest went away.
        """
        if self._watch is None:
            raise RuntimeError("wait() runs inside watching()")
        timeout = CONF.libvirt.block_job_timeout
        poll_interval = CONF.libvirt.block_job_poll_interval
        deadline = self._clock() + timeout
        status = None
        while True:
            info = self.job_info()
            events = self._watch.take()
            if events:
                status = events[-1][1]
            if not info:
                return JobEnd(status, self.location.directory,
                              lost_start=self._lost_start)
            remaining = deadline - self._clock()
            if remaining <= 0:
                self._timed_out(info, timeout)
            # Events that came in since job_info() ran may mean the job is
            # gone already: look again at once. Otherwise sleep until an
            # event or the next poll. (A job at cur == end is not finished:
            # libvirt has yet to switch the chain.)
            if not events:
                self._watch.sleep(min(poll_interval, remaining))

    def _timed_out(self, info, timeout):
        refusal = self.abort()
        progress = ('%s of %s bytes done' % (info['cur'], info['end'])
                    if 'end' in info else 'progress unknown')
        if refusal is None:
            outcome = 'was aborted'
        else:
            outcome = ("could not be aborted (%s): it may still be running; "
                       "see 'virsh blockjob %s %s --info'"
                       % (refusal, self.guest, self.target))
        raise _failed("The %s on disk %s of guest %s did not finish within "
                      "%d seconds ([libvirt] block_job_timeout; %s) and %s.",
                      self._job, self.target, self.guest, timeout, progress,
                      outcome)


class JobEnd:
    """How a block job ended, as far as libvirt's events said.

    :param status: the status of the last event (one of libvirt's
        ``VIR_DOMAIN_BLOCK_JOB_*``), or None when the job ended without
        one: only the chain can tell then.
    :param directory: where the disk's images are (for the free space a
        failure may be due to), or None.
    :param lost_start: libvirt's message when the connection dropped while
        the job was being started, else None.
    """

    def __init__(self, status, directory=None, lost_start=None):
        self.status = status
        self._directory = directory
        self._lost_start = lost_start

    @property
    def failed(self):
        return self.status == libvirt.VIR_DOMAIN_BLOCK_JOB_FAILED

    @property
    def cancelled(self):
        return self.status == libvirt.VIR_DOMAIN_BLOCK_JOB_CANCELED

    def hint(self):
        """What libvirt said, for the message of a chain that is not the
        expected one; '' when it said nothing to the contrary."""
        if self.failed:
            # QEMU does not say why; a full share is the usual reason.
            return (" libvirt reported that the job failed%s."
                    % _free_space(self._directory))
        if self.cancelled:
            return " libvirt reported that the job was cancelled."
        if self._lost_start:
            return (" The connection to libvirtd dropped while the job was "
                    "being started (%s), and no job was found on the disk "
                    "once libvirtd answered again: QEMU did not start it, "
                    "or it ended without merging." % self._lost_start)
        return ''


def _free_space(directory):
    """`` (N MiB free in DIR)``, or nothing when it cannot be told."""
    if not directory:
        return ''
    try:
        stat = os.statvfs(directory)
    except OSError:
        return ''
    return " (%d MiB free in %s)" % (stat.f_bavail * stat.f_frsize // 2**20,
                                     directory)
