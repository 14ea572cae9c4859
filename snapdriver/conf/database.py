"""The [database] group (the operation journal): oslo.db's own options.

snapdriver declares none of its own here; it sets two defaults: the
journal is an SQLite file that needs no server, and ``sqlite_synchronous``
is False, which for snapdriver means SQLite's ``synchronous=NORMAL`` in
WAL mode (every transition survives a crash or SIGKILL of snapdriver;
True: FULL, also a power cut, an fsync per transition), see
:mod:`snapdriver.db.api`.
"""

from oslo_config import cfg
from oslo_db import options as db_options

DEFAULT_CONNECTION = 'sqlite:////var/lib/snapdriver/snapdriver.sqlite'

# On oslo.db's option objects themselves, so that a reset configuration
# (tests) and the sample keep them.
cfg.set_defaults(db_options.database_opts, connection=DEFAULT_CONNECTION,
                 sqlite_synchronous=False)


def register_opts(conf):
    conf.register_opts(db_options.database_opts, group='database')


def list_opts():
    return {'database': db_options.database_opts}
