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

"""The operation journal: every accepted operation, durably.

An operation is written before the caller gets its 200/204, and every
change of state is written before the next step, so that a restarted
snapdriver knows what was accepted, how far each operation got, which
outcome is known, and which status report has not been delivered yet.

Embedded SQLite through SQLAlchemy by default (``[database] connection``),
so a single hypervisor host needs no database server; any SQLAlchemy URL
works. The schema is created on first use.
"""

import contextlib
import datetime
import fcntl
import os
import socket
import sys
import threading

from oslo_log import log
import sqlalchemy as sa
from sqlalchemy import pool

from snapdriver import exception
from snapdriver import objects

LOG = log.getLogger(__name__)

# The process's journal locks: held until the process ends.
_HELD = []

_metadata = sa.MetaData()

operations = sa.Table(
    'operations', _metadata,
    sa.Column('id', sa.String(36), primary_key=True),
    sa.Column('seq', sa.Integer, nullable=False, index=True),
    sa.Column('snapshot_id', sa.String(255), nullable=False, index=True),
    sa.Column('volume_id', sa.String(255), nullable=False, index=True),
    sa.Column('kind', sa.String(16), nullable=False),
    sa.Column('request', sa.JSON, nullable=False),
    sa.Column('context', sa.JSON),
    # Added after the first release: journals made before get it added by
    # Journal (ALTER TABLE), filled from the journalled contexts.
    sa.Column('project_id', sa.String(255)),
    sa.Column('guest', sa.String(255)),
    sa.Column('disk', sa.String(64)),
    sa.Column('state', sa.String(32), nullable=False, index=True),
    sa.Column('error', sa.Text),
    sa.Column('chain_before', sa.JSON),
    sa.Column('expected_chain', sa.JSON),
    sa.Column('chain_after', sa.JSON),
    sa.Column('status', sa.String(32)),
    sa.Column('delivery', sa.String(16)),
    sa.Column('delivery_detail', sa.Text),
    sa.Column('report_attempts', sa.Integer, nullable=False, default=0),
    sa.Column('created_at', sa.DateTime, nullable=False),
    sa.Column('started_at', sa.DateTime),
    sa.Column('finished_at', sa.DateTime),
    sa.Column('reported_at', sa.DateTime),
    # Added after project_id: the merge job's progress
    # (objects.MergeProgress.to_dict()), while it runs and once it ended.
    sa.Column('progress', sa.JSON),
)

COLUMNS = [c.name for c in operations.columns]


def _sqlite_pragmas(synchronous):
    def set_pragmas(dbapi_connection, connection_record):
        cursor = dbapi_connection.cursor()
        # WAL: readers (GET) do not block the writer. In WAL mode NORMAL
        # keeps every committed transition across a crash of snapdriver
        # (SIGKILL included); FULL also across a power cut, at the cost
        # of an fsync per transition.
        cursor.execute('PRAGMA journal_mode=WAL')
        cursor.execute('PRAGMA synchronous=%s' % synchronous)
        cursor.execute('PRAGMA busy_timeout=10000')
        cursor.close()
    return set_pragmas


def _in_memory(url):
    return (url.get_backend_name() == 'sqlite'
            and url.database in (None, '', ':memory:'))


def create_engine(url, synchronous='NORMAL'):
    """An engine for ``url``, with SQLite made safe for our threads."""
    url = sa.engine.make_url(url)
    if url.get_backend_name() != 'sqlite':
        return sa.create_engine(url, pool_pre_ping=True, future=True)
    kwargs = {'connect_args': {'check_same_thread': False}, 'future': True}
    if _in_memory(url):
        kwargs['poolclass'] = pool.StaticPool
    else:
        directory = os.path.dirname(os.path.abspath(url.database))
        os.makedirs(directory, mode=0o700, exist_ok=True)
        if not os.path.exists(url.database):
            # It may hold callers' tokens (the fallback for status
            # reports without [cinder] service credentials).
            os.close(os.open(url.database, os.O_CREAT | os.O_WRONLY, 0o600))
    engine = sa.create_engine(url, **kwargs)
    sa.event.listen(engine, 'connect', _sqlite_pragmas(synchronous))
    return engine


def lock(url):
    """Take the exclusive lock of the journal at ``url`` for the rest of
    this process's life, so that no second snapdriver runs on it.

    For an SQLite file it is an ``flock`` on ``<file>.lock`` beside it,
    released by the kernel when the process ends however it ends (SIGKILL
    included); the file names the holder (pid, host, program, since when).
    An in-memory database needs none. A database server cannot be locked
    this way: a warning says that the operator must see to it.

    :returns: the lock file's path, or None.
    :raises: JournalInUse naming the holder.
    """
    url = sa.engine.make_url(url)
    if _in_memory(url):
        return None
    if url.get_backend_name() != 'sqlite':
        LOG.warning("The operation journal is on a database server "
                    "(%s): make sure that one snapdriver-api or "
                    "snapdriver-agent at most uses it; two would both run "
                    "the same operations.", url.get_backend_name())
        return None
    database = os.path.abspath(url.database)
    path = database + '.lock'
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 4096).decode('utf-8', 'replace').strip()
        os.close(fd)
        raise exception.JournalInUse(
            journal=database, lock=path,
            holder=holder or "a process that has not yet said which")
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.write(fd, ("pid %d on host %s (%s), since %s UTC\n" % (
        os.getpid(), socket.gethostname(),
        os.path.basename(sys.argv[0]) or 'python',
        utcnow().isoformat(timespec='seconds'))).encode())
    _HELD.append(fd)
    return path


class Journal:
    """Rows of the ``operations`` table, as dicts."""

    def __init__(self, url, synchronous='NORMAL'):
        url = sa.engine.make_url(url)
        self.engine = create_engine(url, synchronous)
        _metadata.create_all(self.engine)
        # SQLite has one writer at a time: serialising our own writers
        # avoids busy retries. An in-memory database is one connection
        # shared by every thread, so there readers take the lock too.
        self._lock = threading.Lock()
        self._read_lock = (self._lock if _in_memory(url)
                           else contextlib.nullcontext())
        self._add_missing_columns()
        with self.engine.connect() as conn:
            self._seq = conn.execute(
                sa.select(sa.func.max(operations.c.seq))).scalar() or 0

    def _add_missing_columns(self):
        """Bring a journal made by an earlier snapdriver up to the table
        above: columns added since are nullable, added in place, and
        filled where the old rows tell the value."""
        present = {column['name'] for column in
                   sa.inspect(self.engine).get_columns('operations')}
        if 'project_id' not in present:
            self._add_project_id()
        if 'progress' not in present:
            with self._lock, self.engine.begin() as conn:
                column_type = operations.c.progress.type.compile(
                    dialect=conn.dialect)
                conn.execute(sa.text(
                    'ALTER TABLE operations ADD COLUMN progress %s'
                    % column_type))
            LOG.info("Journal: added the column progress")

    def _add_project_id(self):
        with self._lock, self.engine.begin() as conn:
            conn.execute(sa.text(
                'ALTER TABLE operations ADD COLUMN project_id VARCHAR(255)'))
            filled = 0
            for operation_id, context in conn.execute(
                    sa.select(operations.c.id, operations.c.context).where(
                        operations.c.context.is_not(None))).fetchall():
                project_id = (context or {}).get('project_id')
                if project_id:
                    conn.execute(operations.update()
                                 .where(operations.c.id == operation_id)
                                 .values(project_id=project_id))
                    filled += 1
        LOG.info("Journal: added the column project_id, filled for %d "
                 "operation(s) from their journalled request contexts",
                 filled)

    def add(self, record):
        """Insert a new operation; ``seq`` orders operations as accepted."""
        with self._lock, self.engine.begin() as conn:
            self._seq += 1
            record = dict(dict.fromkeys(COLUMNS), **record, seq=self._seq)
            conn.execute(operations.insert().values(**record))
        return record

    def update(self, operation_id, **values):
        with self._lock, self.engine.begin() as conn:
            conn.execute(operations.update()
                         .where(operations.c.id == operation_id)
                         .values(**values))

    def _select(self, *where):
        query = sa.select(operations).where(*where).order_by(
            operations.c.seq)
        with self._read_lock, self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def get(self, operation_id):
        rows = self._select(operations.c.id == operation_id)
        return rows[0] if rows else None

    def by_snapshot(self, snapshot_id):
        """Operations of a snapshot id, oldest first."""
        return self._select(operations.c.snapshot_id == snapshot_id)

    def listing(self, states=None, delivery=None, volume_id=None, ids=None,
                limit=None):
        """Operations, oldest first, filtered as given (each filter a
        value or None for any).

        :param states: a list of states.
        :param ids: operation or snapshot ids.
        :param limit: at most this many, the newest.
        """
        where = []
        if states:
            where.append(operations.c.state.in_(states))
        if delivery:
            where.append(operations.c.delivery == delivery)
        if volume_id:
            where.append(operations.c.volume_id == volume_id)
        if ids:
            where.append(sa.or_(operations.c.id.in_(ids),
                                operations.c.snapshot_id.in_(ids)))
        query = sa.select(operations).where(*where).order_by(
            operations.c.seq.desc())
        if limit:
            query = query.limit(limit)
        with self._read_lock, self.engine.connect() as conn:
            return [dict(row._mapping)
                    for row in reversed(conn.execute(query).fetchall())]

    def unfinished(self, final_states):
        """Operations whose work or whose status report is not finished."""
        return self._select(sa.or_(
            operations.c.state.not_in(final_states),
            operations.c.delivery == objects.PENDING))

    def pending_reports(self, final_states):
        """Finished operations whose status report is still pending."""
        return self._select(operations.c.state.in_(final_states),
                            operations.c.delivery == objects.PENDING)

    def trim(self, final_states, keep):
        """Forget all but the newest ``keep`` finished and reported
        operations."""
        done = sa.and_(operations.c.state.in_(final_states),
                       operations.c.delivery != objects.PENDING)
        with self._lock, self.engine.begin() as conn:
            cutoff = conn.execute(
                sa.select(operations.c.seq).where(done)
                .order_by(operations.c.seq.desc())
                .offset(keep).limit(1)).scalar()
            if cutoff is not None:
                conn.execute(operations.delete().where(
                    done, operations.c.seq <= cutoff))


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
