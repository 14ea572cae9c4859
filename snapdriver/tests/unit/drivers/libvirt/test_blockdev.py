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

"""Tests of one disk's block jobs: starting, following, waiting, aborting.

The device runs on the fake libvirt connection, through the real
:class:`host.Host` and :class:`blockjob.BlockJobTracker`, so that events
take the way libvirt's do.
"""

import threading
import time

import fixtures

from snapdriver import chain
from snapdriver.drivers.libvirt import blockdev
from snapdriver.drivers.libvirt import blockjob
from snapdriver.drivers.libvirt import host
from snapdriver import exception
from snapdriver.tests.unit.drivers.libvirt import base
from snapdriver.tests.unit.drivers.libvirt import fakes

libvirt = fakes.libvirt


class FakeClock:
    def __init__(self, step):
        self.now = 0.0
        self.step = step

    def __call__(self):
        self.now += self.step
        return self.now


class BlockDeviceTestCase(base.LibvirtTestCase):

    def setUp(self):
        super().setUp()
        active = self.images.add_chain('/d', ['top', 'mid', 'base'])
        self.dom = self.conn.add_domain('g1', [
            fakes.FakeDisk('vda', serial='V', path=active),
            fakes.FakeDisk('vdb', serial='W', path=active)])
        self.other = self.conn.add_domain('g2', [])
        self.tracker = blockjob.BlockJobTracker()
        self.host = host.Host('qemu:///test', self.tracker.handle_event)
        self.host.get_connection()
        # Only an event can end a wait before the next poll, unless a test
        # polls faster.
        self.conf.config(group='libvirt', block_job_poll_interval=3600,
                         block_job_timeout=3600)

    def device(self, target='vda', clock=time.monotonic):
        location = chain.DiskLocation(
            volume_id='V', guest='g1', target=target, running=True,
            chain=(chain.ChainEntry('top', '/d/top'),
                   chain.ChainEntry('mid', '/d/mid'),
                   chain.ChainEntry('base', '/d/base')),
            directory='/d', details={'domain_uuid': self.dom.uuid})
        return blockdev.BlockDevice(self.host, self.tracker, location,
                                    self.dom, clock=clock)

    def leave_job(self, polls, target='vda'):
        """A job that blockJobInfo shows ``polls`` times, then not."""
        self.dom.send_events = False
        self.dom.jobs[target] = fakes.FakeJob(
            kind=libvirt.VIR_DOMAIN_BLOCK_JOB_TYPE_PULL, end=fakes.MIB,
            effect=lambda: None, polls_left=polls)

    def on_poll(self, action, target='vda'):
        """Run ``action(poll number)`` at each look at the job on
        ``target``, before libvirt answers; :returns: the poll count."""
        real_info = self.dom.blockJobInfo
        polls = []

        def job_info(disk, flags):
            if disk == target:
                polls.append(disk)
                action(len(polls))
            return real_info(disk, flags)
        self.dom.blockJobInfo = job_info
        return polls

    def emit(self, status, dom=None, target='vda'):
        self.conn.emit_block_job(dom or self.dom, target,
                                 libvirt.VIR_DOMAIN_BLOCK_JOB_TYPE_PULL,
                                 status)

    # Waiting

    def test_job_already_gone(self):
        polls = self.on_poll(lambda number: None)
        with self.device().watching() as device:
            end = device.wait()
        self.assertIsNone(end.status)
        self.assertEqual(1, len(polls))

    def test_event_ends_the_wait_before_the_next_poll(self):
        self.leave_job(polls=1)

        def first_poll(number):
            if number == 1:
                threading.Timer(
                    0.05, self.emit,
                    (libvirt.VIR_DOMAIN_BLOCK_JOB_COMPLETED,)).start()
        polls = self.on_poll(first_poll)
        with self.device().watching() as device:
            # A poll interval far beyond the test's timeout: only the event
            # can end this wait in time.
            self.assertEqual(libvirt.VIR_DOMAIN_BLOCK_JOB_COMPLETED,
                             device.wait().status)
        self.assertEqual(2, len(polls))

    def test_event_arriving_during_a_poll_is_not_missed(self):
        self.leave_job(polls=1)

        def first_poll(number):
            if number == 1:
                self.emit(libvirt.VIR_DOMAIN_BLOCK_JOB_CANCELED)
        self.on_poll(first_poll)
        with self.device().watching() as device:
            end = device.wait()
        self.assertEqual(libvirt.VIR_DOMAIN_BLOCK_JOB_CANCELED, end.status)
        self.assertTrue(end.cancelled)

    def test_polling_without_events(self):
        self.conf.config(group='libvirt', block_job_poll_interval=0.01)
        self.leave_job(polls=2)
        polls = self.on_poll(lambda number: None)
        with self.device().watching() as device:
            self.assertIsNone(device.wait().status)
        self.assertEqual(3, len(polls))

    def test_an_event_does_not_end_a_job_that_is_still_there(self):
        # A late event of an earlier job on the same disk, or READY: the
        # job is over only when blockJobInfo no longer shows it.
        self.conf.config(group='libvirt', block_job_poll_interval=0.01)
        self.leave_job(polls=2)
        polls = self.on_poll(lambda number: self.emit(
            libvirt.VIR_DOMAIN_BLOCK_JOB_COMPLETED))
        with self.device().watching() as device:
            device.wait()
        self.assertEqual(3, len(polls))
        self.assertEqual({}, self.dom.jobs)

    def test_events_of_other_disks_and_domains_are_ignored(self):
        self.conf.config(group='libvirt', block_job_poll_interval=0.01)
        self.leave_job(polls=1)

        def others(number):
            self.emit(libvirt.VIR_DOMAIN_BLOCK_JOB_CANCELED, target='vdb')
            self.emit(libvirt.VIR_DOMAIN_BLOCK_JOB_CANCELED, dom=self.other)
        self.on_poll(others)
        with self.device().watching() as device:
            self.assertIsNone(device.wait().status)

    def test_events_nobody_waits_for_are_dropped(self):
        self.emit(libvirt.VIR_DOMAIN_BLOCK_JOB_CANCELED)
        with self.device().watching() as device:
            self.assertIsNone(device.wait().status)

    def test_timeout_aborts_the_job(self):
        self.conf.config(group='libvirt', block_job_timeout=150,
                         block_job_poll_interval=0.01)
        self.dom.job_outcome = 'hang'
        device = self.device(clock=FakeClock(step=100))
        with device.watching():
            device.pull('base')
            error = self.assertRaises(exception.OperationFailed,
                                      device.wait)
        self.assertEqual("The block pull on disk vda of guest g1 did not "
                         "finish within 150 seconds ([libvirt] "
                         "block_job_timeout; 33554432 of 67108864 bytes "
                         "done) and was aborted.", str(error))
        self.assertEqual([('blockJobAbort', 'g1', 'vda', 0)],
                         self.conn.calls_of('blockJobAbort'))
        self.assertEqual({}, self.dom.jobs)

    def test_timeout_of_a_job_it_did_not_start(self):
        self.conf.config(group='libvirt', block_job_timeout=150,
                         block_job_poll_interval=0.01)
        self.leave_job(polls=10 ** 9)
        device = self.device(clock=FakeClock(step=100))
        real_info = self.dom.blockJobInfo

        def without_progress(disk, flags):
            return {'type': 1} if real_info(disk, flags) else {}
        self.dom.blockJobInfo = without_progress
        with device.watching():
            error = self.assertRaises(exception.OperationFailed,
                                      device.wait)
        self.assertEqual("The block job on disk vda of guest g1 did not "
                         "finish within 150 seconds ([libvirt] "
                         "block_job_timeout; progress unknown) and was "
                         "aborted.", str(error))

    def test_failed_abort_is_logged(self):
        self.device().abort()
        self.assertIn('Aborting the block job on disk vda of guest g1 '
                      'failed: invalid argument: disk vda does not have an '
                      'active block job', self.log.output)

    def test_one_waiter_per_disk(self):
        with self.device().watching():
            with self.device('vdb').watching():
                pass
            self.assertRaises(RuntimeError,
                              self.device().watching().__enter__)

    def test_watch_ends_cleanly_on_error(self):
        def fail(disk, flags):
            raise ValueError()
        self.dom.blockJobInfo = fail
        with self.device().watching() as device:
            self.assertRaises(ValueError, device.wait)
        with self.device().watching():
            pass

    def test_wait_and_start_only_while_watching(self):
        device = self.device()
        self.assertRaises(RuntimeError, device.wait)
        self.assertRaises(RuntimeError, device.pull, None)
        self.assertRaises(RuntimeError, device.commit, 'base', 'mid')
        self.assertEqual([], self.conn.changes())

    # Looking at the job

    def test_job_info_looks_the_guest_up_each_time(self):
        self.leave_job(polls=10 ** 9)
        device = self.device()
        self.assertEqual(fakes.MIB, device.job_info()['end'])
        self.restart_libvirtd().drop()
        self.assertEqual(fakes.MIB, device.job_info()['end'])
        self.assertEqual(2, len(self.opened))

    def test_guest_gone(self):
        self.conn.domains.remove(self.dom)
        error = self.assertRaises(exception.OperationFailed,
                                  self.device().job_info)
        self.assertEqual("Guest g1 went away during the block job on disk "
                         "vda.", str(error))

    def test_guest_stopped_ends_the_job(self):
        self.leave_job(polls=10 ** 9)
        self.dom.running = False
        self.assertEqual({}, self.device().job_info())
        self.assertIn('Guest g1 stopped during the block job on disk vda',
                      self.log.output)

    def test_libvirtd_unreachable_is_not_the_end(self):
        def refuse(uri):
            raise fakes.libvirt_error(libvirt.VIR_ERR_SYSTEM_ERROR,
                                      'Failed to connect socket')
        self.conn.drop()
        self.useFixture(fixtures.MonkeyPatch('libvirt.open', refuse))
        device = self.device()
        self.assertEqual(blockdev.JOB_UNKNOWN, device.job_info())
        self.assertEqual(blockdev.JOB_UNKNOWN, device.job_info())
        # Said once a minute, not at every poll.
        self.assertEqual(1, self.log.output.count(
            'Cannot look at the block job on disk vda of guest g1 (Failed '
            'to connect socket); still waiting'))

    # Starting a job

    def test_pull(self):
        with self.device().watching() as device:
            device.pull('base')
        self.assertEqual([('blockRebase', 'g1', 'vda', 'base', 0,
                           libvirt.VIR_DOMAIN_BLOCK_REBASE_RELATIVE)],
                         self.conn.changes())

    def test_pull_of_the_whole_chain(self):
        with self.device().watching() as device:
            device.pull(None)
        self.assertEqual([('blockRebase', 'g1', 'vda', None, 0, 0)],
                         self.conn.changes())

    def test_commit(self):
        with self.device().watching() as device:
            device.commit('base', 'mid')
        self.assertEqual([('blockCommit', 'g1', 'vda', 'base', 'mid', 0,
                           libvirt.VIR_DOMAIN_BLOCK_COMMIT_RELATIVE)],
                         self.conn.changes())

    def test_network_disk_images_by_index(self):
        dom = self.conn.add_domain('g3', [fakes.FakeDisk(
            'vdc', serial='N', disk_type='network', protocol='netfs',
            chain=[('vol/top', 'qcow2', None), ('vol/mid', 'qcow2', 1),
                   ('vol/base', 'qcow2', 2)])])
        location = chain.DiskLocation(
            volume_id='N', guest='g3', target='vdc', running=True,
            chain=(chain.ChainEntry('top', 'vol/top', index=0),
                   chain.ChainEntry('mid', 'vol/mid', index=1),
                   chain.ChainEntry('base', 'vol/base', index=2)),
            source_type='network', details={'domain_uuid': dom.uuid})
        device = blockdev.BlockDevice(self.host, self.tracker, location, dom)
        with device.watching():
            device.commit('base', 'mid')
        self.assertEqual([('blockCommit', 'g3', 'vdc', 'vdc[2]', 'vdc[1]', 0,
                           libvirt.VIR_DOMAIN_BLOCK_COMMIT_RELATIVE)],
                         self.conn.changes())

    def test_refusal(self):
        self.leave_job(polls=10 ** 9)
        with self.device().watching() as device:
            error = self.assertRaises(exception.OperationFailed,
                                      device.commit, 'base', 'mid')
        self.assertEqual("libvirt refused the block commit on disk vda of "
                         "guest g1: disk 'vda' already in active block job",
                         str(error))


class JobEndTestCase(base.LibvirtTestCase):

    def test_completed_or_without_event(self):
        for status in (libvirt.VIR_DOMAIN_BLOCK_JOB_COMPLETED, None):
            end = blockdev.JobEnd(status, '/')
            self.assertFalse(end.failed or end.cancelled)
            self.assertEqual('', end.hint())

    def test_failed_names_the_free_space(self):
        end = blockdev.JobEnd(libvirt.VIR_DOMAIN_BLOCK_JOB_FAILED, '/')
        self.assertTrue(end.failed)
        self.assertRegex(end.hint(), r'^ libvirt reported that the job '
                         r'failed \(\d+ MiB free in /\)\.$')
        self.assertEqual(' libvirt reported that the job failed.',
                         blockdev.JobEnd(end.status, None).hint())
        self.assertEqual(' libvirt reported that the job failed.',
                         blockdev.JobEnd(end.status, '/nonexistent').hint())

    def test_cancelled(self):
        end = blockdev.JobEnd(libvirt.VIR_DOMAIN_BLOCK_JOB_CANCELED, '/')
        self.assertTrue(end.cancelled)
        self.assertEqual(' libvirt reported that the job was cancelled.',
                         end.hint())
