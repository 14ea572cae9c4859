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

"""The exceptions of snapdriver.

Every exception that may reach a caller derives from
:class:`SnapdriverException` and carries the HTTP status the API answers
with. The message is written for a Cinder operator: it names the field, the
value, the disk or the file that is wrong. The API turns these into the
compute API's fault body in one place (``snapdriver.api.faults``).
"""


class SnapdriverException(Exception):
    """Base class; ``msg_fmt`` is formatted with the keyword arguments."""

    msg_fmt = "An unknown error occurred."
    code = 500

    def __init__(self, message=None, **kwargs):
        self.kwargs = kwargs
        if message is None:
            message = self.msg_fmt % kwargs
        self.message = message
        super().__init__(message)

    def __str__(self):
        return self.message


class Invalid(SnapdriverException):
    msg_fmt = "The request is invalid."
    code = 400


class InvalidInput(Invalid):
    msg_fmt = "Invalid input for field %(field)s: %(reason)s"


class InvalidFileName(Invalid):
    msg_fmt = ("Invalid %(field)s %(value)r: it must be the plain name of a "
               "file beside the volume's active image (no '/', not '.' or "
               "'..', no NUL).")


class VolumeNotAttached(Invalid):
    msg_fmt = ("Volume %(volume_id)s is not attached to any guest on this "
               "host: no disk has <serial>%(volume_id)s</serial>.")


class VolumeMultiAttached(Invalid):
    msg_fmt = ("Volume %(volume_id)s is attached to several guests "
               "(%(guests)s); assisted snapshots of a multi-attached volume "
               "are refused.")


class NoSnapshotableDisk(Invalid):
    msg_fmt = ("Found no disk to snapshot: volume %(volume_id)s is disk "
               "%(target)s of guest %(guest)s, whose source is neither a file "
               "nor a netfs network source.")


class InvalidOverlay(Invalid):
    """``new_file`` is missing, not qcow2, or does not back onto the
    active image."""
    msg_fmt = "%(reason)s"


class UnsafeChain(Invalid):
    """A stopped guest's chain, as its headers record it, leaves the
    volume's directory or leaves a format to be guessed: qemu-img would
    read (and a merge write) files Cinder does not manage."""
    msg_fmt = "%(reason)s"


class InvalidChainReference(Invalid):
    """delete_info names files that are not where the chain rules need
    them to be."""
    msg_fmt = "%(reason)s"


class UnsupportedOperation(Invalid):
    """The loaded driver cannot do this operation at all."""
    msg_fmt = ("The %(driver)s driver does not support %(operation)s: "
               "assisted volume snapshots are only implemented by the "
               "libvirt driver.")


class InvalidProjectId(Invalid):
    msg_fmt = ("Malformed request URL: the URL's project_id '%(url)s' does "
               "not match the project of the token ('%(token)s').")


class PolicyNotAuthorized(SnapdriverException):
    msg_fmt = "Policy doesn't allow %(action)s to be performed."
    code = 403


class NotFound(SnapdriverException):
    msg_fmt = "Resource could not be found."
    code = 404


class OperationNotFound(NotFound):
    msg_fmt = ("No assisted snapshot operation is known for snapshot "
               "%(snapshot_id)s.")


class Conflict(SnapdriverException):
    msg_fmt = "The request conflicts with the current state."
    code = 409


class DuplicateRequest(Conflict):
    """A snapshot id already has an operation of the same action with
    other parameters (a repeated request must equal the first)."""
    msg_fmt = ("Snapshot %(snapshot_id)s already has a %(action)s operation "
               "(%(operation)s, %(state)s) with different parameters: "
               "%(existing)s.")


class ConfigurationError(SnapdriverException):
    """Start-up failure: the configuration cannot work."""
    msg_fmt = "%(reason)s"


class JournalInUse(ConfigurationError):
    """Another process holds the journal's lock."""
    msg_fmt = ("the operation journal %(journal)s is in use by another "
               "process: %(holder)s. One snapdriver-api (without [api] "
               "dispatch = agents) or snapdriver-agent per journal: two "
               "would both take up and run the same operations. Stop that "
               "one first, or give this one another [database] connection. "
               "(lock file %(lock)s)")


class JournalSchemaError(ConfigurationError):
    """The journal's schema is not the one this snapdriver writes."""
    msg_fmt = ("the operation journal %(journal)s %(problem)s: %(action)s.")


class DriverLoadError(SnapdriverException):
    """Start-up failure: the configured driver cannot be used."""
    msg_fmt = "Driver %(driver)s could not be loaded: %(reason)s"


class DriverNotFound(DriverLoadError):
    """No plugin of that name (a driver, or a status reporter)."""
    msg_fmt = ("No %(what)s named %(name)r is installed (entry point "
               "namespace %(namespace)s); installed: %(installed)s.")


class OperationFailed(SnapdriverException):
    """The hypervisor could not do (or be asked about) something.

    In the background this fails the operation; raised while a request is
    being validated (libvirtd unreachable, an image unreadable) it is a 503
    that says why.
    """
    msg_fmt = "%(reason)s"
    code = 503


class ImageUnreadable(OperationFailed):
    """qemu-img could not read an image's header (it exited with an
    error). Whose fault that is depends on whose file it is: the driver
    makes it a 400 for Cinder's overlay."""


class CreateExpired(OperationFailed):
    """A create did not start within ``[DEFAULT] create_timeout`` of being
    accepted: Cinder has stopped waiting, so it must not run."""
    msg_fmt = ("The create of snapshot %(snapshot_id)s was accepted at "
               "%(accepted)s UTC and had not started %(waited)d seconds "
               "later ([DEFAULT] create_timeout = %(timeout)d): Cinder has "
               "stopped waiting for it and keeps the old active image in "
               "its records, so the guest was not switched onto "
               "%(new_file)s.")


class OperationNotSupported(Invalid):
    """The driver cannot carry out this kind of operation on this disk."""
    msg_fmt = "The %(driver)s driver cannot %(operation)s."


class ComputeManagedGuest(Invalid):
    """The volume's guest is managed by nova-compute, which would undo a
    change to its disk chain that it did not make itself."""
    msg_fmt = ("Snapshot %(action)s refused: volume %(volume_id)s is disk "
               "%(target)s of guest %(guest)s, which nova-compute manages "
               "(its domain XML has metadata in %(namespace)s). nova-compute "
               "rebuilds the guest's disks from its own record of the "
               "volume's connection info, which only its own assisted "
               "snapshots update: a chain changed by snapdriver is not in "
               "that record, the guest's next hard reboot or migration by "
               "the compute service reopens the image the record names, and "
               "the writes made since are lost. Have the compute service of "
               "that guest's cloud do this snapshot work, or set [libvirt] "
               "allow_compute_managed_guests = true to accept that risk.")


class AgentUnavailable(SnapdriverException):
    """The API tier could not have the request carried out by the agent of
    the volume's host (``dispatch = agents``)."""
    msg_fmt = "%(reason)s"
    code = 503


class RequestExpired(SnapdriverException):
    """An agent got a request after the API tier had stopped waiting for
    it: it is not carried out (the caller got a 503 already)."""
    msg_fmt = ("The request reached the agent of host %(host)s %(late).1f s "
               "after its deadline; it was not carried out.")
    code = 503


class VolumeOnSeveralHosts(Conflict):
    """Cinder lists the volume as attached on more than one host."""
    msg_fmt = ("Volume %(volume_id)s is attached on several hosts "
               "(%(hosts)s): a live migration, or a multi-attached volume; "
               "assisted snapshots need the one host that runs its guest. "
               "Try again once the volume is attached on one host only.")


class VolumeNotInRegion(Invalid):
    """The ``agents`` locator: no agent up reports the volume."""
    msg_fmt = ("Volume %(volume_id)s is not attached to any guest on the "
               "hosts whose agents report to this API tier (%(agents)d up): "
               "no disk has <serial>%(volume_id)s</serial>.")


class AttachmentWithoutHost(Invalid):
    """The ``cinder`` locator: an attachment that names no host."""
    msg_fmt = ("Cinder records no host for an attachment of volume "
               "%(volume_id)s (host_name is empty: an attachment made "
               "without a connector host, or snapdriver's [cinder] user "
               "lacks the admin or service role that shows it), so its host "
               "cannot be found.")
