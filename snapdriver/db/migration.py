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

"""The journal's schema under alembic migrations.

``snapdriver-manage db sync`` brings a journal to the newest revision
(:func:`upgrade`), ``db version`` tells where it is (:func:`version`).
A service checks at start that its journal is exactly at the newest
revision (:func:`check`) and refuses to start otherwise: an unmigrated
journal would fail on the first operation, a newer one (a downgrade of
snapdriver) could be written wrongly.

Journals made before snapdriver had migrations (the table made at first
use, no ``alembic_version``) are adopted by :func:`upgrade`: stamped with
the revision whose columns they have, then brought up to date.
"""

import os

import sqlalchemy as sa

from snapdriver import exception

_SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        'migrations')

# The columns that each revision added, newest first: what an unversioned
# journal has tells its revision.
_ADDED = (('0003', 'progress'), ('0002', 'project_id'))

#: The newest revision, as :func:`head` reads it from the scripts (a unit
#: test keeps the two equal). A service's start compares the journal with
#: it without loading alembic (about 10 MiB of memory for good); alembic
#: is imported only to migrate, or to explain a journal not at HEAD.
HEAD = '0003'


def _config(connection=None):
    from alembic import config as alembic_config

    config = alembic_config.Config()
    config.set_main_option('script_location', _SCRIPTS)
    config.attributes['connection'] = connection
    return config


def head():
    """The newest revision."""
    from alembic import script as alembic_script

    return alembic_script.ScriptDirectory.from_config(
        _config()).get_current_head()


def revisions():
    """Every revision, oldest first."""
    from alembic import script as alembic_script

    scripts = alembic_script.ScriptDirectory.from_config(_config())
    return [script.revision for script in
            reversed(list(scripts.walk_revisions()))]


def version(engine):
    """The journal's revision: None when it has no schema at all,
    ``'legacy:<revision>'`` when it was made before migrations."""
    from alembic import migration as alembic_migration

    with engine.connect() as conn:
        current = alembic_migration.MigrationContext.configure(
            conn).get_current_revision()
        if current is not None:
            return current
        legacy = _legacy_revision(conn)
    return None if legacy is None else 'legacy:%s' % legacy


def _legacy_revision(conn):
    inspector = sa.inspect(conn)
    if not inspector.has_table('operations'):
        return None
    present = {column['name'] for column in
               inspector.get_columns('operations')}
    for revision, column in _ADDED:
        if column in present:
            return revision
    return '0001'


def upgrade(engine, revision='head'):
    """Bring the journal up to ``revision``; adopt one made before
    migrations.

    :returns: (revision before, revision after)
    """
    from alembic import command
    from alembic import migration as alembic_migration

    with engine.begin() as conn:
        before = alembic_migration.MigrationContext.configure(
            conn).get_current_revision()
        config = _config(conn)
        if before is None:
            legacy = _legacy_revision(conn)
            if legacy is not None:
                command.stamp(config, legacy)
                before = legacy
        command.upgrade(config, revision)
    return before, version(engine)


def touch(engine):
    """Write to the journal without changing it: its revision row,
    rewritten with itself (the health checks' write). Raises what the
    database says."""
    with engine.begin() as conn:
        conn.execute(sa.text('UPDATE alembic_version '
                             'SET version_num = version_num'))


def _stamped(conn):
    """The revision in ``alembic_version``, read without alembic (None
    when there is no such table)."""
    if not sa.inspect(conn).has_table('alembic_version'):
        return None
    return conn.execute(sa.text(
        'SELECT version_num FROM alembic_version')).scalar()


def check(engine, where):
    """Refuse a journal that is not exactly at the newest revision.

    :param where: the journal in words, for the message.
    :raises: JournalSchemaError saying what to do.
    """
    with engine.connect() as conn:
        if _stamped(conn) == HEAD:
            return
    current = version(engine)
    newest = head()
    if current == newest:
        return
    if current is None:
        problem = "has no schema yet"
    elif current.startswith('legacy:'):
        problem = ("was made before snapdriver had migrations (its columns "
                   "are those of revision %s)" % current.split(':')[1])
    elif current not in revisions():
        raise exception.JournalSchemaError(
            journal=where, problem="is at revision %s, which this "
            "snapdriver does not know (its newest is %s): it was written "
            "by a newer snapdriver" % (current, newest),
            action="run that newer snapdriver, or restore the journal's "
            "backup made before its upgrade")
    else:
        problem = "is at revision %s, not the newest (%s)" % (current,
                                                              newest)
    raise exception.JournalSchemaError(
        journal=where, problem=problem,
        action="run 'snapdriver-manage db sync' with the same "
        "configuration")
