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

"""Delivery: an operation's status report, from the journal to Cinder.

When an operation ends, its outcome and the Cinder status to report are
journalled together, with delivery ``pending``. :class:`ReportDelivery`
sends that status through the status reporter, on a pool of its own so
that a slow or unreachable Cinder does not hold up the next operation;
journals each failed attempt while the reporter retries (visible through
GET); journals what became of the report; drops the caller's token once
nothing needs it; and now and then trims the journal to the configured
history of finished, reported operations.

A report can stay pending after a delivery (the reporter failed in a way
it did not foresee). Once started, a sweeper sends such reports again
every ``sweep_interval`` seconds, so that none waits for the next start.
"""

import concurrent.futures
import threading

from oslo_log import log

from snapdriver import context as context_mod
from snapdriver import metrics
from snapdriver import objects
from snapdriver.operations import journal as journal_mod
from snapdriver.operations import reporter as reporter_mod

LOG = log.getLogger(__name__)


class ReportDelivery:
    """Sends the journalled status reports of operations.

    :param journal: the :class:`snapdriver.operations.journal.Journal`.
    :param reporter: a
        :class:`snapdriver.operations.reporter.StatusReporter`.
    :param idle: the manager's ``threading.Condition``: reports in flight
        are counted under its lock, and it is notified when one is done,
        so that the manager can wait until nothing is left to do.
    :param workers: reports that may be sent at once.
    :param history: finished, reported operations kept in the journal.
    :param sweep_interval: seconds between two looks for pending reports
        that nothing is sending (see :meth:`start_sweeping`).
    """

    def __init__(self, journal, reporter, idle, workers=64, history=1000,
                 sweep_interval=60):
        self.journal = journal
        self.reporter = reporter
        self._idle = idle
        self._history = history
        # Forgetting old operations is a scan: done now and then, not after
        # every report; the journal keeps at most a tenth more meanwhile.
        self._trim_every = max(1, min(50, history // 10))
        self._delivered = 0
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix='snapdriver-rep')
        self._closed = False
        # Operations whose report is scheduled and not yet done; under the
        # idle lock.
        self._scheduled = set()
        self._sweep_interval = sweep_interval
        self._stop_sweeping = threading.Event()
        self._sweeper = None

    @property
    def in_flight(self):
        """How many reports are scheduled and not yet done (read under
        the idle lock)."""
        return len(self._scheduled)

    def schedule(self, operation_id, only_if_pending=False, row=None):
        """Send the journalled report of ``operation_id`` in the
        background, unless it is being sent already; once closed, it stays
        pending for the next start.

        :param only_if_pending: send it only if the journal still shows
            it pending when its turn comes.
        :param row: the operation's row exactly as just journalled, when
            the caller has it: it is not read again.
        """
        with self._idle:
            if self._closed or operation_id in self._scheduled:
                return
            self._scheduled.add(operation_id)
        self._pool.submit(self._deliver, operation_id, only_if_pending, row)

    def start_sweeping(self):
        """Look for pending reports every ``sweep_interval`` seconds, in a
        thread of its own, until closed."""
        with self._idle:
            if self._closed or self._sweeper is not None:
                return
            self._sweeper = threading.Thread(
                target=self._sweep_loop, name='snapdriver-rep-sweep',
                daemon=True)
        self._sweeper.start()

    def sweep(self):
        """Schedule every report that the journal shows pending and that
        nothing is sending.

        :returns: how many were scheduled.
        """
        count = 0
        for row in self.journal.pending_reports(objects.FINAL):
            with self._idle:
                if self._closed or row['id'] in self._scheduled:
                    continue
            LOG.info("Sending again the pending %s report of snapshot %s "
                     "(operation %s)", row['status'], row['snapshot_id'],
                     row['id'])
            self.schedule(row['id'], only_if_pending=True)
            count += 1
        return count

    def _sweep_loop(self):
        while not self._stop_sweeping.wait(self._sweep_interval):
            try:
                self.sweep()
            except Exception:
                LOG.exception("Looking for pending status reports failed")

    def close(self):
        """Schedule nothing more."""
        with self._idle:
            self._closed = True
        self._stop_sweeping.set()

    def shutdown(self, wait=True):
        """Drop reports not yet started (they stay pending in the journal);
        with ``wait``, wait for those being sent."""
        self.close()
        self._pool.shutdown(wait=wait, cancel_futures=True)

    def send_now(self, operation_id):
        """Send the report of a finished operation now, in this thread,
        whatever became of it before (``snapdriver-manage operations
        resend``), and journal the outcome.

        :returns: the operation's row afterwards.
        """
        self.journal.update(operation_id, delivery=objects.PENDING)
        self._send(operation_id)
        return self.journal.get(operation_id)

    def _deliver(self, operation_id, only_if_pending, row=None):
        try:
            if only_if_pending:
                row = self.journal.get(operation_id)
                if row is None or row['delivery'] != objects.PENDING:
                    return      # delivered meanwhile
            self._send(operation_id, row)
            with self._idle:
                self._delivered += 1
                trim = self._delivered % self._trim_every == 0
            if trim:
                self.journal.trim(objects.FINAL, self._history)
        except Exception:
            LOG.exception("Delivering the report of operation %s failed",
                          operation_id)
        finally:
            with self._idle:
                self._scheduled.discard(operation_id)
                self._idle.notify_all()

    def _send(self, operation_id, row=None):
        if row is None:
            row = self.journal.get(operation_id)
        context = (context_mod.RequestContext.from_dict(row['context'])
                   if row['context'] else None)
        before = row['report_attempts']

        def retrying(attempt, reason):
            # Visible through GET while the retries go on.
            self.journal.update(
                operation_id, report_attempts=before + attempt,
                delivery_detail="attempt %d failed: %s; retrying"
                % (attempt, reason))

        try:
            delivery = self.reporter.report(
                context, row['snapshot_id'], row['status'],
                on_retry=retrying)
        except Exception as e:
            LOG.exception("Reporting status %s of snapshot %s failed",
                          row['status'], row['snapshot_id'])
            delivery = reporter_mod.Delivery(
                state=objects.PENDING,
                detail="%s: %s" % (type(e).__name__, e))
        metrics.REPORTS.labels(row['status'], delivery.state).inc()
        metrics.REPORT_ATTEMPTS.inc(delivery.attempts)
        values = dict(delivery=delivery.state,
                      delivery_detail=delivery.detail,
                      report_attempts=before + delivery.attempts,
                      reported_at=journal_mod.utcnow())
        if (row['delivery'] == objects.DELIVERED
                and delivery.state != objects.DELIVERED):
            # Reported again for a repeated request: Cinder already has
            # this status (and may have moved on, so it refuses it now);
            # what it got first stands.
            values.update(delivery=objects.DELIVERED,
                          delivery_detail="delivered earlier; reported "
                          "again for a repeated request: %s"
                          % delivery.detail,
                          reported_at=row['reported_at'])
        if delivery.state != objects.PENDING and row['context']:
            # Nothing needs the caller's token any more.
            values['context'] = dict(row['context'], auth_token=None,
                                     service_token=None)
        self.journal.update(operation_id, **values)
