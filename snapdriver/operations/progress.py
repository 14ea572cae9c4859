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

"""Progress: how far each running merge is, for everyone who looks.

A merge of a large layer runs for minutes to hours. While one runs, the
:class:`ProgressMonitor` asks the driver every ``interval`` seconds how
far its job is (:meth:`snapdriver.drivers.base.BaseDriver.merge_progress`)
and, from each answer:

* journals it (:class:`snapdriver.objects.MergeProgress`: bytes done and
  total, the rate over the last interval, hence percent and time left),
  which GET and ``snapdriver-manage operations watch`` show;
* logs a line each time another 10 % is done;
* sends Cinder an intermediate status update (``deleting``, progress below
  ``90%``) when both ``report_step`` percent and ``report_interval``
  seconds have passed since the last one.

Cinder's remotefs driver stops waiting on exactly ``deleting``/``90%``, the
final report: an intermediate update that reached Cinder after it could
put the snapshot back below 90 % and leave Cinder waiting for two hours.
So intermediate updates of one merge go through a :class:`_Lane`: at most
one at a time, never retried (a failed one is dropped: the next one is
fresher anyway), and none is started once the merge has ended. When it
ends, :meth:`ProgressMonitor.finish` closes the lane and waits for the one
update that may be on its way (its answer, or its timeout); only then is
the final report journalled and scheduled. The final report therefore
never waits for a retry or a back-off of an intermediate one, only, at
worst, for one request's timeout.
"""

import concurrent.futures
import datetime
import threading
import time

from oslo_log import log

from snapdriver import context as context_mod
from snapdriver import metrics
from snapdriver import objects

LOG = log.getLogger(__name__)

# Cinder stops waiting at this percentage: intermediate updates stay below.
_FINAL_PERCENT = 90


def human_bytes(count):
    """``count`` bytes in words: ``512 B``, ``1.5 MiB``, ``2.0 GiB``."""
    if count is None:
        return '?'
    value = float(count)
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if abs(value) < 1024 or unit == 'TiB':
            return ('%d %s' % (value, unit) if unit == 'B'
                    else '%.1f %s' % (value, unit))
        value /= 1024


def human_seconds(seconds):
    """``seconds`` in words: ``42 s``, ``3 min 5 s``, ``2 h 4 min``."""
    if seconds is None:
        return '?'
    seconds = int(round(seconds))
    if seconds < 60:
        return '%d s' % seconds
    if seconds < 3600:
        return '%d min %d s' % divmod(seconds, 60)
    return '%d h %d min' % (seconds // 3600, seconds % 3600 // 60)


def _utc(epoch):
    return datetime.datetime.fromtimestamp(
        epoch, datetime.timezone.utc).replace(tzinfo=None)


class _Lane:
    """The intermediate updates of one merge, in order, before its final
    report.

    ``try_start`` claims the lane for one update (None when one is on its
    way already or the lane is closed); ``done`` gives it back; ``close``
    lets no update start again and waits for the one on its way.
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._busy = False
        self._closed = False

    def try_start(self):
        with self._cond:
            if self._busy or self._closed:
                return False
            self._busy = True
            return True

    def still_open(self):
        """Whether an update claimed with ``try_start`` may still go: the
        lane is checked again right before the request leaves."""
        with self._cond:
            return not self._closed

    def done(self):
        with self._cond:
            self._busy = False
            self._cond.notify_all()

    def close(self, timeout):
        """No update starts from now on; wait up to ``timeout`` seconds
        for the one on its way.

        :returns: False when one is still on its way after ``timeout``.
        """
        with self._cond:
            self._closed = True
            return self._cond.wait_for(lambda: not self._busy, timeout)


class _Watch:
    """One running merge, as the monitor follows it."""

    def __init__(self, row, plan):
        self.operation_id = row['id']
        self.snapshot_id = row['snapshot_id']
        self.context = row['context']
        self.plan = plan
        self.what = 'block %s on disk %s of guest %s' % (
            plan.kind, plan.disk.target, plan.disk.guest)
        self.started = time.time()
        self.lane = _Lane()
        # The last sample: (time, JobProgress).
        self.last = None
        self.rate = None
        self.job_started = None
        self.logged_tenth = 0
        self.reported_percent = 0
        self.reported_at = self.started
        self.journalled = None
        # The labels of its progress gauge, once it has one.
        self.gauge = None


class ProgressMonitor:
    """Follows running merges (see the module's description).

    :param driver: the loaded driver (its ``merge_progress``).
    :param journal: the operation journal.
    :param reporter: the status reporter (its ``report_progress``).
    :param interval: seconds between two looks at each merge.
    :param report_step: percent between two intermediate updates to the
        reporter; 0 sends none.
    :param report_interval: least seconds between two such updates.
    :param report_timeout: the longest an intermediate update may take;
        :meth:`finish` waits that long (and a margin) for one on its way.
    """

    def __init__(self, driver, journal, reporter, interval=2.0,
                 report_step=10, report_interval=30.0, report_timeout=5.0):
        self.driver = driver
        self.journal = journal
        self.reporter = reporter
        self.interval = interval
        self.report_step = report_step
        self.report_interval = report_interval
        self.report_timeout = report_timeout
        self._lock = threading.Lock()
        self._watches = {}
        self._stop = threading.Event()
        self._thread = None
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=4, thread_name_prefix='snapdriver-progress-rep')

    def watch(self, row, plan):
        """Follow the merge of the journalled operation ``row`` (about to
        be run as ``plan``) until :meth:`finish`."""
        watch = _Watch(row, plan)
        with self._lock:
            self._watches[watch.operation_id] = watch
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._loop, name='snapdriver-progress',
                    daemon=True)
                self._thread.start()
        return watch

    def finish(self, watch, succeeded):
        """The merge of ``watch`` ended: no intermediate update starts
        from now on, the one on its way (if any) is waited for, and the
        job's figures are made final.

        :returns: the final progress, as the journal keeps it
            (:meth:`snapdriver.objects.MergeProgress.to_dict`), or None
            when the driver never told any.
        """
        ended = time.time()
        with self._lock:
            self._watches.pop(watch.operation_id, None)
        if watch.gauge is not None:
            metrics.MERGE_PROGRESS.remove(*watch.gauge)
        # A margin over the request's own timeout: keystoneauth's timeout
        # bounds each socket operation, not the request as a whole.
        if not watch.lane.close(2 * self.report_timeout + 1):
            LOG.warning("Snapshot %s: an intermediate progress update is "
                        "still on its way after %.0f s; sending the final "
                        "status anyway", watch.snapshot_id,
                        2 * self.report_timeout + 1)
        sample = self._ask(watch)
        if sample is None and watch.last is not None:
            sample = watch.last[1]
        if sample is None:
            return None
        job_started = watch.job_started or sample.started_at or watch.started
        done = sample.total if succeeded else sample.done
        final = objects.MergeProgress(
            bytes_done=done, bytes_total=sample.total,
            job_started_at=_utc(job_started), updated_at=_utc(ended),
            job_seconds=round(max(0.0, ended - job_started), 3))
        if succeeded:
            metrics.BLOCK_JOB_SECONDS.labels(watch.plan.kind).observe(
                final.job_seconds)
        LOG.info("Snapshot %s: %s %s after %s (%s at %s/s on average)",
                 watch.snapshot_id, watch.what,
                 'done' if succeeded else 'ended',
                 human_seconds(final.job_seconds), human_bytes(done),
                 human_bytes(final.average_rate))
        return final.to_dict()

    def stop(self):
        """Stop looking; updates on their way are not waited for."""
        self._stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # The looks.

    def _loop(self):
        while not self._stop.wait(self.interval):
            with self._lock:
                watches = list(self._watches.values())
            for watch in watches:
                try:
                    self.sample(watch)
                except Exception:
                    LOG.exception("Following the progress of operation %s "
                                  "failed", watch.operation_id)

    def _ask(self, watch):
        try:
            return self.driver.merge_progress(watch.plan)
        except Exception as e:
            LOG.debug("The %s driver could not tell the progress of "
                      "operation %s: %s", self.driver.name,
                      watch.operation_id, e)
            return None

    def sample(self, watch, now=None):
        """Take one look at ``watch``'s merge (the loop's step; tests call
        it directly)."""
        job = self._ask(watch)
        if job is None:
            return
        now = time.time() if now is None else now
        if watch.last is not None:
            then, before = watch.last
            if now > then and job.done >= before.done:
                watch.rate = (job.done - before.done) / (now - then)
        watch.last = (now, job)
        if watch.job_started is None:
            watch.job_started = job.started_at or now
        view = objects.MergeProgress(
            bytes_done=job.done, bytes_total=job.total, rate=watch.rate,
            job_started_at=_utc(watch.job_started), updated_at=_utc(now))
        figures = (job.done, job.total, watch.rate)
        if figures != watch.journalled:
            self.journal.update(watch.operation_id, progress=view.to_dict())
            watch.journalled = figures
        if view.percent is None:
            return
        watch.gauge = (watch.operation_id, watch.snapshot_id,
                       watch.plan.kind, watch.plan.disk.guest,
                       watch.plan.disk.target)
        metrics.MERGE_PROGRESS.labels(*watch.gauge).set(view.percent / 100)
        self._log_tenth(watch, view)
        self._maybe_report(watch, view, now)

    def _log_tenth(self, watch, view):
        tenth = int(view.percent // 10)
        if tenth <= watch.logged_tenth:
            return
        watch.logged_tenth = tenth
        LOG.info("Snapshot %s: %s %d%% done (%s of %s, %s/s, about %s "
                 "left)", watch.snapshot_id, watch.what, tenth * 10,
                 human_bytes(view.bytes_done), human_bytes(view.bytes_total),
                 human_bytes(view.rate), human_seconds(view.eta_seconds))

    # Intermediate updates.

    def _maybe_report(self, watch, view, now):
        if not self.report_step:
            return
        percent = int(view.percent // self.report_step) * self.report_step
        if (percent >= _FINAL_PERCENT
                or percent < watch.reported_percent + self.report_step
                or now - watch.reported_at < self.report_interval):
            return
        if not watch.lane.try_start():
            return      # one on its way, or the merge ended
        watch.reported_percent = percent
        watch.reported_at = now
        try:
            self._pool.submit(self._report, watch, percent)
        except RuntimeError:
            watch.lane.done()       # stopping

    def _report(self, watch, percent):
        progress = '%d%%' % percent
        try:
            if not watch.lane.still_open():
                return
            context = (context_mod.RequestContext.from_dict(watch.context)
                       if watch.context else None)
            delivery = self.reporter.report_progress(
                context, watch.snapshot_id, objects.DELETING, progress)
            if delivery is not None:
                metrics.PROGRESS_UPDATES.labels(delivery.state).inc()
                LOG.info("Snapshot %s: intermediate status %s (%s) %s: %s",
                         watch.snapshot_id, objects.DELETING, progress,
                         'sent' if delivery.state == objects.DELIVERED
                         else 'dropped', delivery.detail)
        except Exception:
            LOG.exception("Snapshot %s: the intermediate status update "
                          "(%s) failed; dropped", watch.snapshot_id,
                          progress)
        finally:
            watch.lane.done()
