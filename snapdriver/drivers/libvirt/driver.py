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

"""The libvirt driver: assisted snapshots of QEMU guests' qcow2 chains.

It reads as the driver contract does: locate the disk, inspect the
overlay, create (switch the disk onto the overlay), delete (merge).

A running guest is changed through libvirt: an external disk-only snapshot
onto the overlay Cinder created (here), and block pull / block commit jobs
on one disk (:mod:`blockdev`), under the rules for block work on one guest
(:mod:`blockjob`), made durable before they count (:mod:`flush`). The
chain of a stopped guest is read and merged with qemu-img (:mod:`offline`)
and switched through the domain's persistent definition (create). Before
acting, the driver reads the disk again and refuses to go on if the chain
is no longer the one the request was validated against; after acting, it
reads the chain once more and reports failure unless it is exactly the
expected one.
"""

import contextlib
import errno
import os
import posixpath
import time
import typing

from oslo_log import log

from snapdriver import chain
from snapdriver.conf import CONF
from snapdriver.drivers import base
from snapdriver.drivers import kit
from snapdriver.drivers.libvirt import blockdev
from snapdriver.drivers.libvirt import blockjob
from snapdriver.drivers.libvirt import diskindex
from snapdriver.drivers.libvirt import domxml
from snapdriver.drivers.libvirt import flush
from snapdriver.drivers.libvirt import host
from snapdriver.drivers.libvirt import offline
from snapdriver.drivers.libvirt import progress
from snapdriver.drivers.libvirt import qcow2
from snapdriver.drivers.libvirt import qemuimg
from snapdriver import exception
from snapdriver import objects

try:
    import libvirt
except ImportError:  # reported by LibvirtDriver() with what to install
    libvirt = None

LOG = log.getLogger(__name__)

DRIVER = 'libvirt'
QUIESCE_POLICIES = ('never', 'try', 'require')
#: A disk without ``<driver type>`` is raw to libvirt.
DEFAULT_FORMAT = 'raw'
#: Seconds to wait for libvirtd to answer again after the connection
#: dropped under a call that changes a disk: only the chain can tell then
#: whether QEMU did it.
RECONNECT_TIMEOUT = 120


def _serials(domain):
    return [disk.serial for disk in domain.disks if disk.serial]


def _libvirt_message(error):
    return error.get_error_message() or str(error)


def _failed(reason, *args):
    return exception.OperationFailed(reason=reason % args)


class _Attached(typing.NamedTuple):
    """A located disk as it is now, with what acting on it needs: the
    guest's libvirt domain, its parsed XML, the disk's XML, and the located
    disk."""
    dom: typing.Any
    domain: domxml.Domain
    disk: domxml.Disk
    location: chain.DiskLocation


class LibvirtDriver(base.BaseDriver):
    """Assisted volume snapshots on a QEMU host managed by libvirt."""

    def __init__(self):
        _check_binding()
        _check_qemu_img()
        self._jobs = blockjob.BlockJobTracker()
        self._slots = blockjob.GuestJobSlots()
        self._merges = progress.MergeJobs()
        self._index = diskindex.DiskIndex(CONF.libvirt.disk_index_refresh)
        host.start_event_loop()
        self._host = host.Host(CONF.libvirt.connection_uri,
                               self._jobs.handle_event,
                               on_domain_change=self._index.changed,
                               on_connect=self._index.forget_all)
        self._check_connection()
        self._undo_left_over()

    def _undo_left_over(self):
        """A snapdriver killed while it had a guest paused to flush it
        leaves the guest paused, one killed during a snapshot switch beside
        a block job leaves that job crawling: undo both (see :mod:`flush`
        and :func:`blockjob.jobs_held_still`)."""
        try:
            domains = [dom for dom in self._host.list_domains()
                       if dom.isActive()]
        except libvirt.libvirtError as error:
            LOG.error("Cannot list the guests to resume any that an earlier "
                      "snapdriver left paused: %s", _libvirt_message(error))
            return
        flush.resume_left_paused(domains)
        for dom in domains:
            try:
                domain = self._parse(dom)
            except exception.OperationFailed:
                continue
            if domain is None:
                continue
            released = blockjob.release_held(
                dom, [disk.target for disk in domain.disks if disk.chain],
                CONF.libvirt.merge_bandwidth)
            if released:
                LOG.warning("The block job on disk %s of guest %s was left "
                            "held still by an earlier snapdriver process; "
                            "its speed is given back",
                            ', '.join(released), domain.name)

    @classmethod
    def check_reachable(cls):
        """libvirtd answers on ``[libvirt] connection_uri`` (a read-only
        connection, opened and closed)."""
        uri = CONF.libvirt.connection_uri
        conn = libvirt.openReadOnly(uri)
        try:
            return "libvirtd %s answers at %s (%s)" % (
                _version(conn.getLibVersion()), uri, conn.getType())
        finally:
            conn.close()

    def check_health(self):
        """libvirtd answers on ``[libvirt] connection_uri``."""
        try:
            self._host.get_connection().getLibVersion()
        except libvirt.libvirtError as error:
            raise exception.OperationFailed(
                reason="libvirtd does not answer at %s: %s"
                % (CONF.libvirt.connection_uri, _libvirt_message(error)))

    def _check_connection(self):
        uri = CONF.libvirt.connection_uri
        try:
            hypervisor = self._host.get_connection().getType()
        except libvirt.libvirtError as error:
            raise exception.DriverLoadError(
                driver=DRIVER,
                reason="cannot connect to libvirt at %s ([libvirt] "
                "connection_uri): %s" % (uri, _libvirt_message(error)))
        if hypervisor != 'QEMU':
            raise exception.DriverLoadError(
                driver=DRIVER,
                reason="[libvirt] connection_uri %s leads to a %s hypervisor;"
                " the libvirt driver works with QEMU guests only"
                % (uri, hypervisor))

    def capabilities(self):
        """:returns: a :class:`Capabilities` with every operation."""
        return base.Capabilities(create=True, pull=True, commit=True,
                                 offline_pull=True, offline_commit=True,
                                 network_disks=True, quiesce=True)

    # Locate

    def locate_disk(self, volume_id):
        """Find the disk whose ``<serial>`` is ``volume_id`` on this host.

        Every domain is searched, running or only defined. The chain of a
        running guest is the one libvirt shows; a stopped guest's XML does
        not show its whole chain, so the image headers are read instead.

        :returns: a :class:`snapdriver.chain.DiskLocation`.
        :raises: VolumeNotAttached, VolumeMultiAttached, NoSnapshotableDisk,
            OperationFailed (libvirtd or an image cannot be read)
        """
        dom, domain, disk = kit.the_one_disk(volume_id, (
            (disk.serial, '%s (disk %s)' % (domain.name, disk.target),
             (dom, domain, disk))
            for dom, domain, disk in self._find_disks(volume_id)))
        return self._location(dom, domain, disk, volume_id)

    def attached_volumes(self):
        """The serials of every disk of every guest, running or defined.

        :raises: OperationFailed when libvirtd cannot be reached.
        """
        if self._index_usable():
            self._read_changed_guests()
        else:
            self._read_all_guests()
        return sorted(self._index.serials())

    def _domains(self):
        try:
            return self._host.list_domains()
        except libvirt.libvirtError as error:
            raise _failed("Cannot list the guests of %s: %s",
                          CONF.libvirt.connection_uri,
                          _libvirt_message(error))

    def _find_disks(self, volume_id):
        """Every disk whose serial is ``volume_id``, as ``(dom, domain,
        disk)``: from the guests the disk index names, checked; from every
        guest when the index is stale, names none, or named a guest that no
        longer holds the disk (see :mod:`diskindex`)."""
        if self._index_usable():
            self._read_changed_guests()
            found = self._read_indexed(volume_id)
            if found:
                return found
        return [(dom, domain, disk)
                for dom, domain in self._read_all_guests()
                for disk in domain.disks if disk.serial == volume_id]

    def _index_usable(self):
        # The connection first: a new one voids the index (events sent
        # while there was none are lost).
        try:
            self._host.get_connection()
        except libvirt.libvirtError as error:
            raise _failed("Cannot reach libvirtd at %s: %s",
                          CONF.libvirt.connection_uri,
                          _libvirt_message(error))
        return not self._index.needs_rebuild()

    def _read_all_guests(self):
        """Every guest's parsed XML, as ``(dom, domain)``; the disk index
        is rebuilt from them."""
        token = self._index.begin_rebuild()
        guests = []
        for dom in self._domains():
            domain = self._parse(dom)
            if domain is not None:
                guests.append((dom, domain))
        self._index.rebuild(token, {domain.uuid: _serials(domain)
                                    for dom, domain in guests})
        return guests

    def _read_changed_guests(self):
        for uuid in self._index.take_changed():
            self._reindex_guest(uuid)

    def _read_indexed(self, volume_id):
        found = []
        for uuid in self._index.guests(volume_id):
            dom, domain = self._reindex_guest(uuid)
            disks = [disk for disk in domain.disks
                     if disk.serial == volume_id] if domain else []
            if not disks:
                # A stale entry: an event was missed; trust no entry.
                return None
            found.extend((dom, domain, disk) for disk in disks)
        return found

    def _reindex_guest(self, uuid):
        """Read one guest and give the disk index what it holds now.

        :returns: ``(dom, domain)``; ``(None, None)`` if it is gone.
        """
        dom, domain = self._read_guest(uuid)
        self._index.update(uuid, _serials(domain) if domain else None)
        return dom, domain

    def _read_guest(self, uuid):
        """``(dom, domain)`` of one guest; ``(None, None)`` if it is gone."""
        try:
            dom = self._host.lookup(uuid)
        except libvirt.libvirtError as error:
            if error.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None, None
            raise _failed("Cannot look up guest %s at %s: %s", uuid,
                          CONF.libvirt.connection_uri,
                          _libvirt_message(error))
        domain = self._parse(dom)
        return (dom, domain) if domain is not None else (None, None)

    @staticmethod
    def _parse(dom):
        """The parsed XML of ``dom``; None if it vanished meanwhile."""
        try:
            return domxml.parse_domain(dom.XMLDesc(0))
        except libvirt.libvirtError as error:
            if error.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise _failed("Cannot read the XML of a guest: %s",
                          _libvirt_message(error))

    def _location(self, dom, domain, disk, volume_id):
        running = bool(dom.isActive())
        if disk.is_local and disk.chain:
            source_type = 'file'
            directory = os.path.dirname(disk.chain[0].source)
        elif disk.is_netfs and disk.chain:
            source_type = 'network'
            directory = None
        else:
            raise exception.NoSnapshotableDisk(
                volume_id=volume_id, target=disk.target, guest=domain.name)
        return chain.DiskLocation(
            volume_id=volume_id, guest=domain.name, target=disk.target,
            running=running,
            chain=self._chain(disk, running, source_type),
            source_type=source_type, directory=directory,
            details={'domain_uuid': domain.uuid,
                     'domain_name': domain.name,
                     'disk_type': disk.disk_type,
                     'protocol': disk.protocol,
                     'hosts': disk.hosts,
                     'compute_namespace': domain.compute_namespace,
                     'other_targets': tuple(other.target
                                            for other in domain.disks
                                            if other.target != disk.target)})

    def _chain(self, disk, running, source_type):
        if running:
            images = disk.chain
        elif source_type == 'file':
            active = disk.chain[0]
            return offline.read_chain(active.source,
                                      active.fmt or DEFAULT_FORMAT)
        else:
            # Nothing can read a stopped guest's netfs images; their chain
            # is unknown beyond the active image, and nothing is done to it.
            images = disk.chain[:1]
        return tuple(chain.ChainEntry(name=posixpath.basename(image.source),
                                      path=image.source,
                                      fmt=image.fmt or DEFAULT_FORMAT,
                                      index=image.index)
                     for image in images)

    def _fresh(self, location):
        """A located disk as it is now.

        :returns: an :class:`_Attached`.
        :raises: OperationFailed when the guest or the disk is gone.
        """
        dom = self._lookup(location)
        domain = self._parse(dom)
        disk = domain.disk(location.target) if domain else None
        if disk is None or disk.serial != location.volume_id:
            raise _failed("Volume %s is no longer disk %s of guest %s.",
                          location.volume_id, location.target,
                          location.guest)
        return _Attached(dom, domain, disk,
                         self._location(dom, domain, disk,
                                        location.volume_id))

    def _lookup(self, location):
        """The domain of a located disk, by UUID (names can be reused).

        :raises: OperationFailed
        """
        uuid = location.details['domain_uuid']
        try:
            return self._host.lookup(uuid)
        except libvirt.libvirtError as error:
            if error.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                raise _failed("Guest %s (%s) cannot be found any more.",
                              location.guest, uuid)
            raise _failed("Cannot look up guest %s (%s) at %s: %s",
                          location.guest, uuid, CONF.libvirt.connection_uri,
                          _libvirt_message(error))

    def _current(self, location, action):
        """Like :meth:`_fresh`, and the chain must not have changed since
        the plan was made: the plan is only valid for that chain; nor may
        nova-compute have taken the guest over meanwhile."""
        attached = self._fresh(location)
        kit.check_unchanged(location, attached.location.names)
        _check_not_compute_managed(attached.location, action)
        return attached

    def _verify(self, plan, what, hint=''):
        """Check the chain after an operation; return its names."""
        location = self._fresh(plan.disk).location
        kit.check_result(plan, location.names, what, hint)
        LOG.info("%s done: the chain of disk %s of guest %s is %s",
                 what.capitalize(), location.target, location.guest,
                 ' -> '.join(location.names))
        return list(location.names)

    # Inspect

    def inspect_overlay(self, location, new_file):
        """Read the header of ``new_file`` beside the active image.

        The common qcow2 header is read in this process (:mod:`qcow2`),
        from the same open file as its identity; anything else is read by
        ``qemu-img info``, as is the format of a file that is not qcow2.

        :param location: the located disk.
        :returns: an :class:`snapdriver.chain.OverlayInfo`; None for a
            network disk, whose files this host cannot see.
        :raises: InvalidOverlay (a symbolic link, not a regular file,
            outside the directory, or a header qemu-img cannot read),
            OperationFailed (qemu-img did not answer in time)
        """
        if location.source_type != 'file':
            return None
        path = kit.overlay_path(location.directory, new_file)
        if path is None:
            return chain.OverlayInfo(name=new_file, exists=False)
        header = self._overlay_header(location, new_file, path)
        if header is not None:
            return chain.OverlayInfo(
                name=new_file, exists=True, fmt=header.fmt,
                backing=header.backing_file,
                backing_fmt=header.backing_format,
                data_file=header.data_file, identity=header.identity)
        identity = kit.file_identity(path)
        try:
            info = qemuimg.probe(path)
        except exception.ImageUnreadable as error:
            # Cinder's file, not the host's trouble (a corrupt or truncated
            # header): the caller's 400.
            raise exception.InvalidOverlay(
                reason="new_file %r in %s cannot be read as a disk image: %s"
                % (new_file, location.directory, error))
        return chain.OverlayInfo(
            name=new_file, exists=True, fmt=info.file_format,
            backing=info.backing_file,
            backing_fmt=info.backing_file_format,
            data_file=qemuimg.data_file(info), identity=identity)

    @staticmethod
    def _overlay_header(location, new_file, path):
        """The overlay's qcow2 header, read in this process: its identity
        is the one of the file the header was read from.

        :returns: a :class:`qcow2.Header`, or None when qemu-img is to read
            the file (not qcow2, or nothing this reader answers for).
        :raises: InvalidOverlay when the file changed since
            :func:`kit.overlay_path` checked it (now a symbolic link, gone,
            not a regular file) or cannot be opened.
        """
        directory = location.directory
        try:
            return qcow2.overlay_header(path)
        except qcow2.NotRegularFile:
            reason = ("new_file %r in %s is not a regular file."
                      % (new_file, directory))
        except OSError as error:
            if error.errno == errno.ELOOP:
                reason = ("new_file %r in %s is a symbolic link; the "
                          "overlay must be a regular file."
                          % (new_file, directory))
            elif error.errno == errno.ENOENT:
                reason = ("new_file %r in %s is gone since it was checked."
                          % (new_file, directory))
            else:
                reason = ("new_file %r in %s cannot be opened: %s."
                          % (new_file, directory, error.strerror))
        raise exception.InvalidOverlay(reason=reason)

    # Create

    def create_snapshot(self, plan):
        """Switch the disk onto ``plan.new_file``.

        A running guest gets an external disk-only snapshot that reuses
        Cinder's overlay, quiesced as the ``quiesce`` setting says. For a
        stopped guest the same call changes only the persistent definition
        (libvirt checks that the overlay exists); nothing is quiesced.

        :returns: the chain's names afterwards, active first.
        :raises: OperationFailed
        """
        dom, domain, disk, location = self._current(plan.disk, objects.CREATE)
        if location.source_type == 'network' and not location.running:
            raise _network_disk_stopped(location)
        xml = domxml.snapshot_xml(domain, disk,
                                  self._new_source(location, plan.new_file))
        LOG.info("Snapshot %s: switching disk %s of guest %s onto %s",
                 plan.snapshot_id, location.target, location.guest,
                 plan.new_file)
        if location.running:
            with self._beside_jobs(dom, domain, disk, plan):
                self._check_same_overlay(location, plan)
                self._snapshot_running(dom, domain, xml, plan)
        else:
            self._check_same_overlay(location, plan)
            self._snapshot_unquiesced(dom, domain, xml, plan)
        return self._verify(plan, 'snapshot')

    @staticmethod
    def _check_same_overlay(location, plan):
        # The file inspected at accept, not one put in its place since.
        if location.source_type == 'file':
            kit.check_same_overlay(location.directory, plan)

    @contextlib.contextmanager
    def _beside_jobs(self, dom, domain, disk, plan):
        """Make the guest's block graph safe to change for a snapshot
        switch: no job starts meanwhile (the guest's graph lock), and the
        jobs running on its other disks copy nothing and cannot end while
        the switch runs (QEMU 7.2 crashes otherwise, now and then)."""
        others = [other.target for other in domain.disks
                  if other.chain and other.target != disk.target]
        with self._slots.graph_change(domain.uuid):
            try:
                with blockjob.jobs_held_still(
                        dom, others,
                        lookup=lambda: self._lookup(plan.disk)) as held:
                    if held:
                        LOG.info("Snapshot %s: the block job on disk %s of "
                                 "guest %s is held still during the switch",
                                 plan.snapshot_id, ', '.join(held),
                                 domain.name)
                    yield
            except blockjob.JobHoldError as error:
                raise _failed("Disk %s of guest %s was not switched onto %s: "
                              "%s, and QEMU must not switch a disk while "
                              "another disk's job copies data.", disk.target,
                              domain.name, plan.new_file, error)

    @staticmethod
    def _new_source(location, new_file):
        if location.source_type == 'file':
            return os.path.join(location.directory, new_file)
        # Beside the active image, on the same netfs volume.
        return posixpath.join(posixpath.dirname(location.active.path),
                              new_file)

    @staticmethod
    def _snapshot(dom, xml, quiesce):
        flags = (libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY
                 | libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA
                 | libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_REUSE_EXT)
        if quiesce:
            flags |= libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE
        dom.snapshotCreateXML(xml, flags)

    def _snapshot_running(self, dom, domain, xml, plan):
        policy = self._quiesce_policy(domain)
        if policy != 'never':
            refused = self._try_quiesced(dom, xml, plan)
            if refused is None:
                return
            dom, refusal = refused
            if self._switched(plan):
                # libvirt took the snapshot and failed afterwards (thawing
                # the guest): the guest runs on the new chain already.
                LOG.warning("Snapshot %s of guest %s was taken, but libvirt "
                            "reported: %s", plan.snapshot_id, domain.name,
                            refusal)
                return
            if policy == 'require':
                raise _failed("Guest %s could not be quiesced, and quiescing "
                              "is required: %s", domain.name, refusal)
            LOG.warning("Guest %s could not be quiesced (%s); taking snapshot "
                        "%s without quiescing", domain.name, refusal,
                        plan.snapshot_id)
        self._snapshot_unquiesced(dom, domain, xml, plan)

    def _try_quiesced(self, dom, xml, plan):
        """A quiesced switch. A connection that drops under it is not a
        refusal: once libvirtd answers again, the chain tells whether QEMU
        switched, and if it did not, the quiesced switch is asked for once
        more, on a new handle.

        :returns: None once the disk is switched; else the domain handle to
            go on with and libvirt's refusal.
        :raises: OperationFailed when libvirtd does not answer again, or
            the connection drops under the second try too and the disk was
            not switched.
        """
        error = self._snapshot_quiesced(dom, xml)
        if error is None:
            return None
        if not self._host.connection_lost(error):
            return dom, _libvirt_message(error)
        self._reconnect(plan, _libvirt_message(error))
        if self._switched(plan):
            self._say_switched(plan)
            return None
        dom = self._lookup(plan.disk)
        error = self._snapshot_quiesced(dom, xml)
        if error is None:
            return None
        if self._host.connection_lost(error):
            self._judge_lost_switch(plan, _libvirt_message(error))
            return None
        return dom, _libvirt_message(error)

    def _snapshot_quiesced(self, dom, xml):
        """:returns: None, or the libvirtError when libvirt refused."""
        try:
            self._snapshot(dom, xml, quiesce=True)
        except libvirt.libvirtError as error:
            return error
        return None

    def _snapshot_unquiesced(self, dom, domain, xml, plan):
        try:
            self._snapshot(dom, xml, quiesce=False)
        except libvirt.libvirtError as error:
            if self._host.connection_lost(error):
                self._judge_lost_switch(plan, _libvirt_message(error))
                return
            raise _failed("libvirt could not switch disk %s of guest %s onto "
                          "%s: %s", plan.disk.target, domain.name,
                          plan.new_file, _libvirt_message(error))

    def _judge_lost_switch(self, plan, message):
        """The connection dropped under ``snapshotCreateXML``: QEMU may
        have switched the disk or not. Once libvirtd answers again, the
        chain tells, as it does after a restart of snapdriver; the check
        that follows (:meth:`_verify`) reports any other chain.

        :raises: OperationFailed when the disk was not switched, or
            libvirtd does not answer again.
        """
        self._reconnect(plan, message)
        names = tuple(self._fresh(plan.disk).location.names)
        if names == tuple(plan.expected_chain):
            self._say_switched(plan)
        elif names == tuple(plan.disk.names):
            raise _failed("The connection to libvirtd dropped during %s of "
                          "guest %s (%s), and the disk was not switched: its "
                          "chain is still %s.", _switch(plan),
                          plan.disk.guest, message, ' -> '.join(names))

    @staticmethod
    def _say_switched(plan):
        LOG.warning("Snapshot %s: QEMU had switched disk %s of guest %s onto "
                    "%s before the connection dropped: the snapshot is taken",
                    plan.snapshot_id, plan.disk.target, plan.disk.guest,
                    plan.new_file)

    def _reconnect(self, plan, message):
        """Wait for libvirtd after the connection dropped during the switch
        of ``plan``.

        :raises: OperationFailed when it does not answer within
            :data:`RECONNECT_TIMEOUT` seconds: the outcome is unknown.
        """
        location = plan.disk
        LOG.warning("Snapshot %s: the connection to libvirtd dropped during "
                    "%s of guest %s (%s); QEMU may have done it or not: the "
                    "chain tells once libvirtd answers again",
                    plan.snapshot_id, _switch(plan), location.guest, message)
        try:
            self._host.reconnect(RECONNECT_TIMEOUT,
                                 CONF.libvirt.block_job_poll_interval)
        except libvirt.libvirtError as error:
            raise _failed("The connection to libvirtd dropped during %s of "
                          "guest %s (%s), and %s could not be reached for %d "
                          "seconds afterwards (%s): whether QEMU did it is "
                          "unknown. Compare 'virsh domblklist %s' and the "
                          "images' headers with the chain expected (%s) "
                          "before anything else is done to the volume.",
                          _switch(plan), location.guest, message,
                          CONF.libvirt.connection_uri, RECONNECT_TIMEOUT,
                          _libvirt_message(error), location.guest,
                          ' -> '.join(plan.expected_chain))

    @staticmethod
    def _quiesce_policy(domain):
        policy = domain.quiesce or CONF.libvirt.quiesce
        if policy not in QUIESCE_POLICIES:
            raise _failed("Guest %s asks for quiesce %r in its metadata; the "
                          "choices are %s.", domain.name, policy,
                          ', '.join(QUIESCE_POLICIES))
        return policy

    def _switched(self, plan):
        names = self._fresh(plan.disk).location.names
        return tuple(names) == tuple(plan.expected_chain)

    # Delete

    def check_plan(self, plan):
        """Refuse before anything, rather than fail in the background, a
        guest that nova-compute manages (see
        :class:`snapdriver.exception.ComputeManagedGuest`), and a stopped
        guest's network disk, which cannot be read or changed here.

        :raises: ComputeManagedGuest, OperationNotSupported
        """
        location = plan.disk
        _check_not_compute_managed(location, objects.action_of(plan.kind))
        if location.source_type == 'network' and not location.running:
            raise exception.OperationNotSupported(
                driver=DRIVER,
                operation="change the chain of network disk %s while guest "
                          "%s is not running (start the guest, or merge "
                          "on the storage side)" % (location.target,
                                                    location.guest))

    def delete_snapshot(self, plan):
        """Merge as ``plan`` says and wait until it is done.

        A running guest gets a block pull (``blockRebase``) or a block
        commit (``blockCommit``), keeping backing names relative, and is
        then made to flush its disks before the merge counts as done; a
        stopped guest's file disk is merged with ``qemu-img``. Merges on
        one guest run one at a time (:class:`blockjob.GuestJobSlots`).

        :returns: the chain's names afterwards, active first.
        :raises: OperationFailed
        """
        location = plan.disk

        def waiting():
            LOG.info("Snapshot %s: another merge runs on guest %s; the %s "
                     "on disk %s waits for it (one block job per guest)",
                     plan.snapshot_id, location.guest, plan.kind,
                     location.target)

        with self._slots.hold(location.details['domain_uuid'], waiting):
            return self._delete(plan)

    def _delete(self, plan):
        attached = self._current(plan.disk, objects.DELETE)
        location = attached.location
        what = 'block %s' % plan.kind
        LOG.info("Snapshot %s: %s on disk %s of guest %s (base %s, top %s)",
                 plan.snapshot_id, what, location.target, location.guest,
                 plan.base, plan.top)
        if location.running:
            hint = self._merge_running(attached, plan)
        elif location.source_type == 'file':
            offline.merge(location, plan, self._offline_progress(plan))
            hint = ''
        else:
            raise _network_disk_stopped(location)
        names = self._verify(plan, what, hint)
        if location.source_type == 'file':
            offline.check_relative(location, plan)
        return names

    def _merge_running(self, attached, plan):
        """A block job on the disk, once no other disk of the guest has
        one, made durable if it may have completed.

        :returns: what libvirt said of the job's end, for the message of
            a chain that is not the expected one.
        """
        location = attached.location
        dom = self._wait_for_other_jobs(attached, plan)
        device = self._device(location, dom)
        with device.watching():
            # Not while a snapshot switch changes the guest's graph.
            with self._slots.graph_change(device.uuid):
                self._merges.live(plan, device)
                if plan.kind == chain.PULL:
                    device.pull(plan.base)
                else:
                    device.commit(plan.base, plan.top)
            try:
                end = device.wait()
            finally:
                self._merges.ended(plan)
        if not (end.failed or end.cancelled):
            # Completed, or ended without an event: the chain check that
            # follows tells which, and a success must be durable first.
            # The job may have outlived the connection the guest was
            # looked up on (libvirtd restarted): look it up again.
            self._make_durable(attached._replace(dom=self._lookup(location)),
                               'the block %s on disk %s'
                               % (plan.kind, location.target))
        return end.hint()

    def merge_progress(self, plan):
        """The block job's own count (``blockJobInfo``) of a running
        guest's merge, qemu-img's percentage of a stopped guest's."""
        return self._merges.progress(plan)

    def _offline_progress(self, plan):
        """The callback for qemu-img's percentages of ``plan``, or None
        when the active image's size cannot be read (no progress then)."""
        active = plan.disk.active
        try:
            total = qcow2.image_facts(active.path, active.fmt).virtual_size
        except exception.OperationFailed as error:
            LOG.debug("No progress for the merge of snapshot %s: %s",
                      plan.snapshot_id, error)
            return None
        if total is None:
            LOG.debug("No progress for the merge of snapshot %s: qemu-img "
                      "gave no virtual size", plan.snapshot_id)
            return None
        return self._merges.offline(plan, total)

    def _device(self, location, dom=None):
        """The :class:`blockdev.BlockDevice` of a located disk."""
        return blockdev.BlockDevice(self._host, self._jobs, location, dom,
                                    bandwidth=CONF.libvirt.merge_bandwidth)

    def _wait_for_other_jobs(self, attached, plan):
        """Wait while another disk of the guest has a block job.

        Merges of this process hold the guest's slot; this covers the jobs
        it did not start: one an earlier snapdriver process left running
        (recovery waits for it on another thread), or an operator's.

        :returns: the guest's domain handle to go on with (looked up again
            after a wait: libvirtd may have restarted meanwhile).
        :raises: OperationFailed when one is still running after
            ``[libvirt] block_job_timeout`` seconds.
        """
        others = [disk.target for disk in attached.domain.disks
                  if disk.chain and disk.target != attached.disk.target]
        deadline = time.monotonic() + CONF.libvirt.block_job_timeout
        said = False
        dom = attached.dom
        while True:
            busy = blockjob.busy(dom, others)
            if not busy:
                return dom
            if not said:
                said = True
                LOG.info("Snapshot %s: guest %s has a block job on disk %s "
                         "that snapdriver did not start; the %s on disk %s "
                         "waits for it to end (one block job per guest)",
                         plan.snapshot_id, attached.location.guest,
                         ', '.join(busy), plan.kind, attached.disk.target)
            if time.monotonic() > deadline:
                raise _failed("A block job on disk %s of guest %s is still "
                              "running after %d seconds ([libvirt] "
                              "block_job_timeout); the block %s on disk %s "
                              "was not started: QEMU runs one block job per "
                              "guest safely, not two.", ', '.join(busy),
                              attached.location.guest,
                              CONF.libvirt.block_job_timeout, plan.kind,
                              attached.disk.target)
            time.sleep(CONF.libvirt.block_job_poll_interval)
            # A handle from before a libvirtd restart answers nothing.
            dom = self._lookup(attached.location)

    def _make_durable(self, attached, what):
        """Have QEMU write out what the job left in its caches (see
        :mod:`flush`): the merge is not reported before that.

        One flush of a guest at a time (after a restart, every operation
        being settled flushes its guest), and never during a switch."""
        files = []
        for disk in attached.domain.disks:
            if disk.disk_type != 'file' or not disk.chain:
                continue
            # Every image of the merged disk (the base got the data of a
            # commit), the active image of the others.
            images = (disk.chain if disk.target == attached.disk.target
                      else disk.chain[:1])
            files.extend(image.source for image in images)
        flush.sync_files(files)
        with self._slots.graph_change(attached.domain.uuid):
            return flush.flush_guest(attached.dom, attached.location.guest,
                                     what)

    def wait_for_pending(self, location):
        """Wait for a block job that an earlier snapdriver process started,
        and make what it did durable.

        libvirt keeps block jobs running while snapdriver restarts; the
        chain can only be judged once such a job has ended, and its result
        only reported once QEMU has flushed it (which the earlier process
        may not have lived to see to).

        :param location: the located disk.
        :returns: True if a job was running on the disk.
        :raises: OperationFailed if it did not end within
            ``[libvirt] block_job_timeout`` (it is aborted then), or QEMU
            could not be made to flush.
        """
        if not location.running:
            return False
        device = self._device(location)
        pending = bool(device.job_info())
        if pending:
            LOG.info("A block job started before snapdriver restarted runs "
                     "on disk %s of guest %s; waiting for it",
                     location.target, location.guest)
            with device.watching():
                device.wait()
        # A job may also have ended while snapdriver was away, and what it
        # did is not durable until QEMU flushes: settle nothing before.
        self._make_durable(self._fresh(location),
                           'the work left on disk %s' % location.target)
        return pending


def _version(number):
    """libvirt's version number as ``major.minor.micro``."""
    return '%d.%d.%d' % (number // 1000000, number // 1000 % 1000,
                         number % 1000)


def _switch(plan):
    """A create's switch, in messages."""
    return 'the switch of disk %s onto %s' % (plan.disk.target, plan.new_file)


def _check_not_compute_managed(location, action):
    """Refuse to change a disk of a guest that nova-compute manages, unless
    ``[libvirt] allow_compute_managed_guests`` says to go ahead.

    :param action: 'create' or 'delete', for the message.
    :raises: ComputeManagedGuest
    """
    namespace = location.details.get('compute_namespace')
    if not namespace:
        return
    if not CONF.libvirt.allow_compute_managed_guests:
        raise exception.ComputeManagedGuest(
            volume_id=location.volume_id, target=location.target,
            guest=location.guest, namespace=namespace,
            action=action)
    LOG.warning("Guest %s is managed by nova-compute (metadata in %s); the "
                "%s on disk %s goes ahead because [libvirt] "
                "allow_compute_managed_guests is true: its next hard reboot "
                "or migration by the compute service may reopen images "
                "snapdriver merged or switched away from", location.guest,
                namespace, action, location.target)


def _network_disk_stopped(location):
    return _failed("Guest %s is not running: the chain of its network disk %s "
                   "is only changed while the guest runs.", location.guest,
                   location.target)


def _check_binding():
    if libvirt is None:
        raise exception.DriverLoadError(
            driver=DRIVER,
            reason="the libvirt Python binding cannot be imported; install "
            "libvirt-python (PyPI) or python3-libvirt (distribution "
            "package)")


def _check_qemu_img():
    if qemuimg.find() is None:
        raise exception.DriverLoadError(
            driver=DRIVER,
            reason="qemu-img was not found in PATH (%s); install qemu-utils "
            "(Debian, Ubuntu) or qemu-img (RHEL, Fedora)"
            % os.environ.get('PATH', ''))
