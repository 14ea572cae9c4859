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

"""A merge's progress on a real guest, as GET and the log show it.

The volume's middle layer holds 48 MiB of data; the block job copies it at
``[libvirt] merge_bandwidth`` = 8 MiB/s, so that it runs for a few seconds
and snapdriver (``[DEFAULT] progress_interval`` = 0.2 s) looks at it many
times. GET is polled meanwhile; every answer seen is kept, and the test
checks what a person watching would rely on: the bytes and the percentage
only go up, the total is the disk's, a rate and a time left are shown
while the job runs, and once it ended the job's time and average rate.
The guest's data is checked afterwards as in every libvirt test.

A stopped guest's merge is qemu-img's: its progress is what qemu-img -p
printed (too quick here to be seen while it runs; its figures once ended
are checked).
"""

import time
import uuid

from testtools import content

from snapdriver.tests.functional import test_libvirt_api

MiB = test_libvirt_api.MiB
DISK_MB = 64
LAYER = 48 * MiB
BANDWIDTH = 8       # MiB/s


class TestLibvirtProgress(test_libvirt_api.LibvirtApiTestCase):

    def server_conf(self, **libvirt_opts):
        conf = super().server_conf(**libvirt_opts)
        conf['DEFAULT']['progress_interval'] = 0.2
        return conf

    def setUp(self):
        super().setUp()
        self.start_server(merge_bandwidth=BANDWIDTH)

    def watch(self, snapshot_id, timeout=120):
        """GET until the operation is over; every progress seen while it
        ran, and the operation at the end."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            op = self.operation(snapshot_id)
            if op['state'] in test_libvirt_api.FINAL:
                self.addDetail('progress-seen', content.json_content(seen))
                return seen, op
            if op['progress'] is not None:
                seen.append(op['progress'])
            self.assertLess(time.monotonic(), deadline, op)
            time.sleep(0.1)

    def merge(self, volume, file_to_merge, merge_target_file):
        snapshot_id = str(uuid.uuid4())
        answer = self.send_delete(volume.volume_id, snapshot_id,
                                  file_to_merge, merge_target_file)
        self.assertEqual(204, answer.status, answer)
        return self.watch(snapshot_id)

    def record(self, step, seen, op):
        """The figures, in the test's details and on stderr."""
        final = op['progress']
        self.record_timing(
            step, final['job_seconds'], looks=len(seen),
            percents='/'.join('%g' % p['percent'] for p in seen) or '-',
            average_mib_s='%.1f' % (final['average_rate_bytes_per_second']
                                    / MiB))

    def assert_final(self, op):
        self.assertEqual('succeeded', op['state'], op)
        final = op['progress']
        self.assertEqual((DISK_MB * MiB, DISK_MB * MiB, 100.0, None, None),
                         (final['bytes_done'], final['bytes_total'],
                          final['percent'], final['eta_seconds'],
                          final['rate_bytes_per_second']), final)
        self.assertGreater(final['job_seconds'], 0)
        self.assertGreater(final['average_rate_bytes_per_second'], 0)
        return final

    def test_a_block_pull_shows_its_progress(self):
        volume = self.attach(layers=3, size_mb=DISK_MB,
                             layer_writes={1: [(0, LAYER)]})
        base = volume.names[2]
        seen, op = self.merge(volume, base, None)
        self.record('pull_progress', seen, op)
        final = self.assert_final(op)
        # Seen while running: several looks, only going up, the disk's
        # size as the total, a rate and a time left.
        done = [p['bytes_done'] for p in seen]
        self.assertGreater(len(set(done)), 3, seen)
        self.assertEqual(sorted(done), done)
        self.assertEqual({DISK_MB * MiB}, {p['bytes_total'] for p in seen})
        self.assertTrue(all(p['percent'] < 100 for p in seen[:-1]), seen)
        rated = [p for p in seen if p['rate_bytes_per_second']]
        self.assertTrue(rated, seen)
        self.assertTrue(all(p['eta_seconds'] is not None for p in rated))
        self.assertTrue(all(p['job_seconds'] is None for p in seen))
        # The job was slowed to 8 MiB/s for 48 MiB of data: it ran for
        # seconds, and the rates shown are the job's (the data it copied
        # at the bandwidth, the rest at once: never slower than it).
        self.assertGreater(final['job_seconds'], 1)
        # The log said so every 10 %.
        tenths = [line for line in self.server.log_text().splitlines()
                  if op['snapshot_id'] in line and '% done (' in line]
        self.assertGreaterEqual(len(tenths), 3, tenths)
        # And the guest's data is as it was.
        volume.check([volume.names[0], base])

    def test_a_block_commit_shows_its_progress(self):
        volume = self.attach(layers=3, size_mb=DISK_MB,
                             layer_writes={1: [(0, LAYER)]})
        top, base = volume.names[1], volume.names[2]
        seen, op = self.merge(volume, top, base)
        self.record('commit_progress', seen, op)
        self.assert_final(op)
        self.assertGreater(len({p['bytes_done'] for p in seen}), 3, seen)
        volume.check([volume.names[0], base])

    def test_an_offline_commit_shows_qemu_img_figures(self):
        volume = self.attach(layers=3, size_mb=DISK_MB, running=False,
                             layer_writes={1: [(0, LAYER)]})
        top, base = volume.names[1], volume.names[2]
        seen, op = self.merge(volume, top, base)
        self.record('offline_commit_progress', seen, op)
        self.assert_final(op)
        volume.check([volume.names[0], base])
