"""Tests of waiting for block jobs."""

import threading

from snapdriver.drivers.libvirt import blockjob
from snapdriver.tests import base

UUID = '9a5b0a4c-5e3e-4b8f-9d0a-1c2d3e4f5a6b'
COMPLETED = 0  # libvirt's statuses are opaque values to the tracker
CANCELED = 2
JOB = {'type': 1, 'cur': 10, 'end': 20}


class FakeClock:
    def __init__(self, step):
        self.now = 0.0
        self.step = step

    def __call__(self):
        self.now += self.step
        return self.now


class BlockJobTrackerTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.tracker = blockjob.BlockJobTracker()

    def test_job_already_gone(self):
        with self.tracker.watch(UUID, 'vda') as watch:
            self.assertIsNone(watch.wait(lambda: {}, 10, 10))

    def test_event_ends_the_wait_before_the_next_poll(self):
        polls = []

        def job_info():
            polls.append(1)
            if len(polls) == 1:
                threading.Timer(0.05, self.tracker.handle_event,
                                (UUID, 'vda', 1, COMPLETED)).start()
                return JOB
            return {}
        with self.tracker.watch(UUID, 'vda') as watch:
            # A poll interval far beyond the test's timeout: only the
            # event can end this wait in time.
            self.assertEqual(COMPLETED, watch.wait(job_info, 3600, 3600))
        self.assertEqual(2, len(polls))

    def test_event_arriving_during_a_poll_is_not_missed(self):
        def job_info():
            if not events_sent:
                events_sent.append(1)
                self.tracker.handle_event(UUID, 'vda', 1, CANCELED)
                return JOB
            return {}
        events_sent = []
        with self.tracker.watch(UUID, 'vda') as watch:
            self.assertEqual(CANCELED, watch.wait(job_info, 3600, 3600))

    def test_polling_without_events(self):
        answers = [JOB, JOB, {}]
        with self.tracker.watch(UUID, 'vda') as watch:
            self.assertIsNone(watch.wait(lambda: answers.pop(0), 10, 0.01))
        self.assertEqual([], answers)

    def test_an_event_does_not_end_a_job_that_is_still_there(self):
        # A late event of an earlier job on the same disk, or READY: the
        # job is over only when blockJobInfo no longer shows it.
        answers = [JOB, JOB, {}]

        def job_info():
            self.tracker.handle_event(UUID, 'vda', 1, COMPLETED)
            return answers.pop(0)
        with self.tracker.watch(UUID, 'vda') as watch:
            watch.wait(job_info, 10, 0.01)
        self.assertEqual([], answers)

    def test_events_of_other_disks_and_domains_are_ignored(self):
        answers = [JOB, {}]

        def job_info():
            self.tracker.handle_event(UUID, 'vdb', 1, CANCELED)
            self.tracker.handle_event('other', 'vda', 1, CANCELED)
            return answers.pop(0)
        with self.tracker.watch(UUID, 'vda') as watch:
            self.assertIsNone(watch.wait(job_info, 10, 0.01))

    def test_events_nobody_waits_for_are_dropped(self):
        self.tracker.handle_event(UUID, 'vda', 1, CANCELED)
        with self.tracker.watch(UUID, 'vda') as watch:
            self.assertIsNone(watch.wait(lambda: {}, 10, 10))

    def test_timeout(self):
        tracker = blockjob.BlockJobTracker(clock=FakeClock(step=100))
        with tracker.watch(UUID, 'vda') as watch:
            error = self.assertRaises(blockjob.BlockJobTimeout, watch.wait,
                                      lambda: JOB, 150, 0.01)
        self.assertEqual(JOB, error.args[0])

    def test_one_waiter_per_disk(self):
        with self.tracker.watch(UUID, 'vda'):
            with self.tracker.watch(UUID, 'vdb'):
                pass
            self.assertRaises(RuntimeError,
                              self.tracker.watch(UUID, 'vda').__enter__)

    def test_watch_ends_cleanly_on_error(self):
        def fail():
            raise ValueError()
        with self.tracker.watch(UUID, 'vda') as watch:
            self.assertRaises(ValueError, watch.wait, fail, 10, 10)
        with self.tracker.watch(UUID, 'vda'):
            pass


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
