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

import os
import threading

import fixtures

from snapdriver import cpus
from snapdriver.drivers.libvirt import qemuimg
from snapdriver.tests import base


class PinTestCase(base.TestCase):
    """On the real process: its affinity is put back afterwards."""

    def setUp(self):
        super().setUp()
        if not hasattr(os, 'sched_getaffinity'):
            self.skipTest("no sched_getaffinity on this platform")
        self.before = os.sched_getaffinity(0)
        self.addCleanup(self._restore)
        self.useFixture(fixtures.MonkeyPatch(
            'snapdriver.cpus.ORIGINAL', None))

    def _restore(self):
        for task in os.listdir('/proc/self/task'):
            try:
                os.sched_setaffinity(int(task), self.before)
            except OSError:
                pass

    def test_every_thread_on_one_cpu(self):
        if len(self.before) < 2:
            self.skipTest("one CPU only: nothing to pin")
        started = threading.Event()
        stop = threading.Event()

        def idle():
            started.set()
            stop.wait(10)
        thread = threading.Thread(target=idle)
        thread.start()
        self.addCleanup(thread.join)
        self.addCleanup(stop.set)
        started.wait(10)
        self.conf.config(single_cpu=True)
        cpu = cpus.pin_to_one()
        self.assertIn(cpu, self.before)
        self.assertEqual(sorted(self.before)[
            os.getpid() % len(self.before)], cpu)
        self.assertEqual(frozenset(self.before), cpus.ORIGINAL)
        self.assertEqual({cpu}, os.sched_getaffinity(thread.native_id))
        self.assertEqual({cpu}, os.sched_getaffinity(0))
        # qemu-img's copies get every CPU back.
        cmd = qemuimg._on_every_cpu(('qemu-img', 'commit', 'x'))
        self.assertEqual(('--cpu-list',
                          ','.join(map(str, sorted(self.before))),
                          'qemu-img', 'commit', 'x'), cmd[1:])

    def test_off(self):
        self.conf.config(single_cpu=False)
        self.assertIsNone(cpus.pin_to_one())
        self.assertEqual(self.before, os.sched_getaffinity(0))
        self.assertEqual(('qemu-img', 'info'),
                         qemuimg._on_every_cpu(('qemu-img', 'info')))
