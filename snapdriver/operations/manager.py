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

"""The operation manager: validates, queues, runs and reports operations.

Accepting an operation is synchronous: the driver locates the disk and the
chain rules validate the request against its current chain, so a caller
gets its 400 before anything changes. Running it is not: each volume has a
queue, operations on one volume run one at a time in the order accepted,
and operations on different volumes run in parallel on a bounded pool.
Just before it runs, an operation is validated again against the chain as
it is then (an earlier operation on the volume may have changed it).

The outcome always goes to the status reporter with Cinder's status value.
"""

import collections
import concurrent.futures
import dataclasses
import datetime
import threading
import typing
import uuid

from oslo_log import log
from oslo_utils import timeutils

from snapdriver import chain
from snapdriver import exception
from snapdriver.operations import reporter as reporter_mod

LOG = log.getLogger(__name__)

QUEUED = 'queued'
RUNNING = 'running'
SUCCEEDED = 'succeeded'
FAILED = 'failed'
FINISHED = (SUCCEEDED, FAILED)


def _iso(moment):
    return moment.isoformat() + 'Z' if moment else None


@dataclasses.dataclass
class Operation:
    """One accepted create or delete and what became of it."""
    snapshot_id: str
    volume_id: str
    kind: str
    request: dict
    context: typing.Any
    guest: str
    disk: str
    chain_before: list
    id: str = dataclasses.field(default_factory=lambda: str(uuid.uuid4()))
    state: str = QUEUED
    error: typing.Optional[str] = None
    chain_after: typing.Optional[list] = None
    status: typing.Optional[str] = None
    report: typing.Optional[reporter_mod.Delivery] = None
    created_at: datetime.datetime = dataclasses.field(
        default_factory=timeutils.utcnow)
    started_at: typing.Optional[datetime.datetime] = None
    finished_at: typing.Optional[datetime.datetime] = None

    def to_dict(self):
        """The operation as the API shows it (no credentials)."""
        duration = None
        if self.started_at and self.finished_at:
            duration = round(
                (self.finished_at - self.started_at).total_seconds(), 3)
        return {
            'id': self.id,
            'snapshot_id': self.snapshot_id,
            'volume_id': self.volume_id,
            'kind': self.kind,
            'state': self.state,
            'error': self.error,
            'guest': self.guest,
            'disk': self.disk,
            'request': dict(self.request),
            'chain_before': list(self.chain_before),
            'chain': list(self.chain_after or self.chain_before),
            'created_at': _iso(self.created_at),
            'started_at': _iso(self.started_at),
            'finished_at': _iso(self.finished_at),
            'duration_seconds': duration,
            'status_report': {
                'status': self.status,
                'progress': reporter_mod.PROGRESS if self.status else None,
                'delivery': self.report.state if self.report else None,
                'detail': self.report.detail if self.report else None,
            },
        }


class OperationManager:
    """Runs operations against one driver and reports their outcome.

    :param driver: a loaded :class:`snapdriver.drivers.base.BaseDriver`.
    :param reporter: a :class:`snapdriver.operations.reporter.StatusReporter`.
    :param workers: operations that may run at once (different volumes).
    :param history: finished operations kept for :meth:`query`.
    """

    def __init__(self, driver, reporter, workers=8, history=1000):
        self.driver = driver
        self.reporter = reporter
        self._history = history
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix='snapdriver-op')
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._queues = collections.defaultdict(collections.deque)
        self._busy = set()
        self._operations = collections.OrderedDict()

    # Pre-flight: the same checks at accept time and at run time.

    def _plan(self, request):
        volume_id = request['volume_id']
        if request['kind'] == chain.CREATE:
            chain.check_file_name('new_file', request['new_file'])
            disk = self.driver.locate_disk(volume_id)
            overlay = self.driver.inspect_overlay(disk, request['new_file'])
            return chain.plan_create(disk, request['snapshot_id'],
                                     request['new_file'], overlay)
        for field in ('file_to_merge', 'merge_target_file'):
            if request.get(field) is not None:
                chain.check_file_name(field, request[field])
        disk = self.driver.locate_disk(volume_id)
        return chain.plan_delete(disk, request['snapshot_id'],
                                 request.get('file_to_merge'),
                                 request.get('merge_target_file'))

    def accept(self, context, request):
        """Validate ``request`` and queue it.

        :param request: a dict: ``kind`` (create or delete), ``volume_id``,
            ``snapshot_id``, and ``new_file`` (create) or ``file_to_merge``
            and ``merge_target_file`` (delete).
        :returns: the operation as a dict.
        :raises: a SnapdriverException with a 4xx code when the request
            cannot be carried out; nothing has changed then.
        """
        plan = self._plan(request)
        operation = Operation(
            snapshot_id=request['snapshot_id'], volume_id=request['volume_id'],
            kind=plan.kind, request=dict(request), context=context,
            guest=plan.disk.guest, disk=plan.disk.target,
            chain_before=plan.disk.names)
        with self._lock:
            self._operations[operation.id] = operation
            self._queues[operation.volume_id].append(operation)
            start = operation.volume_id not in self._busy
            if start:
                self._busy.add(operation.volume_id)
            accepted = operation.to_dict()
        LOG.info("Accepted %s of snapshot %s on disk %s of guest %s "
                 "(operation %s)", operation.kind, operation.snapshot_id,
                 operation.disk, operation.guest, operation.id)
        if start:
            self._pool.submit(self._drain, operation.volume_id)
        return accepted

    def query(self, context, snapshot_id):
        """The operations of ``snapshot_id``, oldest first.

        :raises: OperationNotFound
        """
        with self._lock:
            found = [op.to_dict() for op in self._operations.values()
                     if op.snapshot_id == snapshot_id]
        if not found:
            raise exception.OperationNotFound(snapshot_id=snapshot_id)
        return found

    def wait_idle(self, timeout=None):
        """Block until no operation is queued or running (tests, shutdown).

        :returns: True when idle, False on timeout.
        """
        with self._idle:
            return self._idle.wait_for(lambda: not self._busy, timeout)

    def stop(self):
        self._pool.shutdown(wait=True)

    # Background work.

    def _drain(self, volume_id):
        while True:
            with self._lock:
                queue = self._queues[volume_id]
                if not queue:
                    self._busy.discard(volume_id)
                    del self._queues[volume_id]
                    self._idle.notify_all()
                    return
                operation = queue.popleft()
            try:
                self._run(operation)
            except Exception:
                # _run records every failure; this guards the queue itself.
                LOG.exception("Operation %s crashed", operation.id)

    def _run(self, operation):
        if operation.context is not None:
            # Log lines of the background work carry the request's ids.
            operation.context.update_store()
        operation.state = RUNNING
        operation.started_at = timeutils.utcnow()
        try:
            plan = self._plan(operation.request)
            if plan.kind == chain.CREATE:
                result = self.driver.create_snapshot(plan)
            else:
                result = self.driver.delete_snapshot(plan)
        except exception.SnapdriverException as e:
            self._finish(operation, FAILED, error=str(e))
        except Exception as e:
            LOG.exception("Operation %s failed unexpectedly", operation.id)
            self._finish(operation, FAILED,
                         error="unexpected %s in the %s driver: %s"
                         % (type(e).__name__, self.driver.name, e))
        else:
            self._finish(operation, SUCCEEDED, chain_after=list(result))
        self._report(operation)
        self._trim()

    def _finish(self, operation, state, error=None, chain_after=None):
        operation.state = state
        operation.error = error
        operation.chain_after = chain_after
        operation.finished_at = timeutils.utcnow()
        operation.status = reporter_mod.status_for(
            chain.CREATE if operation.kind == chain.CREATE else 'delete',
            state == SUCCEEDED)
        if error:
            LOG.error("%s of snapshot %s on disk %s of guest %s failed: %s",
                      operation.kind, operation.snapshot_id, operation.disk,
                      operation.guest, error)
        else:
            LOG.info("%s of snapshot %s done; chain of %s is now %s",
                     operation.kind, operation.snapshot_id, operation.disk,
                     ' -> '.join(chain_after))

    def _report(self, operation):
        try:
            operation.report = self.reporter.report(
                operation.context, operation.snapshot_id, operation.status)
        except Exception as e:
            LOG.exception("Reporting status %s of snapshot %s failed",
                          operation.status, operation.snapshot_id)
            operation.report = reporter_mod.Delivery(
                state='pending', detail="%s: %s" % (type(e).__name__, e))

    def _trim(self):
        with self._lock:
            finished = [op_id for op_id, op in self._operations.items()
                        if op.state in FINISHED]
            for op_id in finished[:max(0, len(finished) - self._history)]:
                del self._operations[op_id]
