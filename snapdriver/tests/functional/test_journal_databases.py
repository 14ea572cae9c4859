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

"""The journal on SQLite, MySQL (MariaDB) and PostgreSQL.

Each test gets a database of its own: a temporary SQLite file, or a new
database made on the server (dropped afterwards). The servers are found
at ``$SNAPDRIVER_TEST_MYSQL_URL`` / ``$SNAPDRIVER_TEST_PGSQL_URL``, else
at 127.0.0.1:3306 (root, no password) and 127.0.0.1:5432 (postgres,
trust); where none answers, that backend's tests are skipped, saying so.

What is checked on each: every migration, walked up one revision at a
time, with the data it must carry over; the tables the newest revision
leaves are the ones the journal's queries use (alembic's comparison of
the models with the database finds nothing); the journal's operations,
timestamps to the microsecond and JSON included; a journal without a
schema, an old one and one newer than this snapdriver are refused with a
message saying what to do; ``snapdriver-manage db sync`` / ``db version``.
"""

import datetime
import os
import subprocess
import sys
import uuid

from alembic import autogenerate
from alembic import migration as alembic_migration
import fixtures
import sqlalchemy as sa

from snapdriver.db import api as db_api
from snapdriver.db import migration
from snapdriver.db import models
from snapdriver import exception
from snapdriver import objects
from snapdriver.operations import journal as journal_mod
from snapdriver.tests import base
from snapdriver.tests.functional import server

_SERVERS = {
    'mysql': ('SNAPDRIVER_TEST_MYSQL_URL',
              'mysql+pymysql://root@127.0.0.1:3306/'),
    'postgresql': ('SNAPDRIVER_TEST_PGSQL_URL',
                   'postgresql+psycopg2://postgres@127.0.0.1:5432/postgres'),
}
_REACHABLE = {}

# The columns each revision leaves.
FIRST = {'id', 'seq', 'snapshot_id', 'volume_id', 'kind', 'request',
         'context', 'guest', 'disk', 'state', 'error', 'chain_before',
         'expected_chain', 'chain_after', 'status', 'delivery',
         'delivery_detail', 'report_attempts', 'created_at', 'started_at',
         'finished_at', 'reported_at'}
COLUMNS = {'0001': FIRST, '0002': FIRST | {'project_id'},
           '0003': FIRST | {'project_id', 'progress'}}


def _server_url(backend):
    variable, default = _SERVERS[backend]
    return sa.engine.make_url(os.environ.get(variable) or default)


def _reachable(backend):
    """None if the server answers, else why not (the skip's reason)."""
    if backend not in _REACHABLE:
        url = _server_url(backend)
        engine = sa.create_engine(url, connect_args={'connect_timeout': 3})
        try:
            with engine.connect():
                _REACHABLE[backend] = None
        except Exception as e:
            _REACHABLE[backend] = (
                "no %s server at %s:%s (%s; set %s to use another): "
                "skipped" % (backend, url.host, url.port,
                             str(e).splitlines()[0],
                             _SERVERS[backend][0]))
        finally:
            engine.dispose()
    return _REACHABLE[backend]


class ScratchDatabase(fixtures.Fixture):
    """A new, empty database for one test; ``url`` names it."""

    def __init__(self, backend):
        super().__init__()
        self.backend = backend

    def _setUp(self):
        if self.backend == 'sqlite':
            directory = self.useFixture(fixtures.TempDir()).path
            self.url = 'sqlite:///%s' % os.path.join(directory, 'j.sqlite')
            return
        admin_url = _server_url(self.backend)
        name = 'snapdriver_test_%s' % uuid.uuid4().hex[:12]
        admin = sa.create_engine(admin_url, isolation_level='AUTOCOMMIT')
        with admin.connect() as conn:
            conn.exec_driver_sql('CREATE DATABASE %s' % name)

        def drop():
            with admin.connect() as conn:
                if self.backend == 'postgresql':
                    conn.exec_driver_sql(
                        "SELECT pg_terminate_backend(pid) FROM "
                        "pg_stat_activity WHERE datname = '%s'" % name)
                conn.exec_driver_sql('DROP DATABASE %s' % name)
            admin.dispose()
        self.addCleanup(drop)
        self.url = admin_url.set(database=name).render_as_string(
            hide_password=False)


class _JournalOnADatabase:
    """The tests, for the backend of the class they are mixed into."""

    backend = None

    def setUp(self):
        super().setUp()
        if self.backend != 'sqlite':
            reason = _reachable(self.backend)
            if reason:
                self.skipTest(reason)
        self.url = self.useFixture(ScratchDatabase(self.backend)).url
        self.engine = db_api.create_engine(self.url)
        self.addCleanup(self.engine.dispose)

    def columns(self):
        return {column['name'] for column in
                sa.inspect(self.engine).get_columns('operations')}

    def test_every_migration_walked_up(self):
        self.assertEqual(['0001', '0002', '0003'], migration.revisions())
        self.assertIsNone(migration.version(self.engine))
        for revision in migration.revisions():
            migration.upgrade(self.engine, revision)
            self.assertEqual(revision, migration.version(self.engine))
            self.assertEqual(COLUMNS[revision], self.columns(), revision)
            if revision == '0001':
                # Rows of the first release, one with a project in its
                # journalled context.
                table = sa.table('operations', *[
                    sa.column(name) for name in sorted(FIRST)])
                row = {'snapshot_id': 's', 'volume_id': 'v',
                       'kind': 'create', 'state': 'succeeded',
                       'report_attempts': 1, 'request': '{}',
                       'created_at': journal_mod.utcnow()}
                with self.engine.begin() as conn:
                    conn.execute(table.insert(), [
                        dict(row, id='with', seq=1,
                             context='{"project_id": "p-old"}'),
                        dict(row, id='without', seq=2, context=None)])
        with self.engine.connect() as conn:
            kept = dict(conn.execute(sa.text(
                'SELECT id, project_id FROM operations')).fetchall())
        self.assertEqual({'with': 'p-old', 'without': None}, kept)
        # Again: nothing to do.
        self.assertEqual(('0003', '0003'), migration.upgrade(self.engine))

    def test_the_models_are_what_the_migrations_make(self):
        migration.upgrade(self.engine)
        with self.engine.connect() as conn:
            context = alembic_migration.MigrationContext.configure(
                conn, opts={'compare_type': False})
            differences = autogenerate.compare_metadata(context,
                                                        models.metadata)
        # alembic's own version table is not the journal's business.
        self.assertEqual([], [d for d in differences
                              if 'alembic_version' not in str(d)])

    def test_the_journal(self):
        journal = journal_mod.Journal(self.url, migrate=True)
        created = datetime.datetime(2026, 12, 5, 17, 1, 2, 345678)
        record = {
            'id': 'op1', 'snapshot_id': 'snap1', 'volume_id': 'vol1',
            'kind': 'commit', 'state': objects.QUEUED, 'project_id': 'p1',
            'request': {'action': 'delete', 'volume_id': 'vol1',
                        'snapshot_id': 'snap1', 'file_to_merge': 'a',
                        'merge_target_file': 'b'},
            'context': {'user_id': 'u', 'project_id': 'p1'},
            'chain_before': ['c', 'a', 'b'], 'expected_chain': ['c', 'b'],
            'report_attempts': 0, 'created_at': created}
        self.assertEqual(1, journal.add(record)['seq'])
        journal.check_writable()        # the health check's write
        journal.add(dict(record, id='op2', snapshot_id='snap2',
                         state=objects.SUCCEEDED, delivery=objects.DELIVERED))
        progress = objects.MergeProgress(bytes_done=1 << 20,
                                         bytes_total=8 << 20, rate=512.5)
        journal.update('op1', state=objects.FAILED, error='it broke: "x"',
                       status=objects.ERROR_DELETING,
                       delivery=objects.PENDING,
                       progress=progress.to_dict(),
                       finished_at=created + datetime.timedelta(
                           microseconds=1))
        got = journal.get('op1')
        self.assertEqual(created, got['created_at'])
        self.assertEqual(created + datetime.timedelta(microseconds=1),
                         got['finished_at'])
        self.assertEqual(['c', 'a', 'b'], got['chain_before'])
        self.assertEqual('p1', got['context']['project_id'])
        self.assertEqual(progress.to_dict(), got['progress'])
        view = objects.OperationView.from_row(got)
        self.assertEqual((12.5, 'failed', 'it broke: "x"'),
                         (view.progress.percent, view.state, view.error))
        self.assertEqual(['op1'], [r['id'] for r in
                                   journal.by_snapshot('snap1')])
        self.assertEqual(['op1'], [r['id'] for r in journal.unfinished(
            objects.FINAL)])
        self.assertEqual(['op1'], [r['id'] for r in
                                   journal.pending_reports(objects.FINAL)])
        self.assertEqual(['op1', 'op2'],
                         [r['id'] for r in journal.listing()])
        self.assertEqual(['op2'], [r['id'] for r in journal.listing(
            states=[objects.SUCCEEDED], volume_id='vol1')])
        self.assertEqual(['op2'], [r['id'] for r in journal.listing(
            ids=['snap2'])])
        self.assertEqual(['op2'], [r['id'] for r in journal.listing(
            limit=1)])
        journal.trim(objects.FINAL, 0)
        self.assertEqual(['op1'], [r['id'] for r in journal.listing()])
        # A second journal on the same database goes on numbering after
        # the newest it holds (op2, trimmed, is no more).
        self.assertEqual(2, journal_mod.Journal(self.url).add(dict(
            record, id='op3', snapshot_id='snap3'))['seq'])

    def test_a_journal_without_a_schema_is_refused(self):
        error = self.assertRaises(exception.JournalSchemaError,
                                  journal_mod.Journal, self.url)
        self.assertIn('has no schema yet', str(error))
        self.assertIn("run 'snapdriver-manage db sync'", str(error))
        # Refusing made nothing.
        self.assertIsNone(migration.version(self.engine))

    def test_an_old_journal_is_refused(self):
        migration.upgrade(self.engine, '0002')
        error = self.assertRaises(exception.JournalSchemaError,
                                  journal_mod.Journal, self.url)
        self.assertIn('is at revision 0002, not the newest (0003)',
                      str(error))

    def test_a_newer_journal_is_refused(self):
        migration.upgrade(self.engine)
        with self.engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET "
                                 "version_num = '0099'"))
        error = self.assertRaises(exception.JournalSchemaError,
                                  journal_mod.Journal, self.url)
        self.assertIn('is at revision 0099, which this snapdriver does not '
                      'know (its newest is 0003): it was written by a newer '
                      'snapdriver', str(error))

    def manage(self, *argv):
        config = os.path.join(self.useFixture(fixtures.TempDir()).path,
                              'snapdriver.conf')
        server.write_config(config, {'database': {'connection': self.url}})
        return subprocess.run(
            [sys.executable, '-m', 'snapdriver.cmd.manage',
             '--config-file', config] + list(argv),
            capture_output=True, text=True, timeout=120)

    def test_db_sync_and_version(self):
        before = self.manage('db', 'version')
        self.assertEqual((1, 'none'), (before.returncode,
                                       before.stdout.strip()), before)
        synced = self.manage('db', 'sync')
        self.assertEqual(0, synced.returncode, synced.stderr)
        self.assertEqual('The journal went from revision none (empty) to '
                         '0003.', synced.stdout.strip())
        after = self.manage('db', 'version')
        self.assertEqual((0, '0003'), (after.returncode,
                                       after.stdout.strip()), after)
        again = self.manage('db', 'sync')
        self.assertEqual('The journal is at revision 0003, the newest.',
                         again.stdout.strip())


class TestSQLite(_JournalOnADatabase, base.FunctionalTestCase):
    backend = 'sqlite'

    def test_a_journal_made_before_migrations_is_adopted(self):
        # What a snapdriver without migrations made at first use: the
        # table with the columns of 0002, no alembic_version.
        old = sa.MetaData()
        sa.Table('operations', old, *[
            column.copy() for column in models.operations.columns
            if column.name != 'progress'])
        old.create_all(self.engine)
        self.assertEqual('legacy:0002', migration.version(self.engine))
        self.assertIn('made before snapdriver had migrations',
                      str(self.assertRaises(exception.JournalSchemaError,
                                            journal_mod.Journal, self.url)))
        self.assertEqual(('0002', '0003'), migration.upgrade(self.engine))
        journal_mod.Journal(self.url)

    def test_the_service_refuses_an_unmigrated_journal(self):
        directory = self.useFixture(fixtures.TempDir()).path
        config = os.path.join(directory, 'snapdriver.conf')
        server.write_config(config, {
            'DEFAULT': {'driver': 'fake', 'status_reporter': 'log',
                        'auth_strategy': 'noauth'},
            'api': {'bind_host': '127.0.0.1',
                    'bind_port': server.free_port()},
            'database': {'connection': self.url}})
        code, output = server.run_to_exit(config)
        self.assertNotEqual(0, code)
        self.assertIn('has no schema yet: run \'snapdriver-manage db sync\' '
                      'with the same configuration', output)

    def test_a_journal_at_head_is_checked_without_alembic(self):
        # What a service's start does: alembic (about 10 MiB) stays out of
        # the process when the journal is at the newest revision.
        migration.upgrade(self.engine)
        out = subprocess.run(
            [sys.executable, '-c', _CHECK_AT_START, self.url], check=True,
            capture_output=True, text=True).stdout
        self.assertEqual('checked; alembic loaded: False', out.strip())


_CHECK_AT_START = """
import sys
from snapdriver.db import api, migration
migration.check(api.create_engine(sys.argv[1]), 'the journal')
print('checked; alembic loaded:', 'alembic' in sys.modules)
"""


class TestMySQL(_JournalOnADatabase, base.FunctionalTestCase):
    backend = 'mysql'


class TestPostgreSQL(_JournalOnADatabase, base.FunctionalTestCase):
    backend = 'postgresql'
