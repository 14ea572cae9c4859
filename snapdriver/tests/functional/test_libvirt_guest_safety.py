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

"""Guest safety on a real TCG guest with several volumes (QEMU 7.2).

Two hazards below snapdriver, both reproduced with plain libvirt-python on
this machine's QEMU (``tools/probe_block_jobs.py``):

1. two block pulls started together on two disks of one guest crash QEMU;
2. a finished block pull is not durable until QEMU flushes: killed in
   that window, QEMU leaves an image that reads zeros where the data was.

The operation manager and the libvirt driver run in this process against
the private libvirtd, on one guest with three volumes. The tests show that
merges on one guest are run one at a time while a create on another of
its volumes goes by, and that every merge is durable by the time it is
reported: QEMU is SIGKILLed (not destroyed through libvirt, which lets it
flush on SIGTERM) as soon as the report is out, and the data must read
back. One test takes the flush away and shows that the same kill then
loses the data of a pull: the check can fail.

Offline merges (a stopped guest: qemu-img commit and rebase) have no cache
that outlives qemu-img: once it exits, what it wrote is in the kernel.
That it also synced every image it wrote before exiting (so that a host
crash does not undo the merge) is shown by tracing its system calls.
"""

import logging
import os
import re
import shutil
import signal
import stat
import sys
import time
import uuid

import fixtures

from snapdriver.drivers.libvirt import flush
from snapdriver.drivers import loader
from snapdriver import objects
from snapdriver.operations import manager as manager_mod
from snapdriver.tests import base
from snapdriver.tests import contract
from snapdriver.tests.functional import guest
from snapdriver.tests.functional import test_libvirt_contract as builder

MiB = guest.MiB
#: Each volume: base and middle layer hold LAYER MiB of data each, so that
#: a pull copies 2 * LAYER MiB and two pulls overlap for long.
LAYER = 64


class TimingReporter(contract.RecordingReporter):
    """Records when each report went out."""

    def __init__(self):
        super().__init__()
        self.times = {}

    def report(self, context, snapshot_id, status, **kwargs):
        self.times[snapshot_id] = time.monotonic()
        return super().report(context, snapshot_id, status, **kwargs)


class GuestSafetyTest(base.FunctionalTestCase):

    def setUp(self):
        super().setUp()
        uri = guest.libvirt_uri()
        if not uri:
            self.skipTest(guest.SKIP_REASON)
        self.useFixture(fixtures.Timeout(240, gentle=True))
        self.conf.config(group='libvirt', connection_uri=uri,
                         block_job_poll_interval=0.1)
        self.log = self.useFixture(fixtures.FakeLogger(level=logging.INFO))
        self.directory = self.useFixture(fixtures.TempDir()).path
        volume_ids = [str(uuid.uuid4()) for _ in range(3)]
        self.volumes = builder.attach_volumes(
            self, uri, self.directory, volume_ids, size_mb=3 * LAYER,
            layer_writes={0: [(0, LAYER * MiB)],
                          1: [(LAYER * MiB, LAYER * MiB)]})
        self.guest = self.volumes[0].fixture.guest
        self.driver = loader.load('libvirt')
        self.reporter = TimingReporter()
        self.manager = manager_mod.OperationManager(self.driver,
                                                    self.reporter)
        self.addCleanup(self.manager.stop)

    # Requests as Cinder makes them.

    def delete(self, volume, kind):
        """Accept the delete of the newest snapshot (pull: everything below
        the active image, or onto the base) or of the middle one (commit
        into the base)."""
        names = volume.names
        info = {'pull': (None, None), 'pull_base': (names[-1], None),
                'commit': (names[1], names[2])}[kind]
        snapshot_id = str(uuid.uuid4())
        self.manager.accept(None, objects.DeleteRequest(
            volume_id=volume.volume_id, snapshot_id=snapshot_id,
            file_to_merge=info[0], merge_target_file=info[1]))
        expected = {'pull': names[:1], 'pull_base': [names[0], names[-1]],
                    'commit': [names[0], names[2]]}[kind]
        return snapshot_id, expected

    def create(self, volume):
        snapshot_id = str(uuid.uuid4())
        new_file = volume.new_overlay(snapshot_id)
        self.manager.accept(None, objects.CreateRequest(
            volume_id=volume.volume_id, snapshot_id=snapshot_id,
            new_file=new_file))
        return snapshot_id, [new_file] + volume.names

    def operation(self, snapshot_id):
        return self.manager.query(None, snapshot_id)[-1]

    def wait_state(self, snapshot_id, states=('succeeded', 'failed'),
                   timeout=120):
        deadline = time.monotonic() + timeout
        while True:
            op = self.operation(snapshot_id)
            if op.state in states:
                return op
            if time.monotonic() > deadline:
                self.fail('operation of %s still %s after %ss'
                          % (snapshot_id, op.state, timeout))
            time.sleep(0.01)

    def assertSucceeded(self, snapshot_id, expected):
        op = self.wait_state(snapshot_id)
        self.assertEqual(('succeeded', None, expected),
                         (op.state, op.error, op.chain))

    def assertGuestRunning(self):
        import libvirt
        state = self.guest.domain.state()
        self.assertEqual(libvirt.VIR_DOMAIN_RUNNING, state[0],
                         'the guest is not running (state, reason: %s); see '
                         'its QEMU log' % state)

    def kill_qemu(self):
        [pid] = guest.qemu_pids(self.guest.name)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while self.guest.domain.isActive():
            if time.monotonic() > deadline:
                self.fail('libvirt did not notice that QEMU died')
            time.sleep(0.01)

    # 1. Concurrent merges.

    def test_merges_on_one_guest_run_one_at_a_time(self):
        for kinds in (('pull', 'pull', 'pull'),
                      ('commit', 'pull_base', 'pull')):
            while len(self.volumes[0].names) < 3:
                # After a round of pulls: chains long enough for a commit.
                for volume in self.volumes:
                    snapshot_id, expected = self.create(volume)
                    self.assertSucceeded(snapshot_id, expected)
                    volume.names = expected
                    volume.write()
            started = [self.delete(volume, kind)
                       for volume, kind in zip(self.volumes, kinds)]
            self.assertTrue(self.manager.wait_idle(180))
            self.assertGuestRunning()
            for volume, (snapshot_id, expected) in zip(self.volumes,
                                                       started):
                self.assertSucceeded(snapshot_id, expected)
                volume.names = expected
                volume.check()
        # Merges waited for the one before them on this guest.
        self.assertIn('waits for it (one block job per guest)',
                      self.log.output)

    # 2. A create goes by a long merge on the same guest.

    def test_create_does_not_wait_for_a_merge_on_the_same_guest(self):
        merging, waiting, creating = self.volumes
        pull, pull_expected = self.delete(merging, 'pull')
        domain = self.guest.domain
        deadline = time.monotonic() + 30
        while not domain.blockJobInfo(merging.target, 0):
            if time.monotonic() > deadline:
                self.fail('the pull never started')
            time.sleep(0.005)
        # Held to 16 MiB/s from the test's own connection: the pull of
        # 2 * LAYER MiB now takes about 8 s.
        domain.blockJobSetSpeed(merging.target, 16, 0)
        commit, commit_expected = self.delete(waiting, 'commit')
        accepted = time.monotonic()
        create, create_expected = self.create(creating)
        self.assertSucceeded(create, create_expected)
        created = time.monotonic()
        job = domain.blockJobInfo(merging.target, 0)
        self.assertTrue(job, 'the pull ended before the create did')
        # The pull copied nothing while the create switched its disk.
        self.assertIn('the block job on disk %s of guest %s is held still '
                      'during the switch' % (merging.target, self.guest.name),
                      self.log.output)
        # Accepted, journalled as running, and waiting for the guest.
        self.assertEqual('running', self.operation(commit).state)
        self.assertFalse(domain.blockJobInfo(waiting.target, 0),
                         'the commit started beside the pull')
        sys.stderr.write(
            'TIMING step=create_beside_merge seconds=%.3f pull_at=%d/%d\n'
            % (created - accepted, job['cur'], job['end']))
        domain.blockJobSetSpeed(merging.target, 0, 0)
        self.assertTrue(self.manager.wait_idle(120))
        self.assertSucceeded(pull, pull_expected)
        self.assertSucceeded(commit, commit_expected)
        self.assertGuestRunning()
        for volume, names in zip(self.volumes, (pull_expected,
                                                commit_expected,
                                                create_expected)):
            volume.names = names
            volume.check()

    # 3. Durable before reported.

    def _merge_then_kill(self, kind):
        volume = self.volumes[0]
        snapshot_id, expected = self.delete(volume, kind)
        while snapshot_id not in self.reporter.times:
            self.assertNotIn(self.operation(snapshot_id).state,
                             ('failed',))
            time.sleep(0.001)
        # As soon as Cinder has been told.
        self.kill_qemu()
        self.assertSucceeded(snapshot_id, expected)
        volume.names = expected
        return volume

    def test_pull_is_durable_when_reported(self):
        self._merge_then_kill('pull').check()

    def test_pull_onto_a_base_is_durable_when_reported(self):
        self._merge_then_kill('pull_base').check()

    def test_commit_is_durable_when_reported(self):
        self._merge_then_kill('commit').check()

    def test_without_the_flush_a_pull_is_lost(self):
        """The same kill with the flush taken away loses the data that was
        below the active image: the checks above can fail. (Should this
        ever pass on a newer QEMU, the flush may no longer be needed
        there; keep it for the QEMU versions that need it.)"""
        self.useFixture(fixtures.MonkeyPatch(
            'snapdriver.drivers.libvirt.flush.flush_guest',
            lambda *args: 0.0))
        self.useFixture(fixtures.MonkeyPatch(
            'snapdriver.drivers.libvirt.flush.sync_files', lambda *args: 0.0))
        volume = self._merge_then_kill('pull')
        lost = volume.model.mismatches(volume.path(volume.names[0]))
        self.assertTrue(lost, 'no data was lost without the flush')


#: strace -y output: ``PID call(FD<PATH>, ...) = RESULT``.
_SYSCALL = re.compile(r'^\d+ +(pwrite64|pwritev2?|fdatasync|fsync)'
                      r'\(\d+<([^>]+)>.*\) += (-?\d+)')


def unsynced_writes(trace_text):
    """What a qemu-img run left unsynced, from its strace.

    :returns: (paths written, paths whose last write no successful
        fsync/fdatasync followed)
    """
    dirty, written = set(), set()
    for line in trace_text.splitlines():
        match = _SYSCALL.match(line)
        if match is None:
            continue
        call, path, result = match.groups()
        if call.startswith('pwrite'):
            written.add(path)
            dirty.add(path)
        elif int(result) == 0:
            dirty.discard(path)
    return written, dirty


class OfflineMergeDurabilityTest(base.FunctionalTestCase):
    """qemu-img syncs what an offline merge wrote before it exits."""

    def setUp(self):
        super().setUp()
        uri = guest.libvirt_uri()
        if not uri:
            self.skipTest(guest.SKIP_REASON)
        strace = shutil.which('strace')
        if strace is None:
            self.skipTest('strace is not installed (tools/install-system-'
                          'deps.sh installs it)')
        self.conf.config(group='libvirt', connection_uri=uri)
        self.directory = self.useFixture(fixtures.TempDir()).path
        # qemu-img, as snapdriver runs it, under strace.
        bin_dir = self.useFixture(fixtures.TempDir()).path
        self.traces = self.useFixture(fixtures.TempDir()).path
        wrapper = os.path.join(bin_dir, 'qemu-img')
        with open(wrapper, 'w') as f:
            f.write('#!/bin/sh\nexec %s -f -qq -y -s 0 -e trace=pwrite64,'
                    'pwritev,pwritev2,fdatasync,fsync -o %s/trace.$$ %s '
                    '"$@"\n' % (strace, self.traces, shutil.which('qemu-img')))
        os.chmod(wrapper, os.stat(wrapper).st_mode | stat.S_IXUSR)
        self.useFixture(fixtures.EnvironmentVariable(
            'PATH', bin_dir + os.pathsep + os.environ['PATH']))
        self.driver = loader.load('libvirt')
        self.manager = manager_mod.OperationManager(
            self.driver, contract.RecordingReporter())
        self.addCleanup(self.manager.stop)

    def merge(self, file_to_merge, merge_target_file, layers=3):
        volume = builder.attach_volume(
            self, guest.libvirt_uri(), self.directory, str(uuid.uuid4()),
            layers=layers, running=False, size_mb=48,
            layer_writes={0: [(0, 16 * MiB)], 1: [(16 * MiB, 16 * MiB)]})
        for name in os.listdir(self.traces):
            os.unlink(os.path.join(self.traces, name))
        names = volume.names
        pick = {'top': names[1], 'base': names[2], None: None}
        snapshot_id = str(uuid.uuid4())
        self.manager.accept(None, objects.DeleteRequest(
            volume_id=volume.volume_id, snapshot_id=snapshot_id,
            file_to_merge=pick[file_to_merge],
            merge_target_file=pick[merge_target_file]))
        self.assertTrue(self.manager.wait_idle(120))
        op = self.manager.query(None, snapshot_id)[-1]
        self.assertEqual(('succeeded', None), (op.state, op.error))
        volume.names = op.chain
        volume.check()
        runs = []
        for name in sorted(os.listdir(self.traces)):
            with open(os.path.join(self.traces, name)) as f:
                runs.append(unsynced_writes(f.read()))
        return volume, runs

    def assertSynced(self, runs, expected_written):
        written = set().union(*(run[0] for run in runs))
        dirty = set().union(*(run[1] for run in runs))
        # Proof needs writes to look at (qemu-img writes with pwrite on a
        # thread pool; writes that strace cannot see would prove nothing).
        self.assertTrue(set(expected_written) <= written,
                        'strace saw writes to %s only' % sorted(written))
        self.assertEqual(set(), dirty, 'qemu-img exited without syncing')

    def test_pull_everything(self):
        volume, runs = self.merge(None, None)
        self.assertSynced(runs, [volume.path(volume.names[0])])

    def test_pull_onto_a_base(self):
        volume, runs = self.merge('base', None)
        self.assertSynced(runs, [volume.path(volume.names[0])])

    def test_commit(self):
        volume, runs = self.merge('top', 'base')
        # The data went into the base; the image above was relinked.
        self.assertSynced(runs, [volume.path(name) for name in volume.names])


class LeftPausedTest(base.FunctionalTestCase):
    """A snapdriver killed between the pause of a flush and the resume
    leaves the guest paused; the next one resumes it, and only it."""

    def test_resumed_at_start_only_when_snapdriver_paused_it(self):
        import libvirt
        uri = guest.libvirt_uri()
        if not uri:
            self.skipTest(guest.SKIP_REASON)
        self.conf.config(group='libvirt', connection_uri=uri)
        directory = self.useFixture(fixtures.TempDir()).path
        ours = self.useFixture(guest.GuestFixture(uri, directory,
                                                  str(uuid.uuid4())))
        theirs = self.useFixture(guest.GuestFixture(uri, directory,
                                                    str(uuid.uuid4())))
        # As _pause_and_resume leaves it when killed before the resume.
        flush._mark(ours.domain, ours.name, 'the test')
        ours.domain.suspend()
        theirs.domain.suspend()
        loader.load('libvirt')
        self.assertEqual(libvirt.VIR_DOMAIN_RUNNING,
                         ours.domain.state()[0])
        self.assertEqual(libvirt.VIR_DOMAIN_PAUSED,
                         theirs.domain.state()[0])
        self.assertFalse(flush._marked(ours.domain))
