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

"""How far the libvirt driver's merges are (its ``merge_progress``).

A merge of a running guest is a block job: QEMU counts its progress in
bytes (``blockJobInfo``'s ``cur`` of ``end``), asked when someone wants to
know. A merge of a stopped guest is qemu-img, which prints a percentage as
it goes (``-p``); :mod:`qemuimg` hands each one to :meth:`MergeJobs.
offline`'s callback, and the image's virtual size turns it into bytes.

One merge runs on a disk at a time (one block job per guest), so the
merges are kept by guest and disk; the last figures of each stay until the
next merge of that disk, for the look the manager takes right after the
merge returned.
"""

import dataclasses
import threading
import time
import typing

from snapdriver.drivers import base
from snapdriver.drivers.libvirt import blockdev
from snapdriver import exception


@dataclasses.dataclass
class _Merge:
    snapshot_id: str
    started: float
    device: typing.Optional[blockdev.BlockDevice] = None
    total: typing.Optional[int] = None
    percent: float = 0.0
    last: typing.Optional[base.JobProgress] = None


def _key(plan):
    return plan.disk.details.get('domain_uuid'), plan.disk.target


class MergeJobs:
    """The driver's merges, by guest and disk."""

    def __init__(self):
        self._lock = threading.Lock()
        self._merges = {}

    def live(self, plan, device):
        """The block job of ``plan`` starts now on ``device``."""
        with self._lock:
            self._merges[_key(plan)] = _Merge(plan.snapshot_id, time.time(),
                                              device=device)

    def offline(self, plan, total):
        """qemu-img starts ``plan`` on an image of ``total`` bytes.

        :returns: the callback for qemu-img's percentages.
        """
        merge = _Merge(plan.snapshot_id, time.time(), total=total)
        with self._lock:
            self._merges[_key(plan)] = merge

        def on_percent(percent):
            merge.percent = percent
        return on_percent

    def ended(self, plan):
        """The job of ``plan`` ended: keep its last figures, ask QEMU no
        more (a later job on the disk is not ours)."""
        with self._lock:
            merge = self._merges.get(_key(plan))
        if merge is not None and merge.snapshot_id == plan.snapshot_id:
            merge.device = None

    def progress(self, plan):
        """:returns: a :class:`base.JobProgress`, or None."""
        with self._lock:
            merge = self._merges.get(_key(plan))
        if merge is None or merge.snapshot_id != plan.snapshot_id:
            return None
        if merge.device is not None:
            self._ask(merge)
        elif merge.total:
            merge.last = base.JobProgress(
                done=int(merge.total * min(merge.percent, 100.0) / 100),
                total=merge.total, started_at=merge.started)
        return merge.last

    @staticmethod
    def _ask(merge):
        try:
            info = merge.device.job_info()
        except exception.OperationFailed:
            return      # the guest went away: the merge says so
        if info and info is not blockdev.JOB_UNKNOWN and info.get('end'):
            merge.last = base.JobProgress(done=info['cur'], total=info['end'],
                                          started_at=merge.started)
