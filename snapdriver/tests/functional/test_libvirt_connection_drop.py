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

"""The connection to libvirtd drops under a call that changes a real disk.

A libvirtd that restarts (or dies) after QEMU switched a disk, or started
a block job, but before its answer reached snapdriver leaves the call's
outcome unknown to the caller: libvirt-python raises a connection error
although the work is done. Waiting for that moment with a real restart is
a matter of luck; so the driver talks to the private libvirtd through
:class:`RpcCutter`, a proxy on a Unix socket that forwards libvirt's RPC
packets both ways and, when armed, closes the client's connection at an
exact point of one call: as the reply comes back (QEMU did the work) or as
the call goes out (it never reached libvirtd). The client sees what it
sees when libvirtd goes away under a call: end of file on its socket.

The operation manager and the libvirt driver run in this process (as in
``test_libvirt_guest_safety``); the guest is a real TCG guest whose data is
checked after each operation.
"""

import logging
import os
import socket
import struct
import threading
import time
import uuid

import fixtures

from snapdriver.drivers import loader
from snapdriver import objects
from snapdriver.operations import manager as manager_mod
from snapdriver.tests import base
from snapdriver.tests import contract
from snapdriver.tests.functional import faults
from snapdriver.tests.functional import guest
from snapdriver.tests.functional import test_libvirt_contract as builder

#: libvirt's remote protocol (src/remote/remote_protocol.x).
REMOTE_PROGRAM = 0x20008086
CALL, REPLY = 0, 1
PROC_SNAPSHOT_CREATE_XML = 185
PROC_BLOCK_REBASE = 266
PROC_BLOCK_COMMIT = 290


class RpcCutter:
    """A proxy in front of libvirtd's socket that can cut one call.

    :param upstream: the path of libvirtd's socket.
    :param path: where the proxy listens.
    """

    def __init__(self, upstream, path):
        self.upstream = upstream
        self.path = path
        self._lock = threading.Lock()
        self._armed = None          # (procedure, 'reply' or 'call')
        self.cut = threading.Event()
        self.cuts = []
        #: Whether new connections are closed at once (set at a cut when
        #: armed with ``then_refuse``, until the test clears it).
        self.refusing = False
        self._then_refuse = False
        self._sockets = []
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(path)
        self._server.listen(8)
        threading.Thread(target=self._accept, daemon=True).start()

    def uri(self):
        return 'qemu:///system?socket=%s' % self.path

    def arm(self, procedure, at, then_refuse=False):
        """Cut the next call of ``procedure``: ``at='reply'`` drops its
        answer and the connection (the call was carried out), ``'call'``
        drops the call itself and the connection (it never reached
        libvirtd). With ``then_refuse``, new connections are refused from
        the cut on, until :attr:`refusing` is cleared."""
        with self._lock:
            self._armed = (procedure, at)
            self._then_refuse = then_refuse
            self.cut.clear()

    def close(self):
        self._server.close()
        for sock in self._sockets:
            _close(sock)

    def _accept(self):
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if self.refusing:
                # libvirtd is "down": as a stopped daemon's socket would.
                _close(client)
                continue
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(self.upstream)
            except OSError:
                _close(client)
                upstream.close()
                continue
            self._sockets += [client, upstream]
            pending = set()     # serials of the call being watched
            threading.Thread(target=self._pump, daemon=True, args=(
                client, upstream, pending, True)).start()
            threading.Thread(target=self._pump, daemon=True, args=(
                upstream, client, pending, False)).start()

    def _pump(self, source, sink, pending, outgoing):
        try:
            while True:
                packet = _read_packet(source)
                if packet is None:
                    break
                if self._cuts_here(packet, pending, outgoing):
                    break
                sink.sendall(packet)
        except OSError:
            pass
        _close(source)
        _close(sink)

    def _cuts_here(self, packet, pending, outgoing):
        program, _version, procedure, kind, serial = struct.unpack(
            '>IIIII', packet[4:24])
        if program != REMOTE_PROGRAM:
            return False
        with self._lock:
            if outgoing and kind == CALL and self._armed is not None \
                    and procedure == self._armed[0]:
                if self._armed[1] == 'call':
                    return self._cut(procedure, 'call')
                pending.add(serial)
            elif not outgoing and kind == REPLY and serial in pending:
                pending.discard(serial)
                return self._cut(procedure, 'reply')
        return False

    def _cut(self, procedure, at):
        self._armed = None
        if self._then_refuse:
            self.refusing = True
        self.cuts.append((procedure, at))
        self.cut.set()
        return True


def _read_exactly(sock, size):
    data = b''
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _read_packet(sock):
    head = _read_exactly(sock, 4)
    if head is None:
        return None
    length = struct.unpack('>I', head)[0]
    rest = _read_exactly(sock, length - 4)
    return None if rest is None else head + rest


def _close(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class ConnectionDropTestCase(base.FunctionalTestCase):
    """A guest of ``libvirt_uri()``, the driver talking to its libvirtd
    through an :class:`RpcCutter`, the operation manager in this process."""

    def libvirt_uri(self):
        uri = guest.libvirt_uri()
        if not uri:
            self.skipTest(guest.SKIP_REASON)
        return uri

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.Timeout(240, gentle=True))
        uri = self.libvirt_uri()
        self.log = self.useFixture(fixtures.FakeLogger(level=logging.INFO))
        self.directory = self.useFixture(fixtures.TempDir()).path
        socket_path = uri.partition('socket=')[2]
        # Unix socket paths are short: not in the test's directory.
        proxy_dir = self.useFixture(fixtures.TempDir(rootdir='/tmp')).path
        self.cutter = RpcCutter(socket_path,
                                os.path.join(proxy_dir, 'cut-sock'))
        self.addCleanup(self.cutter.close)
        self.conf.config(group='libvirt', connection_uri=self.cutter.uri(),
                         block_job_poll_interval=0.1, quiesce='never')
        self.volume = builder.attach_volume(
            self, uri, self.directory, str(uuid.uuid4()), layers=3,
            size_mb=16)
        self.driver = loader.load('libvirt')
        self.manager = manager_mod.OperationManager(
            self.driver, contract.RecordingReporter())
        self.addCleanup(self.manager.stop)

    def run_operation(self, request, procedure, at):
        self.cutter.arm(procedure, at, then_refuse=self.then_refuse)
        self.manager.accept(None, request)
        deadline = time.monotonic() + 120
        while True:
            op = self.manager.query(None, request.snapshot_id)[-1]
            if op.state in ('succeeded', 'failed'):
                break
            if time.monotonic() > deadline:
                self.fail('operation still %s' % op.state)
            time.sleep(0.02)
        self.assertTrue(self.cutter.cut.is_set(),
                        'the call was not cut: %s' % self.cutter.cuts)
        self.assertEqual([(procedure, at)], self.cutter.cuts)
        return op

    def create(self, at):
        snapshot_id = str(uuid.uuid4())
        new_file = self.volume.new_overlay(snapshot_id)
        op = self.run_operation(objects.CreateRequest(
            volume_id=self.volume.volume_id, snapshot_id=snapshot_id,
            new_file=new_file), PROC_SNAPSHOT_CREATE_XML, at)
        return op, new_file

    def delete(self, file_to_merge, merge_target_file, procedure, at):
        return self.run_operation(objects.DeleteRequest(
            volume_id=self.volume.volume_id, snapshot_id=str(uuid.uuid4()),
            file_to_merge=file_to_merge,
            merge_target_file=merge_target_file), procedure, at)

    then_refuse = False

    def assertSucceeded(self, op, expected):
        self.assertEqual(('succeeded', None, expected),
                         (op.state, op.error, op.chain))
        self.volume.names = expected
        self.volume.check()
        self.volume.write()
        self.volume.check()


class ConnectionDropTest(ConnectionDropTestCase):
    """libvirtd goes on running; only the connection drops."""

    def test_switch_done_before_the_drop_succeeds(self):
        op, new_file = self.create('reply')
        self.assertSucceeded(op, [new_file] + self.volume.names)
        self.assertIn('the snapshot is taken', self.log.output)
        # The guest writes into the overlay now.
        pattern, offset, length = self.volume.write()
        self.assertTrue(guest.read_pattern(
            self.volume.path(new_file), pattern, offset, length))

    def test_switch_never_sent_fails_and_says_so(self):
        before = list(self.volume.names)
        op, new_file = self.create('call')
        self.assertEqual('failed', op.state)
        self.assertIn('The connection to libvirtd dropped during the switch '
                      'of disk vdb onto %s' % new_file, op.error)
        self.assertIn('and the disk was not switched: its chain is still',
                      op.error)
        self.volume.check(before)

    def test_quiesced_switch_never_sent_is_asked_again(self):
        # The guest has no agent: the second quiesced try is refused for
        # that, and quiesce = try takes the snapshot without.
        self.conf.config(group='libvirt', quiesce='try')
        op, new_file = self.create('call')
        self.assertSucceeded(op, [new_file] + self.volume.names)
        self.assertIn('could not be quiesced', self.log.output)

    def test_pull_started_before_the_drop_succeeds(self):
        names = self.volume.names
        op = self.delete(names[-1], None, PROC_BLOCK_REBASE, 'reply')
        self.assertSucceeded(op, [names[0], names[-1]])

    def test_commit_started_before_the_drop_succeeds(self):
        names = self.volume.names
        op = self.delete(names[1], names[2], PROC_BLOCK_COMMIT, 'reply')
        self.assertSucceeded(op, [names[0], names[2]])

    def test_pull_never_sent_fails_and_says_so(self):
        names = list(self.volume.names)
        op = self.delete(None, None, PROC_BLOCK_REBASE, 'call')
        self.assertEqual('failed', op.state)
        self.assertIn('The connection to libvirtd dropped while the job was '
                      'being started', op.error)
        self.volume.check(names)


class LibvirtdRestartTest(ConnectionDropTestCase):
    """libvirtd is restarted right after QEMU did the work and before its
    answer reached snapdriver: the cut drops the answer, and from then on
    the proxy refuses connections while a test thread stops libvirtd
    (SIGTERM) and starts it again on the same state (its guests and their
    block jobs go on in QEMU meanwhile). The driver waits for the new
    libvirtd and judges by the chain it shows.

    Only the switch: a restart right after blockRebase or blockCommit
    returned did not come back in time here (the restarting thread did not
    end within two minutes; not diagnosed yet), so merges are covered by
    :class:`ConnectionDropTest` and by the fault suite's restarts mid-job.

    A libvirtd of the test's own (:class:`faults.PrivateLibvirtd`), beside
    the shared one, so that restarting it disturbs no other test.
    """

    then_refuse = True

    def libvirt_uri(self):
        super().libvirt_uri()
        base_dir = os.environ.get('SNAPDRIVER_LIBVIRT_DIR') or os.path.join(
            faults.REPO, '.run', 'libvirt')
        self.libvirtd = self.useFixture(faults.PrivateLibvirtd(
            os.path.realpath(base_dir) + '-conndrop'))
        self.restarts = []
        return self.libvirtd.uri

    def run_operation(self, request, procedure, at):
        restarter = threading.Thread(target=self._restart_at_the_cut,
                                     daemon=True)
        restarter.start()
        op = super().run_operation(request, procedure, at)
        restarter.join(60)
        self.assertEqual(['stopped', 'started'], self.restarts)
        # The test's own connection died with the old libvirtd.
        import libvirt
        conn = libvirt.open(self.libvirtd.uri)
        self.addCleanup(conn.close)
        fixture = self.volume.fixture
        fixture.domain = conn.lookupByUUIDString(fixture.domain.UUIDString())
        return op

    def _restart_at_the_cut(self):
        if not self.cutter.cut.wait(60):
            return
        try:
            self.libvirtd.stop_daemon(timeout=20)
            self.restarts.append('stopped')
            self.libvirtd.start_daemon()
            self.restarts.append('started')
        except Exception as error:
            self.restarts.append(repr(error))
        finally:
            self.cutter.refusing = False

    def test_switch_done_before_the_restart_succeeds(self):
        op, new_file = self.create('reply')
        self.assertSucceeded(op, [new_file] + self.volume.names)
        self.assertIn('the snapshot is taken', self.log.output)
