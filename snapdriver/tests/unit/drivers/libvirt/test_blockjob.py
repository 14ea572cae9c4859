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

"""Tests of the block jobs of a guest: events, slots, who is busy."""

import threading
import time

from snapdriver.drivers.libvirt import blockjob
from snapdriver.tests import base
from snapdriver.tests.unit.drivers.libvirt import base as libvirt_base
from snapdriver.tests.unit.drivers.libvirt import fakes

UUID = '9a5b0a4c-5e3e-4b8f-9d0a-1c2d3e4f5a6b'
COMPLETED = 0  # libvirt's statuses are opaque values to the tracker
CANCELED = 2


class BlockJobTrackerTestCase(base.TestCase):
    """The events of watched disks; waiting with them is
    test_blockdev's."""

    def setUp(self):
        super().setUp()
        self.tracker = blockjob.BlockJobTracker()

    def test_events_of_the_watched_disk_are_kept_until_taken(self):
        with self.tracker.watch(UUID, 'vda') as watch:
            self.tracker.handle_event(UUID, 'vda', 1, COMPLETED)
            self.tracker.handle_event(UUID, 'vda', 1, CANCELED)
            self.assertEqual([(1, COMPLETED), (1, CANCELED)], watch.take())
            self.assertEqual([], watch.take())

    def test_events_of_other_disks_and_domains_are_ignored(self):
        with self.tracker.watch(UUID, 'vda') as watch:
            self.tracker.handle_event(UUID, 'vdb', 1, CANCELED)
            self.tracker.handle_event('other', 'vda', 1, CANCELED)
            self.assertEqual([], watch.take())

    def test_events_nobody_waits_for_are_dropped(self):
        self.tracker.handle_event(UUID, 'vda', 1, CANCELED)
        with self.tracker.watch(UUID, 'vda') as watch:
            self.assertEqual([], watch.take())

    def test_sleep_ends_with_an_event(self):
        with self.tracker.watch(UUID, 'vda') as watch:
            threading.Timer(0.05, self.tracker.handle_event,
                            (UUID, 'vda', 1, COMPLETED)).start()
            started = time.monotonic()
            watch.sleep(3600)
            self.assertLess(time.monotonic() - started, 60)
            self.assertEqual([(1, COMPLETED)], watch.take())

    def test_sleep_does_not_sleep_through_an_event_not_taken(self):
        with self.tracker.watch(UUID, 'vda') as watch:
            self.tracker.handle_event(UUID, 'vda', 1, COMPLETED)
            started = time.monotonic()
            watch.sleep(3600)
            self.assertLess(time.monotonic() - started, 60)

    def test_sleep_without_events(self):
        with self.tracker.watch(UUID, 'vda') as watch:
            started = time.monotonic()
            watch.sleep(0.05)
            self.assertGreaterEqual(time.monotonic() - started, 0.05)
            self.assertEqual([], watch.take())

    def test_one_waiter_per_disk(self):
        with self.tracker.watch(UUID, 'vda'):
            with self.tracker.watch(UUID, 'vdb'):
                pass
            self.assertRaises(RuntimeError,
                              self.tracker.watch(UUID, 'vda').__enter__)

    def test_watch_ends_cleanly_on_error(self):
        def fail():
            with self.tracker.watch(UUID, 'vda'):
                raise ValueError()
        self.assertRaises(ValueError, fail)
        with self.tracker.watch(UUID, 'vda'):
            pass
        self.tracker.handle_event(UUID, 'vda', 1, CANCELED)


class GuestJobSlotsTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.slots = blockjob.GuestJobSlots()

    def _holder(self, name, order, release, waited=None):
        def run():
            with self.slots.hold(UUID, on_wait=lambda: waited.append(name)
                                 if waited is not None else None):
                order.append(name)
                release.wait(10)
        thread = threading.Thread(target=run)
        thread.start()
        self.addCleanup(thread.join, 10)
        return thread

    def _wait_for(self, predicate):
        for _ in range(1000):
            if predicate():
                return
            threading.Event().wait(0.005)
        self.fail('condition never met')

    def test_first_come_first_served(self):
        order, waited = [], []
        releases = [threading.Event() for _ in range(3)]
        for number, release in enumerate(releases):
            self._holder(number, order, release, waited)
            self._wait_for(lambda: self.slots.waiting(UUID) == number + 1)
        self.assertEqual([0], order)
        self.assertEqual([1, 2], waited)
        for number, release in enumerate(releases):
            release.set()
            self._wait_for(lambda: len(order) == min(number + 2, 3))
        self.assertEqual([0, 1, 2], order)
        self._wait_for(lambda: self.slots.waiting(UUID) == 0)

    def test_other_guests_do_not_wait(self):
        release = threading.Event()
        self.addCleanup(release.set)
        self._holder('first', [], release)
        self._wait_for(lambda: self.slots.waiting(UUID) == 1)
        with self.slots.hold('another-guest', on_wait=self.fail):
            pass

    def test_released_when_the_holder_fails(self):
        def fail():
            with self.slots.hold(UUID):
                raise RuntimeError('job refused')
        self.assertRaises(RuntimeError, fail)
        self.assertEqual(0, self.slots.waiting(UUID))
        with self.slots.hold(UUID, on_wait=self.fail):
            pass


@libvirt_base.requires_binding
class BusyTestCase(base.TestCase):

    def test_disks_with_a_job(self):
        images = fakes.FakeImages()
        conn = fakes.FakeConnection(images)
        images.add('/d/a')
        dom = conn.add_domain('g', [fakes.FakeDisk('vda', path='/d/a'),
                                    fakes.FakeDisk('vdb', path='/d/a'),
                                    fakes.FakeDisk('vdc', path='/d/a')])
        for target in ('vdc', 'vdb'):
            dom.jobs[target] = fakes.FakeJob(kind=1, end=fakes.MIB,
                                             effect=None, polls_left=9)
        self.assertEqual(['vdb', 'vdc'],
                         blockjob.busy(dom, ['vda', 'vdb', 'vdc']))

    def test_a_disk_libvirt_says_nothing_about_has_no_job(self):
        images = fakes.FakeImages()
        conn = fakes.FakeConnection(images)
        images.add('/d/a')
        dom = conn.add_domain('g', [fakes.FakeDisk('vda', path='/d/a')])
        dom.jobs['vda'] = fakes.FakeJob(kind=1, end=fakes.MIB, effect=None,
                                        polls_left=9)
        dom.running = False
        self.assertEqual([], blockjob.busy(dom, ['vda']))
