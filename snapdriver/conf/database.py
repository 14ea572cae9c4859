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
