"""The [database] group (the operation journal): oslo.db's own options.

snapdriver declares none of its own here; it sets two defaults: the
journal is an SQLite file that needs no server, and ``sqlite_synchronous``
is False, which for snapdriver means SQLite's ``synchronous=NORMAL`` in
WAL mode (every transition survives a crash or SIGKILL of snapdriver;
True: FULL, also a power cut, an fsync per transition), see
:mod:`snapdriver.db.api`.
"""

import copy

from oslo_config import cfg
from oslo_db import options as db_options

DEFAULT_CONNECTION = 'sqlite:////var/lib/snapdriver/snapdriver.sqlite'


def register_opts(conf):
    db_options.set_defaults(conf, connection=DEFAULT_CONNECTION)
    conf.set_default('sqlite_synchronous', False, group='database')


def list_opts():
    """oslo.db's options, with snapdriver's defaults (for the sample)."""
    opts = copy.deepcopy(db_options.database_opts)
    cfg.set_defaults(opts, connection=DEFAULT_CONNECTION,
                     sqlite_synchronous=False)
    return {'database': opts}
