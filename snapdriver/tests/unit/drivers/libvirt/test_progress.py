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

"""How far the libvirt driver's merges are: QEMU's count of a block job,
qemu-img's percentage of an offline merge."""

import types

import fixtures

from snapdriver import chain
from snapdriver.drivers.libvirt import blockdev
from snapdriver.drivers.libvirt import progress
from snapdriver.drivers.libvirt import qcow2
from snapdriver import exception
from snapdriver.tests import base as test_base
from snapdriver.tests.unit.drivers.libvirt import test_driver

MiB = 1 << 20


def _plan(snapshot_id='s1', target='vdb'):
    disk = types.SimpleNamespace(details={'domain_uuid': 'u1'},
                                 target=target)
    return types.SimpleNamespace(snapshot_id=snapshot_id, disk=disk)


class Device:
    """Stands in for a BlockDevice: answers job_info from a list."""

    def __init__(self, *answers):
        self.answers = list(answers)

    def job_info(self):
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class TestMergeJobs(test_base.TestCase):

    def test_a_block_job_counts_in_bytes(self):
        jobs = progress.MergeJobs()
        plan = _plan()
        self.assertIsNone(jobs.progress(plan))      # nothing started yet
        jobs.live(plan, Device(
            {'cur': 0, 'end': 0},                   # not sized yet
            {'cur': 3 * MiB, 'end': 8 * MiB},
            blockdev.JOB_UNKNOWN,                   # libvirtd away
            exception.OperationFailed(reason='guest gone')))
        self.assertIsNone(jobs.progress(plan))
        seen = jobs.progress(plan)
        self.assertEqual((3 * MiB, 8 * MiB), (seen.done, seen.total))
        self.assertIsNotNone(seen.started_at)
        # What cannot be asked leaves the last figures.
        self.assertEqual(seen, jobs.progress(plan))
        self.assertEqual(seen, jobs.progress(plan))
        jobs.ended(plan)
        # Not asked again once ended (a later job is not ours).
        self.assertEqual(seen, jobs.progress(plan))
        # Another snapshot's merge of the same disk is not this one.
        self.assertIsNone(jobs.progress(_plan('s2')))

    def test_qemu_img_percentages_in_bytes(self):
        jobs = progress.MergeJobs()
        plan = _plan()
        on_percent = jobs.offline(plan, 64 * MiB)
        self.assertEqual(0, jobs.progress(plan).done)
        on_percent(37.5)
        self.assertEqual((24 * MiB, 64 * MiB),
                         (jobs.progress(plan).done, jobs.progress(plan).total))
        on_percent(100.0)
        self.assertEqual(64 * MiB, jobs.progress(plan).done)


class TestDriverProgress(test_driver.DriverTestCase):

    def test_an_offline_merge_reports_qemu_img_percentages(self):
        self.add_reference_domain(running=False)
        location = self.driver.locate_disk('V')
        plan = chain.plan_delete(location, 'snap-1', 'snap.img',
                                 'other-snap.img')
        self.driver.delete_snapshot(plan)
        # The fake qemu-img printed 0, 50 and 100 %; its image is 64 MiB.
        job = self.driver.merge_progress(plan)
        self.assertEqual((64 * MiB, 64 * MiB), (job.done, job.total))

    def test_no_size_no_progress(self):
        self.add_reference_domain(running=False)
        location = self.driver.locate_disk('V')
        plan = chain.plan_delete(location, 'snap-1', 'snap.img',
                                 'other-snap.img')
        self.qemu_img.failures['info'] = 'qemu-img: Could not open'
        self.assertIsNone(self.driver._offline_progress(plan))
        self.assertIsNone(self.driver.merge_progress(plan))

    def test_the_total_is_read_in_process_from_a_qcow2_header(self):
        self.add_reference_domain(running=False)
        location = self.driver.locate_disk('V')
        plan = chain.plan_delete(location, 'snap-1', 'snap.img',
                                 'other-snap.img')
        del self.qemu_img.commands[:]  # (locating the disk read its chain)
        read = []

        def header(path):
            read.append(path)
            return qcow2.Header(version=3, virtual_size=5 * MiB,
                                cluster_bits=16, backing_file='snap.img',
                                backing_format='qcow2', data_file=None,
                                incompatible_features=0, identity=(1, 2))
        self.useFixture(fixtures.MonkeyPatch(
            'snapdriver.drivers.libvirt.qcow2.read', header))
        self.assertIsNotNone(self.driver._offline_progress(plan))
        self.assertEqual(5 * MiB, self.driver.merge_progress(plan).total)
        self.assertEqual([location.active.path], read)
        self.assertEqual([], self.qemu_img.commands_of('info'))
