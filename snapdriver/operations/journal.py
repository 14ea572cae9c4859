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

Embedded SQLite by default (``[database] connection``, oslo.db's
options), so a single hypervisor host needs no database server; MySQL
(MariaDB) and PostgreSQL work too. The schema is under migrations
(:mod:`snapdriver.db.migration`, ``snapdriver-manage db sync``): a journal
not at the newest revision is refused.
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

from snapdriver.db import api as db_api
from snapdriver.db import migration
from snapdriver.db import models
from snapdriver import exception
from snapdriver import objects

LOG = log.getLogger(__name__)

# The process's journal locks: held until the process ends.
_HELD = []

operations = models.operations
COLUMNS = models.COLUMNS

# The statements run for every operation, built once: SQLAlchemy then
# reuses their compiled form instead of building, keying and looking up a
# new statement each time (most of the journal's CPU). The SET clause of
# _UPDATE follows the parameters given.
_INSERT = operations.insert()
_UPDATE = operations.update().where(operations.c.id == sa.bindparam('_id'))
_BY_ID = sa.select(operations).where(
    operations.c.id == sa.bindparam('_id'))
_BY_SNAPSHOT = sa.select(operations).where(
    operations.c.snapshot_id == sa.bindparam('_snapshot_id')).order_by(
        operations.c.seq)


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
    if db_api.in_memory(url):
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
    """Rows of the ``operations`` table, as dicts.

    :param url: the database (default ``[database] connection``).
    :param sqlite_synchronous: overrides ``[database] sqlite_synchronous``.
    :param migrate: bring the schema to the newest revision first (what
        ``snapdriver-manage db sync`` does; tests). Without, a journal
        not at the newest revision is refused (JournalSchemaError). An
        in-memory database is always new, and always migrated.
    """

    def __init__(self, url=None, sqlite_synchronous=None, migrate=False):
        self.engine = db_api.create_engine(url, sqlite_synchronous)
        url = self.engine.url
        if migrate or db_api.in_memory(url):
            migration.upgrade(self.engine)
        else:
            migration.check(self.engine,
                            url.render_as_string(hide_password=True))
        # SQLite has one writer at a time: serialising our own writers
        # avoids busy retries. An in-memory database is one connection
        # shared by every thread, so there readers take the lock too.
        self._lock = threading.Lock()
        self._read_lock = (self._lock if db_api.in_memory(url)
                           else contextlib.nullcontext())
        with self.engine.connect() as conn:
            self._seq = conn.execute(
                sa.select(sa.func.max(operations.c.seq))).scalar() or 0

    def counts(self):
        """(operations by state ``{state: n}``, finished operations whose
        report is pending): one statement each."""
        with self._read_lock, self.engine.connect() as conn:
            states = dict(conn.execute(
                sa.select(operations.c.state, sa.func.count())
                .group_by(operations.c.state)).fetchall())
            pending = conn.execute(
                sa.select(sa.func.count()).select_from(operations).where(
                    operations.c.state.in_(objects.FINAL),
                    operations.c.delivery == objects.PENDING)).scalar()
        return states, pending

    def check_writable(self):
        """Write to the journal without changing it
        (:func:`snapdriver.db.migration.touch`); raises what the database
        says."""
        with self._lock:
            migration.touch(self.engine)

    def add(self, record):
        """Insert a new operation; ``seq`` orders operations as accepted."""
        with self._lock, self.engine.begin() as conn:
            self._seq += 1
            record = dict(dict.fromkeys(COLUMNS), **record, seq=self._seq)
            conn.execute(_INSERT, record)
        return record

    def update(self, operation_id, **values):
        with self._lock, self.engine.begin() as conn:
            conn.execute(_UPDATE, dict(values, _id=operation_id))

    def _select(self, *where):
        return self._rows(sa.select(operations).where(*where).order_by(
            operations.c.seq))

    def _rows(self, statement, **parameters):
        with self._read_lock, self.engine.connect() as conn:
            return [dict(row._mapping)
                    for row in conn.execute(statement, parameters)]

    def get(self, operation_id):
        rows = self._rows(_BY_ID, _id=operation_id)
        return rows[0] if rows else None

    def by_snapshot(self, snapshot_id):
        """Operations of a snapshot id, oldest first."""
        return self._rows(_BY_SNAPSHOT, _snapshot_id=snapshot_id)

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
