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

"""The operation manager: accepts, queues, runs and recovers operations.

Accepting is synchronous: the request is planned (:mod:`.planning`: the
driver locates the disk and the chain rules validate the request against
its current chain), so a caller gets its 400 before anything changes; then
the operation is written to the journal, and only then does the caller get
its 200/204.

Running is not: each volume has a queue, operations on one volume run one
at a time in the order accepted, and operations on different volumes run
in parallel, creates and merges on bounded pools of their own (a create
never waits behind another volume's merge, which can take hours). Just
before it runs, an operation is planned again against the chain as it is
then, unless nothing ran on its volume since it was accepted. Every step
is journalled first. A create that has not started ``create_timeout``
seconds after it was accepted (Cinder's own wait) fails without touching
the disk: Cinder no longer tracks it.

While a merge runs, :mod:`.progress` follows its job: GET shows how far
it is, the log says so every 10 %, and Cinder gets intermediate updates,
all of them before the final report.

The outcome goes to the status reporter, with Cinder's status value,
through :mod:`.delivery`, on a pool of its own so that a slow Cinder does
not hold up the next operation.

After a restart, :meth:`OperationManager.recover` takes up every operation
the journal shows unfinished: queued ones run; one that was running is
settled by looking at the disk (a block job still running is waited for;
the chain tells whether the work was done); undelivered reports are sent.
From then on, reports left pending are looked for periodically.

A request repeated for a snapshot id that already has a queued, running or
successful operation of the same action does not run twice: the caller
gets the same answer, and a finished outcome is reported again.
"""

import collections
import concurrent.futures
import threading
import uuid

from oslo_log import log

from snapdriver import context as context_mod
from snapdriver import exception
from snapdriver import metrics
from snapdriver import objects
from snapdriver.operations import delivery as delivery_mod
from snapdriver.operations import journal as journal_mod
from snapdriver.operations import planning
from snapdriver.operations import progress as progress_mod

LOG = log.getLogger(__name__)


class OperationManager:
    """Runs operations against one driver and reports their outcome.

    :param driver: a loaded :class:`snapdriver.drivers.base.BaseDriver`.
    :param reporter: a :class:`snapdriver.operations.reporter.StatusReporter`.
    :param journal: a :class:`snapdriver.operations.journal.Journal`; an
        in-memory SQLite one when None (tests).
    :param workers: merges that may run at once (different volumes).
    :param create_workers: creates that may run at once (different
        volumes), beside the merges.
    :param create_timeout: seconds after its acceptance within which a
        create must start; later, it fails without touching the disk.
    :param history: finished, reported operations kept in the journal.
    :param report_workers: status reports that may be sent at once.
    :param report_sweep_interval: seconds between two looks for pending
        status reports that nothing is sending, once :meth:`recover` ran.
    :param progress: keyword arguments of the
        :class:`snapdriver.operations.progress.ProgressMonitor` (interval,
        report_step, report_interval, report_timeout).
    """

    def __init__(self, driver, reporter, journal=None, workers=8,
                 create_workers=4, create_timeout=600, history=1000,
                 report_workers=64, report_sweep_interval=60,
                 progress=None):
        self.driver = driver
        self.create_timeout = create_timeout
        self.reporter = reporter
        self.journal = journal or journal_mod.Journal('sqlite://')
        self._planner = planning.Planner(driver)
        self._plans = planning.PlanCache()
        # A lane per kind of work: creates never wait behind merges.
        self._merge_pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix='snapdriver-merge')
        self._create_pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=create_workers, thread_name_prefix='snapdriver-create')
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._delivery = delivery_mod.ReportDelivery(
            self.journal, reporter, self._idle, workers=report_workers,
            history=history, sweep_interval=report_sweep_interval)
        self._progress = progress_mod.ProgressMonitor(
            driver, self.journal, reporter, **(progress or {}))
        self._queues = collections.defaultdict(collections.deque)
        self._busy = set()
        self._stopping = False
        # Serialises accepts of one snapshot id (idempotency check, then
        # insert), without serialising unrelated accepts.
        self._accept_locks = [threading.Lock() for _ in range(64)]

    # The narrow interface: accept and query.

    def accept(self, context, request):
        """Validate ``request``, journal it and queue it.

        :param context: the caller's RequestContext (None in tests).
        :param request: a :class:`snapdriver.objects.CreateRequest` or
            :class:`snapdriver.objects.DeleteRequest`.
        :returns: the operation, a :class:`snapdriver.objects.OperationView`.
        :raises: a SnapdriverException with a 4xx code when the request
            cannot be carried out (DuplicateRequest, a 409, when the
            snapshot id has an operation of the same action with other
            parameters); nothing has changed then.
        """
        lock = self._accept_locks[hash(request.snapshot_id) % 64]
        with lock:
            existing = self._find_repeat(context, request)
            if existing is not None:
                return existing
            generation = self._plans.generation(request.volume_id)
            plan = self._planner.plan(request)
            row = self.journal.add({
                'id': str(uuid.uuid4()),
                'snapshot_id': request.snapshot_id,
                'volume_id': request.volume_id,
                'kind': plan.kind,
                'request': request.to_dict(),
                'context': self._journalled_context(context),
                'project_id': context.project_id if context else None,
                'guest': plan.disk.guest,
                'disk': plan.disk.target,
                'state': objects.QUEUED,
                'chain_before': plan.disk.names,
                'expected_chain': list(plan.expected_chain),
                'report_attempts': 0,
                'created_at': journal_mod.utcnow(),
            })
        self._plans.keep(row['id'], plan, generation)
        LOG.info("Accepted %s of snapshot %s on disk %s of guest %s "
                 "(operation %s)", row['kind'], row['snapshot_id'],
                 row['disk'], row['guest'], row['id'])
        accepted = objects.OperationView.from_row(row)
        self._enqueue(row)
        return accepted

    def query(self, context, snapshot_id):
        """The operations of ``snapshot_id``, oldest first, as
        :class:`snapdriver.objects.OperationView`.

        :raises: OperationNotFound
        """
        rows = self.journal.by_snapshot(snapshot_id)
        if not rows:
            raise exception.OperationNotFound(snapshot_id=snapshot_id)
        return [objects.OperationView.from_row(row) for row in rows]

    def _journalled_context(self, context):
        """The caller's context as the journal keeps it: with the caller's
        tokens only when the reporter may need them (no service
        credentials), since the journal is a file on disk."""
        if context is None:
            return None
        values = context.to_dict()
        if not self.reporter.uses_caller_token:
            values.update(auth_token=None, service_token=None)
        return values

    def _find_repeat(self, context, request):
        for row in reversed(self.journal.by_snapshot(request.snapshot_id)):
            earlier = objects.Request.from_dict(row['request'])
            if earlier.action != request.action:
                continue
            if row['state'] == objects.FAILED:
                # A failed operation may be tried again.
                return None
            if earlier != request:
                raise exception.DuplicateRequest(
                    snapshot_id=request.snapshot_id, action=request.action,
                    operation=row['id'], state=row['state'],
                    existing=earlier.to_api_dict())
            LOG.info("Snapshot %s: repeated %s request; operation %s is "
                     "%s, not running it again", row['snapshot_id'],
                     request.action, row['id'], row['state'])
            if row['state'] == objects.SUCCEEDED:
                # Credentials were dropped after the first report; report
                # again with this caller's.
                if context is not None:
                    self.journal.update(
                        row['id'], context=self._journalled_context(context))
                self._delivery.schedule(row['id'])
            return objects.OperationView.from_row(row)
        return None

    # Recovery after a restart.

    def recover(self):
        """Take up what the journal shows unfinished, then look for
        pending status reports every ``report_sweep_interval`` seconds.

        :returns: the number of operations taken up.
        """
        rows = self.journal.unfinished(objects.FINAL)
        for row in rows:
            if row['state'] in objects.FINAL:
                LOG.info("Recovery: delivering the %s report of snapshot "
                         "%s (operation %s)", row['status'],
                         row['snapshot_id'], row['id'])
                self._delivery.schedule(row['id'])
            else:
                LOG.info("Recovery: resuming %s %s of snapshot %s "
                         "(operation %s)", row['state'], row['kind'],
                         row['snapshot_id'], row['id'])
                self._enqueue(row)
        self._delivery.start_sweeping()
        return len(rows)

    # Waiting and stopping (tests, shutdown).

    def wait_idle(self, timeout=None):
        """Block until nothing is queued, running or being reported.

        :returns: True when idle, False on timeout.
        """
        with self._idle:
            return self._idle.wait_for(
                lambda: not self._busy and not self._delivery.in_flight,
                timeout)

    def stop(self, wait=True):
        """Stop taking up work.

        Queued operations stay queued and undelivered reports pending in
        the journal: the next start takes them up. With ``wait``, the
        operation running on each volume is waited for; without, the
        caller may exit at once (a block job goes on in QEMU, and the next
        start settles it).
        """
        self._delivery.close()
        self._progress.stop()
        with self._lock:
            self._stopping = True
        self._create_pool.shutdown(wait=wait, cancel_futures=True)
        self._merge_pool.shutdown(wait=wait, cancel_futures=True)
        self._delivery.shutdown(wait=wait)

    # Background work.

    def _enqueue(self, row):
        with self._lock:
            if self._stopping:
                return      # stays queued in the journal for the next start
            volume_id = row['volume_id']
            # The row rides along: nothing else writes a queued operation's
            # row, so the worker need not read it again.
            self._queues[volume_id].append(dict(row))
            if volume_id not in self._busy:
                self._busy.add(volume_id)
                self._submit_next(volume_id)

    def _submit_next(self, volume_id):
        """Hand the volume's next operation to the pool of its kind, or mark
        the volume idle. Called with ``self._lock`` held, so that ``stop``
        cannot shut the pools down between the check and the submit."""
        queue = self._queues[volume_id]
        if not queue or self._stopping:
            self._busy.discard(volume_id)
            del self._queues[volume_id]
            self._idle.notify_all()
            return
        row = queue.popleft()
        pool = (self._create_pool if row['kind'] == objects.CREATE
                else self._merge_pool)
        pool.submit(self._run_next, volume_id, row)

    def _run_next(self, volume_id, row):
        try:
            self._run(row)
        except Exception:
            # _run journals every failure; this guards the queue.
            LOG.exception("Operation %s crashed", row['id'])
        finally:
            self._plans.volume_changed(volume_id)
            with self._lock:
                self._submit_next(volume_id)

    def _run(self, row):
        if row['context']:
            # Log lines of the background work carry the request's ids.
            context_mod.RequestContext.from_dict(row['context']).update_store()
        resumed = row['state'] == objects.RUNNING
        try:
            if resumed:
                result = self._settle(row)
            else:
                result = self._execute(row)
        except exception.SnapdriverException as e:
            self._finish(row, objects.FAILED, error=str(e))
        except Exception as e:
            LOG.exception("Operation %s failed unexpectedly", row['id'])
            self._finish(row, objects.FAILED,
                         error="unexpected %s in the %s driver: %s"
                         % (type(e).__name__, self.driver.name, e))
        else:
            self._finish(row, objects.SUCCEEDED, chain_after=list(result))
        # The row as journalled by _finish: the reporter need not read it.
        self._delivery.schedule(row['id'], row=row)

    def _execute(self, row):
        if row['kind'] == objects.CREATE:
            self._check_create_deadline(row)
        plan = self._plans.take(row['id'], row['volume_id'])
        if plan is None:
            plan = self._planner.plan(
                objects.Request.from_dict(row['request']))
        row.update(chain_before=plan.disk.names,
                   expected_chain=list(plan.expected_chain))
        row['started_at'] = journal_mod.utcnow()
        self.journal.update(row['id'], state=objects.RUNNING,
                            started_at=row['started_at'],
                            chain_before=row['chain_before'],
                            expected_chain=row['expected_chain'])
        if plan.kind == objects.CREATE:
            return self.driver.create_snapshot(plan)
        watch = self._progress.watch(row, plan)
        succeeded = False
        try:
            result = self.driver.delete_snapshot(plan)
            succeeded = True
        finally:
            # Before the final report is journalled: no intermediate
            # update may follow it.
            row['progress'] = self._progress.finish(watch, succeeded)
        return result

    def _check_create_deadline(self, row):
        """Refuse to start a create that Cinder no longer waits for.

        Cinder gives a create 600 seconds, then keeps the old active image
        in its records: switching the guest later would put it on an
        overlay that Cinder does not track, and the next attach would
        reopen the old image. The acceptance time is journalled, so this
        holds after a restart too.

        :raises: CreateExpired
        """
        waited = (journal_mod.utcnow() - row['created_at']).total_seconds()
        if waited > self.create_timeout:
            raise exception.CreateExpired(
                snapshot_id=row['snapshot_id'],
                accepted=row['created_at'].isoformat(timespec='seconds'),
                waited=waited, timeout=self.create_timeout,
                new_file=row['request'].get('new_file'))

    def _settle(self, row):
        """Finish an operation that was running when snapdriver stopped.

        The disk tells what happened: a block job still running is waited
        for; then the chain is the expected one (the work was done), the
        one before (it never happened, or was cancelled: run it now), or
        something else (fail, naming both).
        """
        disk = self.driver.locate_disk(row['volume_id'])
        if self.driver.wait_for_pending(disk):
            disk = self.driver.locate_disk(row['volume_id'])
        if disk.names == row['expected_chain']:
            LOG.info("Operation %s had finished its work before the "
                     "restart", row['id'])
            return disk.names
        if disk.names == row['chain_before']:
            LOG.info("Operation %s had not changed the disk before the "
                     "restart; running it now", row['id'])
            return self._execute(row)
        raise exception.OperationFailed(
            reason="after a restart of snapdriver the chain of disk %s is "
                   "%s, neither the chain before the operation (%s) nor the "
                   "expected one (%s)"
                   % (row['disk'], ' -> '.join(disk.names),
                      ' -> '.join(row['chain_before']),
                      ' -> '.join(row['expected_chain'])))

    def _finish(self, row, state, error=None, chain_after=None):
        action = objects.Request.from_dict(row['request']).action
        status = objects.cinder_status(action, state == objects.SUCCEEDED)
        # Outcome and the report to make are journalled together, so a
        # restart from here on only has to deliver the report.
        final = {'progress': row['progress']} if row.get('progress') else {}
        finished_at = journal_mod.utcnow()
        values = dict(state=state, error=error, chain_after=chain_after,
                      status=status, delivery=objects.PENDING,
                      finished_at=finished_at, **final)
        self.journal.update(row['id'], **values)
        row.update(values)
        metrics.OPERATIONS.labels(row['kind'], state).inc()
        started_at = row.get('started_at')     # None if it never ran
        if started_at is not None:
            metrics.OPERATION_SECONDS.labels(row['kind']).observe(
                (finished_at - started_at).total_seconds())
        if error:
            LOG.error("%s of snapshot %s on disk %s of guest %s failed: %s",
                      row['kind'], row['snapshot_id'], row['disk'],
                      row['guest'], error)
        else:
            LOG.info("%s of snapshot %s done; chain of %s is now %s",
                     row['kind'], row['snapshot_id'], row['disk'],
                     ' -> '.join(chain_after))
