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

"""The vocabulary of operations, and the typed objects that carry them.

Every other module names these values from here, never by literal:

``action``
    what a request asks for: :data:`CREATE` or :data:`DELETE`, the compute
    API's two calls.
``kind``
    what an operation does to the chain: :data:`CREATE`, :data:`PULL` or
    :data:`COMMIT` (the chain rules decide which a delete is). A create
    request becomes a create operation, so the word ``create`` is both.
``state``
    where an operation is: :data:`QUEUED`, :data:`RUNNING`,
    :data:`SUCCEEDED`, :data:`FAILED`.
``delivery``
    where its status report is: :data:`PENDING`, :data:`DELIVERED`,
    :data:`GIVEN_UP`.
``status``
    the Cinder snapshot status that reports an outcome
    (:func:`cinder_status`), always with progress :data:`PROGRESS`.

The controllers build a :class:`CreateRequest` or :class:`DeleteRequest`
once; the manager, the journal (and later RPC) carry it, serialised with
``to_dict()`` and read back with :meth:`Request.from_dict`. What the API
shows of an operation is an :class:`OperationView`.

This module imports only the chain rules (for the kinds, which plans
carry): the API may use it without importing the operations package.
"""

import dataclasses
import datetime
import typing

from snapdriver import chain

# Actions: what a request asks for.
CREATE = chain.CREATE
DELETE = 'delete'
ACTIONS = (CREATE, DELETE)

# Kinds: what an operation does to the chain.
PULL = chain.PULL
COMMIT = chain.COMMIT
KINDS = (CREATE, PULL, COMMIT)

# Operation states.
QUEUED = 'queued'
RUNNING = 'running'
SUCCEEDED = 'succeeded'
FAILED = 'failed'
STATES = (QUEUED, RUNNING, SUCCEEDED, FAILED)
FINAL = (SUCCEEDED, FAILED)

# Delivery states of a status report.
PENDING = 'pending'
DELIVERED = 'delivered'
GIVEN_UP = 'given_up'
DELIVERIES = (PENDING, DELIVERED, GIVEN_UP)

# Cinder's snapshot status values (cinder-protocol.md), and the progress
# that goes with each.
PROGRESS = '90%'
CREATING = 'creating'
ERROR = 'error'
DELETING = 'deleting'
ERROR_DELETING = 'error_deleting'

_CINDER_STATUS = {
    (CREATE, True): CREATING,
    (CREATE, False): ERROR,
    (DELETE, True): DELETING,
    (DELETE, False): ERROR_DELETING,
}


def action_of(kind):
    """The action an operation of ``kind`` carries out: a create, or (a
    pull or a commit) a delete."""
    return CREATE if kind == CREATE else DELETE


def cinder_status(action, succeeded):
    """The Cinder status that reports the outcome of ``action``."""
    return _CINDER_STATUS[action, bool(succeeded)]


# Requests.

@dataclasses.dataclass(frozen=True)
class Request:
    """What a caller asked for, as the API validated it.

    Build a :class:`CreateRequest` or a :class:`DeleteRequest`; compare
    two with ``==`` (a repeated request equals the first in every field).
    """

    action: typing.ClassVar[str]
    volume_id: str
    snapshot_id: str

    def file_names(self):
        """The file names to check before anything else:
        ``[(field, value), ...]``."""
        raise NotImplementedError

    def to_dict(self):
        """The serialised request (journal, RPC): ``action`` and the
        fields."""
        return dict(action=self.action, **dataclasses.asdict(self))

    def to_api_dict(self):
        """The request as the GET answer has always shown it: the action
        under the key ``kind``, then the fields."""
        return dict(kind=self.action, **dataclasses.asdict(self))

    @staticmethod
    def from_dict(data):
        """A request from :meth:`to_dict` or :meth:`to_api_dict`.

        Journals written before requests were typed hold the action under
        ``kind``; both load.

        :raises: ValueError for an unknown action.
        """
        action = data['action'] if 'action' in data else data.get('kind')
        cls = _REQUESTS.get(action)
        if cls is None:
            raise ValueError("unknown request action %r" % (action,))
        return cls(**{field.name: data.get(field.name)
                      for field in dataclasses.fields(cls)})


@dataclasses.dataclass(frozen=True)
class CreateRequest(Request):
    """Switch the volume's disk onto ``new_file``, the overlay Cinder
    created beside the active image."""

    action: typing.ClassVar[str] = CREATE
    new_file: str

    def file_names(self):
        return [('new_file', self.new_file)]


@dataclasses.dataclass(frozen=True)
class DeleteRequest(Request):
    """Merge ``file_to_merge`` away (see the chain rules for which names
    mean a pull and which a commit)."""

    action: typing.ClassVar[str] = DELETE
    file_to_merge: typing.Optional[str] = None
    merge_target_file: typing.Optional[str] = None

    def file_names(self):
        return [(field, value) for field, value in (
            ('file_to_merge', self.file_to_merge),
            ('merge_target_file', self.merge_target_file))
            if value is not None]


_REQUESTS = {cls.action: cls for cls in (CreateRequest, DeleteRequest)}


# What the API shows.

def _iso(moment):
    return moment.isoformat() + 'Z' if moment else None


def _from_iso(text):
    return datetime.datetime.fromisoformat(text[:-1]) if text else None


@dataclasses.dataclass(frozen=True)
class StatusReport:
    """The status report of an operation: the Cinder ``status`` to report
    (None until the operation is final), its ``delivery`` state, the
    receiver's answer in words (``detail``), how many times the reporter
    was called (``attempts``) and when it last answered."""

    status: typing.Optional[str] = None
    delivery: typing.Optional[str] = None
    detail: typing.Optional[str] = None
    attempts: typing.Optional[int] = None
    reported_at: typing.Optional[datetime.datetime] = None

    @property
    def progress(self):
        return PROGRESS if self.status else None

    def to_dict(self):
        return {
            'status': self.status,
            'progress': self.progress,
            'delivery': self.delivery,
            'detail': self.detail,
            'attempts': self.attempts,
            'reported_at': _iso(self.reported_at),
        }


@dataclasses.dataclass(frozen=True)
class MergeProgress:
    """How far a merge's job is (or went), as GET shows it.

    The job is the hypervisor's: a block job of a running guest, qemu-img
    for a stopped one. Bytes are the job's own count (QEMU's), which for a
    pull or commit is the disk's size, not the data copied.

    :param rate: bytes per second over the last interval; None until two
        samples were taken.
    :param job_seconds: once the job ended, how long it took (with the
        flush that made it durable); None while it runs.
    """

    bytes_done: int
    bytes_total: int
    rate: typing.Optional[float] = None
    job_started_at: typing.Optional[datetime.datetime] = None
    updated_at: typing.Optional[datetime.datetime] = None
    job_seconds: typing.Optional[float] = None

    @property
    def finished(self):
        return self.job_seconds is not None

    @property
    def percent(self):
        """Done, in percent of the total, rounded down to a tenth."""
        if not self.bytes_total:
            return None
        done = min(self.bytes_done, self.bytes_total)
        return int(1000 * done // self.bytes_total) / 10

    @property
    def eta_seconds(self):
        """Seconds left at the last interval's rate, while running."""
        if self.finished or not self.rate or self.bytes_total is None:
            return None
        left = max(0, self.bytes_total - self.bytes_done)
        return round(left / self.rate, 1)

    @property
    def average_rate(self):
        """Bytes per second over the whole job, once it ended."""
        if not self.finished or not self.job_seconds:
            return None
        return round(self.bytes_done / self.job_seconds)

    def to_dict(self):
        return {
            'bytes_done': self.bytes_done,
            'bytes_total': self.bytes_total,
            'percent': self.percent,
            'rate_bytes_per_second': (None if self.rate is None
                                      else round(self.rate)),
            'eta_seconds': self.eta_seconds,
            'job_started_at': _iso(self.job_started_at),
            'updated_at': _iso(self.updated_at),
            'job_seconds': self.job_seconds,
            'average_rate_bytes_per_second': self.average_rate,
        }

    @classmethod
    def from_dict(cls, data):
        """From :meth:`to_dict` (the journal keeps that too); None for
        None."""
        if not data:
            return None
        return cls(bytes_done=data['bytes_done'],
                   bytes_total=data['bytes_total'],
                   rate=data.get('rate_bytes_per_second'),
                   job_started_at=_from_iso(data.get('job_started_at')),
                   updated_at=_from_iso(data.get('updated_at')),
                   job_seconds=data.get('job_seconds'))


@dataclasses.dataclass(frozen=True)
class OperationView:
    """An operation as the API shows it (no credentials).

    ``chain`` is the chain afterwards, or the chain before while the
    operation has not changed it. Times are naive UTC datetimes;
    :meth:`to_dict` gives the JSON the GET answer carries.
    """

    id: str
    snapshot_id: str
    volume_id: str
    kind: str
    state: str
    request: Request
    error: typing.Optional[str] = None
    guest: typing.Optional[str] = None
    disk: typing.Optional[str] = None
    chain_before: typing.List[str] = dataclasses.field(default_factory=list)
    expected_chain: typing.List[str] = dataclasses.field(
        default_factory=list)
    chain: typing.List[str] = dataclasses.field(default_factory=list)
    created_at: typing.Optional[datetime.datetime] = None
    started_at: typing.Optional[datetime.datetime] = None
    finished_at: typing.Optional[datetime.datetime] = None
    status_report: StatusReport = dataclasses.field(
        default_factory=StatusReport)
    #: The agent's host that ran it (dispatch = agents); None in a
    #: single-process service, where the GET answer leaves it out.
    host: typing.Optional[str] = None
    #: The project of the caller that asked for it (the policy target of
    #: GET); None for operations journalled before it was kept.
    project_id: typing.Optional[str] = None
    #: The merge's job, while it runs and once it ended; None for a
    #: create, and for a merge whose driver cannot tell.
    progress: typing.Optional[MergeProgress] = None

    @property
    def duration_seconds(self):
        if self.started_at and self.finished_at:
            return round(
                (self.finished_at - self.started_at).total_seconds(), 3)
        return None

    @classmethod
    def from_row(cls, row):
        """The view of a journal row (a dict of the ``operations``
        table's columns)."""
        return cls(
            id=row['id'],
            snapshot_id=row['snapshot_id'],
            volume_id=row['volume_id'],
            kind=row['kind'],
            state=row['state'],
            request=Request.from_dict(row['request']),
            project_id=row.get('project_id'),
            progress=MergeProgress.from_dict(row.get('progress')),
            error=row['error'],
            guest=row['guest'],
            disk=row['disk'],
            chain_before=list(row['chain_before'] or []),
            expected_chain=list(row['expected_chain'] or []),
            chain=list(row['chain_after'] or row['chain_before'] or []),
            created_at=row['created_at'],
            started_at=row['started_at'],
            finished_at=row['finished_at'],
            status_report=StatusReport(
                status=row['status'],
                delivery=row['delivery'],
                detail=row['delivery_detail'],
                attempts=row['report_attempts'],
                reported_at=row['reported_at']))

    def to_dict(self):
        """The operation as the GET answer shows it."""
        return {
            'id': self.id,
            'snapshot_id': self.snapshot_id,
            'volume_id': self.volume_id,
            'kind': self.kind,
            'state': self.state,
            'project_id': self.project_id,
            'error': self.error,
            'guest': self.guest,
            'disk': self.disk,
            'request': self.request.to_api_dict(),
            'chain_before': list(self.chain_before),
            'expected_chain': list(self.expected_chain),
            'chain': list(self.chain),
            'created_at': _iso(self.created_at),
            'started_at': _iso(self.started_at),
            'finished_at': _iso(self.finished_at),
            'duration_seconds': self.duration_seconds,
            'progress': (self.progress.to_dict() if self.progress
                         else None),
            'status_report': self.status_report.to_dict(),
        } | ({'host': self.host} if self.host is not None else {})

    @classmethod
    def from_dict(cls, data):
        """The view back from :meth:`to_dict`."""
        report = data['status_report']
        return cls(
            host=data.get('host'),
            id=data['id'],
            snapshot_id=data['snapshot_id'],
            volume_id=data['volume_id'],
            kind=data['kind'],
            state=data['state'],
            request=Request.from_dict(data['request']),
            # An agent older than the project's journalling sends none.
            project_id=data.get('project_id'),
            # Nor progress, if older still.
            progress=MergeProgress.from_dict(data.get('progress')),
            error=data['error'],
            guest=data['guest'],
            disk=data['disk'],
            chain_before=list(data['chain_before']),
            expected_chain=list(data['expected_chain']),
            chain=list(data['chain']),
            created_at=_from_iso(data['created_at']),
            started_at=_from_iso(data['started_at']),
            finished_at=_from_iso(data['finished_at']),
            status_report=StatusReport(
                status=report['status'],
                delivery=report['delivery'],
                detail=report['detail'],
                attempts=report['attempts'],
                reported_at=_from_iso(report['reported_at'])))


# Agents (dispatch = agents).

@dataclasses.dataclass(frozen=True)
class AgentReport:
    """What an agent tells the API tier about itself, now and then.

    :param volumes: the volume serials its driver sees attached; None when
        the driver cannot tell.
    :param sent_at: when it was sent (seconds since the epoch, the agent's
        clock).
    """

    host: str
    driver: str
    version: str
    volumes: typing.Optional[typing.Tuple[str, ...]]
    sent_at: float

    def to_dict(self):
        return {'host': self.host, 'driver': self.driver,
                'version': self.version,
                'volumes': (None if self.volumes is None
                            else list(self.volumes)),
                'sent_at': self.sent_at}

    @classmethod
    def from_dict(cls, data):
        volumes = data.get('volumes')
        return cls(host=data['host'], driver=data['driver'],
                   version=data['version'],
                   volumes=None if volumes is None else tuple(volumes),
                   sent_at=float(data['sent_at']))
