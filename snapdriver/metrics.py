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

"""Prometheus metrics of the service (``[metrics] enabled``).

Counted always, in a registry of this process's own (cheap: a lock and an
addition); served at ``/metrics`` on the API's port only when enabled,
behind authentication and the policy rule ``snapdriver:metrics`` (admin).
Every metric is listed in doc/deploying.md ("Metrics").
"""

from prometheus_client import core
from prometheus_client import exposition
import prometheus_client

from snapdriver import objects

REGISTRY = prometheus_client.CollectorRegistry(auto_describe=True)

# Durations from a second to Cinder's two hours.
_LONG = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800,
         3600, 7200, float('inf'))

OPERATIONS = prometheus_client.Counter(
    'snapdriver_operations', "Operations ended, by kind (create, pull, "
    "commit) and outcome (succeeded, failed).", ['kind', 'outcome'],
    registry=REGISTRY)
OPERATION_SECONDS = prometheus_client.Histogram(
    'snapdriver_operation_duration_seconds', "From the start of an "
    "operation's run to its end, by kind.", ['kind'], buckets=_LONG,
    registry=REGISTRY)
BLOCK_JOB_SECONDS = prometheus_client.Histogram(
    'snapdriver_block_job_duration_seconds', "How long a merge's job took "
    "(a block job, or qemu-img for a stopped guest), with the flush that "
    "made it durable, by kind.", ['kind'], buckets=_LONG, registry=REGISTRY)
MERGE_PROGRESS = prometheus_client.Gauge(
    'snapdriver_merge_progress_ratio', "How far each running merge's job "
    "is, 0 to 1; a series per running operation, gone when it ends.",
    ['operation', 'snapshot', 'kind', 'guest', 'disk'], registry=REGISTRY)
REPORTS = prometheus_client.Counter(
    'snapdriver_status_reports', "Status report deliveries to Cinder ended, "
    "by the status reported and what became of it (delivered, pending, "
    "given_up).", ['status', 'delivery'], registry=REGISTRY)
REPORT_ATTEMPTS = prometheus_client.Counter(
    'snapdriver_status_report_attempts', "Attempts to send a status report "
    "(retries included).", registry=REGISTRY)
PROGRESS_UPDATES = prometheus_client.Counter(
    'snapdriver_progress_updates', "Intermediate progress updates sent to "
    "Cinder, by what became of them (delivered, given_up).", ['delivery'],
    registry=REGISTRY)
API_REQUESTS = prometheus_client.Counter(
    'snapdriver_api_requests', "API requests answered, by method and "
    "status code.", ['method', 'status'], registry=REGISTRY)


class JournalCollector:
    """Operations queued and running, and status reports pending, as the
    journal has them when scraped."""

    def __init__(self, journal):
        self.journal = journal

    def describe(self):
        return []

    def collect(self):
        states, pending = self.journal.counts()
        gauge = core.GaugeMetricFamily(
            'snapdriver_operations_in_state', "Operations in the journal "
            "by state (queued, running, and finished ones kept for GET).",
            labels=['state'])
        for state in objects.STATES:
            gauge.add_metric([state], states.get(state, 0))
        yield gauge
        yield core.GaugeMetricFamily(
            'snapdriver_status_reports_pending', "Finished operations "
            "whose status report is not delivered yet.", value=pending)


_COLLECTORS = {}


def watch_journal(journal):
    """Collect the journal's counts (a process has one journal)."""
    previous = _COLLECTORS.pop('journal', None)
    if previous is not None:
        REGISTRY.unregister(previous)
    collector = JournalCollector(journal)
    REGISTRY.register(collector)
    _COLLECTORS['journal'] = collector


def exposition_text():
    """(body, content type) of a scrape."""
    return exposition.generate_latest(REGISTRY), exposition.CONTENT_TYPE_LATEST
