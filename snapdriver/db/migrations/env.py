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

"""alembic's environment for the journal: migrations run on the
connection :mod:`snapdriver.db.migration` hands over, in batch mode (SQLite
cannot alter most of a table in place)."""

from alembic import context

from snapdriver.db import models

connection = context.config.attributes['connection']
context.configure(connection=connection,
                  target_metadata=models.metadata,
                  render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
