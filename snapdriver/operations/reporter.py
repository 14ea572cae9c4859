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

"""Status reporters: how the outcome of an operation reaches Cinder.

Cinder learns the result of an assisted snapshot only from the snapshot
status callback. The values are Cinder's (see cinder-protocol.md): after a
create, ``creating`` (success) or ``error``; after a delete, ``deleting``
(success) or ``error_deleting``; always with progress ``90%``. While a
merge runs, a reporter may also send intermediate updates
(:meth:`StatusReporter.report_progress`): ``deleting`` with a progress
below ``90%``. They are
defined in :mod:`snapdriver.objects`; the names below stay for reporter
plugins.
"""

import abc
import dataclasses

from oslo_log import log

from snapdriver import objects

LOG = log.getLogger(__name__)

NAMESPACE = 'snapdriver.status_reporters'

PROGRESS = objects.PROGRESS
CREATE_SUCCEEDED = objects.CREATING
CREATE_FAILED = objects.ERROR
DELETE_SUCCEEDED = objects.DELETING
DELETE_FAILED = objects.ERROR_DELETING


def status_for(action, succeeded):
    """The Cinder status that reports an operation of ``action`` (a kind
    other than create counts as a delete).

    Kept for reporter plugins; see :func:`snapdriver.objects.cinder_status`.
    """
    return objects.cinder_status(objects.action_of(action), succeeded)


@dataclasses.dataclass
class Delivery:
    """What became of one report.

    :param state: a delivery state of :mod:`snapdriver.objects`:
        ``delivered``, ``pending`` or ``given_up``.
    :param detail: the receiver's answer, in words.
    :param attempts: how many times it was sent.
    """
    state: str
    detail: str = ''
    attempts: int = 1


class StatusReporter(abc.ABC):
    """Delivers a snapshot status to Cinder (or wherever it goes)."""

    #: Whether :meth:`report` may need the token of the caller that asked
    #: for the operation. When False, the journal keeps the caller's
    #: context without its tokens.
    uses_caller_token = True

    @abc.abstractmethod
    def report(self, context, snapshot_id, status, progress=PROGRESS,
               on_retry=None):
        """Send one status update, retrying what may succeed later.

        :param context: the RequestContext of the caller that asked for
            the operation.
        :param on_retry: called as ``on_retry(attempt, reason)`` after each
            failed attempt that will be retried, so that the failure is
            visible while retries go on.
        :returns: a :class:`Delivery`.
        """

    def report_progress(self, context, snapshot_id, status, progress):
        """Send one intermediate update of a running merge, once.

        Never retried, and quick: the final report of the operation waits
        for an intermediate update on its way (see
        :mod:`snapdriver.operations.progress`), so an implementation must
        bound its time (``[cinder] progress_timeout`` for Cinder's).

        :param status: ``deleting``.
        :param progress: below ``90%``, such as ``'40%'``.
        :returns: a :class:`Delivery` (``delivered`` or ``given_up``), or
            None when this reporter sends no intermediate updates (the
            default).
        """
        return None


class LogReporter(StatusReporter):
    """Development reporter: logs the status that Cinder would receive."""

    uses_caller_token = False

    def report(self, context, snapshot_id, status, progress=PROGRESS,
               on_retry=None):
        LOG.info("Snapshot %s status: %s (progress %s); the 'log' status "
                 "reporter does not tell Cinder", snapshot_id, status,
                 progress)
        return Delivery(state=objects.DELIVERED, detail='logged only')
