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

"""A small, consistent fake of a libvirt host and of qemu-img.

:class:`FakeImages` holds image files and their headers (format, backing
name as written, relative or not). :class:`FakeConnection` imitates the
parts of ``virConnect``/``virDomain`` the driver uses; its domains show
their chains from those headers, as libvirt does, and its block jobs and
snapshots rewrite them. :class:`FakeQemuImg` stands in for
``processutils.execute`` and answers qemu-img from the same files. Every
libvirt call and every command is recorded, so tests can check the exact
arguments, and that nothing was called at all.

Only the libvirt binding's constants are used, never literal values.
"""

import dataclasses
import json
import os
import posixpath
import struct
import threading
import typing
import uuid as uuid_mod
from xml.etree import ElementTree

from oslo_concurrency import processutils
from snapdriver import exception

try:
    import libvirt
except ImportError:  # the tests that need the binding are skipped
    libvirt = None

MIB = 1024 * 1024


def libvirt_error(code, message, domain=None):
    """A libvirtError as the binding raises it, with ``code`` (from QEMU,
    or from ``domain``, one of libvirt's ``VIR_FROM_*``)."""
    error = libvirt.libvirtError(message)
    if domain is None:
        domain = libvirt.VIR_FROM_QEMU
    error.err = (code, domain, message, libvirt.VIR_ERR_ERROR,
                 None, None, None, -1, -1)
    error.args = (message,)
    return error


# Image files and their headers

@dataclasses.dataclass
class FakeImage:
    fmt: str = 'qcow2'
    backing: typing.Optional[str] = None
    backing_fmt: typing.Optional[str] = None


class FakeImages:
    """Image files by absolute path."""

    def __init__(self):
        self.files = {}

    def add(self, path, fmt='qcow2', backing=None, backing_fmt=None):
        if backing and not backing_fmt:
            backing_fmt = self.files[self.resolve(path, backing)].fmt
        self.files[path] = FakeImage(fmt, backing, backing_fmt)

    @staticmethod
    def resolve(path, backing):
        """Where the header of ``path`` points to (as qemu resolves it)."""
        return posixpath.normpath(
            posixpath.join(posixpath.dirname(path), backing))

    def chain(self, path):
        """[(path, FakeImage)], ``path`` first, following the headers."""
        result = []
        while path is not None:
            image = self.files[path]
            result.append((path, image))
            path = (self.resolve(path, image.backing) if image.backing
                    else None)
        return result

    def add_chain(self, directory, names, fmt='qcow2', base_fmt=None):
        """Files ``names`` (active first), each backing onto the next one
        by a relative name. :returns: the active image's path."""
        previous = None
        for position, name in enumerate(reversed(names)):
            path = posixpath.join(directory, name)
            own_fmt = base_fmt if position == 0 and base_fmt else fmt
            self.add(path, fmt=own_fmt, backing=previous)
            previous = name
        return posixpath.join(directory, names[0])


# libvirt

@dataclasses.dataclass
class FakeJob:
    kind: int
    end: int
    effect: typing.Callable
    polls_left: int
    #: Bytes per second; 0 is unlimited.
    bandwidth: int = 0
    #: Bytes copied (None: half of ``end``).
    cur: typing.Optional[int] = None
    #: Whether each look at the job (not held still) finds it further on.
    moves: bool = False

    def __post_init__(self):
        if self.cur is None:
            self.cur = self.end // 2


class FakeDisk:
    """A disk of a fake domain.

    File disks (``disk_type`` file, block, dir) show the chain of the image
    at ``path`` as :class:`FakeImages` records it. Network disks have their
    own ``chain`` of (source name, format, index), active first.
    """

    def __init__(self, target, serial=None, disk_type='file', path=None,
                 fmt='qcow2', device='disk', protocol=None, hosts=(),
                 chain=(), serial_attribute=None):
        self.target = target
        self.serial = serial
        self.disk_type = disk_type
        self.path = path
        self.fmt = fmt
        self.device = device
        self.protocol = protocol
        self.hosts = list(hosts)
        self.chain = [list(entry) for entry in chain]
        self.serial_attribute = serial_attribute
        self.indices = {}


class FakeDomain:
    """The parts of ``virDomain`` the driver uses."""

    def __init__(self, conn, name, disks, running=True, persistent=True,
                 agent=True, metadata=None):
        self.conn = conn
        self._name = name
        self.uuid = str(uuid_mod.uuid4())
        self.disks = list(disks)
        self.running = running
        self.persistent = persistent
        self.agent = agent
        self.metadata_xml = metadata
        #: What setMetadata() put into the live definition: {uri: xml}.
        self.live_metadata = {}
        self.jobs = {}
        self.next_index = 1
        #: How the next block job ends: 'complete', 'fail', 'cancel'
        #: or 'hang' (until aborted).
        self.job_outcome = 'complete'
        #: How many blockJobInfo calls still see the job before it ends.
        self.job_polls = 0
        self.send_events = True
        #: Whether the fake QEMU honours the RELATIVE flags.
        self.keeps_relative = True
        #: Errors of snapshotCreateXML, by call number (1 is the first).
        self.snapshot_errors = {}
        #: An error raised after a quiesced snapshot was taken (thawing).
        self.thaw_error = None
        #: Whether snapshotCreateXML switches the disks (False: it says it
        #: did, and did not).
        self.applies_snapshots = True
        self.snapshot_calls = 0
        self.lock = threading.Lock()
        self.paused = False
        #: Times QEMU flushed the guest's disks (it does when it stops).
        self.flushes = 0
        #: Errors of suspend() and resume(), taken one per call.
        self.suspend_errors = []
        self.resume_errors = []

    # virDomain

    def name(self):
        return self._name

    def UUIDString(self):
        return self.uuid

    def isActive(self):
        return 1 if self.running else 0

    def state(self, flags=0):
        if not self.running:
            return [libvirt.VIR_DOMAIN_SHUTOFF, 0]
        if self.paused:
            return [libvirt.VIR_DOMAIN_PAUSED, 0]
        return [libvirt.VIR_DOMAIN_RUNNING, 0]

    def suspend(self):
        self.conn.record('suspend', self._name)
        if self.suspend_errors:
            raise self.suspend_errors.pop(0)
        if not self.running:
            raise libvirt_error(libvirt.VIR_ERR_OPERATION_INVALID,
                                'domain is not running')
        if not self.paused:         # libvirt: a paused domain is left be
            self.paused = True
            self.flushes += 1
        return 0

    def resume(self):
        self.conn.record('resume', self._name)
        if self.resume_errors:
            raise self.resume_errors.pop(0)
        self.paused = False
        return 0

    def setMetadata(self, kind, xml, key, uri, flags):
        self.conn.record('setMetadata', self._name, xml, key, uri, flags)
        if kind != libvirt.VIR_DOMAIN_METADATA_ELEMENT:
            raise AssertionError('only elements are kept')
        if xml is None:
            self.live_metadata.pop(uri, None)
        else:
            self.live_metadata[uri] = xml
        return 0

    def metadata(self, kind, uri, flags=0):
        if uri not in self.live_metadata:
            raise libvirt_error(libvirt.VIR_ERR_NO_DOMAIN_METADATA,
                                'metadata not found: Requested metadata '
                                'element is not present')
        return self.live_metadata[uri]

    def monitor_command(self, command, flags):
        """What ``libvirt_qemu.qemuMonitorCommand`` does to this domain."""
        self.conn.record('qemuMonitorCommand', self._name, command, flags)
        if json.loads(command) == {'execute': 'stop'}:
            self.paused = True
            self.flushes += 1       # QEMU flushes even when already stopped
        return '{"return": {}}'

    def XMLDesc(self, flags=0):
        self.conn.record('XMLDesc', self._name, flags)
        return self.render()

    def snapshotCreateXML(self, xml, flags):
        self.conn.record('snapshotCreateXML', self._name, xml, flags)
        self.snapshot_calls += 1
        error = self.snapshot_errors.get(self.snapshot_calls)
        if error is not None:
            raise error
        if (flags & libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE
                and self.running and not self.agent):
            raise libvirt_error(libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED,
                                'argument unsupported: QEMU guest agent is '
                                'not configured')
        if self.applies_snapshots:
            self._apply_snapshot(ElementTree.fromstring(xml))
        if (self.thaw_error is not None
                and flags & libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE):
            raise self.thaw_error
        return None

    def blockRebase(self, disk, base, bandwidth, flags):
        self.conn.record('blockRebase', self._name, disk, base, bandwidth,
                         flags)
        target = self._disk(disk)
        relative = flags & libvirt.VIR_DOMAIN_BLOCK_REBASE_RELATIVE
        if relative and base is None:
            raise libvirt_error(
                libvirt.VIR_ERR_INVALID_ARG,
                'invalid argument: flag VIR_DOMAIN_BLOCK_REBASE_RELATIVE is '
                'valid only with non-null base')
        position = self._position(target, base) if base else None

        def pull():
            self._relink(target, 0, position, relative)
        self._start_job(target, libvirt.VIR_DOMAIN_BLOCK_JOB_TYPE_PULL, pull)

    def blockCommit(self, disk, base, top, bandwidth, flags):
        self.conn.record('blockCommit', self._name, disk, base, top,
                         bandwidth, flags)
        target = self._disk(disk)
        if flags & libvirt.VIR_DOMAIN_BLOCK_COMMIT_ACTIVE:
            raise AssertionError('the driver never commits the active image')
        top_position = self._position(target, top)
        base_position = self._position(target, base)
        if top_position == 0:
            raise libvirt_error(libvirt.VIR_ERR_INVALID_ARG,
                                'active commit requested but '
                                'VIR_DOMAIN_BLOCK_COMMIT_ACTIVE is not set')
        relative = flags & libvirt.VIR_DOMAIN_BLOCK_COMMIT_RELATIVE

        def commit():
            self._relink(target, top_position - 1, base_position, relative)
        self._start_job(target, libvirt.VIR_DOMAIN_BLOCK_JOB_TYPE_COMMIT,
                        commit)

    def blockJobInfo(self, disk, flags):
        self.conn.record('blockJobInfo', self._name, disk, flags)
        if not self.running:
            raise libvirt_error(libvirt.VIR_ERR_OPERATION_INVALID,
                                'domain is not running')
        with self.lock:
            job = self.jobs.get(disk)
            if job is None:
                return {}
            if job.bandwidth == 1 and job.cur < job.end - 1:
                # Held still: nothing moves (a job that copied everything
                # ends all the same).
                return self._job_info(job, flags)
            if job.polls_left > 0 or self.job_outcome == 'hang':
                job.polls_left -= 1
                if job.moves:
                    job.cur = min(job.cur + MIB, job.end - 2)
                return self._job_info(job, flags)
        self._finish_job(disk)
        return {}

    @staticmethod
    def _job_info(job, flags):
        bandwidth = job.bandwidth
        if not flags & libvirt.VIR_DOMAIN_BLOCK_JOB_INFO_BANDWIDTH_BYTES:
            bandwidth //= MIB
        return {'type': job.kind, 'bandwidth': bandwidth, 'cur': job.cur,
                'end': job.end}

    def blockJobSetSpeed(self, disk, bandwidth, flags):
        self.conn.record('blockJobSetSpeed', self._name, disk, bandwidth,
                         flags)
        with self.lock:
            job = self.jobs.get(disk)
            if job is None:
                raise libvirt_error(libvirt.VIR_ERR_OPERATION_INVALID,
                                    'Requested operation is not valid: no '
                                    'job found for disk %s' % disk)
            if not flags & libvirt.VIR_DOMAIN_BLOCK_JOB_SPEED_BANDWIDTH_BYTES:
                bandwidth *= MIB
            job.bandwidth = bandwidth
        return 0

    def blockJobAbort(self, disk, flags):
        self.conn.record('blockJobAbort', self._name, disk, flags)
        with self.lock:
            job = self.jobs.pop(disk, None)
        if job is None:
            raise libvirt_error(libvirt.VIR_ERR_INVALID_ARG,
                                'invalid argument: disk %s does not have an '
                                'active block job' % disk)
        self._event(disk, job.kind, libvirt.VIR_DOMAIN_BLOCK_JOB_CANCELED)

    # Behaviour

    def _disk(self, name):
        for disk in self.disks:
            if name in (disk.target, disk.path):
                return disk
        raise libvirt_error(libvirt.VIR_ERR_INVALID_ARG,
                            "invalid argument: disk '%s' not found in domain"
                            % name)

    def _images(self, disk):
        """[(source, fmt, index)] of a disk, active first."""
        if disk.disk_type == 'network':
            return [tuple(entry) for entry in disk.chain]
        images = []
        for path, image in self.conn.images.chain(disk.path):
            if path not in disk.indices:
                disk.indices[path] = self.next_index
                self.next_index += 1
            images.append((path, image.fmt, disk.indices[path]))
        return images

    def _position(self, disk, name):
        """Where libvirt's lookup finds ``name`` in the chain."""
        images = self._images(disk)
        for position, (source, _fmt, index) in enumerate(images):
            if name in ('%s[%s]' % (disk.target, index), source):
                return position
            if (disk.disk_type != 'network' and position > 0
                    and name == self._header_name(disk, position)):
                return position
        raise libvirt_error(libvirt.VIR_ERR_INVALID_ARG,
                            "invalid argument: could not find image '%s' in "
                            "chain for '%s'" % (name, disk.target))

    def _header_name(self, disk, position):
        chain = self.conn.images.chain(disk.path)
        return chain[position - 1][1].backing

    def _relink(self, disk, above, base, relative):
        """Make the image at ``above`` back onto the one at ``base``."""
        if disk.disk_type == 'network':
            disk.chain[above + 1:] = (disk.chain[base:] if base is not None
                                      else [])
            return
        chain = self.conn.images.chain(disk.path)
        above_path, above_image = chain[above]
        if base is None:
            above_image.backing = above_image.backing_fmt = None
            return
        base_path, base_image = chain[base]
        if relative and self.keeps_relative:
            above_image.backing = posixpath.relpath(
                base_path, posixpath.dirname(above_path))
        else:
            above_image.backing = base_path
        above_image.backing_fmt = base_image.fmt

    def _start_job(self, disk, kind, effect):
        if not self.running:
            raise libvirt_error(libvirt.VIR_ERR_OPERATION_INVALID,
                                'domain is not running')
        with self.lock:
            if disk.target in self.jobs:
                raise libvirt_error(libvirt.VIR_ERR_OPERATION_UNSUPPORTED,
                                    "disk '%s' already in active block job"
                                    % disk.target)
            self.jobs[disk.target] = FakeJob(kind=kind, end=64 * MIB,
                                             effect=effect,
                                             polls_left=self.job_polls)
        if self.job_polls == 0 and self.job_outcome != 'hang':
            # libvirt often reports the end before the first poll.
            self._finish_job(disk.target)

    def _finish_job(self, target):
        with self.lock:
            job = self.jobs.pop(target, None)
        if job is None:
            return
        if self.job_outcome == 'complete':
            job.effect()
            status = libvirt.VIR_DOMAIN_BLOCK_JOB_COMPLETED
        elif self.job_outcome == 'fail':
            status = libvirt.VIR_DOMAIN_BLOCK_JOB_FAILED
        else:
            status = libvirt.VIR_DOMAIN_BLOCK_JOB_CANCELED
        self._event(target, job.kind, status)

    def _event(self, target, kind, status):
        if self.send_events:
            self.conn.emit_block_job(self, target, kind, status)

    def _apply_snapshot(self, root):
        for element in root.findall('./disks/disk'):
            if element.get('snapshot') != 'external':
                continue
            disk = self._disk(element.get('name'))
            source = element.find('source')
            if disk.disk_type == 'network':
                disk.chain.insert(0, [source.get('name'), 'qcow2',
                                      self.next_index])
                self.next_index += 1
                continue
            new_path = source.get('file')
            if new_path not in self.conn.images.files:
                raise libvirt_error(
                    libvirt.VIR_ERR_OPERATION_INVALID,
                    'missing existing file for disk %s: %s: No such file or '
                    'directory' % (disk.target, new_path))
            disk.path = new_path

    # XML

    def render(self):
        root = ElementTree.Element('domain', {'type': 'qemu'})
        ElementTree.SubElement(root, 'name').text = self._name
        ElementTree.SubElement(root, 'uuid').text = self.uuid
        if self.metadata_xml is not None:
            root.append(ElementTree.fromstring(
                '<metadata>%s</metadata>' % self.metadata_xml))
        devices = ElementTree.SubElement(root, 'devices')
        for disk in self.disks:
            devices.append(self._render_disk(disk))
        return ElementTree.tostring(root, encoding='unicode')

    def _render_disk(self, disk):
        element = ElementTree.Element('disk', {'type': disk.disk_type,
                                               'device': disk.device})
        if disk.serial_attribute:
            element.set('serial', disk.serial_attribute)
        ElementTree.SubElement(element, 'driver', {'name': 'qemu',
                                                   'type': disk.fmt})
        images = (self._images(disk)
                  if disk.path or disk.disk_type == 'network' else [])
        parent = element
        for position, (source, fmt, index) in enumerate(images):
            if position == 0:
                self._render_source(element, disk, source, index)
                continue
            if not self.running:
                # A stopped domain's XML does not show the chain.
                break
            store = ElementTree.SubElement(parent, 'backingStore', {
                'type': disk.disk_type, 'index': str(index)})
            ElementTree.SubElement(store, 'format', {'type': fmt})
            self._render_source(store, disk, source, None)
            parent = store
        if images and self.running:
            ElementTree.SubElement(parent, 'backingStore')
        ElementTree.SubElement(element, 'target', {'dev': disk.target,
                                                   'bus': 'virtio'})
        if disk.serial is not None:
            ElementTree.SubElement(element, 'serial').text = disk.serial
        return element

    def _render_source(self, parent, disk, source, index):
        if disk.disk_type == 'network':
            attrs = {'protocol': disk.protocol, 'name': source}
        else:
            attr = {'file': 'file', 'block': 'dev', 'dir': 'dir'}.get(
                disk.disk_type, 'file')
            attrs = {attr: source}
        if index is not None and self.running:
            attrs['index'] = str(index)
        element = ElementTree.SubElement(parent, 'source', attrs)
        for host in disk.hosts:
            ElementTree.SubElement(element, 'host', host)


class FakeDomainHandle:
    """A domain as one connection gives it out (``handles`` on).

    Once that connection is gone (libvirtd restarted), every call on the
    handle fails as libvirt's do; a lookup on the new connection gives a
    handle that works. Attributes are those of the :class:`FakeDomain`.
    """

    def __init__(self, domain, conn):
        self._domain = domain
        self._conn = conn

    def __getattr__(self, name):
        value = getattr(self._domain, name)
        if not callable(value) or self._conn.alive:
            return value

        def closed(*args, **kwargs):
            raise libvirt_error(libvirt.VIR_ERR_INTERNAL_ERROR,
                                'internal error: client socket is closed')
        return closed


class FakeConnection:
    """The parts of ``virConnect`` the driver uses."""

    def __init__(self, images=None, hypervisor='QEMU'):
        self.images = images if images is not None else FakeImages()
        self.domains = []
        #: Whether lookups give out handles tied to this connection
        #: (:class:`FakeDomainHandle`) rather than the domains themselves.
        self.handles = False
        self.calls = []
        self.alive = True
        self.hypervisor = hypervisor
        self.close_callbacks = []
        self.event_callbacks = []

    def record(self, *call):
        self.calls.append(call)

    def calls_of(self, *names):
        return [call for call in self.calls if call[0] in names]

    def changes(self):
        """The calls that change something."""
        return self.calls_of('snapshotCreateXML', 'blockRebase',
                             'blockCommit', 'blockJobAbort')

    def add_domain(self, name, disks, events=True, **kwargs):
        """Define a domain; libvirt says so with a DEFINED lifecycle event
        (``events=False``: one that got lost)."""
        domain = FakeDomain(self, name, disks, **kwargs)
        self.domains.append(domain)
        if events:
            self.emit_lifecycle(domain)
        return domain

    def emit_lifecycle(self, domain, event=None, detail=0):
        event = (libvirt.VIR_DOMAIN_EVENT_DEFINED if event is None
                 else event)
        for callback, event_id, opaque in self.event_callbacks:
            if event_id == libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE:
                callback(self, domain, event, detail, opaque)

    def emit_device(self, domain, alias,
                    event_id=libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_ADDED):
        for callback, registered, opaque in self.event_callbacks:
            if registered == event_id:
                callback(self, domain, alias, opaque)

    def emit_block_job(self, domain, disk, kind, status):
        for callback, event_id, opaque in self.event_callbacks:
            if event_id == libvirt.VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2:
                callback(self, domain, disk, kind, status, opaque)

    def close(self):
        """virConnect.close()."""
        self.record('close')
        self.alive = False
        return 0

    def drop(self, reason=None):
        """libvirtd went away."""
        if reason is None:
            reason = libvirt.VIR_CONNECT_CLOSE_REASON_EOF
        self.alive = False
        for callback, opaque in self.close_callbacks:
            callback(self, reason, opaque)

    def _handle(self, domain):
        return FakeDomainHandle(domain, self) if self.handles else domain

    def _check_alive(self):
        if not self.alive:
            raise libvirt_error(libvirt.VIR_ERR_INTERNAL_ERROR,
                                'internal error: client socket is closed')

    # virConnect

    def isAlive(self):
        return 1 if self.alive else 0

    def getType(self):
        self._check_alive()
        return self.hypervisor

    def registerCloseCallback(self, callback, opaque):
        self.close_callbacks.append((callback, opaque))
        return 0

    def domainEventRegisterAny(self, dom, event_id, callback, opaque):
        self.event_callbacks.append((callback, event_id, opaque))
        return len(self.event_callbacks)

    def listAllDomains(self, flags=0):
        self._check_alive()
        self.record('listAllDomains', flags)
        return [self._handle(domain) for domain in self.domains]

    def lookupByUUIDString(self, uuid):
        self._check_alive()
        for domain in self.domains:
            if domain.uuid == uuid:
                return self._handle(domain)
        raise libvirt_error(libvirt.VIR_ERR_NO_DOMAIN,
                            "Domain not found: no domain with matching uuid "
                            "'%s'" % uuid)


# qemu-img

class FakeQemuImg:
    """Replaces ``processutils.execute`` for qemu-img commands."""

    def __init__(self, images):
        self.images = images
        self.commands = []
        self.kwargs = []
        self.failures = {}

    def commands_of(self, subcommand):
        return [cmd for cmd in self.commands if cmd[1] == subcommand]

    def __call__(self, *cmd, **kwargs):
        # Which limits is the wrapper's business (test_qemuimg); here only
        # whether there were any, and what qemu-img is asked to do.
        limited = kwargs.get('prlimit') is not None
        if cmd and cmd[0].endswith('setpriv'):
            cmd = cmd[cmd.index('--') + 1:]
        if cmd and cmd[0].endswith('prlimit'):
            cmd, limited = cmd[cmd.index('--') + 1:], True
        self.commands.append(cmd)
        self.kwargs.append(dict(kwargs, limited=limited))
        if cmd[0] != 'qemu-img':
            raise AssertionError('unexpected command %r' % (cmd,))
        failure = self.failures.get(cmd[1])
        if failure:
            raise processutils.ProcessExecutionError(
                exit_code=1, stdout='', stderr=failure, cmd=' '.join(cmd))
        handler = getattr(self, '_' + cmd[1])
        return handler(list(cmd[2:])), ''

    def with_progress(self, args, what, on_percent, timeout=None):
        """Replaces ``qemuimg._execute_with_progress``: the command is
        recorded and carried out as above, with the percentages qemu-img
        -p would print on the way."""
        assert '-p' in args, args
        on_percent(0.0)
        try:
            self('qemu-img', *args)
        except processutils.ProcessExecutionError as error:
            raise exception.OperationFailed(
                reason="%s failed (exit code %s): %s"
                % (what, error.exit_code, error.stderr))
        on_percent(50.0)
        on_percent(100.0)

    def _missing(self, path):
        return processutils.ProcessExecutionError(
            exit_code=1, stdout='',
            stderr="qemu-img: Could not open '%s': No such file or directory"
            % path)

    @staticmethod
    def _options(args, flags=(), valued=()):
        options, rest = {}, []
        while args:
            arg = args.pop(0)
            if arg in valued:
                options[arg] = args.pop(0)
            elif arg in flags or arg.startswith('--'):
                options[arg] = True
            else:
                rest.append(arg)
        return options, rest

    def _describe(self, path, image):
        info = {'filename': path, 'format': image.fmt,
                'virtual-size': 64 * MIB}
        if image.backing:
            info['backing-filename'] = image.backing
            info['full-backing-filename'] = self.images.resolve(
                path, image.backing)
            info['backing-filename-format'] = image.backing_fmt
        return info

    def _info(self, args):
        options, (path,) = self._options(args, valued=('-f',))
        assert options.get('--output=json') and options.get('--force-share')
        if path not in self.images.files:
            raise self._missing(path)
        if '-f' in options and options['-f'] != self.images.files[path].fmt:
            raise processutils.ProcessExecutionError(
                exit_code=1, stderr="qemu-img: Could not open '%s': Image is "
                "not in %s format" % (path, options['-f']))
        if options.get('--backing-chain'):
            return json.dumps([self._describe(p, image) for p, image
                               in self.images.chain(path)])
        return json.dumps(self._describe(path, self.images.files[path]))

    def _rebase(self, args):
        options, (path,) = self._options(args, flags=('-u', '-p'),
                                         valued=('-f', '-F', '-b'))
        image = self.images.files[path]
        assert options['-f'] == image.fmt
        backing = options['-b']
        if backing:
            target = self.images.resolve(path, backing)
            if target not in self.images.files:
                raise self._missing(target)
            assert options['-F'] == self.images.files[target].fmt
        image.backing = backing or None
        image.backing_fmt = options.get('-F')
        return ''

    def _commit(self, args):
        options, (path,) = self._options(args, flags=('-d', '-p'),
                                         valued=('-f',))
        assert options['-f'] == self.images.files[path].fmt
        if not self.images.files[path].backing:
            raise processutils.ProcessExecutionError(
                exit_code=1, stderr="qemu-img: Image does not have a "
                "backing file")
        return ''


def touch(path):
    """Make a real, empty file (for checks that look at the filesystem)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w'):
        pass


# qcow2 headers, for the in-process reader

QCOW2_BACKING_FORMAT = 0xe2792aca
QCOW2_DATA_FILE = 0x44415441


def qcow2_layout(version=3, backing=None, backing_fmt=None, data_file=None,
                 cluster_bits=16, size=64 * MIB, extensions=(),
                 end_marker=True, **fields):
    """A qcow2 image as qemu-img lays it out: the header, its extensions
    and the backing file name in the first cluster, then the refcount
    table and the L1 table, one cluster each (or more for the L1 table).

    :param backing, backing_fmt, data_file: str or bytes.
    :param extensions: more (type, data) extensions, after the backing
        format and data file ones.
    :param fields: header fields to set as they are (``magic``,
        ``backing_file_offset``, ``incompatible_features``,
        ``header_length``, ``l1_size``, ...), after the layout is made;
        ``header_version`` and ``header_cluster_bits`` set those two.
    :returns: (the first cluster's bytes, the file's length).
    """
    def raw(text):
        return text.encode('utf-8') if isinstance(text, str) else text
    cluster = 1 << cluster_bits
    per_l1_entry = cluster * (cluster // 8)
    l1_size = -(-size // per_l1_entry)
    l1_clusters = max(1, -(-l1_size * 8 // cluster))
    header_length = 72 if version == 2 else 104
    ext = []
    if backing_fmt is not None:
        ext.append((QCOW2_BACKING_FORMAT, raw(backing_fmt)))
    if data_file is not None:
        ext.append((QCOW2_DATA_FILE, raw(data_file)))
    ext.extend(extensions)
    body = b''
    for kind, data in ext:
        body += struct.pack('>II', kind, len(data)) + data
        body += b'\0' * (-len(data) % 8)
    if end_marker:
        body += struct.pack('>II', 0, 0)
    values = dict(
        magic=b'QFI\xfb', version=version, backing_file_offset=0,
        backing_file_size=0, cluster_bits=cluster_bits, size=size,
        crypt_method=0, l1_size=l1_size, l1_table_offset=2 * cluster,
        refcount_table_offset=cluster, refcount_table_clusters=1,
        nb_snapshots=0, snapshots_offset=0, incompatible_features=(
            4 if data_file is not None else 0),
        compatible_features=0, autoclear_features=0, refcount_order=4,
        header_length=header_length)
    if backing is not None:
        values['backing_file_offset'] = header_length + len(body)
        values['backing_file_size'] = len(raw(backing))
    values['version'] = fields.pop('header_version', version)
    values['cluster_bits'] = fields.pop('header_cluster_bits', cluster_bits)
    values.update(fields)
    header = struct.pack(
        '>4sIQIIQIIQQIIQ', values['magic'], values['version'],
        values['backing_file_offset'], values['backing_file_size'],
        values['cluster_bits'], values['size'], values['crypt_method'],
        values['l1_size'], values['l1_table_offset'],
        values['refcount_table_offset'], values['refcount_table_clusters'],
        values['nb_snapshots'], values['snapshots_offset'])
    if version != 2:
        header += struct.pack(
            '>QQQII', values['incompatible_features'],
            values['compatible_features'], values['autoclear_features'],
            values['refcount_order'], values['header_length'])
    first = header + body
    if backing is not None:
        first += raw(backing)
    first = first[:cluster] + b'\0' * (cluster - len(first))
    return first, (2 + l1_clusters) * cluster


def write_qcow2(path, **kwargs):
    """Write a (sparse) qcow2 image of :func:`qcow2_layout` at ``path``."""
    first, length = qcow2_layout(**kwargs)
    with open(path, 'wb') as f:
        f.write(first)
        f.truncate(max(length, len(first)))
    return path
