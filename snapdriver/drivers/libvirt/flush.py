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

"""Making a finished block job durable before it is reported.

When a block pull ends, QEMU 7.2 has rewritten the image's header (no
backing file any more, or the new base) but keeps the image's new cluster
mapping in its qcow2 metadata cache until the next flush. Until then the
file on the share is inconsistent: if QEMU dies (a crash, the OOM killer,
SIGKILL) the flattened image reads zeros where the data was, data that had
been safe before the pull. The guest's own flushes close that window only
if and when the guest flushes.

libvirt has no call that flushes one disk. What does flush is stopping the
guest's CPUs: QEMU drains and flushes every block device whenever the VM
stops (``vm_stop``), and also when it is asked to stop while it is already
stopped. So:

* a running guest is paused and resumed at once (``virDomainSuspend`` and
  ``virDomainResume``); to keep the pause short, the image files are first
  synced from outside (``fsync``), so that QEMU's own flush during the
  pause finds little left to write: measured here, a 128 MiB pull paused
  the guest about 250 ms without that and 10-15 ms with it. While it is
  paused the guest carries a mark in its live metadata, so that a
  snapdriver killed between the pause and the resume resumes it when it
  starts again (:func:`resume_left_paused`), and never a guest that
  somebody else paused;
* a paused (or PM-suspended) guest must not run, and libvirt's suspend does
  nothing to a paused domain, so QEMU is sent its ``stop`` command through
  libvirt's monitor pass-through: it flushes without running the guest
  (libvirt then marks the domain as "tainted: custom-monitor", a note in
  its log, nothing more);
* a guest that is no longer running has no QEMU left to flush: it flushed
  when it shut down, or died, and the chain check that follows tells.

Block commits did not lose data in the same test (libvirt reopens the base
read-only when a commit ends, which flushes it), but they are flushed the
same way: the cost is the same few milliseconds, and no merge is reported
before its result is on disk.
"""

import os
import time

from oslo_log import log

from snapdriver import exception

try:
    import libvirt
    import libvirt_qemu
except ImportError:  # the driver reports it when it loads
    libvirt = libvirt_qemu = None

LOG = log.getLogger(__name__)

#: The mark of a guest that snapdriver paused to flush it, in the live
#: domain's ``<metadata>`` (a namespace of its own: setting it must not
#: touch the operator's settings in snapdriver's domain namespace).
MARK_NS = 'https://snapdriver.invalid/xmlns/flush/1.0'
MARK_KEY = 'snapdriver-flush'

#: Tries of virDomainResume before a guest is declared stuck in pause.
RESUME_TRIES = 5
RESUME_RETRY_DELAY = 0.2


def _message(error):
    return error.get_error_message() or str(error)


def sync_files(paths):
    """``fsync`` each file (from outside QEMU): whatever QEMU wrote to
    them is then on disk, and its flush has less to do while the guest is
    paused. Files that cannot be opened are skipped (the flush covers them
    all the same).

    :returns: seconds spent.
    """
    started = time.monotonic()
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError as error:
            LOG.debug("Not syncing %s: %s", path, error)
            continue
        try:
            os.fsync(fd)
        except OSError as error:
            LOG.debug("fsync of %s failed: %s", path, error)
        finally:
            os.close(fd)
    return time.monotonic() - started


def flush_guest(dom, guest, what):
    """Have QEMU write out everything it caches for the guest's disks.

    :param dom: the libvirt domain.
    :param guest: its name, for messages.
    :param what: what just ended, for messages ("the block pull on vdb").
    :returns: seconds the guest was paused (0.0 when it was not running).
    :raises: OperationFailed when QEMU could not be made to flush, or the
        guest could not be resumed.
    """
    try:
        state = dom.state()[0]
    except libvirt.libvirtError as error:
        raise _failed(guest, what, "cannot tell whether it still runs: %s"
                      % _message(error))
    if state == libvirt.VIR_DOMAIN_RUNNING:
        return _pause_and_resume(dom, guest, what)
    if state in (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PMSUSPENDED):
        _stop_again(dom, guest, what)
        return 0.0
    LOG.info("Guest %s is not running after %s (state %d): its QEMU flushed "
             "when it ended, or died; the chain check tells", guest, what,
             state)
    return 0.0


def _failed(guest, what, reason):
    return exception.OperationFailed(
        reason="%s of guest %s finished, but its result could not be made "
        "durable before reporting: %s" % (what.capitalize(), guest, reason))


def _mark(dom, guest, what):
    """Say in the live domain that snapdriver is about to pause it."""
    try:
        dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT,
                        '<paused-to-flush pid="%d"/>' % os.getpid(),
                        MARK_KEY, MARK_NS, libvirt.VIR_DOMAIN_AFFECT_LIVE)
    except libvirt.libvirtError as error:
        raise _failed(guest, what, "marking the guest before pausing it "
                      "failed: %s" % _message(error))


def _unmark(dom, guest):
    try:
        dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, None, None,
                        MARK_NS, libvirt.VIR_DOMAIN_AFFECT_LIVE)
    except libvirt.libvirtError as error:
        # Harmless: a running guest with the mark is left alone.
        LOG.warning("Could not remove the pause mark of guest %s: %s",
                    guest, _message(error))


def _marked(dom):
    try:
        dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, MARK_NS,
                     libvirt.VIR_DOMAIN_AFFECT_LIVE)
    except libvirt.libvirtError as error:
        if error.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN_METADATA:
            return False
        raise
    return True


def resume_left_paused(domains):
    """Resume the guests that an earlier snapdriver process paused to
    flush them and did not live to resume.

    :param domains: the running domains of the host.
    :returns: the names of the guests resumed.
    """
    resumed = []
    for dom in domains:
        try:
            if not _marked(dom):
                continue
            name = dom.name()
            if dom.state()[0] == libvirt.VIR_DOMAIN_PAUSED:
                LOG.warning("Guest %s was paused by an earlier snapdriver "
                            "process to flush its disks and left paused; "
                            "resuming it", name)
                _resume(dom, name)
                resumed.append(name)
            _unmark(dom, name)
        except (libvirt.libvirtError, exception.OperationFailed) as error:
            LOG.error("Could not check or resume a guest that snapdriver "
                      "may have left paused: %s", error)
    return resumed


def _pause_and_resume(dom, guest, what):
    _mark(dom, guest, what)
    started = time.monotonic()
    try:
        dom.suspend()
    except libvirt.libvirtError as error:
        if not _active(dom):
            LOG.info("Guest %s stopped after %s: its QEMU flushed when it "
                     "ended, or died; the chain check tells", guest, what)
            return 0.0
        _unmark(dom, guest)
        raise _failed(guest, what, "pausing the guest (so that QEMU flushes "
                      "its disks) failed: %s" % _message(error))
    _resume(dom, guest)
    paused = time.monotonic() - started
    _unmark(dom, guest)
    LOG.info("%s of guest %s is durable: the guest was paused %.1f ms for "
             "QEMU to flush its disks", what.capitalize(), guest,
             paused * 1000)
    return paused


def _active(dom):
    """Whether the guest runs (or is paused); True when libvirt cannot
    say, so that the caller does not take a failure for a shutdown."""
    try:
        return bool(dom.isActive())
    except libvirt.libvirtError:
        return True


def _running(dom):
    try:
        return dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    except libvirt.libvirtError:
        return False


def _resume(dom, guest):
    for attempt in range(1, RESUME_TRIES + 1):
        try:
            dom.resume()
            return
        except libvirt.libvirtError as error:
            if _running(dom):
                # Resumed meanwhile (by somebody else): what was wanted.
                return
            last = error
            LOG.warning("Resuming guest %s after the flush failed (attempt "
                        "%d of %d): %s", guest, attempt, RESUME_TRIES,
                        _message(error))
        time.sleep(RESUME_RETRY_DELAY)
    raise exception.OperationFailed(
        reason="guest %s was paused so that QEMU would flush its disks, and "
        "could not be resumed: %s; resume it with 'virsh resume %s'"
        % (guest, _message(last), guest))


def _stop_again(dom, guest, what):
    started = time.monotonic()
    try:
        libvirt_qemu.qemuMonitorCommand(dom, '{"execute": "stop"}', 0)
    except libvirt.libvirtError as error:
        raise _failed(guest, what, "the guest is paused, and QEMU refused "
                      "the stop command that flushes its disks: %s"
                      % _message(error))
    LOG.info("%s of guest %s is durable: the guest is paused, QEMU flushed "
             "its disks on a stop command (%.1f ms)", what.capitalize(),
             guest, (time.monotonic() - started) * 1000)
