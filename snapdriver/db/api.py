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

"""Engines of the journal's database, through oslo.db's engine facade.

oslo.db's ``[database]`` options configure them (connection, pool sizes,
retries, MySQL's SQL mode, ...). SQLite gets what a journal written by
many threads needs on top: WAL (readers, such as GET, do not block the
writer), a busy timeout, and ``synchronous`` NORMAL (every committed
transition survives a crash or SIGKILL of snapdriver), or FULL with
``[database] sqlite_synchronous = true`` (also a power cut, at the cost
of an fsync per transition).
"""

import os

from oslo_db.sqlalchemy import enginefacade
import sqlalchemy as sa

from snapdriver.conf import CONF


def in_memory(url):
    """Whether ``url`` is an SQLite database in memory (tests)."""
    url = sa.engine.make_url(url)
    return (url.get_backend_name() == 'sqlite'
            and url.database in (None, '', ':memory:'))


def missing_sqlite_file(url=None):
    """The path of the SQLite file ``url`` (default ``[database]
    connection``) names when it does not exist, else None: what reads a
    journal must not make an empty one."""
    url = sa.engine.make_url(url or CONF.database.connection)
    if (url.get_backend_name() == 'sqlite' and not in_memory(url)
            and not os.path.exists(url.database)):
        return url.database
    return None


#: SQLite's page cache per connection, KiB.
SQLITE_CACHE_KIB = 256


def _sqlite_pragmas(synchronous):
    def set_pragmas(dbapi_connection, connection_record):
        cursor = dbapi_connection.cursor()
        cursor.execute('PRAGMA journal_mode=WAL')
        cursor.execute('PRAGMA synchronous=%s' % synchronous)
        cursor.execute('PRAGMA busy_timeout=10000')
        # SQLite's page cache is per connection (2 MiB each by default, up
        # to eight pooled): the journal is small and the kernel caches its
        # file anyway.
        cursor.execute('PRAGMA cache_size=-%d' % SQLITE_CACHE_KIB)
        cursor.close()
    return set_pragmas


def _prepare_sqlite_file(path):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o700, exist_ok=True)
    if not os.path.exists(path):
        # It may hold callers' tokens (the fallback for status reports
        # without [cinder] service credentials): its owner's only.
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def _pooled(unpooled):
    """A pool of connections in place of oslo.db's NullPool for an SQLite
    file.

    oslo.db opens a new connection (and runs our pragmas) for every
    statement of an SQLite file: a journal update took 1.7 ms instead of
    0.2 (tools/benchmark.py, table 6), four of them per operation and one
    per GET. A pool keeps them open; SQLite's WAL lets them read side by
    side, and the journal serialises its writers itself. No pre-ping: a
    file does not go away like a server.
    """
    return sa.pool.QueuePool(
        unpooled._creator, pool_size=8, max_overflow=64, timeout=30,
        recycle=-1, pre_ping=False, reset_on_return=unpooled._reset_on_return,
        _dispatch=unpooled.dispatch, dialect=unpooled._dialect)


def create_engine(url=None, sqlite_synchronous=None):
    """An engine for the journal at ``url`` (default ``[database]
    connection``), with the rest of ``[database]``'s options.

    :param sqlite_synchronous: overrides ``[database] sqlite_synchronous``.
    """
    url = sa.engine.make_url(url or CONF.database.connection)
    if sqlite_synchronous is None:
        sqlite_synchronous = CONF.database.sqlite_synchronous
    sqlite = url.get_backend_name() == 'sqlite'
    sqlite_file = sqlite and not in_memory(url)
    if sqlite_file:
        _prepare_sqlite_file(url.database)
        # Pooled connections move between the journal's threads.
        url = url.update_query_dict({'check_same_thread': 'false'})
    context = enginefacade.transaction_context()
    options = {name: getattr(CONF.database, name)
               for name in ('max_pool_size', 'max_overflow',
                            'pool_timeout', 'connection_recycle_time',
                            'max_retries', 'retry_interval',
                            'mysql_sql_mode', 'connection_debug')
               if name in CONF.database}
    # thread_checkin=False: oslo.db's time.sleep(0) on every connection
    # checkin is for eventlet's green threads; with native threads it
    # gives the GIL away on each of them and costs a request a few ms of
    # waiting for it back when other threads are busy.
    context.configure(connection=url.render_as_string(hide_password=False),
                      sqlite_synchronous=sqlite_synchronous,
                      thread_checkin=False, **options)
    engine = context.writer.get_engine()
    if sqlite_file:
        engine.pool = _pooled(engine.pool)
    if sqlite:
        sa.event.listen(engine, 'connect', _sqlite_pragmas(
            'FULL' if sqlite_synchronous else 'NORMAL'))
    return engine
