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

"""Planning: where the chain rules and the driver meet.

A request becomes a plan in one place, the same way when it is accepted
and just before it runs (:meth:`Planner.plan`):

1. the request's file names must be plain names, checked before the
   driver is asked anything;
2. the driver locates the disk whose serial is the volume id and, for a
   create, inspects the overlay Cinder created;
3. the chain rules (:mod:`snapdriver.chain`) check the request against the
   disk's current chain and compute the chain expected afterwards;
4. the driver must be able to do that kind of work on that disk (its
   capabilities), and may still refuse the plan (``check_plan``).

Every refusal is a SnapdriverException raised before anything changed.

:class:`PlanCache` keeps the plan made at accept time for as long as it
holds, so that an operation whose volume saw no other work meanwhile is
not planned twice.
"""

import collections
import threading

from snapdriver import chain
from snapdriver import exception
from snapdriver import objects


class Planner:
    """Turns requests into plans against one driver.

    :param driver: a loaded :class:`snapdriver.drivers.base.BaseDriver`.
    """

    def __init__(self, driver):
        self.driver = driver

    def plan(self, request):
        """The plan for ``request`` on the disk as it is now.

        :param request: a :class:`snapdriver.objects.Request`.
        :returns: a :class:`snapdriver.chain.CreatePlan` or
            :class:`snapdriver.chain.DeletePlan`.
        :raises: SnapdriverException: InvalidFileName, the driver's
            (VolumeNotAttached, OperationFailed, ...), the chain rules'
            (InvalidOverlay, InvalidChainReference), OperationNotSupported.
        """
        for field, value in request.file_names():
            chain.check_file_name(field, value)
        disk = self.driver.locate_disk(request.volume_id)
        if request.action == objects.CREATE:
            overlay = self.driver.inspect_overlay(disk, request.new_file)
            plan = chain.plan_create(disk, request.snapshot_id,
                                     request.new_file, overlay)
        else:
            plan = chain.plan_delete(disk, request.snapshot_id,
                                     request.file_to_merge,
                                     request.merge_target_file)
        self.check_supported(plan)
        self.driver.check_plan(plan)
        return plan

    def check_supported(self, plan):
        """Refuse a plan the driver's capabilities do not cover.

        :raises: OperationNotSupported
        """
        caps = self.driver.capabilities()
        disk = plan.disk
        if plan.kind == objects.CREATE:
            supported, what = caps.create, 'create snapshots'
        elif disk.running:
            supported = caps.pull if plan.kind == objects.PULL else caps.commit
            what = 'merge by block %s' % plan.kind
        else:
            supported = (caps.offline_pull if plan.kind == objects.PULL
                         else caps.offline_commit)
            what = 'merge by %s while the guest is not running' % plan.kind
        if supported and disk.source_type == 'network':
            supported, what = caps.network_disks, 'work on network disks'
        if not supported:
            raise exception.OperationNotSupported(driver=self.driver.name,
                                                  operation=what)


class PlanCache:
    """Plans made at accept time, kept until their operation runs.

    Each volume has a generation, moved on whenever an operation on it
    ends. A plan kept with the generation read *before* it was made still
    holds when the generation has not moved since (the driver checks the
    chain once more right before it acts); otherwise the operation is
    planned again. Lost on restart: recovered operations are planned
    afresh.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._plans = {}
        self._generations = collections.defaultdict(int)

    def generation(self, volume_id):
        """Read before planning: an operation that ends meanwhile makes
        the plan stale, and must make it look stale."""
        with self._lock:
            return self._generations[volume_id]

    def keep(self, operation_id, plan, generation):
        with self._lock:
            self._plans[operation_id] = (plan, generation)

    def take(self, operation_id, volume_id):
        """The kept plan of an operation if it still holds, else None;
        either way it is forgotten."""
        with self._lock:
            plan, generation = self._plans.pop(operation_id, (None, None))
            if generation != self._generations[volume_id]:
                return None
            return plan

    def volume_changed(self, volume_id):
        """An operation on ``volume_id`` ended: its kept plans are stale."""
        with self._lock:
            self._generations[volume_id] += 1
